"""The torch training loop of the adapter: epochs, minibatches, schedule, early stopping.

This module knows nothing about scikit-learn. The estimator calls
:func:`train_adapter` once with arrays in and gets the trained adapter (in
place) and a :class:`History` out.

Speed. The epoch plan (shuffle and weak-pair draw, numpy, seeded) of the
next epoch is computed in a background thread while the current epoch
trains; minibatches of an on-disk ``X`` are read ahead in another (see
:mod:`semiclip._prefetch`); the loss is summed on the device and read back
only every :data:`CHECK_EVERY` steps, so a GPU never waits for the host.
With a :class:`semiclip._ddp.DDPContext` the same loop runs one rank of a
DDP job.
"""

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ._losses import get_loss, masked_cross_entropy
from ._prefetch import PREFETCH_DEPTH, Prefetcher, TensorFeatures
from ._progress import Progress

CHECK_EVERY = 64
"""Steps between two reads of the running loss (non-finite check) on one process."""

_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

CONTRASTIVE = ("infonce", "clip", "siglip")


@dataclass
class TrainConfig:
    """Optimisation settings, already resolved (no ``"auto"`` left)."""

    loss: str = "infonce"
    temperature: float = 0.1
    batch_size: int = 1024
    max_epochs: int = 150
    solver: str = "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.95
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    min_learning_rate: float = 1e-6
    early_stopping: bool = False
    n_iter_no_change: int = 10
    tol: float = 1e-4
    verbose: int = 0


@dataclass
class History:
    """What happened during training, appended to across warm starts."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    n_iter: int = 0
    t: int = 0
    stopped_early: bool = False
    converged: bool = False
    interrupted: bool = False
    epoch_seconds: list = field(default_factory=list)


@dataclass
class TrainData:
    """Arrays the loop needs; ``features`` rows align with ``codes``.

    Parameters
    ----------
    features : ndarray (n, d_in), float32
        Student input (encoder output) of the training samples. Ignored for
        epochs where ``epoch_features`` is given.
    codes : ndarray (n,), int
        Bank key code of every training sample (used to mask false negatives).
    sampler : PairSampler
        Draws the teacher-table row of every sample.
    val_features, val_codes : optional
        Held-out samples (their keys never appear in training).
    val_table : ndarray (n_keys, d_out), optional
        Teacher centroid of every key, indexed by ``val_codes``.
    epoch_features : callable ``rng -> ndarray``, optional
        Fresh student input for one epoch (data augmentation).
    epoch_features_ahead : bool, default=False
        Draw the next epoch's ``epoch_features`` in a background thread
        while the current epoch trains (the draws, made in order by that
        thread only, do not depend on timing).
    stream, val_stream : feature provider, optional
        Student input read from an on-disk ``X`` (see
        :class:`semiclip._prefetch.StreamFeatures`); replace ``features`` and
        ``val_features``.
    """

    features: np.ndarray
    codes: np.ndarray
    sampler: object
    val_features: np.ndarray = None
    val_codes: np.ndarray = None
    val_table: np.ndarray = None
    epoch_features: object = None
    epoch_features_ahead: bool = False
    stream: object = None
    val_stream: object = None


def make_optimizer(params, config):
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


def _cosine_lr(config, step, total_steps):
    if config.lr_schedule == "constant" or total_steps <= 1:
        return config.learning_rate
    frac = min(step / (total_steps - 1), 1.0)
    lo, hi = config.min_learning_rate, config.learning_rate
    return lo + 0.5 * (hi - lo) * (1.0 + math.cos(math.pi * frac))


def validation_loss(adapter, features, codes, table, config, device):
    """Held-out loss of the adapter: key retrieval against teacher centroids.

    For contrastive losses, each held-out sample is scored with InfoNCE
    against the centroids of all held-out keys (its own key is the
    positive); for feature distillation, the same loss as training against
    its key's centroid. Independent of minibatch composition. ``features``
    is a tensor or a feature provider (:mod:`semiclip._prefetch`).
    """
    adapter.eval()
    loss_fn = get_loss(config.loss)
    if isinstance(features, torch.Tensor):
        features = _Given(features)
    n = features.n
    chunk = max(config.batch_size, 1024)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    cand_keys = torch.arange(table.shape[0], device=device)
    total = torch.zeros((), dtype=_acc_dtype(device), device=device)
    with torch.no_grad():
        for (start, stop), x in zip(bounds, features.batches(np.arange(n), bounds)):
            out = adapter(x)
            c = codes[start:stop]
            if config.loss in CONTRASTIVE:
                part = masked_cross_entropy(out, table, c, cand_keys, c, config.temperature)
            else:
                part = loss_fn(out, table[c], c, config.temperature)
            total += part * out.shape[0]
    adapter.train()
    return float(total) / max(n, 1)


class _Given:
    """A feature provider over a tensor already on the device."""

    def __init__(self, tensor):
        self.tensor, self.n = tensor, tensor.shape[0]

    def batches(self, positions, bounds, positions_t=None):
        for start, stop in bounds:
            yield self.tensor[start:stop]


def _acc_dtype(device):
    return torch.float32 if device.type == "mps" else torch.float64


@dataclass
class _Plan:
    """One epoch: shuffled positions, teacher rows, minibatch bounds (global and this rank's)."""

    perm: np.ndarray
    rows: np.ndarray
    bounds: list
    local: np.ndarray
    local_bounds: list


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
        yield _Plan(arrays[0], arrays[1], bounds, arrays[2], local_bounds)


def _oom_error(exc, config, device):
    smaller = max(1, config.batch_size // 2)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return type(exc)(
        f"{device} ran out of memory while training with batch_size={config.batch_size}. "
        f"Try batch_size={smaller} (or smaller hidden_layer_sizes, or free memory held by "
        f"other tensors and processes). Original error: {exc}"
    )


def _non_finite(value, history):
    return FloatingPointError(
        f"The training loss became {value} at epoch {history.n_iter + 1}. "
        "Lower learning_rate_init, raise temperature, or check the "
        "inputs for extreme values (e.g. scale X with StandardScaler)."
    )


def _optimizer_to(optimizer, device):
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device != device and value.dim() > 0:
                state[key] = value.to(device)


def train_adapter(
    adapter, data, config, *, rng, device, history=None, dist=None, optimizer=None,
    on_epoch_start=None,
):
    """Train ``adapter`` in place on weakly paired minibatches.

    Each epoch: shuffle the training samples, draw one teacher row per sample
    (vectorised), run minibatches of ``config.batch_size``. With early
    stopping, the held-out loss is computed after every epoch and the best
    weights are restored at the end. A ``KeyboardInterrupt`` stops training
    with a warning and keeps the best weights so far (on one process; a DDP
    rank re-raises it so that the job ends). Running out of accelerator
    memory raises the same error type with the batch size to try.

    Parameters
    ----------
    dist : DDPContext, optional
        Train as one rank of a DDP job (see :mod:`semiclip._ddp`).
    optimizer : torch.optim.Optimizer, optional
        Continue with this optimizer (``partial_fit``); a new one otherwise.
    on_epoch_start : callable, optional
        Called before every epoch (thread rebalancing).

    Returns
    -------
    History
    """
    history = history if history is not None else History()
    loss_fn = get_loss(config.loss)
    contrastive = config.loss in CONTRASTIVE
    adapter.to(device).train()
    if optimizer is None:
        optimizer = make_optimizer(adapter.parameters(), config)
    else:
        _optimizer_to(optimizer, device)
    model = adapter if dist is None else dist.wrap(adapter)
    world = 1 if dist is None else dist.world_size

    n = data.codes.shape[0]
    batch_size = max(1, min(config.batch_size, n))
    total_steps = math.ceil(n / batch_size) * config.max_epochs

    table = torch.as_tensor(np.array(data.sampler.table), device=device)
    codes_t = torch.as_tensor(data.codes, device=device)
    plan_seed, aug_seed = (int(s) for s in rng.integers(0, 2**63 - 1, size=2))
    aug_rng = np.random.default_rng(aug_seed)
    features = data.stream
    if features is None and data.epoch_features is None:
        features = TensorFeatures(data.features, device)
    has_val = config.early_stopping and (
        data.val_features is not None or data.val_stream is not None
    )
    if has_val:
        val_x = data.val_stream
        if val_x is None:
            val_x = torch.as_tensor(data.val_features, device=device)
        val_c = torch.as_tensor(data.val_codes, device=device)
        val_table = torch.as_tensor(data.val_table, device=device)

    plans = Prefetcher(
        lambda: _epoch_plans(
            np.random.default_rng(plan_seed), n, data.sampler, batch_size,
            2 if contrastive else 1, dist, device.type == "cuda",
        ),
        depth=1 if PREFETCH_DEPTH > 0 else 0,
        name="semiclip-epoch-plan",
    )
    plan_iter = iter(plans)
    # fresh student input (PEA), in the caller or one epoch ahead in the background
    augmented = None
    if data.epoch_features is not None:
        augmented = Prefetcher(
            lambda: (data.epoch_features(aug_rng) for _ in range(config.max_epochs)),
            depth=1 if data.epoch_features_ahead and PREFETCH_DEPTH > 0 else 0,
            name="semiclip-augment",
        )
    augmented_iter = None if augmented is None else iter(augmented)
    best_state = None
    no_improve = 0
    progress = Progress(config.max_epochs, config.verbose if dist is None or dist.rank == 0 else 0)
    step = 0
    acc = _acc_dtype(device)
    try:
        for _epoch in range(config.max_epochs):
            started = time.perf_counter()
            if on_epoch_start is not None:
                on_epoch_start()
            if augmented_iter is not None:
                features = TensorFeatures(next(augmented_iter), device)
            plan = next(plan_iter)
            perm_t = plan.perm.to(device, non_blocking=True)
            rows_t = plan.rows.to(device, non_blocking=True)
            local_t = perm_t if dist is None else plan.local.to(device, non_blocking=True)
            keys_t = codes_t.index_select(0, perm_t)
            epoch_sum = torch.zeros((), dtype=acc, device=device)
            seen = 0
            batches = features.batches(plan.local.numpy(), plan.local_bounds, positions_t=local_t)
            try:
                for (start, stop), x in zip(plan.bounds, batches):
                    for group in optimizer.param_groups:
                        group["lr"] = _cosine_lr(config, step, total_steps)
                    student = model(x)
                    teacher = table.index_select(0, rows_t[start:stop])
                    keys = keys_t[start:stop]
                    if dist is None:
                        loss = loss_fn(student, teacher, keys, config.temperature)
                    else:
                        loss = dist.local_loss(config.loss, student, teacher, keys, config.temperature)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    epoch_sum += loss.detach() * ((stop - start) / world)
                    seen += stop - start
                    if dist is None and step % CHECK_EVERY == 0:
                        value = float(epoch_sum)
                        if not math.isfinite(value):
                            raise _non_finite(value, history)
            finally:
                batches.close()
            if dist is not None:
                dist.all_reduce_sum(epoch_sum)
            epoch_loss = float(epoch_sum) / max(seen, 1)
            if not math.isfinite(epoch_loss):
                raise _non_finite(epoch_loss, history)
            history.n_iter += 1
            history.t += seen
            history.loss_curve.append(epoch_loss)
            val_score = None
            if has_val:
                val_score = -validation_loss(adapter, val_x, val_c, val_table, config, device)
                history.validation_scores.append(val_score)
                if val_score > history.best_validation_score + config.tol:
                    no_improve = 0
                else:
                    no_improve += 1
                if val_score > history.best_validation_score:
                    history.best_validation_score = val_score
                    best_state = {k: v.detach().clone() for k, v in adapter.state_dict().items()}
            else:
                if epoch_loss > history.best_loss - config.tol:
                    no_improve += 1
                else:
                    no_improve = 0
            history.best_loss = min(history.best_loss, epoch_loss)
            history.epoch_seconds.append(time.perf_counter() - started)
            progress.update(loss=epoch_loss, val=None if val_score is None else -val_score)
            if no_improve >= config.n_iter_no_change:
                history.stopped_early = has_val
                history.converged = True
                break
    except KeyboardInterrupt:
        if dist is not None:
            raise
        history.interrupted = True
        warnings.warn(
            f"Training interrupted by the user after {history.n_iter} epochs; keeping "
            "the best weights so far. The estimator is usable.",
            UserWarning,
            stacklevel=3,
        )
    except _OOM as exc:
        raise _oom_error(exc, config, device) from exc
    finally:
        plans.close()
        if augmented is not None:
            augmented.close()
        progress.close()
    if best_state is not None:
        adapter.load_state_dict(best_state)
    adapter.eval()
    return history
