"""Frozen forward passes: the linear (PCA) encoder map, torch-module encoders, chunked inference.

- :class:`AffineMap`: ``x -> (x - mean) @ P``, the one torch form of a frozen
  linear encoder (a PCA, whitened or not). The estimator side computes
  ``P`` and ``mean`` once from the fitted scikit-learn object; everything in
  torch that applies a linear encoder (encoding arrays, encoding on the
  device inside the training loop, gradients for attributions, the
  fine-tuned encoder's initialisation) uses this module.
- :class:`ModuleEncoder`: a frozen ``torch.nn.Module`` applied to numpy arrays.
- :func:`forward_chunks` / :func:`forward_numpy`: a module applied without
  gradients to consecutive chunks of :data:`CHUNK_ROWS` rows.

Every chunk is copied into memory torch allocates: BLAS results can depend
on the alignment of the operands, so a copy makes the result the same for
an array restored by pickle, a row view or a freshly allocated array.
"""

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHUNK_ROWS",
    "AffineMap",
    "FineTuned",
    "ModuleEncoder",
    "forward_chunks",
    "forward_numpy",
    "freeze_module",
    "split_fine_tuned",
    "with_trainable_encoder",
]

CHUNK_ROWS = 8192
"""Rows per chunk of every sequential pass (inference, input checks, the decoder)."""


def freeze_module(module):
    """Put a torch module in eval mode with gradients off (in place)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class AffineMap(nn.Module):
    """A frozen linear encoder in torch: ``forward(x) = (x - mean) @ projection``.

    Parameters
    ----------
    projection : ndarray of shape (n_features, n_components)
        The map, in float64 (for a PCA: ``components_.T``, divided by
        ``sqrt(explained_variance_)`` when whitened).
    mean : ndarray of shape (n_features,)
        Removed before the projection.
    """

    def __init__(self, projection, mean):
        super().__init__()
        projection = np.asarray(projection, dtype=np.float64)
        mean = np.asarray(mean, dtype=np.float64)
        self.register_buffer("components", _tensor(projection.T))
        self.register_buffer("mean", _tensor(mean))
        self._bias = _tensor(-(projection.T @ mean))  # float64 product, then float32
        freeze_module(self)

    def forward(self, x):
        return (x - self.mean) @ self.components.T

    def as_linear(self):
        """A trainable ``nn.Linear`` computing the same map (weight ``P.T``, bias ``-mean @ P``)."""
        k, d = self.components.shape
        layer = torch.nn.utils.skip_init(nn.Linear, d, k)  # no draw from torch's global RNG
        with torch.no_grad():
            layer.weight.copy_(self.components)
            layer.bias.copy_(self._bias)
        return layer


def _tensor(a):
    # a contiguous float32 copy (arpack's PCA components can have negative strides)
    return torch.tensor(np.ascontiguousarray(a, dtype=np.float32))


def forward_chunks(module, X, device, chunk=CHUNK_ROWS):
    """Yield ``(start, module(X[start:start + chunk]))`` on ``device``, without gradients."""
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk):
            x = torch.tensor(np.asarray(X[start : start + chunk], dtype=np.float32), device=device)
            yield start, module(x)


def forward_numpy(module, X, device, chunk=CHUNK_ROWS, *, in_training=False):
    """``module(X)`` as a float32 numpy array, computed chunk by chunk on ``device``.

    The module runs in eval mode and is back on the CPU afterwards (fitted
    modules live there between calls). ``in_training``: a module being
    trained on ``device`` (a checkpoint scored between epochs) stays there and
    goes back to train mode.
    """
    if in_training:
        module.eval()
        try:
            chunks = list(forward_chunks(module, X, device, chunk))
        finally:
            module.train()
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate([y.float().cpu().numpy() for _, y in chunks])
    module = module.to(device).eval()
    out = None
    try:
        for start, y in forward_chunks(module, X, device, chunk):
            y = y.float().cpu().numpy()
            if out is None:
                out = np.empty((X.shape[0], y.shape[1]), dtype=np.float32)
            out[start : start + y.shape[0]] = y
        if out is None:  # no rows: one probe row gives the output width
            with torch.no_grad():
                width = module(torch.zeros(1, X.shape[1], device=device)).shape[1]
            out = np.zeros((0, width), dtype=np.float32)
    finally:
        module.cpu()
    return out


class ModuleEncoder:
    """A frozen ``torch.nn.Module`` used as an encoder of numpy arrays.

    Parameters
    ----------
    module : torch.nn.Module
        Frozen in place (eval mode, no gradients).
    """

    def __init__(self, module):
        self.module = freeze_module(module)

    def transform(self, X, device=None):
        """``module(X)`` in float32, chunk by chunk on ``device`` (default CPU)."""
        return forward_numpy(self.module, X, torch.device("cpu") if device is None else device)

    def expected_features(self):
        """``in_features`` of the module's first layer that has one (None when none has)."""
        for m in self.module.modules():
            n = getattr(m, "in_features", None)
            if isinstance(n, int):
                return n
        return None

    def check_input(self, X):
        """Run the module on the first row of ``X``; a clear ValueError for a width mismatch.

        When the module fails and its first layer expects another number of
        features than ``X`` has, the error names both; any other failure of
        the module is raised as it is (it is the module's own error).
        """
        row = X[:1]
        row = row.toarray() if hasattr(row, "toarray") else np.asarray(row)
        try:
            self.transform(row)
        except RuntimeError as exc:
            expected = self.expected_features()
            if expected is None or expected == row.shape[1]:
                raise
            name = type(self.module).__name__
            raise ValueError(
                f"encoder {name} expects {expected} input features (its first layer has "
                f"in_features={expected}) but X has {row.shape[1]}. Pass X with the "
                "columns the module was trained on, in the same order, or another encoder."
            ) from exc

    def __getstate__(self):
        self.module.cpu()  # CPU tensors in pickles, whatever device the module last ran on
        return self.__dict__.copy()


class FineTuned(nn.Sequential):
    """``Sequential(encoder, adapter)``: the model trained with a trainable encoder.

    The same forward pass as :class:`torch.nn.Sequential`. It tells the
    training loop where the adapter's input is: the input-preservation term
    of :func:`semiclip._nn.fit_loop` compares the student rows with the
    output of :meth:`preservation_reference` (the encoder), not with the
    model's input (the raw profiles).
    """

    def preservation_reference(self):
        """The submodule whose output is the input-preservation term's reference."""
        return self[0]


def with_trainable_encoder(encoder, adapter):
    """``FineTuned(trainable copy of encoder, adapter)``, for fine-tuning the encoder.

    An :class:`AffineMap` becomes an ``nn.Linear`` initialised with it; any
    other module is deep-copied (the caller's module is never trained).
    """
    import copy

    module = encoder.as_linear() if isinstance(encoder, AffineMap) else copy.deepcopy(encoder)
    module.train()
    for p in module.parameters():
        p.requires_grad_(True)
    return FineTuned(module, adapter)


def split_fine_tuned(model):
    """``(ModuleEncoder of the trained encoder, adapter)`` of :func:`with_trainable_encoder`'s
    model.
    """
    return ModuleEncoder(model[0].cpu()), model[1]
