"""Callbacks: behaviour added to the training loop at fixed points.

The loop (:mod:`._loop`) calls, on every callback in order,

- ``on_train_begin(trainer)`` once before the first epoch;
- ``on_epoch_begin(trainer)`` before every epoch;
- ``on_batch_end(trainer, loss)`` after every optimisation step (``loss``
  is the minibatch loss, a detached tensor: reading it synchronises an
  accelerator, so only do so now and then);
- ``on_epoch_end(trainer, record)`` after every epoch, with ``record`` a
  dict of plain numbers: ``epoch``, ``loss``, ``validation_loss`` and
  ``validation_score`` (None without validation), ``learning_rate``,
  ``samples`` and ``seconds``;
- ``on_train_end(trainer)`` once at the end, also when training was
  interrupted or failed (``trainer.completed`` tells which).

``trainer`` exposes ``history``, ``config``, ``module`` (the trained torch
module), ``device``, ``epoch`` and ``stop_training`` (set it to True to stop
after this epoch). The built-in callbacks below implement early stopping,
the progress bar, the non-finite loss check, per-epoch augmented inputs and
thread rebalancing; :mod:`semiclip.callbacks` has the loggers for users.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._prefetch import PREFETCH_DEPTH, Prefetcher, TensorFeatures
from ._progress import Progress

if TYPE_CHECKING:
    import torch

    from ._loop import Trainer

__all__ = [
    "CHECK_EVERY",
    "Callback",
    "EarlyStopping",
    "EpochFeatures",
    "NonFiniteLoss",
    "ProgressBar",
    "ThreadRebalance",
]

CHECK_EVERY = 64
"""Steps between two reads of the running loss by :class:`NonFiniteLoss`."""


_TRAINER = """\
        trainer : Trainer
            The running loop: ``history``, ``config``, ``module`` (the
            trained torch module), ``device``, ``epoch`` and
            ``stop_training`` (set it to True to stop after this epoch)."""


def _hook_doc(summary, extra=""):
    """A hook's docstring: ``summary``, then its parameters (``trainer`` shared by every hook)."""

    def decorate(hook):
        hook.__doc__ = (f"{summary}\n\n        Parameters\n        ----------\n{_TRAINER}"
                        f"{extra}\n        ")
        return hook

    return decorate


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    @_hook_doc("Run once before the first epoch.")
    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    @_hook_doc("Run before every epoch.")
    def on_epoch_begin(self, trainer: Trainer) -> None:
        pass

    @_hook_doc("Run after every optimisation step.", """
        loss : torch.Tensor
            The minibatch loss, a detached 0-d tensor; reading its value
            synchronises an accelerator, so do so only now and then.""")
    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        pass

    @_hook_doc("Run after every epoch.", """
        record : dict
            Plain numbers for the epoch just finished: ``epoch``, ``loss``,
            ``validation_loss`` and ``validation_score`` (None without
            validation), ``learning_rate``, ``samples`` and ``seconds``.""")
    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        pass

    @_hook_doc("Run once at the end, also when training was interrupted or failed.", """
            ``trainer.completed`` tells whether training ran to its end.""")
    def on_train_end(self, trainer: Trainer) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when the monitored figure has not improved by ``tol`` for ``n_iter_no_change`` epochs.

    The monitored figure is the validation score (higher is better) when the
    epoch record has one, the training loss otherwise (scikit-learn's MLP
    rule). With validation, the weights of the best epoch are kept and put
    back at the end of training (also after an interrupt).
    """

    def __init__(self, n_iter_no_change=10, tol=1e-4, restore_best=True):
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.restore_best = restore_best

    def on_train_begin(self, trainer):
        self.no_improve = 0
        self.best_state = None
        self.best_loss = trainer.history.best_loss  # continues across warm starts
        self.best_score = trainer.history.best_validation_score

    def on_epoch_end(self, trainer, record):
        score = record["validation_score"]
        if score is not None:
            self.no_improve = 0 if score > self.best_score + self.tol else self.no_improve + 1
            if score > self.best_score:
                self.best_score = score
                if self.restore_best:
                    state = trainer.module.state_dict()
                    self.best_state = {k: v.detach().clone() for k, v in state.items()}
        elif record["loss"] > self.best_loss - self.tol:
            self.no_improve += 1
        else:
            self.no_improve = 0
        self.best_loss = min(self.best_loss, record["loss"])
        if self.no_improve >= self.n_iter_no_change:
            trainer.history.stopped_early = score is not None
            trainer.history.converged = True
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.best_state is not None:
            trainer.module.load_state_dict(self.best_state)

    def state_dict(self):
        """The patience count, the best figures and the best weights (a checkpoint's part)."""
        return {"no_improve": self.no_improve, "best_loss": self.best_loss,
                "best_score": self.best_score, "best_state": self.best_state}

    def load_state_dict(self, state):
        self.no_improve, self.best_loss = int(state["no_improve"]), float(state["best_loss"])
        self.best_score, self.best_state = float(state["best_score"]), state["best_state"]


class NonFiniteLoss(Callback):
    """Fail loudly when the loss becomes NaN or inf (read every ``every`` steps and per epoch)."""

    def __init__(self, every=CHECK_EVERY):
        self.every = every

    def on_batch_end(self, trainer, loss):
        if self.every and trainer.step % self.every == 0:
            self._check(float(trainer.epoch_sum), trainer.history.n_iter + 1)

    def on_epoch_end(self, trainer, record):
        self._check(record["loss"], record["epoch"])

    @staticmethod
    def _check(value, epoch):
        if not math.isfinite(value):
            raise FloatingPointError(
                f"The training loss became {value} at epoch {epoch}. Lower "
                "learning_rate_init, raise temperature, or check the inputs for extreme "
                "values (e.g. scale X with StandardScaler)."
            )


class ProgressBar(Callback):
    """A tqdm bar (or plain lines) with the loss of every epoch; ``verbose=0`` is silent."""

    def __init__(self, verbose=0):
        self.verbose = verbose

    def on_train_begin(self, trainer):
        self.progress = Progress(trainer.config.max_epochs, self.verbose)

    def on_epoch_end(self, trainer, record):
        self.progress.update(loss=record["loss"], val=record["validation_loss"])

    def on_train_end(self, trainer):
        self.progress.close()


class EpochFeatures(Callback):
    """Fresh student input every epoch: ``draw(rng)`` with the loop's augmentation generator.

    With ``ahead``, the next epoch is drawn in a background thread while the
    current one trains (on an accelerator; on the CPU the thread would only
    compete for the cores and the GIL).
    """

    def __init__(self, draw, ahead=False):
        self.draw = draw
        self.ahead = ahead

    def on_train_begin(self, trainer):
        self._n, self._prefetch = trainer.config.max_epochs, None
        self._start(trainer.augmentation_rng.bit_generator.state)

    def _start(self, rng_state):
        """Draw from ``rng_state`` on; every draw comes with the generator's state after it."""
        if self._prefetch is not None:
            self._prefetch.close()
        rng, draw = np.random.default_rng(), self.draw  # a copy: the old thread may still run
        rng.bit_generator.state = self._rng_state = rng_state

        def draws():
            for _ in range(self._n):
                features = draw(rng)
                yield features, rng.bit_generator.state

        self._prefetch = Prefetcher(
            draws, depth=1 if self.ahead and PREFETCH_DEPTH > 0 else 0, name="semiclip-augment"
        )
        self._draws = iter(self._prefetch)

    def on_epoch_begin(self, trainer):
        features, self._rng_state = next(self._draws)
        trainer.features = TensorFeatures(np.asarray(features), trainer.device)

    def on_train_end(self, trainer):
        self._prefetch.close()

    def state_dict(self):
        """Where the next epoch's draw starts (the generator's state; a checkpoint's part)."""
        return {"rng": self._rng_state}

    def load_state_dict(self, state):
        self._start(state["rng"])


class ThreadRebalance(Callback):
    """Give this fit its share of the cores before every epoch (see
    :func:`semiclip._nn.thread_budget`).
    """

    def __init__(self, budget):
        self.budget = budget

    def on_epoch_begin(self, trainer):
        self.budget.rebalance()
