"""The weak pairing shared by the distillers: checks of ``X`` and the teacher bank, and the bank
key of every sample.

Plain functions used by :class:`~semiclip.SemiClippedTransformer` and
:class:`~semiclip.RidgeDistiller` alike; they read the estimator's
parameters only where scikit-learn's ``validate_data`` needs the estimator.
"""

import numpy as np
from sklearn.utils.validation import validate_data

from .._core import ImageBank, check_finite_rows, format_examples
from .._nn import float32_overflow_rows, float32_range_error

__all__ = ["check_X", "distiller_tags", "pair_with_bank", "resolve_bank"]


def check_X(estimator, X, reset):
    """``X`` validated: float32 or float64, C-ordered, finite, within float32's range.

    A C-ordered array is used as is; any other layout (Fortran order, a
    pandas frame's block) is copied to C order once, so that the result
    does not depend on the memory layout of the input. ``reset`` as in
    scikit-learn's ``validate_data`` (records ``n_features_in_``).
    """
    X = validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse="csr",
        dtype=[np.float32, np.float64],
        order="C",
        ensure_all_finite=False,
        ensure_min_samples=1,
    )
    if hasattr(X, "data") and not isinstance(X, np.ndarray):  # sparse
        check_finite_rows(np.asarray(X.sum(axis=1)), "X", "drop or impute them first")
    else:
        check_finite_rows(X, "X", "drop or impute them first")
    rows = float32_overflow_rows(X)
    if rows.size:
        raise float32_range_error("X", rows[:5], count=rows.size)
    return X


def resolve_bank(image_bank, default):
    """The teacher bank of a fit: the ``image_bank`` given to ``fit``, else ``default``."""
    bank = image_bank if image_bank is not None else default
    if bank is None:
        raise ValueError(
            "fit needs the teacher embeddings: pass image_bank=ImageBank(embeddings, keys) "
            "to fit (in a Pipeline: semiclippedtransformer__image_bank=bank, or enable "
            "metadata routing), or set the image_bank parameter."
        )
    if not isinstance(bank, ImageBank):
        raise TypeError(
            f"image_bank must be an ImageBank, got {type(bank).__name__}; build one with "
            "ImageBank(embeddings, keys)."
        )
    return bank


def pair_with_bank(y, is_control, bank, *, unpaired, control_label):
    """Bank key code of every sample: -1 for controls (never paired) and, with
    ``unpaired="drop"``, for samples whose key has no bank row.

    With ``unpaired="raise"`` a non-control key missing from the bank is a
    ValueError naming it; so is a fit with no sample paired.
    """
    codes = np.full(y.shape[0], -1, dtype=np.int64)
    codes[~is_control] = bank.codes(y[~is_control])
    missing = (~is_control) & (codes < 0)
    if missing.any():
        missing_keys = np.unique(y[missing])
        msg = (
            f"{int(missing.sum())} training samples ({missing_keys.size} distinct keys, "
            f"e.g. {format_examples(missing_keys)}) have no row in image_bank "
            f"(bank keys e.g. {format_examples(bank.unique_keys)})."
        )
        if unpaired == "raise":
            raise ValueError(
                msg + " Check that keys are spelled the same way on both sides "
                "(semiclip.datasets.match_report helps), mark controls with "
                "control_label, or pass unpaired='drop' to train without them."
            )
    paired = codes >= 0
    if not paired.any():
        if is_control.all():
            raise ValueError(
                f"All {y.shape[0]} samples are controls (y == {control_label!r}); "
                "fit needs perturbed samples whose keys appear in image_bank."
            )
        raise ValueError(
            "No training sample could be paired with image_bank: none of the keys of y "
            f"(e.g. {format_examples(np.unique(y))}) is in the bank (e.g. "
            f"{format_examples(bank.unique_keys)})."
        )
    return codes


def distiller_tags(tags):
    """Both distillers' scikit-learn tags: a target (the keys), sparse ``X``, float32 out."""
    tags.target_tags.required = True
    tags.input_tags.sparse = True
    tags.transformer_tags.preserves_dtype = ["float32"]
    return tags
