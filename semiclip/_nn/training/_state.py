"""The state of a training run between two epochs, to write it down and continue from it.

:func:`trainer_state` collects, after an epoch, everything the loop would
carry into the next one: the module's and the optimizer's weights, the
position in the learning-rate schedule (the step count), the epoch plan
generator's state (shuffles and weak-pair draws), torch's generators, the
history, and the state of every callback that has ``state_dict`` /
``load_state_dict`` (early stopping; the augmentation generator of
:class:`EpochFeatures`). Everything is a tensor or a plain container (dict,
list, str, int, float, bool, None), so that ``torch.load(...,
weights_only=True)`` reads it back without running code.
:func:`load_trainer_state` puts it back before the first epoch of a new
:func:`fit_loop` call, which then runs exactly the epochs the interrupted
run had left.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch

from ._optim import optimizer_to

if TYPE_CHECKING:
    from ._loop import Trainer

__all__ = ["load_trainer_state", "trainer_state"]


def _callback_key(callback, taken):
    """``"EarlyStopping"``, or ``"EarlyStopping#2"`` for a second one."""
    name = type(callback).__name__
    key, i = name, 1
    while key in taken:
        i += 1
        key = f"{name}#{i}"
    return key


def _stateful(trainer):
    """``{key: callback}`` of the callbacks that save and restore a state."""
    out = {}
    for cb in trainer.callbacks:
        if callable(getattr(cb, "state_dict", None)) and \
                callable(getattr(cb, "load_state_dict", None)):
            out[_callback_key(cb, out)] = cb
    return out


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """The run's state after the current epoch (live tensors: copy before training on)."""
    state = {
        "epoch": trainer.epoch, "step": trainer.step, "stop_training": trainer.stop_training,
        "module": trainer.module.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "history": dataclasses.asdict(trainer.history), "plan_rng": trainer.plan_rng_state,
        "torch_rng": torch.get_rng_state(),
        "callbacks": {key: cb.state_dict() for key, cb in _stateful(trainer).items()},
    }
    if trainer.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(trainer.device)
    return state


def load_trainer_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put a :func:`trainer_state` back, before the first epoch."""
    trainer.module.load_state_dict(state["module"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    optimizer_to(trainer.optimizer, trainer.device)
    trainer.epoch, trainer.step = int(state["epoch"]), int(state["step"])
    trainer.stop_training = bool(state["stop_training"])
    for name, value in state["history"].items():  # in place: the estimator holds the object
        setattr(trainer.history, name, value)
    trainer.restart_plans(state["plan_rng"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], trainer.device)
    for key, cb in _stateful(trainer).items():
        if key in state["callbacks"]:
            cb.load_state_dict(state["callbacks"][key])
