"""The files of :mod:`semiclip.persistence`: atomic writes, the manifest, what a file holds.

The manifest is plain JSON: the format tag, the creation time, the library
versions, the estimator's class, parameters (values that are not JSON given
by their ``repr`` and marked) and ``random_state``, the normaliser, the
column spec and the training data's fingerprint.
"""

import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
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


@contextlib.contextmanager
def atomic_write(path):
    """Write ``path`` through a temporary file beside it, renamed into place when complete.

    Yields the temporary path (its name ends with ``path``'s name, so writers
    that read the suffix see the same one). If the block raises, the temporary
    file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like

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
    while True:
        tmp = parent / f".tmp-{secrets.token_hex(4)}-{path.name}"
        try:  # umask-respecting permissions, like any new file
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def data_fingerprint(n_rows, feature_names, columns=None, *, n_columns=None):
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
    columns : dict or None
        Its ``"key"``, ``"batch"`` and ``"control"`` entries are hashed.
    n_columns : int, optional
        Default: ``len(feature_names)``.

    Returns
    -------
    dict
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
                           "n_iter": int(est.n_iter_), "n_paired_keys": int(est.n_paired_keys_)}
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
    """The estimator class a model file holds."""
    from ._distill import SemiClippedTransformer

    return SemiClippedTransformer


def check_estimator(est, path):
    """Refuse anything but a fitted SemiClippedTransformer with all its fitted attributes."""
    from sklearn.utils.validation import check_is_fitted

    if type(est) is not estimator_class():
        raise ValueError(f"{str(path)!r} holds a {type(est).__name__} as its estimator, not a "
                         "SemiClippedTransformer.")
    try:
        check_is_fitted(est)
    except Exception:
        raise damaged(path, "its SemiClippedTransformer is not fitted") from None
    missing = [name for name in _FITTED if not _has(est, name)]
    if est.get_params().get("augmenter") is not None:
        missing += [name for name in ("augmenter_", "correction_") if not _has(est, name)]
    if missing:
        raise damaged(path, f"its SemiClippedTransformer lacks the fitted attribute(s) "
                             f"{', '.join(missing)}")


def _has(obj, name):
    try:
        getattr(obj, name)
    except AttributeError:
        return False
    return True
