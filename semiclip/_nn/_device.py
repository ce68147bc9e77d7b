"""Device resolution: ``"auto"``, explicit devices, CPU fallback with a warning."""

import warnings

import torch

__all__ = ["resolve_device"]


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
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu', 'cuda', "
            "'cuda:1' or 'mps'."
        ) from None
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
