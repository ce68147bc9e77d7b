"""Center and scale per group, fitted on control rows (``ddof=0``, as StandardScaler).

Degenerate scales (zero-variance features) are left unscaled (scale 1)
instead of being divided by ~0; the mask is returned so callers can warn.
"""

from dataclasses import dataclass

import numpy as np

from ._groups import EPS, group_of_sorted

__all__ = [
    "CenterScale",
    "apply_center_scale",
    "apply_center_scale_by_group",
    "degenerate_scale",
    "fit_center_scale",
]


def degenerate_scale(var, mean, n_samples, std=None):
    """Mask of scales indistinguishable from zero (left unscaled by callers).

    A scale is degenerate when its variance is within the rounding error of
    a constant feature (scikit-learn's ``StandardScaler`` rule,
    ``var <= n*eps*var + (n*mean*eps)**2``) or when its standard deviation
    is below ``max(n_samples, n_features) * eps`` times the largest standard
    deviation of the same group (the :func:`numpy.linalg.matrix_rank` rule;
    it catches the null PCA components of rank-deficient controls, whose
    variance is rounding noise of order 1e-30).

    The first rule does not change when a feature is multiplied by a
    constant, so ``var`` and ``mean`` may be those of a rescaled feature;
    ``std`` (default ``sqrt(var)``) is then the standard deviation in the
    feature's own units, for the second rule.
    """
    var = np.atleast_2d(var)
    mean = np.atleast_2d(mean)
    n = np.asarray(n_samples, dtype=np.float64).reshape(-1, 1)
    const = var <= n * EPS * var + (n * mean * EPS) ** 2
    std = np.sqrt(np.maximum(var, 0.0)) if std is None else np.atleast_2d(std)
    tol = std.max(axis=1, keepdims=True) * np.maximum(n, var.shape[1]) * EPS
    return const | (std <= tol)


# ------------------------------------------------------------ center/scale
@dataclass(frozen=True)
class CenterScale:
    """Per-group location and scale: ``(X - mean[g]) / scale[g]``.

    ``mean`` and ``scale`` have shape ``(n_groups, n_features)``; ``scale``
    is None for centering only. ``degenerate`` flags scales set to 1.
    """

    mean: np.ndarray
    scale: np.ndarray | None
    degenerate: np.ndarray | None


def _moments(Xs, groups, with_scale):
    """``(mean, var or None)`` per group of the rows ``Xs`` sorted by group (overwritten)."""
    if groups.n_groups == 1:
        # One group: numpy's reductions, as StandardScaler (EFAAR) computes them,
        # so that results agree with EFAAR to rounding.
        mean = Xs.mean(axis=0, keepdims=True)
        return mean, (Xs.var(axis=0, keepdims=True) if with_scale else None)
    counts = groups.counts.astype(np.float64)[:, None]
    starts = groups.bounds[:-1]
    mean = np.add.reduceat(Xs, starts, axis=0) / counts
    if not with_scale:
        return mean, None
    Xs -= mean[group_of_sorted(groups)]
    np.square(Xs, out=Xs)
    return mean, np.add.reduceat(Xs, starts, axis=0) / counts


def fit_center_scale(X, groups, with_scale=True):
    """Fit :class:`CenterScale` on the rows of ``X`` listed by ``groups``.

    Group statistics are computed on the sorted rows with
    :func:`numpy.add.reduceat` (no loop over rows or groups). Every group
    must be non-empty. Standard deviations use ``ddof=0``; degenerate ones
    (see :func:`degenerate_scale`) are replaced by 1.

    Features whose sums or squares overflow float64 (values near 1e154 and
    beyond) are computed again divided by their largest absolute value, and
    scaled back: the statistics of a feature scale with it, so they are
    exact to rounding at any magnitude. Other features never take that path.
    """
    Xs = np.asarray(X[groups.order], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, var = _moments(Xs, groups, with_scale)
    overflow = ~np.isfinite(mean).all(axis=0)
    if with_scale:
        overflow |= ~np.isfinite(var).all(axis=0)
    if not overflow.any():  # the usual path
        if not with_scale:
            return CenterScale(mean=mean, scale=None, degenerate=None)
        degenerate = degenerate_scale(var, mean, groups.counts)
        scale = np.sqrt(var)
    else:
        mean, test_mean, var, scale = _rescaled_moments(X, groups, with_scale, mean, var,
                                                        np.flatnonzero(overflow))
        if not with_scale:
            return CenterScale(mean=mean, scale=None, degenerate=None)
        degenerate = degenerate_scale(var, test_mean, groups.counts, std=scale)
    scale[degenerate] = 1.0
    return CenterScale(mean=mean, scale=scale, degenerate=degenerate)


def _rescaled_moments(X, groups, with_scale, mean, var, cols):
    """The statistics with features ``cols`` computed divided by their largest absolute value.

    Returns ``(mean, test_mean, test_var, std)``: ``mean`` and ``std`` in the
    features' own units; ``test_mean`` and ``test_var`` those of the rescaled
    features in ``cols`` (the constant-feature rule of :func:`degenerate_scale`
    is scale-free, and the rescaled values do not overflow).
    """
    sub = np.asarray(X[np.ix_(groups.order, cols)], dtype=np.float64)
    size = np.abs(sub).max(axis=0)
    size[size == 0] = 1.0
    sub /= size
    sub_mean, sub_var = _moments(sub, groups, with_scale)
    test_mean = mean.copy()
    test_mean[:, cols] = sub_mean
    mean = test_mean.copy()
    mean[:, cols] = sub_mean * size
    if not with_scale:
        return mean, test_mean, None, None
    test_var = var.copy()
    test_var[:, cols] = sub_var
    std = np.sqrt(np.maximum(test_var, 0.0))
    std[:, cols] *= size
    return mean, test_mean, test_var, std


def apply_center_scale(X, cs, codes=None, center=True, scale=True):
    """Return ``(X - mean[codes]) / scale[codes]`` (a new array).

    ``codes=None`` uses group 0 for every row (one global group), which
    broadcasts instead of gathering.
    """
    dt = X.dtype if X.dtype.kind == "f" else np.float64
    mean = cs.mean.astype(dt, copy=False)
    out = X - (mean[0] if codes is None else mean[codes]) if center else np.array(X, dtype=dt)
    if scale and cs.scale is not None:
        sc = cs.scale.astype(dt, copy=False)
        out /= sc[0] if codes is None else sc[codes]
    return out


def apply_center_scale_by_group(X, cs, groups, batches=None, out=None):
    """Like :func:`apply_center_scale`, one batch at a time (less memory traffic).

    Rows of batch ``b`` (``groups.rows(b)``) get ``(X - mean[b]) / scale[b]``;
    ``batches`` restricts the work to those batches, written into ``out``.
    """
    dt = X.dtype if X.dtype.kind == "f" else np.float64
    if out is None:
        out = np.empty(X.shape, dtype=dt)
    mean = cs.mean.astype(dt, copy=False)
    sc = None if cs.scale is None else cs.scale.astype(dt, copy=False)
    for b in range(groups.n_groups) if batches is None else batches:
        rows = groups.rows(b)
        block = np.asarray(X[rows], dtype=dt)
        block -= mean[b]
        if sc is not None:
            block /= sc[b]
        out[rows] = block
    return out
