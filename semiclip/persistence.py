"""Model files that run no code when read: :func:`save_model`, :func:`load_model`, ``model_info``.

A model file (``.semiclip``) is a zip archive of

- ``manifest.json``: the provenance, plain JSON (:func:`model_info` returns it):
  the format tag, the creation time, the versions of semiclip, Python, numpy,
  scipy, scikit-learn and torch, the estimator's class, parameters and
  ``random_state``, the normaliser, the column spec and a fingerprint of the
  training data (:func:`data_fingerprint`);
- ``state.json``: the fitted objects as a JSON tree of their ``__getstate__``
  dicts, each object named by a key of a fixed table of trusted classes;
- ``arrays/N.npy``: the arrays of that tree (the adapter's weights too), read
  with ``allow_pickle=False``.

Reading looks every class up in that table and never imports a name taken
from the file, so a crafted file cannot run code; a class outside the table is
refused. Sizes are bounded from the zip directory before any member is read,
each array is decoded once, parameters are checked with the estimator's own
constraints and the manifest against the model it describes. The thread count
is the reader's: ``n_threads`` is never taken from a file (it is ``None``).

Pickle and joblib files (e.g. written by ``semiclip fit`` before this format)
are refused *before* they are opened unless ``allow_pickle=True``, which warns
first: a pickle can run any code while it is read. The modules of earlier
semiclip versions named in such a file are mapped to where their classes are
now. The estimator's own
pickling (``pickle``/``joblib`` in Python) stays available, with that caveat.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._persistence_archive import Archive as _Archive
from ._persistence_checks import check_fitted_state as _check_fitted_state
from ._persistence_checks import check_manifest as _check_manifest
from ._persistence_checks import check_provenance as _check_provenance
from ._persistence_files import LEGACY_FORMAT as _LEGACY_FORMAT
from ._persistence_files import MODEL_FORMAT as _MODEL_FORMAT
from ._persistence_files import LoadedModel, atomic_write, data_fingerprint
from ._persistence_files import build_manifest as _build_manifest
from ._persistence_files import check_estimator as _check_estimator
from ._persistence_files import damaged as _damaged
from ._persistence_files import estimator_class as _estimator_class
from ._persistence_files import estimator_classes as _estimator_classes
from ._persistence_pickle import parses_as_pickle as _parses_as_pickle
from ._persistence_pickle import unpickle as _unpickle
from ._persistence_types import ArrayWriter as _ArrayWriter
from ._persistence_types import Damaged as _Damaged
from ._persistence_types import decode as _decode
from ._persistence_types import encode as _encode
from ._persistence_types import trusted_types as _trusted_types

if TYPE_CHECKING:
    from ._correction import ControlNormalizer
    from ._distill import SemiClippedTransformer

__all__ = [
    "LoadedModel",
    "atomic_write",
    "data_fingerprint",
    "load_model",
    "model_info",
    "save_model",
]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive
#: first bytes of pickles (protocol >= 2) and of joblib's compressed pickles
_PICKLE_MAGIC = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x04\x22\x4d\x18",
                 b"\x5d\x00\x00", b"ZF")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
#: what a crafted tree of the right shape can still raise while objects are rebuilt
_TREE_ERRORS = (RecursionError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


def save_model(path: str | os.PathLike[str], estimator: SemiClippedTransformer, *,
               normalizer: ControlNormalizer | None = None,
               columns: dict[str, Any] | None = None,
               fingerprint: dict[str, Any] | None = None) -> Path:
    """Save a fitted SemiClippedTransformer to a file that runs no code when it is read.

    The file is written to a temporary file beside ``path`` and renamed into
    place when complete (an existing ``path`` is replaced).

    Parameters
    ----------
    path : str or path-like
        Conventionally ending in ``.semiclip``.
    estimator : SemiClippedTransformer or RidgeDistiller
        Fitted; with the ``"pca"`` encoder (or none) and optionally an
        ``augmenter`` (PEA). A RidgeDistiller (the linear floor, ``semiclip
        fit --method ridge``) is saved the same way. An estimator holding
        anything else (a custom encoder, callbacks) raises a TypeError: pickle
        it from Python instead.
    normalizer : ControlNormalizer, optional
        A fitted batch correction applied before ``estimator``.
    columns : dict, optional
        How to read new files (``semiclip fit`` saves its column spec); numbers,
        strings, lists, tuples and dicts.
    fingerprint : dict, optional
        From :func:`data_fingerprint`; default: the estimator's input size and
        feature names, no row count.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, warnings
    >>> from pathlib import Path
    >>> from semiclip import SemiClippedTransformer
    >>> from semiclip.datasets import make_weakly_paired
    >>> data = make_weakly_paired(20, 10, n_batches=2, controls_per_batch=4,
    ...                           image_dim=4, program_size=5, random_state=0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     est = SemiClippedTransformer(encoder_dim=4, max_iter=1, control_label="control",
    ...                                  random_state=0)
    ...     est = est.fit(data.X, data.y, image_bank=data.image_bank)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save_model(Path(d) / "model.semiclip", est)
    ...     loaded = load_model(path)
    >>> bool((loaded.estimator.transform(data.X) == est.transform(data.X)).all())
    True
    """
    from sklearn.utils.validation import check_is_fitted

    from ._correction import ControlNormalizer

    if type(estimator) not in _estimator_classes():
        raise TypeError(f"save_model saves a fitted SemiClippedTransformer (or "
                        f"RidgeDistiller); got {type(estimator).__name__}. Pickle other objects "
                        "from Python.")
    try:
        check_is_fitted(estimator)
    except Exception:
        raise ValueError(f"save_model: the {type(estimator).__name__} is not fitted; call fit "
                         "first.") from None
    if normalizer is not None and type(normalizer) is not ControlNormalizer:
        raise TypeError(f"normalizer must be a fitted ControlNormalizer or None; got "
                        f"{type(normalizer).__name__}.")
    if columns is not None and type(columns) is not dict:
        raise TypeError(f"columns must be a dict or None; got {type(columns).__name__}.")
    if fingerprint is None:
        names = getattr(estimator, "feature_names_in_", None)
        fingerprint = data_fingerprint(None, names, columns, n_columns=estimator.n_features_in_)
    elif type(fingerprint) is not dict or set(fingerprint) != {"n_rows", "n_columns",
                                                               "column_spec_sha256"}:
        raise TypeError("fingerprint must be the dict of data_fingerprint(); got "
                        f"{fingerprint!r}.")
    elif fingerprint["n_columns"] not in (None, estimator.n_features_in_):
        raise ValueError(f"fingerprint describes {fingerprint['n_columns']} columns but the "
                         f"estimator was fitted on {estimator.n_features_in_} features; pass "
                         "the data_fingerprint() of its training data.")
    store = _ArrayWriter()
    state = {"estimator": _encode(estimator, store, "estimator"),
             "normalizer": _encode(normalizer, store, "normalizer"),
             "columns": _encode(columns, store, "columns")}
    manifest = _build_manifest(estimator, normalizer, columns, fingerprint)
    texts = (json.dumps(manifest, indent=1, allow_nan=False),
             json.dumps(state, allow_nan=False))
    with atomic_write(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", texts[0])
        zf.writestr("state.json", texts[1])
        for i, arr in enumerate(store.arrays):
            with zf.open(f"arrays/{i}.npy", "w") as fh:
                np.save(fh, arr, allow_pickle=False)
    return Path(path)


def load_model(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> LoadedModel:
    """Read a model file written by :func:`save_model` (or ``semiclip fit``); no code runs.

    Parameters
    ----------
    path : str or path-like
        A ``.semiclip`` file (or, with ``allow_pickle``, a pickle/joblib file).
    allow_pickle : bool, default=False
        Also read pickle/joblib files (models of ``semiclip fit`` before the
        ``.semiclip`` format, or a pickled estimator), with a warning: a
        pickle can run any code while it is read. Without it such a file is
        refused before it is opened.

    Returns
    -------
    model : LoadedModel
        The estimator, the normaliser, the column spec and the manifest.

    Examples
    --------
    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "old.joblib"
    ...     _ = path.write_bytes(pickle.dumps({"any": "object"}))
    ...     try:
    ...         load_model(path)
    ...     except ValueError as exc:
    ...         print("refused:", "allow_pickle=True" in str(exc))
    refused: True
    """
    path = _existing(path)
    if not _is_zip(path):
        return _load_pickle(path, allow_pickle)
    return _load_archive(path)


def _load_archive(path, *, run=True):
    """The LoadedModel of a model zip; ``run=False`` skips the transform of a row of zeros
    (``model_info``: the types, parameters and provenance are still checked)."""
    from ._correction import ControlNormalizer

    try:
        with zipfile.ZipFile(path) as zf:
            archive = _Archive(zf, path.stat().st_size)
            manifest = _read_manifest(archive, path)
            state = archive.json("state.json")
            if type(state) is not dict or "estimator" not in state:
                raise _Damaged("no 'estimator' in state.json")
            if set(state) - {"estimator", "normalizer", "columns"}:
                raise _Damaged(f"unexpected entries {sorted(state)!r} in state.json")
            _check_roots(state, path)
            objects = {k: _decode(state.get(k), archive.array)
                       for k in ("estimator", "normalizer", "columns")}
    except _Damaged as exc:
        raise _damaged(path, exc) from None
    except (*_ZIP_ERRORS, *_TREE_ERRORS) as exc:
        raise _damaged(path, f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # e.g. a type outside the trusted table
        raise ValueError(f"{str(path)!r}: {exc}") from None
    _check_estimator(objects["estimator"], path)
    if objects["normalizer"] is not None and type(objects["normalizer"]) is not ControlNormalizer:
        raise ValueError(f"{str(path)!r} holds a {type(objects['normalizer']).__name__} as its "
                         "normalizer, not a ControlNormalizer.")
    if objects["columns"] is not None and type(objects["columns"]) is not dict:
        raise _damaged(path, "its column spec is not a dict")
    _check_fitted_state(objects["estimator"], objects["normalizer"], path, run=run)
    _check_provenance(manifest, objects["estimator"], objects["normalizer"], objects["columns"],
                     path)
    return LoadedModel(objects["estimator"], objects["normalizer"], objects["columns"], manifest)


def model_info(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> dict[str, Any]:
    """The provenance of a model file (its ``manifest.json``), checked against its model.

    The model is rebuilt (bounded, no code from the file runs) and the
    manifest must describe it, so what this returns is what
    :func:`load_model` gives; it is not run on a row of zeros.

    Parameters
    ----------
    path : str or path-like
        A ``.semiclip`` file (or, with ``allow_pickle``, a pickle/joblib file).
    allow_pickle : bool, default=False
        For a pickle/joblib file: load it (with a warning; a pickle can run
        code) and describe what it holds; versions and creation time are
        unknown (None).

    Returns
    -------
    dict
        ``format``, ``created``, ``versions``, ``estimator`` (``class``,
        ``params``, ``random_state``, ``fitted``), ``normalizer``, ``columns``
        and ``fingerprint``. Parameters that are not JSON values are given as
        ``{"repr": repr(value), "json": False}``.

    Examples
    --------
    A model of 10 keys with 4 samples each, teacher = one-hot rows:

    >>> import tempfile, warnings
    >>> import numpy as np
    >>> from semiclip import ImageBank, SemiClippedTransformer
    >>> X, keys = np.random.default_rng(0).normal(size=(40, 6)), np.repeat(np.arange(10), 4)
    >>> bank = ImageBank(np.eye(10), np.arange(10))
    >>> est = SemiClippedTransformer(encoder_dim=3, max_iter=1, random_state=7)
    >>> with warnings.catch_warnings(), tempfile.TemporaryDirectory() as d:
    ...     warnings.simplefilter("ignore")  # one epoch: not converged
    ...     info = model_info(save_model(f"{d}/m.semiclip", est.fit(X, keys, image_bank=bank)))
    >>> info["format"], info["estimator"]["class"], info["estimator"]["random_state"]
    ('semiclip-model/1', 'SemiClippedTransformer', 7)
    >>> sorted(info["versions"])
    ['numpy', 'python', 'scikit-learn', 'scipy', 'semiclip', 'torch']
    """
    path = _existing(path)
    if not _is_zip(path):
        return _load_pickle(path, allow_pickle).manifest
    return _load_archive(path, run=False).manifest


# ------------------------------------------------------------------ helpers
def _existing(path):
    path = Path(os.fspath(path))
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory, not a model file.")
    if not path.is_file():
        raise FileNotFoundError(f"no file at {str(path)!r}.")
    return path


def _head(path):
    with open(path, "rb") as fh:
        return fh.read(8)


def _is_zip(path):
    return _head(path).startswith(_ZIP_MAGIC)


def _check_roots(state, path):
    """The estimator and normalizer of the file are of their classes, before anything is read."""
    allowed = {"estimator": tuple(cls.__name__ for cls in _estimator_classes()),
               "normalizer": ("ControlNormalizer",)}
    for key, names in allowed.items():
        node = state.get(key)
        tag = node.get("$object") if type(node) is dict else None
        if key == "normalizer" and node is None:
            continue
        if tag in _trusted_types() and tag not in {f"semiclip.{n}" for n in names}:
            raise ValueError(f"it holds a {tag.rpartition('.')[2]} as its {key}, not a "
                             f"{names[0]}.")


def _read_manifest(archive, path):
    if "manifest.json" not in archive.names:
        raise ValueError(f"{str(path)!r} is not a semiclip model file: a zip archive with no "
                         "manifest.json.")
    manifest = archive.json("manifest.json")
    tag = manifest.get("format") if type(manifest) is dict else None
    if tag == _MODEL_FORMAT:
        _check_manifest(manifest)
        return manifest
    if isinstance(tag, str) and tag.startswith("semiclip-model/"):
        raise ValueError(f"{str(path)!r} is a model file of format {tag!r}, written by a newer "
                         f"semiclip; this one reads {_MODEL_FORMAT!r}: upgrade semiclip.")
    raise ValueError(f"{str(path)!r} is not a semiclip model file: its manifest.json has the "
                     f"format {tag!r}, not {_MODEL_FORMAT!r}.")


def _load_pickle(path, allow_pickle):
    if not allow_pickle:
        looks = _head(path).startswith(_PICKLE_MAGIC) or _parses_as_pickle(path)
        raise ValueError(
            f"{str(path)!r} is not a semiclip model file (a zip archive with manifest.json)"
            + ("; it looks like a pickle or joblib file, e.g. a model of `semiclip fit` before "
               "the .semiclip format. A pickle can run any code while it is read, so it was "
               "not opened. If you trust the file, pass allow_pickle=True (on the command "
               "line: --allow-pickle), then save it again to get a file that runs no code."
               if looks else ".")
        )
    warnings.warn(
        f"reading {str(path)!r} as a pickle (allow_pickle=True): a pickle can run any code "
        "while it is read, so do this only for files you trust. Save the model again "
        "(semiclip.persistence.save_model, or `semiclip fit`) to get a file that runs no code.",
        UserWarning, stacklevel=3)
    try:
        obj = _unpickle(path)
    except Exception as exc:
        raise ValueError(f"{str(path)!r}: cannot read it as a pickle ({type(exc).__name__}: "
                         f"{exc}).") from None
    if type(obj) is dict and obj.get("format") == _LEGACY_FORMAT:
        missing = [k for k in ("estimator", "columns", "feature_names") if k not in obj]
        if missing:
            raise ValueError(f"{str(path)!r} has the tag {_LEGACY_FORMAT!r} but no "
                             f"{', '.join(map(repr, missing))}: it is _damaged or was not "
                             "written by `semiclip fit`.")
        est, normalizer = obj["estimator"], obj.get("normalizer")
        if type(obj["columns"]) is not dict:
            raise _damaged(path, "its column spec is not a dict")
        columns = {**obj["columns"], "feature_names": [str(f) for f in obj["feature_names"]]}
        tag = _LEGACY_FORMAT
    elif type(obj) is _estimator_class():
        est, normalizer, columns, tag = obj, None, None, "pickle"
    else:
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not a semiclip model "
                         f"(a SemiClippedTransformer, or the {_LEGACY_FORMAT!r} dict of "
                         "`semiclip fit`).")
    _check_estimator(est, path)
    names = None if columns is None else columns["feature_names"]
    fingerprint = data_fingerprint(None, names, columns, n_columns=est.n_features_in_)
    manifest = _build_manifest(est, normalizer, columns, fingerprint)
    manifest.update(format=tag, created=None, versions=None)
    return LoadedModel(est, normalizer, columns, manifest)
