"""Control-based batch correction: the one implementation of its steps.

Pure functions and small frozen dataclasses, shared by
:class:`~semiclip.ControlNormalizer` (deterministic correction) and
:class:`~semiclip.PEAAugmenter` (random relaxations of it). Nothing here
validates user input; the estimators do.

Steps, each fitted on control rows only and applied to every row:

- **center / scale** (:func:`fit_center_scale`): per group (batch, or one
  global group) mean and standard deviation (``ddof=0``, as
  :class:`~sklearn.preprocessing.StandardScaler`).
- **whitening** (:func:`fit_whitening`): PCA of the (centered) controls with
  all ``n_features`` components, then division of every component by its
  standard deviation on the controls. In the PCA basis this is EFAAR's
  "PCA + second center-scale"; in the feature basis the rotation is undone
  (``V.T diag(1/s) V``, an orthogonal change of basis).
- **CORAL** (:func:`fit_coral`): right-multiplication of a batch by
  ``(Cov_ctrl + reg * I)^(-1/2)`` (sample covariance, ``ddof=1``, optionally
  shrunk), computed with :func:`scipy.linalg.eigh` of a symmetric matrix.

Degenerate scales (zero-variance genes, null PCA components of
rank-deficient controls) are left unscaled (scale 1) instead of being
divided by ~0; the masks are returned so callers can warn.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import linalg

_EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------- grouping
@dataclass(frozen=True)
class Groups:
    """Rows sorted by group: group ``g`` holds ``order[bounds[g]:bounds[g+1]]``."""

    order: np.ndarray
    bounds: np.ndarray

    @property
    def n_groups(self):
        return self.bounds.size - 1

    @property
    def counts(self):
        return np.diff(self.bounds)

    def rows(self, g):
        return self.order[self.bounds[g] : self.bounds[g + 1]]

    @classmethod
    def of(cls, rows_per_group):
        """Groups whose group ``g`` holds ``rows_per_group[g]`` (a list of int arrays)."""
        sizes = [r.size for r in rows_per_group]
        return cls(order=np.concatenate(rows_per_group), bounds=np.cumsum([0] + sizes))


def group_rows(codes, n_groups, mask=None):
    """Sort the rows (optionally only those with ``mask``) by integer group code."""
    rows = np.arange(codes.size) if mask is None else np.flatnonzero(mask)
    order = rows[np.argsort(codes[rows], kind="stable")]
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1), side="left")
    return Groups(order=order, bounds=bounds)


def _group_of_sorted(groups):
    return np.repeat(np.arange(groups.n_groups), groups.counts)


# ---------------------------------------------------------- degenerate scales
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
    const = var <= n * _EPS * var + (n * mean * _EPS) ** 2
    std = np.sqrt(np.maximum(var, 0.0))
    tol = std.max(axis=1, keepdims=True) * np.maximum(n, var.shape[1]) * _EPS
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
            Xs -= mean[_group_of_sorted(groups)]
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


# ---------------------------------------------------------------- whitening
@dataclass(frozen=True)
class Whitening:
    """PCA of the controls with every component scaled to unit control variance.

    Attributes: ``mean`` (control mean removed before the rotation),
    ``components`` (``(n_features, n_features)``, rows are orthonormal
    principal axes by decreasing variance, completed by an orthonormal basis
    of the directions the controls do not span), ``scale`` (control standard
    deviation of each component, ``ddof=0``; 1 for null components) and
    ``null`` (mask of components left unscaled).
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    null: np.ndarray

    @cached_property
    def _pca_matrix(self):
        return self.components.T / self.scale

    @cached_property
    def _feature_matrix(self):
        return self._pca_matrix @ self.components

    def matrix(self, basis="pca"):
        """Linear map applied after removing ``mean`` (computed once, cached).

        ``"pca"``: ``V.T / scale`` (EFAAR's basis); ``"feature"``:
        ``V.T diag(1/scale) V`` (the same whitening rotated back).
        """
        return self._feature_matrix if basis == "feature" else self._pca_matrix


def _sign_flip(Vt):
    # scikit-learn's svd_flip(u_based_decision=False): largest |entry| positive.
    idx = np.argmax(np.abs(Vt), axis=1)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    return Vt * signs[:, None]


def fit_whitening(Z):
    """Fit :class:`Whitening` on control rows ``Z`` (all components kept).

    The axes come from an SVD of the centered controls (a covariance
    :func:`scipy.linalg.eigh` when there are at least ten times more
    controls than features, the choice of ``PCA(svd_solver="auto")``).
    With fewer controls than features, the axes are completed to a full
    orthonormal basis; those components and any with rounding-level
    variance are null: kept, but left unscaled.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    mean = Z.mean(axis=0)
    Zc = Z - mean
    if n >= 10 * d:
        lam, V = linalg.eigh(Zc.T @ Zc, driver="evd")
        S = np.sqrt(np.clip(lam[::-1], 0.0, None))
        Vt = V[:, ::-1].T
    else:
        _, S, Vt = linalg.svd(Zc, full_matrices=n < d)
        S = np.concatenate([S, np.zeros(d - S.size)])
    Vt = _sign_flip(Vt)
    null = S <= S[0] * max(n, d) * _EPS if S[0] > 0 else np.ones(d, dtype=bool)
    scale = S / np.sqrt(n)
    scale[null] = 1.0
    return Whitening(mean=mean, components=Vt, scale=scale, null=null)


# -------------------------------------------------------------------- CORAL
@dataclass(frozen=True)
class Coral:
    """The matrix ``W = identity * I + U diag(coef) U.T`` (or ``dense``).

    Low-rank form when a batch has fewer controls than features (cheap to
    fit and apply); dense ``W`` otherwise.
    """

    identity: float
    vectors: np.ndarray | None = None
    coef: np.ndarray | None = None
    dense: np.ndarray | None = None

    def apply(self, Z):
        """Return ``Z @ W``."""
        if self.dense is not None:
            return Z @ self.dense.astype(Z.dtype, copy=False)
        U = self.vectors.astype(Z.dtype, copy=False)
        out = (Z @ U) * self.coef.astype(Z.dtype, copy=False)
        out = out @ U.T
        out += self.identity * Z
        return out


def fit_coral(Z, reg=0.5, shrinkage=None):
    """CORAL whitening ``(Cov + reg * I)^(-1/2)`` of control rows ``Z``.

    ``Cov`` is the sample covariance (``ddof=1``). With ``shrinkage``
    (``"ledoit-wolf"`` or a float ``delta`` in [0, 1]), ``Cov`` is instead
    ``(1 - delta) * S + delta * trace(S) / d * I`` with ``S`` the maximum
    likelihood covariance (``ddof=0``), as in :mod:`sklearn.covariance`.
    The inverse square root comes from :func:`scipy.linalg.eigh`: of the
    ``d x d`` covariance, or, with ``n <= d`` controls, of the ``n x n``
    Gram matrix when ``n < d`` (same nonzero eigenvalues; a low-rank form,
    cheaper to fit; the other directions get ``reg_total^(-1/2)``).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    Zc = Z - Z.mean(axis=0)
    if shrinkage is None:
        alpha, extra = 1.0 / (n - 1), float(reg)
    else:
        if isinstance(shrinkage, str):
            from sklearn.covariance import ledoit_wolf_shrinkage

            delta = float(ledoit_wolf_shrinkage(Zc, assume_centered=True))
        else:
            delta = float(shrinkage)
        mu = float(np.einsum("ij,ij->", Zc, Zc)) / (n * d)
        alpha, extra = (1.0 - delta) / n, float(reg) + delta * mu
    if n < d:
        lam, Q = linalg.eigh(alpha * (Zc @ Zc.T), driver="evd")
        keep = lam > max(lam[-1], 0.0) * max(n, d) * _EPS
        lam, Q = lam[keep], Q[:, keep]
        U = (Zc.T @ Q) / np.sqrt(lam / alpha)
        base = extra**-0.5
        return Coral(identity=base, vectors=U, coef=(lam + extra) ** -0.5 - base)
    lam, U = linalg.eigh(alpha * (Zc.T @ Zc), driver="evd")
    lam = np.clip(lam, 0.0, None) + extra
    return Coral(identity=0.0, dense=(U * lam**-0.5) @ U.T)


# ---------------------------------------------------------------------- TVN
@dataclass(frozen=True)
class TVNStats:
    """Everything :func:`apply_tvn` needs.

    ``center_scale`` has one group (global, EFAAR) or one per batch;
    ``whitening`` and ``basis`` define the shared linear map; ``coral`` holds
    one :class:`Coral` per batch (None for a batch without CORAL).
    """

    center_scale: CenterScale | None
    whitening: Whitening | None
    basis: str
    coral: tuple

    @property
    def per_batch(self):
        cs = self.center_scale
        return cs is not None and cs.mean.shape[0] > 1


def tvn_global(X, stats, codes=None):
    """Apply the center-scale and whitening steps of ``stats`` to ``X``."""
    Z = np.asarray(X)
    if stats.center_scale is not None:
        Z = apply_center_scale(Z, stats.center_scale, codes if stats.per_batch else None)
    if stats.whitening is not None:
        w = stats.whitening
        M = w.matrix(stats.basis).astype(Z.dtype, copy=False)
        Z = (Z - w.mean.astype(Z.dtype, copy=False)) @ M
    return Z


def fit_tvn_global(X, ctrl, codes, *, per_batch=False, basis="pca", steps=("center_scale", "whiten")):
    """Fit the shared (non-CORAL) steps of TVN on the control rows ``ctrl``.

    ``ctrl`` (:class:`Groups`) lists the control rows of every batch;
    ``codes`` is the integer batch code of every row of ``X``. ``steps``
    selects ``"center_scale"`` (on all controls, or on each batch's own
    controls with ``per_batch``) and ``"whiten"`` (PCA on the controls after
    the previous step). Returns :class:`TVNStats` with no CORAL yet.
    """
    cs = None
    if "center_scale" in steps:
        g = ctrl if per_batch else Groups(ctrl.order, np.array([0, ctrl.order.size]))
        cs = fit_center_scale(X, g)
    stats = TVNStats(center_scale=cs, whitening=None, basis=basis, coral=())
    if "whiten" in steps:
        Xc = np.asarray(X[ctrl.order], dtype=np.float64)
        Zc = tvn_global(Xc, stats, codes[ctrl.order])
        stats = TVNStats(cs, fit_whitening(Zc), basis, ())
    return stats


def fit_tvn_coral(X, stats, codes, rows_per_batch, *, reg=0.5, shrinkage=None):
    """Return ``stats`` with one CORAL per batch, fitted on ``rows_per_batch[b]``.

    The rows (all controls of the batch, or a subsample for PEA) first go
    through the shared steps of ``stats`` (:func:`tvn_global`).
    """
    coral = tuple(
        None
        if r is None
        else fit_coral(tvn_global(np.asarray(X[r], np.float64), stats, codes[r]), reg, shrinkage)
        for r in rows_per_batch
    )
    return TVNStats(stats.center_scale, stats.whitening, stats.basis, coral)


def fit_tvn(X, ctrl, codes, *, reg=0.5, shrinkage=None, per_batch=False, basis="pca"):
    """Fit full TVN (center-scale, whitening, per-batch CORAL) on all controls."""
    stats = fit_tvn_global(X, ctrl, codes, per_batch=per_batch, basis=basis)
    rows = [ctrl.rows(b) for b in range(ctrl.n_groups)]
    return fit_tvn_coral(X, stats, codes, rows, reg=reg, shrinkage=shrinkage)


def tvn_affine(stats, b, n_features):
    """The fitted TVN of batch ``b`` as one affine map: ``TVN(x) = x @ A + c``.

    Composes, in float64, center-scale (``diag(1/scale)``), whitening
    (``M``) and the batch's CORAL (``W``):
    ``A = diag(1/scale) M W`` and ``c = -(mean/scale + mean_w) M W``.
    Applying it costs one ``n_rows x d x d`` product instead of two, plus
    the elementwise passes, and composing costs about ``d**3`` (less with a
    low-rank CORAL), so it pays off when the batch has at least ``d`` rows.
    """
    cs, w = stats.center_scale, stats.whitening
    coral = stats.coral[b] if stats.coral else None
    inv, c = np.ones(n_features), np.zeros(n_features)
    if cs is not None:
        g = b if stats.per_batch else 0
        inv = 1.0 / cs.scale[g] if cs.scale is not None else inv
        c = -cs.mean[g] * inv
    if w is not None:
        M = w.matrix(stats.basis)
        A = inv[:, None] * M
        c = (c - w.mean) @ M
    else:
        A = np.diag(inv)
    if coral is not None:
        A, c = coral.apply(A), coral.apply(c[None, :])[0]
    return A, c


def _as_slice(rows):
    """``rows`` (sorted) as a slice when they are one contiguous range, else None."""
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return None


def apply_tvn(X, stats, codes, groups, batches=None, out=None):
    """Apply fitted TVN ``stats`` to ``X`` (rows of batch ``b`` listed by ``groups``).

    ``batches`` restricts the work to the rows of those batches, written
    into ``out`` (default: every batch, into a new array). Batches with at
    least ``n_features`` rows go through their composed affine map
    (:func:`tvn_affine`, one matrix product); smaller ones through the
    steps one after another, which is cheaper for them.
    """
    dt = X.dtype if X.dtype.kind == "f" else np.float64
    if out is None:
        out = np.empty(X.shape, dtype=dt)
    batches = range(groups.n_groups) if batches is None else batches
    d = X.shape[1]
    small = []
    for b in batches:
        rows_b = groups.rows(b)
        if rows_b.size < d:
            small.append(b)
            continue
        A, c = tvn_affine(stats, b, d)
        A, c = A.astype(dt, copy=False), c.astype(dt, copy=False)
        sl = _as_slice(rows_b)
        if sl is not None:
            np.matmul(np.asarray(X[sl], dtype=dt), A, out=out[sl])
            out[sl] += c
        else:
            block = np.asarray(X[rows_b], dtype=dt) @ A
            block += c
            out[rows_b] = block
    if not small:
        return out
    rows = np.concatenate([groups.rows(b) for b in small])
    Z = tvn_global(X[rows], stats, codes[rows])
    start = 0
    for b in small:
        rows_b = groups.rows(b)
        Zb = Z[start : start + rows_b.size]
        start += rows_b.size
        coral = stats.coral[b] if stats.coral else None
        out[rows_b] = Zb if coral is None else coral.apply(Zb)
    return out
