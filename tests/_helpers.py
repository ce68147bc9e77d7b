"""Test helpers shared by several test modules."""


class RaiseAfter:
    """A training callback that raises ``exc`` after ``n_steps`` optimisation steps.

    The way to inject a KeyboardInterrupt (or an out-of-memory error) into a
    fit through the public ``callbacks`` parameter.
    """

    def __init__(self, n_steps, exc=KeyboardInterrupt):
        self.n_steps, self.exc = n_steps, exc

    def on_batch_end(self, trainer, loss):
        if trainer.step >= self.n_steps:
            raise self.exc() if isinstance(self.exc, type) else self.exc
