"""The trainable adapter MLP: construction, sizes, seeded initialisation, (de)serialisation."""

import io

import numpy as np
import torch
from torch import nn

__all__ = [
    "adapter_from_bytes",
    "adapter_from_state",
    "adapter_layer_sizes",
    "adapter_to_bytes",
    "frozen_copy",
    "init_adapter",
    "make_adapter",
    "set_linear_start",
]


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


def adapter_from_state(sizes, state):
    """A new adapter of layer ``sizes`` (see :func:`adapter_layer_sizes`) holding ``state``."""
    adapter = make_adapter(sizes[0], sizes[1:-1], sizes[-1])
    adapter.load_state_dict(state)
    return adapter.eval()


def adapter_to_bytes(adapter):
    """``(sizes, blob)``: the adapter's layer sizes and its weights as CPU tensors, serialised."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in adapter.state_dict().items()}, buf)
    return adapter_layer_sizes(adapter), buf.getvalue()


def adapter_from_bytes(sizes, blob):
    """The adapter saved by :func:`adapter_to_bytes`, on the CPU (tensors only: no code runs)."""
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return adapter_from_state(sizes, state)


def set_linear_start(adapter, weight, bias):
    """Set a linear adapter (one ``Linear``, see :func:`make_adapter`) to ``x @ weight.T + bias``.

    ``weight`` (out, in) and ``bias`` (out,) are numpy arrays (the ridge start).
    """
    linears = [m for m in adapter if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise ValueError(f"set_linear_start needs a linear adapter; got {len(linears)} layers.")
    layer = linears[0]
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.asarray(weight), dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(np.asarray(bias), dtype=layer.bias.dtype))
    return adapter


def frozen_copy(module):
    """A copy of ``module`` in eval mode with no gradients (the anchor's starting model)."""
    import copy

    return copy.deepcopy(module).eval().requires_grad_(False)
