"""The files of :mod:`semiclip.persistence`: atomic writes, the manifest, what a file holds.

The manifest is plain JSON: the format tag, the creation time, the library
versions, the estimator's class, parameters (values that are not JSON given
by their ``repr`` and marked) and ``random_state``, the normaliser, the
column spec and the training data's fingerprint.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import glob
import hashlib
import json
import math
import os
import platform
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CREATE_ONLY",
    "LEGACY_FORMAT",
    "MODEL_FORMAT",
    "MODEL_SUFFIX",
    "LoadedModel",
    "atomic_write",
    "build_manifest",
    "check_estimator",
    "damaged",
    "data_fingerprint",
    "describe",
    "estimator_class",
    "estimator_classes",
    "plain",
]

#: the format tag of ``manifest.json``
MODEL_FORMAT = "semiclip-model/1"
#: the tag of the joblib dicts written by ``semiclip fit`` before :data:`MODEL_FORMAT`
LEGACY_FORMAT = "semiclip-cli-model/1"
#: the file name suffix of model files
MODEL_SUFFIX = ".semiclip"
#: attributes every fitted SemiClippedTransformer has (n_iter_ reads the training history)
_FITTED = ("n_features_in_", "encoder_", "adapter_", "decoder_", "training_params_",
           "n_paired_keys_", "device_", "n_iter_", "loss_curve_")


@dataclass(frozen=True)
class LoadedModel:
    """What :func:`load_model` returns.

    Attributes
    ----------
    estimator : SemiClippedTransformer
        The fitted estimator.
    normalizer : ControlNormalizer or None
        The batch correction applied before ``estimator`` (``semiclip fit``).
    columns : dict or None
        How to read new files (``semiclip fit``'s column spec), as saved.
    manifest : dict
        The provenance (:func:`model_info`).
    """

    estimator: object
    normalizer: object
    columns: object
    manifest: dict


#: paths that :func:`atomic_write` creates but never replaces (an output checked not to exist,
#: without --overwrite): ``{resolved path: what names it in messages}``
CREATE_ONLY = contextvars.ContextVar("semiclip_create_only", default=None)
#: temporaries are named ``.tmp-semiclip-PID-RANDOM-NAME``; also the earlier ``.tmp-RANDOM-NAME``
_TMP_PREFIX = ".tmp-semiclip-"
_STALE_SECONDS = 3600


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Write ``path`` through a temporary file beside it, renamed into place when complete.

    Yields the temporary path (its name ends with ``path``'s name, so writers
    that read the suffix see the same one). If the block raises, the temporary
    file is removed and ``path`` is left as it was. A path registered in
    :data:`CREATE_ONLY` is created without replacing a file that appeared
    meanwhile (the temporary file is hard-linked to it, which fails if it
    exists): of concurrent writers exactly one wins. Temporaries that a killed
    writer left beside ``path`` (its process gone, or over an hour old) are
    removed first.

    Parameters
    ----------
    path : str or path-like
        The file to write; its directory must exist. An existing file is
        replaced only when the block completes.

    Yields
    ------
    tmp : pathlib.Path
        The temporary file to write to, in ``path``'s directory; its name ends
        with ``path``'s name, so writers that read the suffix see the same one.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_write(Path(d) / "table.csv") as tmp:
    ...         _ = tmp.write_text("a,b\\n1,2\\n")
    ...     print(sorted(p.name for p in Path(d).iterdir()))
    ['table.csv']
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a file name.")
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"the directory {str(parent)!r} of {str(path)!r} does not exist.")
    _remove_stale_temporaries(parent, path.name)
    while True:
        tmp = parent / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}"
        try:  # umask-respecting permissions, like any new file
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    what = (CREATE_ONLY.get() or {}).get(os.path.normcase(str(path.resolve())))
    try:
        yield tmp
        if what is None:
            os.replace(tmp, path)
        else:
            _create(tmp, path, what)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create(tmp, path, what):
    """Move ``tmp`` to ``path`` only if ``path`` does not exist, atomically."""
    try:
        os.link(tmp, path)  # fails if path exists, whoever created it
    except FileExistsError:
        raise ValueError(f"{what} {str(path)!r} exists (it appeared while this command ran); "
                         "pass --overwrite to replace it.") from None
    except OSError:  # pragma: no cover - a file system without hard links
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise ValueError(f"{what} {str(path)!r} exists (it appeared while this command "
                             "ran); pass --overwrite to replace it.") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _remove_stale_temporaries(parent, name):
    """Remove the temporaries of ``name`` left by writers that were killed."""
    now = time.time()
    for tmp in parent.glob(f".tmp-*-{glob.escape(name)}"):
        rest = tmp.name[len(_TMP_PREFIX):] if tmp.name.startswith(_TMP_PREFIX) else None
        pid = rest.split("-", 1)[0] if rest else ""
        try:
            old = now - tmp.lstat().st_mtime > _STALE_SECONDS
            if not (old or (pid.isdigit() and not _alive(int(pid)))):
                continue
            if rest is None and not re.fullmatch(r"\.tmp-[0-9a-f]{8}-.*", tmp.name, re.S):
                continue  # not of our naming
            tmp.unlink()
        except OSError:
            continue


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def data_fingerprint(n_rows: int | None, feature_names: Sequence[str] | None,
                     columns: dict[str, Any] | None = None, *,
                     n_columns: int | None = None) -> dict[str, Any]:
    """The training data's fingerprint: its size and a SHA-256 of its column spec.

    The hash is that of the UTF-8 bytes of
    ``json.dumps({"features": [...], "key": ..., "batch": ..., "control": ...},
    sort_keys=True, separators=(",", ":"))`` (tuples as lists), so files with
    the same features and key/batch/control columns share it.

    Parameters
    ----------
    n_rows : int or None
        Training samples.
    feature_names : sequence of str or None
        The feature (gene) names, in column order; None when unknown.
    columns : dict or None
        Its ``"key"``, ``"batch"`` and ``"control"`` entries are hashed.
    n_columns : int, optional
        Default: ``len(feature_names)``.

    Returns
    -------
    fingerprint : dict
        ``{"n_rows", "n_columns", "column_spec_sha256"}``.

    Examples
    --------
    >>> fp = data_fingerprint(96, ["g0", "g1"], {"key": ["Metadata_gene"]})
    >>> fp["n_rows"], fp["n_columns"], len(fp["column_spec_sha256"])
    (96, 2, 64)
    """
    columns = columns or {}
    features = None if feature_names is None else [str(f) for f in feature_names]
    spec = {"features": features, "key": plain(columns.get("key")),
            "batch": plain(columns.get("batch")), "control": plain(columns.get("control"))}
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if n_columns is None:
        n_columns = None if features is None else len(features)
    return {"n_rows": None if n_rows is None else int(n_rows),
            "n_columns": None if n_columns is None else int(n_columns),
            "column_spec_sha256": hashlib.sha256(blob.encode("utf-8")).hexdigest()}


def _versions():
    import scipy
    import sklearn
    import torch

    from . import __version__

    return {"semiclip": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__}


def describe(obj):
    if obj is None:
        return None
    return {"class": type(obj).__name__,
            "params": {k: plain(v) for k, v in obj.get_params(deep=False).items()}}


def build_manifest(est, normalizer, columns, fingerprint):
    """The manifest of a model file holding ``est`` (and ``normalizer``)."""
    described = describe(est)
    described["random_state"] = plain(est.random_state)
    described["fitted"] = {"n_features_in": int(est.n_features_in_),
                           "n_features_out": len(est.get_feature_names_out()),
                           # a RidgeDistiller has no epochs (closed form)
                           "n_iter": int(getattr(est, "n_iter_", 0)),
                           "n_paired_keys": int(getattr(est, "n_paired_keys_", 0))}
    report = getattr(est, "validation_report_", None)  # the held-out judgement (issue 19)
    described["fitted"]["judgement"] = None if report is None else report.get("summary")
    return {"format": MODEL_FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "versions": _versions(), "estimator": described,
            "normalizer": describe(normalizer), "columns": plain(columns),
            "fingerprint": fingerprint}


def plain(value):
    """``value`` as JSON, or ``{"repr": repr(value), "json": False}``."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, np.integer):
        return int(value)
    if type(value) is float or isinstance(value, np.floating):
        if math.isfinite(value):
            return float(value)
    elif type(value) in (list, tuple):
        return [plain(v) for v in value]
    elif type(value) is dict and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    return {"repr": repr(value), "json": False}


def damaged(path, detail):
    """The ValueError of a damaged model file."""
    return ValueError(f"{str(path)!r}: the model file is damaged ({detail}); write it again "
                      "with `semiclip fit` or semiclip.persistence.save_model.")


def estimator_class():
    """The estimator class a pickled model may be (Semi-Clipped; see :func:`check_estimator`)."""
    from ._distill import SemiClippedTransformer

    return SemiClippedTransformer


def estimator_classes():
    """The estimator classes a model file may hold, decided here only: Semi-Clipped, and the
    ridge floor of ``semiclip fit --method ridge``."""
    from ._distill import RidgeDistiller, SemiClippedTransformer

    return (SemiClippedTransformer, RidgeDistiller)


def _fitted_names(est):
    """The fitted attributes a saved estimator of ``est``'s class must have."""
    from ._distill import RidgeDistiller

    if type(est) is RidgeDistiller:  # `semiclip fit --method ridge`: the linear floor
        return ("n_features_in_", "encoder_", "ridge_")
    return _FITTED


def check_estimator(est, path):
    """Refuse anything but a fitted SemiClippedTransformer (or RidgeDistiller) with all its
    fitted attributes."""
    from sklearn.utils.validation import check_is_fitted

    name = type(est).__name__
    if type(est) not in estimator_classes():
        raise ValueError(f"{str(path)!r} holds a {name} as its estimator, not a "
                         "SemiClippedTransformer.")
    try:
        check_is_fitted(est)
    except Exception:
        raise damaged(path, f"its {name} is not fitted") from None
    missing = [attr for attr in _fitted_names(est) if not _has(est, attr)]
    if est.get_params().get("augmenter") is not None:
        missing += [attr for attr in ("augmenter_", "correction_") if not _has(est, attr)]
    if missing:
        raise damaged(path, f"its {name} lacks the fitted attribute(s) "
                            f"{', '.join(missing)}")


def _has(obj, name):
    try:
        getattr(obj, name)
    except AttributeError:
        return False
    return True
