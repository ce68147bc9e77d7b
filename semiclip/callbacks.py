"""Training callbacks for ``SemiClippedTransformer(callbacks=[...])``: log or steer every epoch.

A callback is an object with any of the hooks ``on_train_begin(trainer)``,
``on_epoch_begin(trainer)``, ``on_batch_end(trainer, loss)``,
``on_epoch_end(trainer, record)`` and ``on_train_end(trainer)``; subclass
:class:`Callback` and override the ones you need. ``record`` is a dict of
plain numbers for the epoch just finished: ``epoch``, ``loss``,
``validation_loss`` and ``validation_score`` (None without early
stopping), ``learning_rate``, ``samples``, ``seconds``. ``trainer`` gives
``history`` (what ``loss_curve_`` and friends are read from), ``config``
(the resolved settings) and ``stop_training`` (set it to True to stop after
this epoch).

:class:`Checkpoint` writes the training state every few epochs and when
training stops, and resumes from it (a preempted or requeued job goes on
where it stopped).

Callbacks are parameters: ``clone`` copies them and a grid search pickles
them to its workers, so keep their state small and open files in
``on_train_begin``.

Examples
--------
>>> from semiclip import SemiClippedTransformer
>>> from semiclip.callbacks import Callback
>>> from semiclip.datasets import make_weakly_paired
>>> class StopBelow(Callback):
...     def __init__(self, loss):
...         self.loss = loss
...     def on_epoch_end(self, trainer, record):
...         trainer.stop_training = record["loss"] < self.loss
>>> d = make_weakly_paired(n_perturbations=40, n_genes=30, random_state=0)
>>> est = SemiClippedTransformer(encoder_dim=8, max_iter=50, early_stopping=False, init="random",
...                              learning_rate_init=0.05, control_label="control",
...                              callbacks=[StopBelow(3.0)], random_state=0)
>>> est.fit(d.X, d.y, image_bank=d.image_bank).loss_curve_[-1] < 3.0
True
"""

from __future__ import annotations

import csv
import os
from typing import TYPE_CHECKING, Any

from ._core import fill_doc as _fill_doc
from ._nn import Callback, Checkpoint

if TYPE_CHECKING:
    from ._nn.training import Trainer

__all__ = ["CSVLogger", "Callback", "Checkpoint", "TensorBoardLogger"]

_HOOK_DOCS = {
    "trainer": """\
trainer : Trainer
    The running loop (see :class:`Callback`).""",
    "record": """\
record : dict
    Plain numbers for the epoch just finished (see :class:`Callback`).""",
}
_fill_hooks = _fill_doc(_HOOK_DOCS)

_FIELDS = ("epoch", "loss", "validation_loss", "learning_rate", "samples", "seconds")


@_fill_hooks
class CSVLogger(Callback):
    """Append one row per epoch to a CSV file (written and flushed as training runs).

    Parameters
    ----------
    path : str or path-like
        The file. A header is written when it is new or empty; rows of
        later fits (warm starts, ``partial_fit``, a refit) are appended.
    run : str, optional
        Written in a ``run`` column of every row, to tell fits apart.
    """

    def __init__(self, path: str | os.PathLike[str], run: str | None = None) -> None:
        self.path = path
        self.run = run

    def on_train_begin(self, trainer: Trainer) -> None:
        """Open the file for appending; write the header if it is new or empty.

        Parameters
        ----------
        [[trainer]]
        """
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        fields = (("run",) if self.run is not None else ()) + _FIELDS
        self._writer = csv.DictWriter(self._file, fieldnames=fields, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Append the epoch's row and flush it to disk.

        Parameters
        ----------
        [[trainer]]
        [[record]]
        """
        row = dict(record)
        if self.run is not None:
            row["run"] = self.run
        self._writer.writerow({k: "" if v is None else v for k, v in row.items()})
        self._file.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        """Close the file.

        Parameters
        ----------
        [[trainer]]
        """
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = self._writer = None

    def __getstate__(self):  # never pickle an open file
        state = self.__dict__.copy()
        state.pop("_file", None)
        state.pop("_writer", None)
        return state


@_fill_hooks
class TensorBoardLogger(Callback):
    """Write the loss, validation loss and learning rate of every epoch for TensorBoard.

    Needs the ``tensorboard`` package (``pip install tensorboard``).

    Parameters
    ----------
    log_dir : str or path-like
        TensorBoard's run directory.
    prefix : str, default="semiclip"
        Tag prefix of the scalars (``semiclip/loss``, ...).
    """

    def __init__(self, log_dir: str | os.PathLike[str], prefix: str = "semiclip") -> None:
        self.log_dir = log_dir
        self.prefix = prefix

    def on_train_begin(self, trainer: Trainer) -> None:
        """Open a TensorBoard writer on ``log_dir``.

        Parameters
        ----------
        [[trainer]]
        """
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                "TensorBoardLogger needs the tensorboard package: pip install tensorboard "
                "(or use CSVLogger)."
            ) from exc
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Write the epoch's loss, validation loss and learning rate.

        Parameters
        ----------
        [[trainer]]
        [[record]]
        """
        for name in ("loss", "validation_loss", "learning_rate"):
            if record[name] is not None:
                self._writer.add_scalar(f"{self.prefix}/{name}", record[name], record["epoch"])

    def on_train_end(self, trainer: Trainer) -> None:
        """Close the writer.

        Parameters
        ----------
        [[trainer]]
        """
        if getattr(self, "_writer", None) is not None:
            self._writer.close()
            self._writer = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_writer", None)
        return state
