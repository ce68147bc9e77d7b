"""The ridge decoder of ``inverse_transform`` fitted from chunks of (embedding, X).

Same model and solution as :class:`semiclip._decoder.LinearDecoder.fit`, but
from running means and co-moments merged chunk by chunk (Chan et al.'s
pairwise update, in float64), so neither the embeddings of all samples nor a
float64 copy of ``X`` is ever held in memory.
"""

import numpy as np
from scipy import linalg, sparse

from ._decoder import LinearDecoder


class DecoderMoments:
    """Running ``n``, means and centred co-moments of embeddings ``Z`` and targets ``X``."""

    def __init__(self):
        self.n = 0
        self.z_mean = self.x_mean = self.zz = self.zx = None

    def update(self, Z, X):
        Z = np.asarray(Z, dtype=np.float64)
        m = Z.shape[0]
        if m == 0:
            return self
        z_mean = Z.mean(axis=0)
        Zc = Z - z_mean
        if sparse.issparse(X):
            x_mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
            zx = np.asarray(X.T @ Zc).T  # Zc sums to zero, so x_mean drops out
        else:
            X = np.asarray(X, dtype=np.float64)
            x_mean = X.mean(axis=0)
            zx = Zc.T @ (X - x_mean)
        zz = Zc.T @ Zc
        if self.n == 0:
            self.n, self.z_mean, self.x_mean, self.zz, self.zx = m, z_mean, x_mean, zz, zx
            return self
        n = self.n + m
        dz, dx = z_mean - self.z_mean, x_mean - self.x_mean
        f = self.n * m / n
        self.zz += zz + f * np.outer(dz, dz)
        self.zx += zx + f * np.outer(dz, dx)
        self.z_mean = self.z_mean + dz * (m / n)
        self.x_mean = self.x_mean + dx * (m / n)
        self.n = n
        return self

    def decoder(self, alpha):
        """The fitted :class:`LinearDecoder` (ridge penalty ``alpha``)."""
        if self.n == 0:
            raise ValueError("The decoder needs at least one sample.")
        gram = self.zz.copy()
        gram[np.diag_indices_from(gram)] += alpha
        dec = LinearDecoder(alpha=alpha)
        dec.coef = linalg.solve(gram, self.zx, assume_a="pos").astype(np.float32)
        dec.z_mean = self.z_mean.astype(np.float32)
        dec.x_mean = self.x_mean.astype(np.float32)
        return dec


def fit_decoder(pairs, alpha):
    """Fit the ridge decoder from an iterable of ``(Z_chunk, X_chunk)`` pairs."""
    moments = DecoderMoments()
    for Z, X in pairs:
        moments.update(Z, X)
    return moments.decoder(alpha)
