"""Input checks shared by every estimator and metric.

Each check raises an error that names the argument, the offending values (a
count and a few examples) and how to fix the problem.
"""

import numpy as np


def format_examples(values, k=5):
    """Return ``"a, b, c, ... (N in total)"`` for error messages."""
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:k])
    if len(values) > k:
        shown += f", ... ({len(values)} in total)"
    return shown


def non_finite_rows(X):
    """Indices of the rows of a 2-D float array holding NaN or inf (empty when none).

    A cheap whole-array sum is tried first: it is finite whenever every
    entry is (an overflow to inf falls back to the element-wise test).
    """
    if X.dtype.kind not in "fc" or np.isfinite(np.sum(X)):
        return np.zeros(0, dtype=np.intp)
    bad = ~np.isfinite(X)
    return np.flatnonzero(bad.reshape(X.shape[0], -1).any(axis=1))


def non_finite_error(name, rows, fix, count=None):
    """The ValueError naming the rows of ``name`` that hold NaN or inf.

    The message always contains the words "NaN" and "inf" so scikit-learn's
    common checks recognise it. ``count`` is the total number of bad rows
    when ``rows`` holds only the first few.
    """
    count = len(rows) if count is None else count
    shown = format_examples(rows)
    if count > len(rows):
        shown += f", ... ({count} in total)"
    return ValueError(
        f"{name} contains NaN or inf in {count} row(s) (row indices: {shown}); {fix}."
    )


def check_finite_rows(X, name="X", fix="drop or impute them first"):
    """Raise a ValueError naming the rows of a 2-D array holding NaN or inf."""
    rows = non_finite_rows(X)
    if rows.size:
        raise non_finite_error(name, rows, fix)


def check_labels(y, n_samples, name="y", allow_none=False):
    """Return ``y`` as a 1-D numpy array of length ``n_samples``."""
    if y is None:
        if allow_none:
            return None
        if name == "y":
            raise ValueError(
                "This estimator requires y to be passed, but the target y is None: pass "
                f"the pairing key of every sample (a 1-D array of length {n_samples})."
            )
        raise ValueError(
            f"{name} is required: pass one label per sample of X "
            f"(a 1-D array of length {n_samples})."
        )
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one label per sample; got an array of "
            f"shape {arr.shape}."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but X has {n_samples} rows; "
            f"pass exactly one {name} value per row of X."
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf labels; remove those rows.")
    if arr.dtype.kind == "O":
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in arr])
        if missing.any():
            raise ValueError(
                f"{name} has {int(missing.sum())} missing labels (None/NaN) at rows "
                f"{format_examples(np.flatnonzero(missing))}; remove those rows."
            )
    return arr


def control_mask(y, control_label):
    """Boolean mask of controls, ``y == control_label`` (all False when None)."""
    if control_label is None:
        return np.zeros(len(y), dtype=bool)
    try:
        mask = np.asarray(y == control_label, dtype=bool)
    except Exception:  # pragma: no cover - exotic label types
        mask = np.array([v == control_label for v in y], dtype=bool)
    if mask.shape != (len(y),):
        mask = np.array([v == control_label for v in y], dtype=bool)
    return mask
