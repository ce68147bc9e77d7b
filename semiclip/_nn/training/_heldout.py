"""The held-out loss the loop's early stopping monitors (key retrieval against centroids)."""

import numpy as np
import torch

from .._losses import loss_object
from .._prefetch import TensorFeatures

__all__ = ["validation_loss"]


def _acc_dtype(device):
    """The dtype of the loop's on-device sums (float64 where the device has it)."""
    return torch.float32 if device.type == "mps" else torch.float64


class _Given:
    """A feature provider over a tensor already on the device."""

    def __init__(self, tensor):
        self.tensor, self.n = tensor, tensor.shape[0]

    def batches(self, positions, bounds, positions_t=None):
        for start, stop in bounds:
            yield self.tensor[start:stop]


def validation_loss(module, features, codes, table, config, device):
    """Held-out loss of the module: key retrieval against teacher centroids
    (:meth:`semiclip._nn.Loss.held_out` of the configured loss).

    For contrastive losses, each held-out sample is scored with InfoNCE against
    the centroids of all held-out keys (its own key is the positive); for
    ``"soft_infonce"``, with the soft-target cross-entropy against the same
    centroids, the target being the softmax of its own key's centroid's cosine
    similarities to them; for feature distillation, the same loss as training
    against its key's centroid. Independent of minibatch composition.
    ``features`` is a tensor or a feature provider
    (:mod:`semiclip._nn._prefetch`).
    """
    module.eval()
    loss = loss_object(config.loss)
    if isinstance(features, torch.Tensor):
        features = _Given(features)
    elif isinstance(features, TensorFeatures):
        features = _Given(features.tensor)
    n = features.n
    chunk = max(config.batch_size, 1024)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    cand_keys = torch.arange(table.shape[0], device=device)
    total = torch.zeros((), dtype=_acc_dtype(device), device=device)
    with torch.no_grad():
        for (start, stop), x in zip(bounds, features.batches(np.arange(n), bounds)):
            out = module(x)
            part = loss.held_out(out, table, codes[start:stop], cand_keys, config.temperature,
                                 config.soft_target_temperature)
            total += part * out.shape[0]
    module.train()
    return float(total) / max(n, 1)
