"""Input checks shared by :class:`ControlNormalizer` and :class:`PEAAugmenter`.

Each raises an error that names the argument, the offending values and the fix.
"""

import numbers
import warnings

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from .._docstrings import fill_doc as _fill_doc
from .._validation import check_finite_rows, check_labels, control_mask, format_examples
from ._groups import group_rows

__all__ = [
    "PARAM_DOCS",
    "SHRINKAGE",
    "fill_doc",
    "check_X",
    "check_batch_consistency",
    "check_controls",
    "check_controls_per_batch",
    "encode_batches",
    "warn_degenerate",
]

#: ``shrinkage`` parameter constraint of both estimators
SHRINKAGE = [None, StrOptions({"ledoit-wolf"}), Interval(numbers.Real, 0, 1, closed="both")]


#: numpydoc entries shared by the estimators' docstrings (``[[name]]`` lines)
PARAM_DOCS = {
    "X_fit": """\
X : array-like of shape (n_samples, n_features)
    Uncorrected profiles, finite.""",
    "X_seen": """\
X : array-like of shape (n_samples, n_features)
    Uncorrected profiles of batches seen in fit, finite.""",
    "y_labels": """\
y : array-like of shape (n_samples,)
    Sample labels; controls are ``y == control_label``.""",
    "batch_fit": """\
batch : array-like of shape (n_samples,), default=None
    Batch (plate) of every sample. None: all samples are one batch.""",
    "batch_seen": """\
batch : array-like of shape (n_samples,), default=None
    Batch of every sample; required when fit had ``batch``.""",
    "keys": """\
keys : array-like of shape (n_samples,), default=None
    Sample labels used instead of ``y`` to find the controls, for
    pipelines whose ``y`` is a probe's target.""",
    "reg_covar": """\
reg_covar : float, default=0.5
    Added to the diagonal of every batch's control covariance before the
    CORAL inverse square root (EFAAR uses 0.5). TVN only.""",
    "shrinkage": """\
shrinkage : None, "ledoit-wolf" or float in [0, 1], default=None
    Shrink each batch's control covariance towards a scaled identity
    before CORAL: ``(1 - delta) S + delta tr(S)/d I`` with ``S`` the
    maximum likelihood covariance and ``delta`` given or estimated by
    :func:`sklearn.covariance.ledoit_wolf_shrinkage`. None uses the plain
    sample covariance (EFAAR). TVN only.""",
}

#: the data entries of a method fitted on (or drawing from) ``X, y, batch``
PARAM_DOCS["fit_data"] = "\n".join(PARAM_DOCS[k] for k in ("X_fit", "y_labels", "batch_fit"))
PARAM_DOCS["seen_data"] = "\n".join(PARAM_DOCS[k] for k in ("X_seen", "y_labels", "batch_seen"))

fill_doc = _fill_doc(PARAM_DOCS)
"""Decorator filling the ``[[name]]`` lines with :data:`PARAM_DOCS`."""


def check_X(est, X, reset):
    """Validated float ``X`` (float32 kept), C-ordered, with finite values; ``reset`` as in
    ``validate_data``.

    A C-ordered array is used as is; any other layout (Fortran order, a
    pandas frame's block) is copied to C order once, so that results do not
    depend on the memory layout of the input.
    """
    X = validate_data(est, X, dtype=[np.float64, np.float32], ensure_all_finite=False,
                      reset=reset, order="C")
    check_finite_rows(X)
    return X


def check_controls(est, y, n_samples, keys=None):
    """Labels that identify the controls: ``keys`` when given, else ``y``."""
    name = type(est).__name__
    label_name = "y"
    if keys is not None:
        y, label_name = keys, "keys"
    if est.control_label is None:
        raise ValueError(
            f"{name} needs control_label to find the control samples (y == "
            f"control_label); got control_label=None. Set it to the label your "
            f"controls carry in y, e.g. {name}(control_label='DMSO')."
        )
    if y is None:
        raise ValueError(
            f"{name} requires y to be passed, but the target y is None; pass "
            "the sample labels (controls are the samples with y == control_label)."
        )
    y = check_labels(y, n_samples, name=label_name)
    controls = control_mask(y, est.control_label)
    if not controls.any():
        raise ValueError(
            f"No control samples: no entry of {label_name} equals control_label="
            f"{est.control_label!r} among the {n_samples} sample(s) (labels in y: "
            f"{format_examples(np.unique(y))}). "
            "Set control_label to the label of your control samples."
        )
    return y, controls


def encode_batches(batch, n_samples, classes=None):
    """Integer code per row; ``classes`` are the batches seen in fit.

    Returns ``(classes, codes)``. ``batch=None`` means one batch; an unseen
    batch (when ``classes`` is given) is a ValueError listing the unseen values.
    """
    if batch is None:
        return None, np.zeros(n_samples, dtype=np.intp)
    batch = check_labels(batch, n_samples, name="batch")
    if classes is None:
        classes, codes = np.unique(batch, return_inverse=True)
        return classes, codes.ravel().astype(np.intp)
    try:
        codes = np.searchsorted(classes, batch).astype(np.intp)
        np.clip(codes, 0, classes.size - 1, out=codes)
        unseen = np.asarray(classes[codes] != batch, dtype=bool)
    except TypeError:
        raise ValueError(
            f"batch labels of dtype {batch.dtype} cannot be compared with the batches "
            f"seen in fit ({format_examples(classes)}, dtype {classes.dtype}); pass the "
            "same kind of labels as in fit."
        ) from None
    if unseen.any():
        raise ValueError(
            f"batch contains {np.unique(batch[unseen]).size} value(s) never seen in fit: "
            f"{format_examples(np.unique(batch[unseen]))} (batches seen in fit: "
            f"{format_examples(classes)}). Control statistics exist only for the "
            "batches of the training data; fit on data that includes controls of "
            "these batches."
        )
    return classes, codes


def check_batch_consistency(est, batch):
    fitted_with_batch = est.batches_ is not None
    if fitted_with_batch and batch is None:
        raise ValueError(
            f"batch is required: this {type(est).__name__} was fitted with batch, "
            "so pass the batch of every row (e.g. transform(X, batch=plates))."
        )
    if not fitted_with_batch and batch is not None:
        raise ValueError(
            f"This {type(est).__name__} was fitted without batch (all rows as one "
            "batch); call it with batch=None, or refit with batch."
        )


def _label(value):
    return value.item() if hasattr(value, "item") else value


def check_controls_per_batch(controls, codes, classes, minimum=2):
    """Raise if a batch has fewer than ``minimum`` controls; return the control groups."""
    n_groups = 1 if classes is None else classes.size
    groups = group_rows(codes, n_groups, controls)
    few = np.flatnonzero(groups.counts < minimum)
    if few.size:
        if classes is None:
            raise ValueError(
                f"Control statistics need at least {minimum} control samples; got "
                f"{groups.counts[0]} sample(s) with y == control_label. Add controls."
            )
        raise ValueError(
            f"{few.size} batch(es) have fewer than {minimum} control samples: "
            + ", ".join(f"{_label(classes[g])!r} ({groups.counts[g]} sample(s))" for g in few[:5])
            + (f", ... ({few.size} in total)" if few.size > 5 else "")
            + f". Every batch needs at least {minimum} controls (y == control_label) "
            "to estimate its statistics; drop these batches or merge them with another."
        )
    return groups


def warn_degenerate(where, n_degenerate, n_total, what):
    if n_degenerate:
        warnings.warn(
            f"{n_degenerate} of {n_total} {what} have (near) zero variance in the "
            f"controls{where}; they are kept but left unscaled (scale 1) instead of "
            "being divided by ~0.",
            UserWarning,
            stacklevel=4,
        )
