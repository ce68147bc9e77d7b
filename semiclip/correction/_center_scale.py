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


def degenerate_scale(var, mean, n_samples):
    """Mask of scales indistinguishable from zero (left unscaled by callers).

    A scale is degenerate when its variance is within the rounding error of
    a constant feature (scikit-learn's ``StandardScaler`` rule,
    ``var <= n*eps*var + (n*mean*eps)**2``) or when its standard deviation
    is below ``max(n_samples, n_features) * eps`` times the largest standard
    deviation of the same group (the :func:`numpy.linalg.matrix_rank` rule;
    it catches the null PCA components of rank-deficient controls, whose
    variance is rounding noise of order 1e-30).
    """
    var = np.atleast_2d(var)
    mean = np.atleast_2d(mean)
    n = np.asarray(n_samples, dtype=np.float64).reshape(-1, 1)
    const = var <= n * EPS * var + (n * mean * EPS) ** 2
    std = np.sqrt(np.maximum(var, 0.0))
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


def fit_center_scale(X, groups, with_scale=True):
    """Fit :class:`CenterScale` on the rows of ``X`` listed by ``groups``.

    Group statistics are computed on the sorted rows with
    :func:`numpy.add.reduceat` (no loop over rows or groups). Every group
    must be non-empty. Standard deviations use ``ddof=0``; degenerate ones
    (see :func:`degenerate_scale`) are replaced by 1.
    """
    Xs = np.asarray(X[groups.order], dtype=np.float64)
    if groups.n_groups == 1:
        # One group: numpy's reductions, as StandardScaler (EFAAR) computes them,
        # so that results agree with EFAAR to rounding.
        mean = Xs.mean(axis=0, keepdims=True)
        var = Xs.var(axis=0, keepdims=True) if with_scale else None
    else:
        counts = groups.counts.astype(np.float64)[:, None]
        starts = groups.bounds[:-1]
        mean = np.add.reduceat(Xs, starts, axis=0) / counts
        if with_scale:
            Xs -= mean[group_of_sorted(groups)]
            np.square(Xs, out=Xs)
            var = np.add.reduceat(Xs, starts, axis=0) / counts
    if not with_scale:
        return CenterScale(mean=mean, scale=None, degenerate=None)
    degenerate = degenerate_scale(var, mean, groups.counts)
    scale = np.sqrt(var)
    scale[degenerate] = 1.0
    return CenterScale(mean=mean, scale=scale, degenerate=degenerate)


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
