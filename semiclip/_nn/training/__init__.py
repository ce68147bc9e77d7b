"""The adapter's training loop: frozen config, data and history, callbacks, optimizer, DDP.

``fit_loop(module, data, config, rng=..., device=...)`` trains a module in
place and returns its :class:`History`; behaviour around the steps comes
from :class:`Callback` objects (:func:`default_callbacks` builds the
built-in ones from the config).
"""

from ._callbacks import (
    CHECK_EVERY,
    Callback,
    EarlyStopping,
    EpochFeatures,
    NonFiniteLoss,
    ProgressBar,
    ThreadRebalance,
)
from ._checkpoint import Checkpoint
from ._config import History, TrainConfig, TrainData
from ._ddp import DEFAULT_TIMEOUT, DDPContext, ddp_context, distributed_module, init_process_group
from ._heldout import validation_loss
from ._loop import Trainer, default_callbacks, fit_loop
from ._optim import make_optimizer, optimizer_to, scheduled_lr
from ._terms import StructureTerms, preservation_reference

__all__ = [
    "CHECK_EVERY",
    "DEFAULT_TIMEOUT",
    "Callback",
    "Checkpoint",
    "DDPContext",
    "EarlyStopping",
    "EpochFeatures",
    "History",
    "NonFiniteLoss",
    "ProgressBar",
    "StructureTerms",
    "ThreadRebalance",
    "TrainConfig",
    "TrainData",
    "Trainer",
    "ddp_context",
    "default_callbacks",
    "distributed_module",
    "fit_loop",
    "init_process_group",
    "make_optimizer",
    "optimizer_to",
    "preservation_reference",
    "scheduled_lr",
    "validation_loss",
]
