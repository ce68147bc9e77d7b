"""The trainable adapter MLP: construction, sizes, seeded initialisation."""

import numpy as np
import torch
from torch import nn


def make_adapter(in_dim, hidden_layer_sizes, out_dim):
    """``in_dim -> hidden... -> out_dim`` MLP, ReLU between layers, no normalisation.

    The weights are left uninitialised (no draw from torch's global RNG);
    call :func:`init_adapter` with a seed.
    """
    sizes = [int(in_dim), *[int(h) for h in hidden_layer_sizes], int(out_dim)]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.utils.skip_init(nn.Linear, sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def adapter_layer_sizes(adapter):
    """The ``(in, hidden..., out)`` sizes of an adapter made by :func:`make_adapter`."""
    linears = [m for m in adapter if isinstance(m, nn.Linear)]
    return [linears[0].in_features] + [m.out_features for m in linears]


def init_adapter(adapter, seed):
    """PyTorch's default ``Linear`` init, drawn from a local generator (no global seed)."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for layer in adapter:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.uniform_(-bound, bound, generator=gen)
    return adapter
