"""Checks of a model file once read: the manifest's JSON types, the rebuilt model's attribute
types (and that it transforms), and that the manifest describes the model it holds."""

import re

import numpy as np

from ._persistence_files import build_manifest, damaged
from ._persistence_types import Damaged

__all__ = ["check_fitted_state", "check_manifest", "check_provenance"]


def _is(value, types, what):
    if type(value) not in types:
        names = " or ".join("null" if t is type(None) else {"dict": "an object", "list": "a list",
                            "str": "a string", "int": "an integer", "bool": "a boolean"}.get(
                                t.__name__, t.__name__) for t in types)
        raise Damaged(f"its manifest.json gives {what} as {type(value).__name__} "
                         f"{_short(value)}, not {names}")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_manifest(manifest):
    """Refuse a manifest whose fields have the wrong JSON types (a ValueError naming one)."""
    fields = {"format", "created", "versions", "estimator", "normalizer", "columns",
              "fingerprint"}
    if set(manifest) != fields:
        raise Damaged(f"its manifest.json has the fields {sorted(manifest)}, not "
                         f"{sorted(fields)}")
    _is(manifest["created"], (str, type(None)), "'created'")
    _is(manifest["versions"], (dict,), "'versions'")
    for k, v in manifest["versions"].items():
        _is(v, (str,), f"the version of {k!r}")
    est = manifest["estimator"]
    _is(est, (dict,), "'estimator'")
    if set(est) != {"class", "params", "random_state", "fitted"}:
        raise Damaged(f"its manifest.json's 'estimator' has the fields {sorted(est)}")
    _is(est["class"], (str,), "'estimator.class'")
    _is(est["params"], (dict,), "'estimator.params'")
    _is(est["fitted"], (dict,), "'estimator.fitted'")
    for k, v in est["fitted"].items():  # counts, and the one-line held-out judgement
        _is(v, (str, type(None)) if k == "judgement" else (int,), f"'estimator.fitted.{k}'")
    norm = manifest["normalizer"]
    _is(norm, (dict, type(None)), "'normalizer'")
    if norm is not None:
        _is(norm.get("class"), (str,), "'normalizer.class'")
        _is(norm.get("params"), (dict,), "'normalizer.params'")
    _is(manifest["columns"], (dict, type(None)), "'columns'")
    fp = manifest["fingerprint"]
    _is(fp, (dict,), "'fingerprint'")
    _is(fp.get("n_rows"), (int, type(None)), "'fingerprint.n_rows'")
    _is(fp.get("n_columns"), (int, type(None)), "'fingerprint.n_columns'")
    _is(fp.get("column_spec_sha256"), (str,), "'fingerprint.column_spec_sha256'")


def _attribute_types():
    from sklearn.decomposition import PCA, IncrementalPCA
    from sklearn.linear_model import Ridge

    from ._correction import ControlNormalizer, PEAAugmenter
    from ._nn import History, LinearDecoder

    none = type(None)
    return {"n_features_in_": (int,), "encoder_": (PCA, IncrementalPCA, none),
            "training_params_": (dict,), "n_threads_": (int,), "validation_report_": (dict, none),
            "_history_": (History,), "device_": (str,), "_paired_keys": (np.ndarray,),
            "n_paired_keys_": (int,), "decoder_": (LinearDecoder,),
            "augmenter_": (PEAAugmenter, none), "correction_": (ControlNormalizer, none),
            "feature_names_in_": (np.ndarray,), "ridge_": (Ridge,)}


def check_fitted_state(est, normalizer, path, *, run=True):
    """Check the rebuilt model's attribute types, then (``run``) that it transforms two rows
    of zeros.

    Any failure is the ValueError of a damaged file: a model that loads is one
    that runs.
    """
    import warnings

    for name, types in _attribute_types().items():
        if name in vars(est) and not isinstance(vars(est)[name], types):
            raise damaged(path, f"its {type(est).__name__}'s {name} is a "
                                f"{type(vars(est)[name]).__name__}, not "
                                f"{' or '.join(t.__name__ for t in types)}")
    n = est.n_features_in_
    names = vars(est).get("feature_names_in_")
    if n < 1 or (names is not None and names.shape != (n,)):
        raise damaged(path, f"its {type(est).__name__} has n_features_in_={n} and "
                            f"{'no' if names is None else names.shape} feature names")
    if not run:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = np.zeros((2, n))
            if normalizer is not None:
                X = normalizer.transform(X, batch=np.repeat(normalizer.batches_[:1], 2))
            correction = vars(est).get("correction_")
            batch = None if correction is None else np.repeat(correction.batches_[:1], 2)
            Z = _on_the_cpu(est, X, batch)
            n_out = len(est.get_feature_names_out())
            if "_history_" in vars(est) or hasattr(type(est), "loss_curve_"):
                est.n_iter_, est.loss_curve_  # noqa: B018 - read from the history
    except Exception as exc:  # noqa: BLE001 - whatever a crafted state raises
        raise damaged(path, f"the model it holds does not transform a row of zeros "
                            f"({type(exc).__name__}: {exc})") from None
    if type(Z) is not np.ndarray or Z.shape != (2, n_out) or not np.isfinite(Z).all():
        raise damaged(path, "the model it holds does not transform a row of zeros into finite "
                            f"values of {n_out} dimensions")


def _on_the_cpu(est, X, batch):
    """``est.transform`` on the CPU: the check must not depend on the reader's hardware (a
    model fitted with ``device="cuda"`` loads on a machine without one)."""
    if "device" not in est.get_params():  # RidgeDistiller: numpy only
        return est.transform(X)
    device = est.device
    est.device = "cpu"
    try:
        return est.transform(X, batch=batch)
    finally:
        est.device = device


def _json(value):
    """``value`` as read back from JSON, reprs without their memory addresses."""
    if type(value) is dict:
        if value.get("json") is False and type(value.get("repr")) is str:
            return {**value, "repr": re.sub(r" at 0x[0-9a-fA-F]+", "", value["repr"])}
        return {k: _json(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return [_json(v) for v in value]
    return value


def check_provenance(manifest, est, normalizer, columns, path):
    """Refuse a file whose manifest describes another model than the one it holds."""
    try:
        expected = build_manifest(est, normalizer, columns, manifest["fingerprint"])
    except Exception as exc:  # noqa: BLE001 - whatever a crafted state raises
        raise damaged(path, f"the model it holds cannot be described ({type(exc).__name__}: "
                            f"{exc})") from None
    recorded = _json({k: manifest[k] for k in ("estimator", "normalizer", "columns")})
    expected = _json({k: expected[k] for k in recorded})
    for described in (recorded["estimator"], expected["estimator"]):
        described["params"] = {k: v for k, v in described["params"].items()
                               if k not in _READER_PARAMS}
    if manifest["fingerprint"].get("n_columns") not in (None, est.n_features_in_):
        raise damaged(path, f"its manifest.json gives {manifest['fingerprint']['n_columns']} "
                            f"training columns but the model reads {est.n_features_in_}")
    for key in recorded:
        if recorded[key] != expected[key]:
            diff = _first_difference(recorded[key], expected[key], key)
            raise damaged(path, f"its manifest.json does not describe the model it holds: "
                                f"{diff}")


#: parameters that are the reader's (not recorded from the file): see _persistence_types
_READER_PARAMS = ("n_threads",)


def _first_difference(a, b, where):
    if type(a) is dict and type(b) is dict:
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k, ...) != b.get(k, ...):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}")
    return f"{where} is {_short(a)} in the manifest, {_short(b)} in the model"
