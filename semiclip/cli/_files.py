"""Files the commands write and model files they read: checked first, written whole.

Every output is checked before any work (not a directory, not one of the
command's inputs, its directory exists, its format, and for ``fit -o`` /
``transform -o`` not an existing file unless ``--overwrite``), then written
to a temporary file beside it and renamed into place when complete
(:func:`semiclip.persistence.atomic_write`). Model files are read with
:func:`semiclip.persistence.load_model`; its warnings become one line each.
"""

import contextlib
import os
import sys
import warnings
from pathlib import Path

from .._persistence_files import CREATE_ONLY, MODEL_SUFFIX
from ..persistence import atomic_write, load_model, model_info

__all__ = [
    "CLI_COLUMNS",
    "atomic_write",
    "check_output",
    "check_outputs",
    "model_suffix",
    "printable",
    "read_info",
    "read_model",
    "same_file",
]

#: the column spec ``semiclip transform`` needs from a model file
CLI_COLUMNS = ("key", "batch", "control", "control_label", "layer", "obsm", "exclude",
               "normalize_symbols", "dose", "feature_names")


def printable(value):
    """``value`` with every character a terminal would act on (control characters, ANSI/OSC
    escapes, bidi overrides, line breaks) written as a Python escape such as ``\\x1b``;
    strings inside lists and dicts too."""
    if isinstance(value, str):
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                       for c in value)
    if isinstance(value, list):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    return value


def same_file(a, b):
    """Whether two paths name the same file (also through links or another spelling)."""
    a, b = Path(os.fspath(a)), Path(os.fspath(b))
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:  # pragma: no cover - unreadable: compare the names
        pass
    return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())


def check_output(path, what, *, inputs=(), overwrite=None, check_format=None):
    """Refuse an output path before any work is done; return it as a Path.

    ``inputs`` are ``(flag, path)`` pairs of the command's input files: an
    output naming one of them is always refused. ``overwrite=False`` refuses
    an existing file (``None``: no such check); ``check_format(path)`` raises
    for a name whose suffix is not a format the command writes.
    """
    text = "" if path is None else os.fspath(path)
    if not str(text).strip():
        raise ValueError(f"{what} must name a file.")
    out = Path(text)
    for flag, source in inputs:
        if source is not None and same_file(out, source):
            raise ValueError(f"{what} {text!r} is the {flag} input file; writing there would "
                             "destroy it. Choose another output name.")
    if out.is_dir():
        raise ValueError(f"{what} {text!r} is a directory; give the name of a file (e.g. one "
                         "inside it).")
    if check_format is not None:
        check_format(out)
    parent = out.resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what}: the directory {str(parent)!r} does not exist.")
    if overwrite is False and out.exists():
        raise ValueError(f"{what} {text!r} exists; pass --overwrite to replace it.")
    return out


def check_outputs(outputs, *, inputs=(), overwrite=None):
    """Check every output against every input and every other output; return their Paths.

    ``outputs`` are ``(flag, path)`` or ``(flag, path, check_format)``
    tuples (a ``None`` path is skipped); see :func:`check_output`. With
    ``overwrite=False`` the outputs are then created without replacing a file
    that appears meanwhile (:data:`CREATE_ONLY`): of concurrent commands
    writing one name, exactly one wins.
    """
    checked = []
    for flag, path, *check_format in outputs:
        if path is None:
            continue
        out = check_output(path, flag, inputs=inputs, overwrite=overwrite,
                           check_format=check_format[0] if check_format else None)
        for other_flag, other in checked:
            if same_file(out, other):
                raise ValueError(f"{flag} {os.fspath(path)!r} is also the {other_flag} output; "
                                 "give each output its own file name.")
        checked.append((flag, out))
    if overwrite is False:
        CREATE_ONLY.set({**(CREATE_ONLY.get() or {}), **{
            os.path.normcase(str(out.resolve())): flag for flag, out in checked}})
    return [out for _, out in checked]


def model_suffix(path):
    """Model files end in ``.semiclip``."""
    if Path(path).suffix.lower() != MODEL_SUFFIX:
        raise ValueError(
            f"--output {str(path)!r}: a model file name ends in {MODEL_SUFFIX} (e.g. "
            f"model{MODEL_SUFFIX}); `semiclip fit` writes a file that runs no code when read, "
            "not a pickle."
        )


@contextlib.contextmanager
def _warnings_as_lines(command):
    """Print each warning as one line on stderr *when it is raised* (a pickle is warned
    about before it is opened, so the line is out even if unpickling never returns)."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split()).replace("(allow_pickle=True)", "(--allow-pickle)")
        print(f"semiclip {command}: warning: {printable(text)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def read_model(path, *, allow_pickle, command):
    """The :class:`~semiclip.persistence.LoadedModel` of ``-m``, with ``transform``'s columns."""
    with _warnings_as_lines(command):
        loaded = _prefixed(load_model, path, allow_pickle)
    columns = loaded.columns
    if columns is None:
        raise ValueError(
            f"--model: {str(path)!r} has no column spec (it was saved from Python without "
            "columns=), so `semiclip transform` cannot tell how to read --tx; fit it with "
            "`semiclip fit`, or use semiclip.persistence.load_model in Python."
        )
    missing = [c for c in CLI_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"--model: {str(path)!r}: its column spec lacks {', '.join(map(repr, missing))}, "
            "which `semiclip transform` needs; the file is damaged or was not written by "
            "`semiclip fit`. Fit the model again."
        )
    return loaded


def read_info(path, *, allow_pickle, command):
    """The manifest of a model file (see :func:`semiclip.persistence.model_info`)."""
    with _warnings_as_lines(command):
        return _prefixed(model_info, path, allow_pickle)


def _prefixed(read, path, allow_pickle):
    try:
        return read(path, allow_pickle=allow_pickle)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--model: {exc}") from None
    except ValueError as exc:
        message = str(exc).replace("allow_pickle=True (on the command line: --allow-pickle)",
                                   "--allow-pickle")
        raise ValueError(f"--model: {message}") from None
