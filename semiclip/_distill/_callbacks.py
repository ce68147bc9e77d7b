"""The estimator's own training callbacks, and the check of the user's ``callbacks`` parameter."""

import warnings

from sklearn.exceptions import ConvergenceWarning

from .._core import format_examples
from .._nn import Callback

__all__ = ["ConvergenceCheck", "check_callbacks", "warn_not_converged"]

_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")


class ConvergenceCheck(Callback):
    """A ``ConvergenceWarning`` when training used every epoch without converging.

    Silent for ``partial_fit`` (one epoch per call by design), on DDP ranks
    other than 0, and after an interrupt or an error.
    """

    def __init__(self, name, quiet=False):
        self.name = name
        self.quiet = quiet

    def on_train_begin(self, trainer):
        self._first = trainer.history.n_iter  # a warm start continues the record

    def on_train_end(self, trainer):
        if self.quiet or not trainer.completed:
            return
        if trainer.history.n_iter - self._first < trainer.config.max_epochs:
            return  # stopped before max_iter (by a callback): not a run out of epochs
        warn_not_converged(self.name, trainer.history, trainer.config.max_epochs)


def warn_not_converged(name, history, max_epochs):
    """The ``ConvergenceWarning`` of a run that used every epoch (none if it converged or was
    interrupted)."""
    if history.converged or history.interrupted:
        return
    warnings.warn(
        f"{name} stopped at max_iter={max_epochs} epochs before the "
        "loss stopped improving; raise max_iter if the embedding is not good enough.",
        ConvergenceWarning,
        # raised from the training loop's hook dispatch, at no fixed depth below the user's
        # fit call; level 1 (this line) is where the warning has always pointed
        stacklevel=1,
    )


def check_callbacks(callbacks):
    """Raise a clear error unless ``callbacks`` is None or a list of callback objects."""
    if callbacks is None:
        return
    bad = [c for c in callbacks if not any(callable(getattr(c, h, None)) for h in _HOOKS)]
    if bad:
        raise TypeError(
            f"callbacks must be objects with training hooks ({', '.join(_HOOKS)}), e.g. "
            f"subclasses of semiclip.callbacks.Callback; got {format_examples(bad)}."
        )
