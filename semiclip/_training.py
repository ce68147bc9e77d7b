"""The torch training loop of the adapter: epochs, minibatches, schedule, early stopping.

This module knows nothing about scikit-learn. The estimator calls
:func:`train_adapter` once with arrays in and gets the trained adapter (in
place) and a :class:`History` out.
"""

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ._losses import get_loss, masked_cross_entropy
from ._progress import Progress

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
    """

    features: np.ndarray
    codes: np.ndarray
    sampler: object
    val_features: np.ndarray = None
    val_codes: np.ndarray = None
    val_table: np.ndarray = None
    epoch_features: object = None


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
    its key's centroid. Independent of minibatch composition.
    """
    adapter.eval()
    loss_fn = get_loss(config.loss)
    total, n = 0.0, features.shape[0]
    with torch.no_grad():
        for start in range(0, n, max(config.batch_size, 1024)):
            out = adapter(features[start : start + max(config.batch_size, 1024)])
            c = codes[start : start + out.shape[0]]
            if config.loss in CONTRASTIVE:
                cand_keys = torch.arange(table.shape[0], device=device)
                part = masked_cross_entropy(out, table, c, cand_keys, c, config.temperature)
            else:
                part = loss_fn(out, table[c], c, config.temperature)
            total += float(part) * out.shape[0]
    adapter.train()
    return total / max(n, 1)


def train_adapter(adapter, data, config, *, rng, device, history=None):
    """Train ``adapter`` in place on weakly paired minibatches.

    Each epoch: shuffle the training samples, draw one teacher row per sample
    (vectorised), run minibatches of ``config.batch_size``. With early
    stopping, the held-out loss is computed after every epoch and the best
    weights are restored at the end. A ``KeyboardInterrupt`` stops training
    with a warning and keeps the best weights so far.

    Returns
    -------
    History
    """
    history = history if history is not None else History()
    loss_fn = get_loss(config.loss)
    adapter.to(device).train()
    optimizer = make_optimizer(adapter.parameters(), config)

    n = data.codes.shape[0]
    batch_size = max(1, min(config.batch_size, n))
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * config.max_epochs

    table = torch.as_tensor(np.array(data.sampler.table), device=device)
    codes_t = torch.as_tensor(data.codes, device=device)
    features_t = None
    if data.epoch_features is None:
        features_t = torch.as_tensor(data.features, device=device)
    has_val = data.val_features is not None and config.early_stopping
    if has_val:
        val_x = torch.as_tensor(data.val_features, device=device)
        val_c = torch.as_tensor(data.val_codes, device=device)
        val_table = torch.as_tensor(data.val_table, device=device)

    best_state = None
    no_improve = 0
    progress = Progress(config.max_epochs, config.verbose)
    step = 0
    try:
        for _epoch in range(config.max_epochs):
            if data.epoch_features is not None:
                features_t = torch.as_tensor(data.epoch_features(rng), device=device)
            perm = rng.permutation(n)
            teacher_rows = data.sampler.draw(perm, rng)
            perm_t = torch.as_tensor(perm, device=device)
            rows_t = torch.as_tensor(teacher_rows, device=device)
            epoch_loss, seen = 0.0, 0
            for start in range(0, n, batch_size):
                idx = perm_t[start : start + batch_size]
                if idx.shape[0] < 2 and config.loss in CONTRASTIVE:
                    continue
                for group in optimizer.param_groups:
                    group["lr"] = _cosine_lr(config, step, total_steps)
                student = adapter(features_t.index_select(0, idx))
                teacher = table.index_select(0, rows_t[start : start + batch_size])
                loss = loss_fn(student, teacher, codes_t.index_select(0, idx), config.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"The training loss became {value} at epoch {history.n_iter + 1}. "
                        "Lower learning_rate_init, raise temperature, or check the "
                        "inputs for extreme values (e.g. scale X with StandardScaler)."
                    )
                epoch_loss += value * idx.shape[0]
                seen += idx.shape[0]
            history.n_iter += 1
            history.t += seen
            epoch_loss /= max(seen, 1)
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
                    best_state = copy.deepcopy(adapter.state_dict())
            else:
                if epoch_loss > history.best_loss - config.tol:
                    no_improve += 1
                else:
                    no_improve = 0
            history.best_loss = min(history.best_loss, epoch_loss)
            progress.update(loss=epoch_loss, val=None if val_score is None else -val_score)
            if no_improve >= config.n_iter_no_change:
                history.stopped_early = has_val
                history.converged = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
        warnings.warn(
            f"Training interrupted by the user after {history.n_iter} epochs; keeping "
            "the best weights so far. The estimator is usable.",
            UserWarning,
            stacklevel=3,
        )
    finally:
        progress.close()
    if best_state is not None:
        adapter.load_state_dict(best_state)
    adapter.eval()
    return history
