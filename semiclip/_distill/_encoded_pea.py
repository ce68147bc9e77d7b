"""PEA inputs for every epoch: ``encode(augmenter.sample(X))``, composed with a linear encoder.

With an augmenter, :class:`~semiclip.SemiClippedTransformer` needs, every
epoch, the encoded PEA sample of the same rows. Every PEA member is an
affine map per batch and a PCA encoder is the affine map
``v -> (v - mu) @ P``, so most of that work can be done once
(:class:`EncodedPEA`):

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
(same draw from ``rng``) up to float32 rounding; a test checks it. The
statistics are fitted here in numpy (:mod:`semiclip._correction`), the
products with many rows run in torch (:class:`semiclip._nn.EncodedRows`).
Other encoders (and a fine-tuned one) augment the profiles and encode them
(:func:`epoch_features`).
"""

import numpy as np

from .._correction import Groups, fit_center_scale, tvn_global
from .._nn import EncodedRows
from ._encoders import encode, linear_encoder_map

__all__ = ["EncodedPEA", "epoch_features"]


class EncodedPEA:
    """Draw encoded PEA samples of fixed rows: ``sampler(rng) -> (n, k)`` float32.

    Parameters
    ----------
    sampler : semiclip._correction.PEASampler
        From :meth:`PEAAugmenter.sampler` on the rows wanted and every control.
    linear_map : (ndarray, ndarray)
        ``(P, mu)`` of the encoder, from :func:`linear_encoder_map`.
    rows : array of int, optional
        The rows of the sampler's ``X`` whose encoded sample is returned, in
        that order (default: all). Only they go through the per-epoch
        products; the other rows only lend their control statistics.
    """

    def __init__(self, sampler, linear_map, rows=None):
        P, mu = linear_map
        X, codes, ctrl = sampler.X, sampler.codes, sampler.ctrl
        n_batches = ctrl.n_groups
        every = np.arange(X.shape[0]) if rows is None else rows
        wanted = np.zeros(X.shape[0], dtype=bool)
        wanted[every] = True
        # rows sorted by batch, the wanted rows of a batch first: one slice each
        order = np.lexsort((~wanted, codes))
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        self.out_rows = inverse[every]
        X, codes = X[order], codes[order]
        # the same controls in the same order within a batch (same subsamples as sample())
        self.ctrl = Groups(inverse[ctrl.order], ctrl.bounds)
        self.sampler, self.X, self.codes = sampler, X, codes
        start = np.searchsorted(codes, np.arange(n_batches))
        n_wanted = np.bincount(codes[wanted[order]], minlength=n_batches)
        self.blocks = [slice(int(a), int(a + m)) for a, m in zip(start, n_wanted)]
        self.P, self.mu, self.muP = P, mu, mu @ P
        self.shift = X.mean(axis=0, dtype=np.float64)
        self.rows = EncodedRows(X - self.shift, P)  # shifted: no cancellation in float32
        self._ybar = {}

    def _variant(self, key):
        """The centred rows and mean of the global TVN steps ``key`` (stored on first use)."""
        if not self.rows.has_variant(key):
            Y = tvn_global(self.X, self.sampler.global_steps(key), self.codes)
            ybar = Y.mean(axis=0, dtype=np.float64)
            self.rows.add_variant(key, Y - ybar, (ybar - self.mu) @ self.P)
            self._ybar[key] = ybar
        return self.rows.variant_rows(key), self._ybar[key]

    def __call__(self, rng):
        """One encoded sample (a fresh draw from ``rng``) of the wanted rows."""
        plan = self.sampler.draw(rng)
        out = self.rows.output()
        sub_rows = [self.ctrl.rows(b)[p.subset] for b, p in enumerate(plan)]
        simple = [b for b, p in enumerate(plan) if p.transform != "tvn"]
        if simple:
            self._simple(plan, sub_rows, simple, out)
        for b, p in enumerate(plan):
            if p.transform == "tvn":
                self._tvn_batch(b, p, sub_rows[b], out)
        return out.numpy()[self.out_rows]

    def _simple(self, plan, sub_rows, simple, out):
        """``center`` / ``center_scale`` members (statistics as in ``PEASampler.apply``)."""
        scaled = [b for b in simple if "scale" in plan[b].steps]
        if scaled:  # float64 statistics, as sample() computes them
            cs = fit_center_scale(self.X, Groups.of([sub_rows[b] for b in scaled]))
        for b in simple:
            steps = plan[b].steps
            if "scale" not in steps:  # centering only: all in the output space
                self.rows.center(out, self.blocks[b], sub_rows[b], self.muP)
                continue
            i = scaled.index(b)
            inv = 1.0 / cs.scale[i]
            m = cs.mean[i] if "center" in steps else 0.0
            offset = ((self.shift - m) * inv - self.mu) @ self.P
            self.rows.scaled(out, self.blocks[b], inv, offset)

    def _tvn_batch(self, b, plan, sub, out):
        key = plan.tvn_variant
        Yc, ybar = self._variant(key)
        rows = self.blocks[b]
        if "coral" not in plan.steps:
            self.rows.variant(out, rows, key)
            return
        # centering-invariant: fitted on the centred rows, in float64
        coral = self.sampler.fit_coral(Yc[sub])
        if coral.dense is not None:  # Enc = Yc_b (W P) + (ybar W - mu) P
            WP = coral.dense @ self.P
            self.rows.dense(out, rows, key, WP, ybar @ WP - self.muP)
            return
        # W = a I + U diag(c) U.T:  Enc = a (Y_b - mu) P + (a - 1) mu P + ((Y_b U) c) (U.T P)
        a, U = coral.identity, coral.vectors
        self.rows.low_rank(out, rows, key, U, ybar @ U, coral.coef, a, (a - 1.0) * self.muP)


def epoch_features(augmenter, encoder, X, y, batch, rows, controls, *, raw=False, device=None):
    """``rng -> features``: a fresh PEA augmentation of ``X[rows]``, encoded, for every epoch.

    Only the rows and the controls (whose per-batch statistics PEA fits)
    are augmented, in float32. With a linear (PCA) encoder the augmentation
    is composed with it (:class:`EncodedPEA`: the same result up to
    rounding at a fraction of the cost); otherwise the profiles are
    augmented and encoded (``raw=True``: returned unencoded, for a
    fine-tuned encoder). numpy runs on one BLAS thread, so that it does not
    fight torch's threads.
    """
    from threadpoolctl import ThreadpoolController

    subset = np.union1d(rows, np.flatnonzero(controls))
    X_sub = np.ascontiguousarray(X[subset], dtype=np.float32)
    sampler = augmenter.sampler(X_sub, y[subset], batch=batch[subset])
    where = np.searchsorted(subset, rows)
    blas = ThreadpoolController()  # scanned once, not every epoch
    linear = None if raw else linear_encoder_map(encoder)
    if linear is not None:
        encoded = EncodedPEA(sampler, linear, rows=where)

        def draw(rng):  # numpy's part is small: one BLAS thread, no wake-ups
            with blas.limit(limits=1, user_api="blas"):
                return encoded(rng)

        return draw

    def draw(rng):
        with blas.limit(limits=1, user_api="blas"):
            sample = sampler.sample(rng)[0][where]
        if raw:
            return np.ascontiguousarray(sample, dtype=np.float32)
        return encode(encoder, sample, device)

    return draw
