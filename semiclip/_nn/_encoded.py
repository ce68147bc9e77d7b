"""Affine maps of row blocks composed with a linear encoder, in torch: the products of encoded PEA.

:class:`EncodedRows` holds rows ``Xs`` (float32, shifted by a constant) and a
projection ``P``; every method writes ``f(rows) @ P`` for one block of rows
into an output tensor, where ``f`` is one affine correction (the
statistics come from the numpy side, :mod:`semiclip._distill`'s encoded PEA).
The products with many rows run here, on torch's intra-op threads (already
running for the training loop); the small algebra stays in numpy.
"""

import numpy as np
import torch

__all__ = ["EncodedRows"]


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class EncodedRows:
    """Rows and their products with a projection, for affine maps of row blocks.

    Parameters
    ----------
    X_shifted : ndarray of shape (n, d)
        The rows minus a constant row (no cancellation in float32).
    projection : ndarray of shape (d, k)
        The encoder's linear map ``P`` (float64; used in float32).
    """

    @torch.no_grad()
    def __init__(self, X_shifted, projection):
        self.P = _t(projection)
        self.Xs = _t(X_shifted)
        self.XsP = self.Xs @ self.P
        self._variants = {}

    @torch.no_grad()
    def add_variant(self, key, Y_centered, offset):
        """Store rows ``Y`` (centred) and ``Y @ P + offset``; return the float32 ``Y`` (numpy
        view).
        """
        Yc = _t(Y_centered)
        self._variants[key] = (Yc, Yc @ self.P + _t(offset))
        return Yc.numpy()

    def has_variant(self, key):
        return key in self._variants

    def variant_rows(self, key):
        """The float32 centred rows of a variant, as a numpy view."""
        return self._variants[key][0].numpy()

    def output(self):
        return torch.empty((self.Xs.shape[0], self.P.shape[1]), dtype=torch.float32)

    @torch.no_grad()
    def center(self, out, rows, sub_rows, offset):
        """``out[rows] = Xs[rows] P - mean(Xs[sub_rows] P) - offset``: centring in the output
        space.
        """
        sub_mean = self.XsP[torch.from_numpy(sub_rows)].mean(dim=0)
        torch.sub(self.XsP[rows], sub_mean + _t(offset), out=out[rows])

    @torch.no_grad()
    def scaled(self, out, rows, inv, offset):
        """``out[rows] = Xs[rows] (P * inv[:, None]) + offset``: a per-feature scale first."""
        torch.addmm(_t(offset), self.Xs[rows], self.P * _t(inv)[:, None], out=out[rows])

    @torch.no_grad()
    def variant(self, out, rows, key):
        """``out[rows] = Y[rows] @ P + offset`` of a stored variant."""
        out[rows] = self._variants[key][1][rows]

    @torch.no_grad()
    def dense(self, out, rows, key, WP, offset):
        """``out[rows] = Y[rows] @ WP + offset`` (a dense map ``W`` composed with ``P``)."""
        torch.addmm(_t(offset), self._variants[key][0][rows], _t(WP), out=out[rows])

    @torch.no_grad()
    def low_rank(self, out, rows, key, U, ybar_U, coef, identity, offset):
        """``out[rows]`` for ``W = identity I + U diag(coef) U.T`` applied before ``P``.

        ``identity * (Y P + variant offset) + ((Y U + ybar_U) coef) (U.T P) + offset``.
        """
        Yc, YP = self._variants[key]
        U32 = _t(U)
        G = torch.addmm(_t(ybar_U), Yc[rows], U32)
        G *= _t(coef)
        torch.addmm(_t(offset), G, U32.T @ self.P, out=out[rows])
        out[rows] += identity * YP[rows]
