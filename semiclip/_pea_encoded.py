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
keeps up to five float32 copies (torch tensors) of ``X`` (shifted ``X`` and one per TVN
variant drawn), created the first time they are needed.
"""

import numpy as np
import torch
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


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class EncodedPEA:
    """Draw encoded PEA samples of fixed rows: ``sampler(rng) -> (n, k)`` float32.

    The products with ``n`` rows run in torch (its intra-op threads, already
    running for the training loop; OpenBLAS threads woken beside them were
    measured to stall), the small float64 algebra in numpy.

    Parameters
    ----------
    augmenter : PEAAugmenter
        Fitted.
    X, y, batch
        The rows the augmentation is computed on (validated as
        :meth:`PEAAugmenter.sample` does): the rows wanted and every control.
    linear_map : (ndarray, ndarray)
        ``(P, mu)`` of the encoder, from :func:`linear_encoder_map`.
    rows : array of int, optional
        The rows of ``X`` whose encoded sample is returned, in that order
        (default: all). Only they go through the per-epoch products; the
        other rows only lend their control statistics.
    """

    def __init__(self, augmenter, X, y, batch, linear_map, rows=None):
        P, mu = linear_map
        X, codes, _, ctrl = augmenter._check_data(X, y, batch, reset=False)
        n_batches = ctrl.n_groups
        wanted = np.zeros(X.shape[0], dtype=bool)
        wanted[np.arange(X.shape[0]) if rows is None else rows] = True
        # rows sorted by batch, the wanted rows of a batch first: one slice each
        order = np.lexsort((~wanted, codes))
        self.inverse = np.empty_like(order)
        self.inverse[order] = np.arange(order.size)
        self.out_rows = self.inverse[np.arange(X.shape[0]) if rows is None else rows]
        X, codes = X[order], codes[order]
        # the same controls in the same order within a batch (same subsamples as sample())
        self.ctrl = C.Groups(self.inverse[ctrl.order], ctrl.bounds)
        self.aug, self.X, self.codes = augmenter, X, codes
        start = np.searchsorted(codes, np.arange(n_batches))
        n_wanted = np.bincount(codes[wanted[order]], minlength=n_batches)
        self.blocks = [slice(int(a), int(a + m)) for a, m in zip(start, n_wanted)]
        self.P64, self.mu = P, mu
        self.P = _t(P)
        self.muP = mu @ P
        self.shift = X.mean(axis=0, dtype=np.float64)
        with torch.no_grad():
            self.Xs = _t(X - self.shift)  # shifted copy: no cancellation in float32
            self.XsP = self.Xs @ self.P
        self._tvn = {}

    def _variant(self, key):
        """Cached ``(Yc, ybar, (Y - mu) @ P)`` of the global TVN steps ``key``."""
        if key not in self._tvn:
            Y = C.tvn_global(self.X, self.aug._global[key], self.codes)
            ybar = Y.mean(axis=0, dtype=np.float64)
            Yc = _t(Y - ybar)
            YP = Yc @ self.P + _t((ybar - self.mu) @ self.P64)
            self._tvn[key] = (Yc, ybar, YP)
        return self._tvn[key]

    def __call__(self, rng):
        """One encoded sample (a fresh draw from ``rng``) of the wanted rows."""
        plan = self.aug._draw(self.ctrl.counts, rng)
        out = torch.empty((self.X.shape[0], self.P.shape[1]), dtype=torch.float32)
        sub_rows = [self.ctrl.rows(b)[sub] for b, (_, _, sub) in enumerate(plan)]
        with torch.no_grad():
            simple = [b for b, (name, _, _) in enumerate(plan) if name != "tvn"]
            if simple:
                self._simple(plan, sub_rows, simple, out)
            for b, (name, steps, _) in enumerate(plan):
                if name == "tvn":
                    self._tvn_batch(b, steps, sub_rows[b], out)
        return out.numpy()[self.out_rows]

    def _simple(self, plan, sub_rows, simple, out):
        """``center`` / ``center_scale`` members (statistics as in :meth:`PEAAugmenter.sample`)."""
        scaled = [b for b in simple if "scale" in plan[b][1]]
        if scaled:  # float64 statistics, as sample() computes them
            cs = C.fit_center_scale(self.X, C.Groups.of([sub_rows[b] for b in scaled]))
        muP = _t(self.muP)
        for b in simple:
            rows = self.blocks[b]
            steps = plan[b][1]
            if "scale" not in steps:  # centering only: all in the output space
                sub_mean = self.XsP[torch.from_numpy(sub_rows[b])].mean(dim=0)
                torch.sub(self.XsP[rows], sub_mean + muP, out=out[rows])
                continue
            i = scaled.index(b)
            inv = 1.0 / cs.scale[i]
            m = cs.mean[i] if "center" in steps else 0.0
            offset = _t(((self.shift - m) * inv - self.mu) @ self.P64)
            torch.addmm(offset, self.Xs[rows], self.P * _t(inv)[:, None], out=out[rows])

    def _tvn_batch(self, b, steps, sub, out):
        aug = self.aug
        Yc, ybar, YP = self._variant(("center_scale" in steps, "whiten" in steps))
        rows = self.blocks[b]
        if "coral" not in steps:
            out[rows] = YP[rows]
            return
        # centering-invariant: fitted on the centred rows, in float64
        coral = C.fit_coral(Yc.numpy()[sub], aug.reg_covar, aug.shrinkage)
        if coral.dense is not None:  # Enc = Yc_b (W P) + (ybar W - mu) P
            WP = coral.dense @ self.P64
            torch.addmm(_t(ybar @ WP - self.muP), Yc[rows], _t(WP), out=out[rows])
            return
        # W = a I + U diag(c) U.T:  Enc = a (Y_b - mu) P + (a - 1) mu P + ((Y_b U) c) (U.T P)
        a, U = coral.identity, coral.vectors
        U32 = _t(U)
        G = torch.addmm(_t(ybar @ U), Yc[rows], U32)
        G *= _t(coral.coef)
        torch.addmm(_t((a - 1.0) * self.muP), G, U32.T @ self.P, out=out[rows])
        out[rows] += a * YP[rows]
