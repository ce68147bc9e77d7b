"""TVN (typical variation normalisation): center-scale, whitening and per-batch CORAL.

The steps come from :mod:`._center_scale` and :mod:`._whitening`; this
module composes them, fits them on the controls and applies them, one
composed affine map per batch where that is cheaper.
"""

from dataclasses import dataclass

import numpy as np

from ._center_scale import CenterScale, apply_center_scale, fit_center_scale
from ._groups import Groups
from ._whitening import Whitening, fit_coral, fit_whitening

__all__ = [
    "TVNStats",
    "apply_tvn",
    "fit_tvn",
    "fit_tvn_coral",
    "fit_tvn_global",
    "tvn_affine",
    "tvn_global",
]


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


def fit_tvn_global(X, ctrl, codes, *, per_batch=False, basis="pca", steps=("center_scale", "whiten")
):
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
