"""Input checks shared by :class:`ControlNormalizer` and :class:`PEAAugmenter`.

Each raises an error that names the argument, the offending values and the fix.
"""

import inspect
import numbers
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils.validation import validate_data

from .._core import check_finite_rows, check_labels, control_mask, format_examples
from .._core import fill_doc as _fill_doc
from .._core.compat import Interval, StrOptions
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
    "SILENCE",
    "constant_features_note",
    "external_stacklevel",
    "warn_degenerate_controls",
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


#: how to silence the degenerate-controls warning (the phrase every internal filter matches)
SILENCE = "warnings.filterwarnings('ignore', message='.*zero variance in the controls')"


def _internal_prefixes():
    import sklearn

    roots = [Path(__file__).resolve().parents[1], Path(sklearn.__file__).resolve().parent]
    for name in ("joblib", "imblearn"):  # grid searches and imbalanced-learn pipelines
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            roots.append(Path(module.__file__).resolve().parent)
    return tuple(str(r) + os.sep for r in roots)


def external_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` in the caller: the first frame outside semiclip.

    Frames of scikit-learn (pipelines, ``_fit_context``), joblib and
    imbalanced-learn are skipped too, so the warning names the user's line
    (``norm.fit(...)``, ``pipe.fit(...)``, ``search.fit(...)``).
    """
    prefixes = _internal_prefixes()
    frame = inspect.currentframe().f_back  # the function calling warnings.warn: level 1
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            prefixes):
        frame = frame.f_back
        level += 1
    return level


def constant_features_note(degenerate, feature_names=None, batches=None):
    """The sentence on features with no control variance, or None when there are none.

    ``degenerate`` is the ``(n_groups, n_features)`` mask of a center-scale
    fit; ``batches`` the batch label of each group (None for one group).
    """
    if degenerate is None or not degenerate.any():
        return None
    cols = np.flatnonzero(degenerate.any(axis=0))
    d = degenerate.shape[1]
    names = cols if feature_names is None else np.asarray(feature_names, dtype=object)[cols]
    what = "feature" if cols.size == 1 else "features"
    text = f"{cols.size} of {d} features have (near) zero variance in the controls"
    if batches is None:
        return f"{text} ({what} {format_examples(names)})"
    rows = np.flatnonzero(degenerate.any(axis=1))
    kind = "batch" if rows.size == 1 else "batches"
    return (f"{text} of some batches ({what} {format_examples(names)}; {kind} "
            f"{format_examples(batches[rows])})")


def warn_degenerate_controls(owner, constant=None, null=None, n_controls=0):
    """One UserWarning for everything a fit left unscaled, with what to do; none when all is well.

    ``owner`` names the estimator the user made (``"ControlNormalizer(method='tvn')"``),
    ``constant`` is the note of :func:`constant_features_note` (None: no
    constant feature), ``null`` the mask of TVN's PCA components with no
    control variance (None, or all False: none) and ``n_controls`` the
    number of controls the PCA was fitted on (only a ControlNormalizer
    passes ``null``: the advice names its ``method`` and ``shrinkage``).
    """
    null = None if null is None or not null.any() else null
    if constant is None and null is None:
        return
    notes = [] if constant is None else [constant]
    advice = ["They are kept but left unscaled (scale 1) instead of being divided by ~0: the "
              "output stays finite, only their scaling by the controls is skipped."]
    if null is not None:
        d, n_null = null.size, int(null.sum())
        notes.append(f"{n_null} of {d} PCA components have (near) zero variance in the "
                     f"controls (rank-deficient: the {n_controls} controls span {d - n_null} "
                     f"of {d} dimensions)")
        if n_controls <= d:
            advice.append(
                "This is expected with fewer controls than features: TVN whitens only the "
                "directions the controls span. With few controls per plate prefer "
                "method='center_scale' (per-feature scaling, no covariance to estimate) or "
                "shrinkage='ledoit-wolf' (better-conditioned per-plate covariances); to whiten "
                f"every direction, use at least {d + 1} controls.")
        else:
            advice.append("The controls are collinear (constant or duplicated features): drop "
                          "such features, or use method='center_scale'.")
    if constant is not None:
        advice.append("Drop features that are constant in the controls (they have no control "
                      "scale), or add controls to these batches.")
    warnings.warn(
        f"{owner}: " + "; ".join(notes) + ". " + " ".join(advice) + f" To silence it: {SILENCE}.",
        UserWarning,
        stacklevel=external_stacklevel(),
    )
