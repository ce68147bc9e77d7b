"""The trainable adapter: construction, sizes, seeded initialisation, (de)serialisation.

Two forms: the MLP of :func:`make_adapter` (a ``Sequential`` of ``Linear``
layers with ReLU between; one ``Linear`` for a linear adapter), and the
:class:`ResidualAdapter` (``residual=True``): a linear path beside that MLP,
whose last layer starts at zero, so that a ridge start of the linear path
is the whole adapter's start. The state dict tells the two apart
(``linear.*`` and ``mlp.*`` keys), so model files need no other marker.
"""

import io

import numpy as np
import torch
from torch import nn

__all__ = [
    "ResidualAdapter",
    "adapter_from_bytes",
    "adapter_from_state",
    "adapter_layer_sizes",
    "adapter_state_shapes",
    "adapter_to_bytes",
    "frozen_copy",
    "init_adapter",
    "make_adapter",
    "set_linear_start",
]


class ResidualAdapter(nn.Module):
    """``linear(x) + mlp(x)``: a linear path beside an MLP (see :func:`make_adapter`).

    The linear path holds the ridge start; the MLP's last layer starts at
    zero (:func:`init_adapter`), so that training starts from the linear map
    and the hidden layers add to it.
    """

    def __init__(self, linear, mlp):
        super().__init__()
        self.linear = linear
        self.mlp = mlp

    def forward(self, x):
        return self.linear(x) + self.mlp(x)


def _mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.utils.skip_init(nn.Linear, sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_adapter(in_dim, hidden_layer_sizes, out_dim, *, residual=False):
    """``in_dim -> hidden... -> out_dim`` MLP, ReLU between layers, no normalisation.

    ``residual``: a :class:`ResidualAdapter`, that MLP beside a linear
    ``in_dim -> out_dim`` path. The weights are left uninitialised (no draw
    from torch's global RNG); call :func:`init_adapter` with a seed.
    """
    sizes = [int(in_dim), *[int(h) for h in hidden_layer_sizes], int(out_dim)]
    if residual:
        return ResidualAdapter(torch.nn.utils.skip_init(nn.Linear, sizes[0], sizes[-1]),
                               _mlp(sizes))
    return _mlp(sizes)


def _linears(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def adapter_layer_sizes(adapter):
    """The ``(in, hidden..., out)`` sizes of an adapter made by :func:`make_adapter` (of the
    MLP of a :class:`ResidualAdapter`)."""
    linears = _linears(adapter.mlp if isinstance(adapter, ResidualAdapter) else adapter)
    return [linears[0].in_features] + [m.out_features for m in linears]


def adapter_state_shapes(sizes, residual=False):
    """``{state key: shape}`` of the adapter of layer ``sizes``, in state-dict order."""
    prefix = "mlp." if residual else ""
    shapes = {}
    if residual:
        shapes.update({"linear.weight": (sizes[-1], sizes[0]), "linear.bias": (sizes[-1],)})
    for i in range(len(sizes) - 1):  # Linear layers at 0, 2, 4... (ReLU between)
        shapes[f"{prefix}{2 * i}.weight"] = (sizes[i + 1], sizes[i])
        shapes[f"{prefix}{2 * i}.bias"] = (sizes[i + 1],)
    return shapes


def init_adapter(adapter, seed):
    """PyTorch's default ``Linear`` init, drawn from a local generator (no global seed).

    The last layer of a :class:`ResidualAdapter`'s MLP is set to zero.
    """
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for layer in _linears(adapter):
            bound = 1.0 / np.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)
        if isinstance(adapter, ResidualAdapter):
            last = _linears(adapter.mlp)[-1]
            last.weight.zero_()
            last.bias.zero_()
    return adapter


def adapter_from_state(sizes, state):
    """A new adapter of layer ``sizes`` (see :func:`adapter_layer_sizes`) holding ``state``
    (a :class:`ResidualAdapter` when ``state`` has its ``linear.weight``)."""
    adapter = make_adapter(sizes[0], sizes[1:-1], sizes[-1], residual="linear.weight" in state)
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
    """Set a linear adapter (one ``Linear``, see :func:`make_adapter`), or the linear path of a
    :class:`ResidualAdapter`, to ``x @ weight.T + bias``.

    ``weight`` (out, in) and ``bias`` (out,) are numpy arrays (the ridge start).
    """
    linears = _linears(adapter.linear if isinstance(adapter, ResidualAdapter) else adapter)
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
