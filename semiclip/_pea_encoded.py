"""PEA composed with a linear (PCA) encoder, computed in the encoder's output space.

With an augmenter, :class:`~semiclip.SemiClippedTransformer` needs, every
epoch, ``encode(augmenter.sample(X))`` for the same rows ``X``. Every PEA
member is an affine map per batch and the ``"pca"`` encoder is the affine
map ``v -> (v - mu) @ P``, so most of that work can be done once:

- ``center``: ``(x - m_b - mu) @ P = x @ P - mean_sub(x @ P) - mu @ P``,
  entirely in the ``k``-dimensional output space (``x @ P`` precomputed);
- ``center_scale`` with the scale step: ``x @ (P / s_b[:, None])`` plus an
  offset, one ``n_b x d x k`` product for the batch;
- ``tvn``: the global steps (center-scale on all controls, whitening) are
  fixed, so their outputs ``Y`` and ``Y @ P`` are precomputed once per
  variant of kept steps; a batch's CORAL ``W = a I + U diag(c) U.T``
  (fitted on its subsampled controls, ``r`` of them) then costs
  ``n_b x d x r`` through ``Y_b @ U`` instead of the ``n_b x d x d``
  whitening product and the ``n_b x d x k`` encoding.

The result equals ``encode(augmenter.sample(X, ..., random_state=rng))``
(same draw from ``rng``) up to float32 rounding; a test checks it. It
keeps up to five float32 copies of ``X`` (shifted ``X`` and one per TVN
variant drawn), created the first time they are needed.
"""

import numpy as np
from sklearn.decomposition._base import _BasePCA

from . import _correction as C


def linear_encoder_map(encoder):
    """``(P, mu)`` (float64) with ``encoder.transform(v) == (v - mu) @ P``, or None."""
    if not isinstance(encoder, _BasePCA):
        return None
    P = np.asarray(encoder.components_, dtype=np.float64).T
    if getattr(encoder, "whiten", False):
        P = P / np.sqrt(np.asarray(encoder.explained_variance_, dtype=np.float64))
    return P, np.asarray(encoder.mean_, dtype=np.float64)


class EncodedPEA:
    """Draw encoded PEA samples of fixed rows: ``sampler(rng) -> (n, k)`` float32.

    Parameters
    ----------
    augmenter : PEAAugmenter
        Fitted.
    X, y, batch
        The rows to augment (validated as :meth:`PEAAugmenter.sample` does).
    encoder : fitted PCA-like transformer (see :func:`linear_encoder_map`)
    """

    def __init__(self, augmenter, X, y, batch, encoder):
        P, mu = linear_encoder_map(encoder)
        X, codes, _, ctrl = augmenter._check_data(X, y, batch, reset=False)
        # work on the rows sorted by batch (contiguous blocks: slices, not gathers)
        order = np.argsort(codes, kind="stable")
        self.inverse = np.empty_like(order)
        self.inverse[order] = np.arange(order.size)
        X, codes = X[order], codes[order]
        is_ctrl = np.zeros(order.size, dtype=bool)
        is_ctrl[self.inverse[ctrl.order]] = True  # same controls, same order within a batch
        ctrl = C.group_rows(codes, ctrl.n_groups, is_ctrl)
        self.aug, self.X, self.codes, self.ctrl = augmenter, X, codes, ctrl
        bounds = np.searchsorted(codes, np.arange(ctrl.n_groups + 1))
        self.blocks = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.P64, self.mu = P, mu
        self.P = P.astype(np.float32)
        self.muP = mu @ P
        shift = X.mean(axis=0, dtype=np.float64)
        self.shift = shift
        self.Xs = (X - shift).astype(np.float32)  # shifted copy: no cancellation in float32
        self.XsP = self.Xs @ self.P
        self._tvn = {}

    def _variant(self, key):
        """Cached ``(Yc, ybar, (Y - mu) @ P)`` of the global TVN steps ``key``."""
        if key not in self._tvn:
            Y = C.tvn_global(self.X, self.aug._global[key], self.codes)
            ybar = Y.mean(axis=0, dtype=np.float64)
            Yc = (Y - ybar).astype(np.float32)
            YP = Yc @ self.P + ((ybar - self.mu) @ self.P64).astype(np.float32)
            self._tvn[key] = (Yc, ybar, YP)
        return self._tvn[key]

    def __call__(self, rng, rows=None):
        """One encoded sample (fresh draw from ``rng``) of every row, or of ``rows``."""
        plan = self.aug._draw(self.ctrl.counts, rng)
        out = np.empty((self.X.shape[0], self.P.shape[1]), dtype=np.float32)
        sub_rows = [self.ctrl.rows(b)[sub] for b, (_, _, sub) in enumerate(plan)]
        simple = [b for b, (name, _, _) in enumerate(plan) if name != "tvn"]
        if simple:
            self._simple(plan, sub_rows, simple, out)
        for b, (name, steps, _) in enumerate(plan):
            if name == "tvn":
                self._tvn_batch(b, steps, sub_rows[b], out)
        return out[self.inverse if rows is None else self.inverse[rows]]

    def _simple(self, plan, sub_rows, simple, out):
        """``center`` / ``center_scale`` members (statistics as in :meth:`PEAAugmenter.sample`)."""
        sizes = [sub_rows[b].size for b in simple]
        sub = C.Groups(np.concatenate([sub_rows[b] for b in simple]), np.cumsum([0] + sizes))
        cs = C.fit_center_scale(self.X, sub)
        muP32 = self.muP.astype(np.float32)
        for i, b in enumerate(simple):
            rows = self.blocks[b]
            _, steps, _ = plan[b]
            if "scale" not in steps:  # centering only: all in the output space
                out[rows] = self.XsP[rows] - self.XsP[sub_rows[b]].mean(axis=0) - muP32
                continue
            inv = 1.0 / cs.scale[i]
            m = cs.mean[i] if "center" in steps else 0.0
            offset = ((self.shift - m) * inv - self.mu) @ self.P64
            Pb = self.P * inv.astype(np.float32)[:, None]
            np.matmul(self.Xs[rows], Pb, out=out[rows])
            out[rows] += offset.astype(np.float32)

    def _tvn_batch(self, b, steps, sub, out):
        aug = self.aug
        Yc, ybar, YP = self._variant(("center_scale" in steps, "whiten" in steps))
        rows = self.blocks[b]
        if "coral" not in steps:
            out[rows] = YP[rows]
            return
        coral = C.fit_coral(Yc[sub], aug.reg_covar, aug.shrinkage)  # centering-invariant
        if coral.dense is not None:  # Enc = Yc_b (W P) + (ybar W - mu) P
            WP = coral.dense @ self.P64
            offset = ybar @ WP - self.muP
            out[rows] = Yc[rows] @ WP.astype(np.float32) + offset.astype(np.float32)
            return
        # W = a I + U diag(c) U.T:  Enc = a (Y_b - mu) P + (a - 1) mu P + ((Y_b U) c) (U.T P)
        a = coral.identity
        U = coral.vectors
        G = Yc[rows] @ U.astype(np.float32) + (ybar @ U).astype(np.float32)
        G *= coral.coef.astype(np.float32)
        out[rows] = a * YP[rows] + G @ (U.T @ self.P64).astype(np.float32) + np.float32(a - 1.0) * self.muP.astype(
            np.float32
        )
