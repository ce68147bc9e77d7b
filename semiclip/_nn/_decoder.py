"""The ridge decoder behind ``inverse_transform``: embeddings back to gene space.

``X ~ (Z - z_mean) @ coef + x_mean``, fitted by ridge in closed form from
running means and centred co-moments (Chan et al.'s pairwise update, in
float64), so it can be fitted in one pass over chunks of ``(Z, X)``: neither
all embeddings nor a float64 copy of ``X`` is ever held in memory. Works
with a sparse ``X`` (only ``Z.T @ X`` and the column means are needed) and
costs one ``d x d`` solve for any number of genes.

The dense algebra runs in torch, in float64 on the training device: on an
accelerator the chunks' products stay there, and on the CPU, right after
training, torch's OpenMP threads are still spinning and a numpy/scipy
(OpenBLAS) solve of the same size was measured 10-30x slower on 2 cores.
"""

import numpy as np
import torch
from scipy import sparse

from ._forward import CHUNK_ROWS, forward_chunks
from ._prefetch import embed_source

__all__ = [
    "DecoderMoments",
    "LinearDecoder",
    "decoder_from_embeddings",
    "decoder_from_source",
    "fit_decoder",
]


class LinearDecoder:
    """A fitted ridge decoder; build it with :func:`fit_decoder` or :meth:`fit`."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, Z, X):
        """Fit on all of ``Z`` and ``X`` at once (one chunk)."""
        fitted = DecoderMoments().update(Z, X).decoder(self.alpha)
        self.coef, self.z_mean, self.x_mean = fitted.coef, fitted.z_mean, fitted.x_mean
        return self

    def predict(self, Z):
        return (np.asarray(Z, dtype=np.float32) - self.z_mean) @ self.coef + self.x_mean


class DecoderMoments:
    """Running ``n``, means and centred co-moments of embeddings ``Z`` and targets ``X``.

    Accumulated in float64 on ``device`` (default CPU): on an accelerator the
    chunks' products run there instead of on the host (``Z`` may then be a
    tensor already on the device).
    """

    def __init__(self, device=None):
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.n = 0
        self.z_mean = self.x_mean = self.zz = self.zx = None

    def update(self, Z, X):
        if not isinstance(Z, torch.Tensor):
            Z = torch.as_tensor(np.asarray(Z))
        Z = Z.to(self.device, torch.float64)
        m = Z.shape[0]
        if m == 0:
            return self
        z_mean = Z.mean(dim=0)
        Zc = Z - z_mean
        if sparse.issparse(X):
            x_mean = torch.as_tensor(np.asarray(X.mean(axis=0), dtype=np.float64).ravel())
            # Zc sums to 0: x_mean drops out
            zx = torch.as_tensor(np.asarray(X.T @ Zc.cpu().numpy()).T)
            x_mean, zx = x_mean.to(self.device), zx.to(self.device)
        else:
            X = torch.as_tensor(np.asarray(X)).to(self.device, torch.float64)
            x_mean = X.mean(dim=0)
            zx = Zc.T @ (X - x_mean)
        zz = Zc.T @ Zc
        if self.n == 0:
            self.n, self.z_mean, self.x_mean, self.zz, self.zx = m, z_mean, x_mean, zz, zx
            return self
        n = self.n + m
        dz, dx = z_mean - self.z_mean, x_mean - self.x_mean
        f = self.n * m / n
        self.zz += zz + f * torch.outer(dz, dz)
        self.zx += zx + f * torch.outer(dz, dx)
        self.z_mean = self.z_mean + dz * (m / n)
        self.x_mean = self.x_mean + dx * (m / n)
        self.n = n
        return self

    def decoder(self, alpha):
        """The fitted :class:`LinearDecoder` (ridge penalty ``alpha``)."""
        if self.n == 0:
            raise ValueError("The decoder needs at least one sample.")
        gram = self.zz + alpha * torch.eye(
            self.zz.shape[0], dtype=torch.float64, device=self.device
        )
        chol, info = torch.linalg.cholesky_ex(gram)
        if int(info) == 0:
            coef = torch.cholesky_solve(self.zx, chol)
        else:  # not positive definite in floating point: a general solve
            coef = torch.linalg.solve(gram, self.zx)
        dec = LinearDecoder(alpha=alpha)
        dec.coef = coef.cpu().numpy().astype(np.float32)
        dec.z_mean = self.z_mean.cpu().numpy().astype(np.float32)
        dec.x_mean = self.x_mean.cpu().numpy().astype(np.float32)
        return dec


def fit_decoder(pairs, alpha):
    """Fit the ridge decoder from an iterable of ``(Z_chunk, X_chunk)`` pairs."""
    moments = DecoderMoments()
    for Z, X in pairs:
        moments.update(Z, X)
    return moments.decoder(alpha)


def decoder_from_embeddings(model, Z, X, device, alpha, chunk=CHUNK_ROWS):
    """The ridge decoder from ``(model(Z), X)``, chunk by chunk on ``device`` (no full copy).

    The module runs in eval mode and is back on the CPU afterwards.
    """
    moments = DecoderMoments(device)  # the chunks' float64 products on the device
    model = model.to(device).eval()
    try:
        for start, out in forward_chunks(model, Z, device, chunk):
            moments.update(out, X[start : start + out.shape[0]])
    finally:
        model.cpu()
    return moments.decoder(alpha)


def decoder_from_source(source, model, device, alpha, *, on_device=None, on_host=None):
    """The ridge decoder from ``(model(encoder(rows)), rows)`` of an on-disk ``X``, chunk by
    chunk.
    """
    moments = DecoderMoments(device)
    for raw, out in embed_source(source, model, device, on_device=on_device, on_host=on_host):
        moments.update(out, raw)
    return moments.decoder(alpha)
