"""The trainable adapter MLP and the frozen-encoder wrappers.

The encoder is frozen: it is applied to ``X`` as a fixed feature map (in
numpy for scikit-learn transformers, in torch for ``nn.Module`` encoders).
:func:`encoder_to_torch` exposes the same map as a differentiable torch
module so gene attributions can flow gradients back to the input genes.
"""

import numpy as np
import torch
from torch import nn


def make_adapter(in_dim, hidden_layer_sizes, out_dim):
    """``in_dim -> hidden... -> out_dim`` MLP, ReLU between layers, no normalisation."""
    sizes = [int(in_dim), *[int(h) for h in hidden_layer_sizes], int(out_dim)]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def adapter_layer_sizes(adapter):
    """The ``(in, hidden..., out)`` sizes of an adapter made by :func:`make_adapter`."""
    linears = [m for m in adapter if isinstance(m, nn.Linear)]
    return [linears[0].in_features] + [m.out_features for m in linears]


class TorchModuleEncoder:
    """Apply a frozen ``torch.nn.Module`` to numpy arrays in chunks."""

    def __init__(self, module, device, batch_size=4096):
        self.module = module
        self.device = device
        self.batch_size = batch_size

    def transform(self, X):
        module = self.module.to(self.device).eval()
        outs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], self.batch_size):
                xb = torch.as_tensor(
                    np.ascontiguousarray(X[start : start + self.batch_size], dtype=np.float32),
                    device=self.device,
                )
                outs.append(module(xb).float().cpu().numpy())
        if not outs:
            with torch.no_grad():
                probe = module(torch.zeros(1, X.shape[1], device=self.device))
            return np.zeros((0, probe.shape[1]), dtype=np.float32)
        return np.concatenate(outs, axis=0)


def freeze_module(module):
    """Put a torch module in eval mode with gradients off (in place)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def encoder_to_torch(encoder):
    """A differentiable torch module equal to a frozen encoder's ``transform``.

    Supports ``None`` (identity), PCA-like transformers with ``components_``
    and ``mean_`` (including ``IncrementalPCA`` and whitening), a
    ``FrozenEstimator`` wrapping one of those, and torch modules. Other
    transformers raise ``TypeError``: gradients cannot pass through them;
    use the linear-decoder attribution instead.
    """
    if encoder is None:
        return nn.Identity()
    if isinstance(encoder, nn.Module):
        return encoder
    if isinstance(encoder, TorchModuleEncoder):
        return encoder.module
    inner = getattr(encoder, "estimator", None)  # sklearn.frozen.FrozenEstimator
    if inner is not None and not hasattr(encoder, "components_"):
        return encoder_to_torch(inner)
    if hasattr(encoder, "components_") and hasattr(encoder, "mean_"):
        comps = np.asarray(encoder.components_, dtype=np.float64)
        mean = encoder.mean_ if encoder.mean_ is not None else np.zeros(comps.shape[1])
        mean = np.asarray(mean, dtype=np.float64)
        if getattr(encoder, "whiten", False):
            comps = comps / np.sqrt(encoder.explained_variance_)[:, None]
        lin = nn.Linear(comps.shape[1], comps.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(comps, dtype=torch.float32))
            lin.bias.copy_(torch.as_tensor(-comps @ mean, dtype=torch.float32))
        return freeze_module(lin)
    raise TypeError(
        f"Cannot differentiate through an encoder of type {type(encoder).__name__}: "
        "gradient attributions support encoder='pca', None, PCA-like transformers "
        "and torch modules. Use the linear-decoder attribution (inverse_transform) instead."
    )
