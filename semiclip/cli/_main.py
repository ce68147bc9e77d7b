"""The ``semiclip`` command line: demo, fit, transform, attribute, info, evaluate, benchmark.

One module per command, each with ``add_parser(subparsers)`` and
``run(args)``; heavy imports happen inside ``run`` so that
``semiclip --help`` is instant. Errors the user can fix end with one line
on stderr, ``semiclip COMMAND: error: ...``, and exit status 2; warnings are
one line each, ``semiclip COMMAND: warning: ...``, with the flags a
command-line user types in place of Python parameter names.
"""

from __future__ import annotations

import argparse
import contextvars
import re
import sys
import warnings
from collections.abc import Sequence

from . import _attribute, _benchmark, _demo, _evaluate, _fit, _info, _transform
from ._files import printable

__all__ = ["main"]

COMMANDS = (_demo, _fit, _transform, _attribute, _info, _evaluate, _benchmark)


def build_parser() -> argparse.ArgumentParser:
    """The ``semiclip`` argument parser, one sub-command per module of ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="semiclip",
        description="Distil microscopy embeddings into transcriptomics representations "
        "(Semi-Clipped + PEA).",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"semiclip {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command_parser = command.add_parser(sub)
        command_parser.formatter_class = DefaultsHelpFormatter
        # the long options of the command, as a Python name -> flag table for its warnings
        flags = re.findall(r"--[a-z][a-z0-9-]*", command_parser.format_usage())
        _FLAGS[command_parser.prog.split()[-1]] = {f[2:].replace("-", "_"): f for f in flags}
    return parser


_FLAGS = {}


def command_flags(command):
    """``{python name: flag}`` of the long options of ``command`` (e.g. ``max_iter``)."""
    if command not in _FLAGS:
        build_parser()
    return _FLAGS[command]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it has none or already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or default in ((), [], "")
                or re.search(r"\bdefault\b", text)):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {shown})" if text else f"default: {shown}"


#: Python wording in warnings, and what a command-line user types instead
_ADVICE = (
    (r"\(?semiclip\.RidgeDistiller\)?", "(`semiclip fit --method ridge`)"),
    (r"\bRidgeDistiller\b", "`semiclip fit --method ridge`"),
    (r"\bmethod='(\w+)'", r"--normalize \1"),
    (r" See validation_report_\.", ""),
    (r"\bvalidation_report_\b", "the model's held-out report"),
)


def cli_advice(message, flags):
    """A warning's text in one line, with flag spelling for the Python parameters it names."""
    text = " ".join(str(message).split())
    for pattern, repl in _ADVICE:
        text = re.sub(pattern, repl, text)
    for name, flag in flags.items():
        if name in ("output", "method", "help", "version"):
            continue
        # name='value' / name=value -> --flag value; a bare snake_case name -> --flag
        text = re.sub(rf"\b{name}=(['\"]?)([^'\"\s,;)]+)\1", rf"{flag} \2", text)
        if "_" in name:
            text = re.sub(rf"(?<![-\w]){name}\b", flag, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``semiclip`` command line from Python.

    ``semiclip fit ...`` in a shell is ``main(["fit", ...])``. An error the
    user can fix (a bad value, a missing file) is printed as one line on
    stderr, ``semiclip COMMAND: error: ...``, and gives status 2 instead of a
    traceback.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after ``semiclip`` (``["demo", "--quick"]``). None reads
        ``sys.argv[1:]``.

    Returns
    -------
    status : int
        The exit status: 0 on success, 2 on a user error. ``--help``,
        ``--version`` and unknown options exit through :class:`SystemExit`
        (argparse's behaviour).

    Examples
    --------
    >>> from semiclip.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    semiclip 0.2.0.dev0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = command_flags(args.command)

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"semiclip {args.command}: warning: {printable(cli_advice(message, flags))}",
              file=sys.stderr, flush=True)

    try:  # a fresh context per command: the outputs it may only create (see check_outputs)
        with warnings.catch_warnings():  # restores the caller's showwarning afterwards
            warnings.showwarning = show
            return contextvars.copy_context().run(args.func, args)
    except (ValueError, TypeError, OSError, ImportError) as exc:  # OSError: disk full...
        message = printable(" ".join(str(exc).split()) or type(exc).__name__)
        if isinstance(exc, ImportError):
            message = install_hint(exc, message)
        print(f"semiclip {args.command}: error: {message}", file=sys.stderr)
        return 2


#: optional packages and the extra that installs them
EXTRAS = {"pyarrow": "io", "fastparquet": "io", "anndata": "anndata", "h5py": "anndata",
          "matplotlib": "plot", "tqdm": "progress", "mudata": "mudata", "dask": "dask",
          "distributed": "dask", "imblearn": "imblearn", "umap": "umap"}


def install_hint(exc, message):
    """``message`` plus the ``pip install`` line of the extra holding the missing package."""
    if "semiclip[" in message:
        return message
    names = [str(getattr(exc, "name", None) or "").split(".")[0]]
    names += [n for n in EXTRAS if re.search(rf"\b{n}\b", message)]  # pandas' parquet error
    for name in names:
        if name in EXTRAS:
            return (f"{message} (this needs {name}: pip install 'semiclip[{EXTRAS[name]}]', "
                    "or 'semiclip[cli]' for everything the command line reads and writes)")
    return message


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
