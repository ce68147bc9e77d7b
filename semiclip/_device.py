"""Device resolution and torch thread control."""

import contextlib
import warnings

import torch


def resolve_device(device):
    """Return a ``torch.device`` for ``"auto"``, ``"cpu"``, ``"cuda[:i]"``, ``"mps"``.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU. An explicitly
    requested accelerator that is not available falls back to the CPU with a
    warning (so a model fitted on a GPU node still transforms on a laptop).
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={device!r} was requested but CUDA is not available; using the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            warnings.warn(
                f"device={device!r} was requested but MPS is not available; using the CPU.",
                UserWarning,
                stacklevel=3,
            )
            return torch.device("cpu")
    return dev


@contextlib.contextmanager
def torch_threads(n_threads):
    """Temporarily set torch's intra-op thread count (``None`` leaves it alone)."""
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
