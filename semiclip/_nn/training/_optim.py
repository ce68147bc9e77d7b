"""The optimizer and the learning-rate schedule of the adapter."""

import math

import torch

__all__ = ["make_optimizer", "optimizer_to", "scheduled_lr"]


def make_optimizer(params, config):
    """SGD with momentum, Adam or AdamW, as ``config.solver`` says."""
    if config.solver == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    if config.solver == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.solver == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    raise ValueError(f"Unknown solver {config.solver!r}.")


def scheduled_lr(config, step, total_steps):
    """Learning rate of optimisation step ``step``: cosine from ``learning_rate`` to the minimum."""
    if config.lr_schedule == "constant" or total_steps <= 1:
        return config.learning_rate
    frac = min(step / (total_steps - 1), 1.0)
    lo, hi = config.min_learning_rate, config.learning_rate
    return lo + 0.5 * (hi - lo) * (1.0 + math.cos(math.pi * frac))


def optimizer_to(optimizer, device):
    """Move an optimizer's state (momentum buffers...) to ``device``, in place."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device != device and value.dim() > 0:
                state[key] = value.to(device)
