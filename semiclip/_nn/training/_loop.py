"""The training loop of the adapter: ``fit_loop -> run_epoch -> train_step / validation_step``.

This module knows nothing about scikit-learn. The estimator calls
:func:`fit_loop` once with arrays in and gets the trained module (in place)
and a :class:`History` out; behaviour around the steps (early stopping,
progress, the non-finite check, augmented inputs, logging) comes from
callbacks (:mod:`._callbacks`), built from the config by
:func:`default_callbacks`.

Speed. The epoch plan (shuffle and weak-pair draw, numpy, seeded) of the
next epoch is computed in a background thread while the current epoch
trains; minibatches of an on-disk ``X`` are read ahead in another (see
:mod:`semiclip._nn._prefetch`); the loss is summed on the device and read
back only every :data:`CHECK_EVERY` steps, so a GPU never waits for the
host. With a :class:`DDPContext` the same loop runs one rank of a DDP job:
the context wraps the module, gives the rank's share of each minibatch
loss and sums the epoch loss over the ranks. The structure-preserving terms
(``TrainConfig.structure_weight``, ``preservation_weight``) are added by
:mod:`._terms`, and only when a weight is above 0.
"""

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .._losses import loss_object
from .._prefetch import PREFETCH_DEPTH, Prefetcher, TensorFeatures
from ._callbacks import CHECK_EVERY, EarlyStopping, EpochFeatures, NonFiniteLoss, ProgressBar
from ._config import History
from ._heldout import _acc_dtype, validation_loss
from ._optim import make_optimizer, optimizer_to, scheduled_lr
from ._state import load_trainer_state, trainer_state
from ._terms import StructureTerms

__all__ = ["Trainer", "default_callbacks", "fit_loop"]

_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass
class _Plan:
    """One epoch: shuffled positions, teacher rows, minibatch bounds (global and this rank's)."""

    perm: torch.Tensor
    rows: torch.Tensor
    bounds: list
    local: torch.Tensor
    local_bounds: list
    rng_state: dict  # the generator's state after this plan: where the next plan starts


def _epoch_plans(rng, n, sampler, batch_size, min_rows, dist, pin):
    """Endless epoch plans from ``rng`` (run ahead in a background thread)."""
    while True:
        perm = rng.permutation(n)
        rows = sampler.draw(perm, rng)
        bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        bounds = [(s, e) for s, e in bounds if e - s >= min_rows]
        if dist is None or dist.world_size == 1:
            local, local_bounds = perm, bounds
        else:
            parts = [perm[s + dist.rank : e : dist.world_size] for s, e in bounds]
            sizes = np.array([p.size for p in parts], dtype=np.int64)
            ends = np.cumsum(sizes).tolist()
            local_bounds = list(zip([0, *ends[:-1]], ends))
            local = np.concatenate(parts) if parts else perm[:0]
        arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in (perm, rows, local)]
        if pin:
            arrays = [a.pin_memory() for a in arrays]
        yield _Plan(arrays[0], arrays[1], bounds, arrays[2], local_bounds,
                    rng.bit_generator.state)


def _features(source, device):
    """A feature provider: tensors already on the device for an array, the provider itself else."""
    if source is None or hasattr(source, "batches"):
        return source
    return TensorFeatures(source, device)


class Trainer:
    """The state of one :func:`fit_loop` call, handed to every callback.

    Attributes
    ----------
    module : torch.nn.Module
        The model being trained (unwrapped).
    history : History
    config : TrainConfig
    device : torch.device
    epoch : int
        Epochs run in this call.
    step : int
        Optimisation steps run in this call.
    stop_training : bool
        Set by a callback to stop after the current epoch.
    completed : bool
        True once the last epoch ended normally (or after an interrupt).
    """

    def __init__(self, module, data, config, *, rng, device, history, dist, optimizer):
        self.module, self.data, self.config, self.device, self.dist = (
            module, data, config, device, dist
        )
        self.history = history if history is not None else History()
        self.loss_object = loss_object(config.loss)
        module.to(device).train()
        if optimizer is None:
            optimizer = make_optimizer(module.parameters(), config)
        else:
            optimizer_to(optimizer, device)
        self.optimizer = optimizer
        self.model = module if dist is None else dist.wrap(module)
        self.world = 1 if dist is None else dist.world_size
        n = data.n
        self.batch_size = max(1, min(config.batch_size, n))
        contrastive = self.loss_object.contrastive
        if contrastive and self.batch_size < 2:  # every minibatch would be skipped
            raise ValueError(
                f"loss={config.loss!r} contrasts every row with the other rows of its "
                f"minibatch, so minibatches need at least 2 rows; got batch_size="
                f"{config.batch_size} for {n} training sample(s). Use batch_size >= 2 and "
                "at least 2 training samples, or loss='kd' / 'kd_mse'."
            )
        self.total_steps = math.ceil(n / self.batch_size) * config.max_epochs
        self.table = torch.as_tensor(np.array(data.sampler.table), device=device)
        self.codes = torch.as_tensor(data.codes, device=device)
        plan_seed, aug_seed = (int(s) for s in rng.integers(0, 2**63 - 1, size=2))
        self.augmentation_rng = np.random.default_rng(aug_seed)
        self.features = _features(data.features, device)
        self.validate = config.early_stopping and data.has_validation
        if self.validate:
            self.val_features = _features(data.val_features, device)
            self.val_codes = torch.as_tensor(data.val_codes, device=device)
            self.val_table = torch.as_tensor(data.val_table, device=device)
        self.restart_plans(np.random.default_rng(plan_seed).bit_generator.state)
        self.epoch = self.step = 0
        self.learning_rate = config.learning_rate
        self.epoch_sum = None
        self.terms = None if not config.has_terms else StructureTerms(
            module, config, dist, torch.zeros((), dtype=_acc_dtype(device), device=device),
            anchor=data.anchor)
        self.stop_training = self.completed = False
        self.callbacks = []

    def restart_plans(self, rng_state):
        """(Re)start the epoch plans from a numpy generator state (drawn in a background
        thread, one epoch ahead)."""
        if getattr(self, "_prefetch", None) is not None:
            self._prefetch.close()
        rng = np.random.default_rng()
        rng.bit_generator.state = self.plan_rng_state = rng_state
        data, contrastive = self.data, self.loss_object.contrastive
        self._prefetch = Prefetcher(
            lambda: _epoch_plans(rng, data.n, data.sampler, self.batch_size,
                                 2 if contrastive else 1, self.dist, self.device.type == "cuda"),
            depth=1 if PREFETCH_DEPTH > 0 else 0,
            name="semiclip-epoch-plan",
        )
        self.plans = iter(self._prefetch)

    def next_plan(self):
        """The next epoch's plan; remembers where the plan after it starts."""
        plan = next(self.plans)
        self.plan_rng_state = plan.rng_state
        return plan

    def state_dict(self):
        """Everything needed to continue after the current epoch (see :mod:`._state`)."""
        return trainer_state(self)

    def load_state_dict(self, state):
        """Continue from :meth:`state_dict` (call before the first epoch)."""
        load_trainer_state(self, state)

    @property
    def callbacks(self):
        return self._callbacks

    @callbacks.setter
    def callbacks(self, callbacks):
        """The callbacks, in order; a callback may define only some of the hooks."""
        self._callbacks = list(callbacks)
        self._hooks = {
            hook: [m for m in (getattr(cb, hook, None) for cb in self._callbacks) if callable(m)]
            for hook in ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end",
                         "on_train_end")
        }

    def emit(self, hook, *args):
        for method in self._hooks[hook]:
            method(self, *args)

    def loss(self, student, teacher, keys, x=None):
        """The minibatch loss (this rank's share under DDP); ``x`` is the model's input."""
        gathered = None
        config = self.config
        if self.dist is None:
            loss = self.loss_object.value(student, teacher, keys, config.temperature,
                                          config.soft_target_temperature)
        else:
            if self.terms is not None or self.loss_object.gathers_students:  # gathered once
                gathered = self.dist.gather_rows(student, teacher.shape[0])
            loss = self.dist.local_loss(
                self.loss_object, student, teacher, keys, config.temperature,
                target_temperature=config.soft_target_temperature, gathered=gathered)
        if self.terms is not None:
            loss = self.terms.add(loss, student, teacher, x, gathered)
        return loss

    def close(self):
        self._prefetch.close()
        if self.terms is not None:
            self.terms.close()


def default_callbacks(data, config, *, dist=None):
    """The built-in callbacks for ``config``: early stopping, the non-finite check, progress, PEA.

    ``EpochFeatures`` comes first, so that every other callback sees the
    epoch's inputs; the progress bar shows on rank 0 only.
    """
    callbacks = []
    if data.epoch_features is not None:
        callbacks.append(EpochFeatures(data.epoch_features, ahead=data.epoch_features_ahead))
    callbacks.append(NonFiniteLoss(every=CHECK_EVERY if dist is None else 0))
    callbacks.append(EarlyStopping(config.n_iter_no_change, config.tol))
    callbacks.append(ProgressBar(config.verbose if dist is None or dist.rank == 0 else 0))
    return callbacks


def fit_loop(module, data, config, *, rng, device, callbacks=None, history=None, dist=None,
             optimizer=None):
    """Train ``module`` in place on weakly paired minibatches; return the :class:`History`.

    Each epoch (:func:`run_epoch`): shuffle the training samples, draw one
    teacher row per sample (vectorised), run minibatches of
    ``config.batch_size`` (:func:`train_step`), then, with early stopping
    and held-out data, the held-out loss (:func:`validation_loss`). A
    ``KeyboardInterrupt`` stops training with a warning and a usable module
    (on one process; a DDP rank re-raises it so that the job ends). Running
    out of accelerator memory raises the same error type with the batch
    size to try.

    Parameters
    ----------
    module : torch.nn.Module
    data : TrainData
    config : TrainConfig
    rng : numpy.random.Generator
        The only source of randomness (shuffles, pair draws, augmentations).
    device : torch.device
    callbacks : list of Callback, optional
        Default: :func:`default_callbacks`.
    history : History, optional
        Continue this record (warm start).
    dist : DDPContext, optional
        Train as one rank of a DDP job.
    optimizer : torch.optim.Optimizer, optional
        Continue with this optimizer (``partial_fit``); a new one otherwise.
    """
    trainer = Trainer(module, data, config, rng=rng, device=device, history=history, dist=dist,
                      optimizer=optimizer)
    trainer.callbacks = default_callbacks(data, config, dist=dist) if callbacks is None \
        else callbacks
    try:
        trainer.emit("on_train_begin")
        while trainer.epoch < config.max_epochs and not trainer.stop_training:
            run_epoch(trainer)
        trainer.completed = True
    except KeyboardInterrupt:
        if dist is not None:
            raise
        trainer.history.interrupted = trainer.completed = True
        warnings.warn(
            f"Training interrupted by the user after {trainer.history.n_iter} epochs; keeping "
            "the best weights so far. The estimator is usable.",
            UserWarning,
            stacklevel=3,
        )
    except _OOM as exc:
        raise _oom_error(exc, config, device) from exc
    finally:
        trainer.close()
        trainer.emit("on_train_end")
    module.eval()
    return trainer.history


def run_epoch(trainer):
    """One pass over the training samples, then the epoch's record to the callbacks."""
    started = time.perf_counter()
    trainer.emit("on_epoch_begin")
    device, history = trainer.device, trainer.history
    plan = trainer.next_plan()
    perm = plan.perm.to(device, non_blocking=True)
    rows = plan.rows.to(device, non_blocking=True)
    local = perm if trainer.dist is None else plan.local.to(device, non_blocking=True)
    keys = trainer.codes.index_select(0, perm)
    trainer.epoch_sum = torch.zeros((), dtype=_acc_dtype(device), device=device)
    if trainer.terms is not None:
        trainer.terms.begin_epoch()
    seen = 0
    batches = trainer.features.batches(plan.local.numpy(), plan.local_bounds, positions_t=local)
    try:
        for (start, stop), x in zip(plan.bounds, batches):
            train_step(trainer, x, rows[start:stop], keys[start:stop])
            seen += stop - start
    finally:
        batches.close()
    if trainer.dist is not None:
        trainer.dist.all_reduce_sum(trainer.epoch_sum)
    loss = float(trainer.epoch_sum) / max(seen, 1)
    terms = (None, None) if trainer.terms is None else trainer.terms.end_epoch(seen)
    trainer.epoch += 1
    history.n_iter += 1
    history.t += seen
    history.loss_curve.append(loss)
    history.structure_curve.append(terms[0])
    history.preservation_curve.append(terms[1])
    score = None
    if trainer.validate and math.isfinite(loss):
        score = -validation_step(trainer)
        history.validation_scores.append(score)
        history.best_validation_score = max(history.best_validation_score, score)
    history.best_loss = min(history.best_loss, loss)
    history.epoch_seconds.append(time.perf_counter() - started)
    record = {
        "epoch": history.n_iter, "loss": loss,
        "validation_loss": None if score is None else -score, "validation_score": score,
        "learning_rate": trainer.learning_rate, "samples": seen,
        "seconds": history.epoch_seconds[-1], "structure": terms[0], "preservation": terms[1],
    }
    trainer.emit("on_epoch_end", record)


def train_step(trainer, x, rows, keys):
    """One optimisation step on a minibatch: student rows ``x``, their teacher rows and keys."""
    trainer.learning_rate = scheduled_lr(trainer.config, trainer.step, trainer.total_steps)
    for group in trainer.optimizer.param_groups:
        group["lr"] = trainer.learning_rate
    student = trainer.model(x)
    teacher = trainer.table.index_select(0, rows)
    loss = trainer.loss(student, teacher, keys, x)
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainer.optimizer.step()
    trainer.step += 1
    loss = loss.detach()
    trainer.epoch_sum += loss * (teacher.shape[0] / trainer.world)
    trainer.emit("on_batch_end", loss)


def validation_step(trainer):
    """The held-out loss after an epoch (see :func:`validation_loss`)."""
    return validation_loss(trainer.module, trainer.val_features, trainer.val_codes,
                           trainer.val_table, trainer.config, trainer.device)


def _oom_error(exc, config, device):
    smaller = max(1, config.batch_size // 2)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return type(exc)(
        f"{device} ran out of memory while training with batch_size={config.batch_size}. "
        f"Try batch_size={smaller} (or smaller hidden_layer_sizes, or free memory held by "
        f"other tensors and processes). Original error: {exc}"
    )
