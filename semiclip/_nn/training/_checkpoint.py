"""Checkpoint and resume: write the loop's state between epochs, continue from it later.

The state (:mod:`._state`) is taken at the end of an epoch, the only point
where it is consistent: weights, optimizer, schedule position, generators,
history, early stopping. It is written with :func:`torch.save` as tensors
and plain containers only, and read with ``weights_only=True``: reading a
checkpoint never runs code from the file. Writes go to a temporary file
beside the target, renamed over it when complete (no half-written
checkpoint, even when the job is killed while writing), and only on rank 0
of a DDP job; every rank reads it when resuming, so the file must be on a
file system all ranks see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import numbers
import os
import pickle
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._callbacks import Callback

if TYPE_CHECKING:
    from ._loop import Trainer

__all__ = ["Checkpoint"]

_FORMAT = "semiclip-checkpoint"
_VERSION = 1


def _cpu_copy(obj):
    """A copy of a state with every tensor on the CPU, detached from training."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


def _digest(array):
    if array is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.int64).tobytes()).hexdigest()


def _fingerprint(trainer):
    """What must be the same to continue a run: settings, training keys, module shapes."""
    config = dataclasses.asdict(trainer.config)
    config.pop("verbose")
    data = trainer.data
    return {
        "config": config,
        "n_samples": int(data.n),
        "codes": _digest(data.codes),
        "validation_codes": _digest(data.val_codes),
        "teacher_table": list(np.shape(data.sampler.table)),
        "parameters": {k: list(v.shape) for k, v in trainer.module.state_dict().items()},
    }


def _differences(saved, current):
    out = []
    for key in current:
        if key == "config":
            for name, value in current["config"].items():
                if saved.get("config", {}).get(name) != value:
                    out.append(f"{name}: {saved.get('config', {}).get(name)!r} in the file, "
                               f"{value!r} now")
        elif saved.get(key) != current[key]:
            out.append({"n_samples": "the number of training samples",
                        "codes": "the training samples' keys (another data set or split)",
                        "validation_codes": "the held-out samples' keys (another split)",
                        "teacher_table": "the teacher bank's shape",
                        "parameters": "the model's layers"}[key]
                       + (f": {saved.get(key)} in the file, {current[key]} now"
                          if key in ("n_samples", "teacher_table") else ""))
    return out


class Checkpoint(Callback):
    """Save the training state every ``every`` epochs and when training stops; resume from it.

    The checkpoint holds what training needs to go on exactly where it
    stopped: the adapter's weights, the optimizer's state (momentum, Adam's
    moments), the position in the learning-rate schedule, the random
    generators of the loop (shuffles, weak-pair draws, augmentations, torch's
    generator), the history behind ``loss_curve_`` and the early-stopping
    state (patience count, best score and weights). It is the state at the
    end of an epoch: written every ``every`` epochs, and once more when
    training ends for any reason (the last epoch, early stopping, a
    ``KeyboardInterrupt`` such as SLURM's ``--signal=INT``, an error) if the
    last completed epoch was not written yet. A resumed fit with the same
    parameters and data gives the model of an uninterrupted fit (bit for bit
    on the CPU).

    The file is written on rank 0 only (in a DDP job), through a temporary
    file renamed over ``path`` when complete, so that an interrupted write
    never leaves half a checkpoint. It holds only tensors and plain
    containers and is read with ``torch.load(weights_only=True)``: loading it
    runs no code from the file, and a file holding anything else is refused.

    Put it last in ``callbacks``, after any callback that stops training.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (its directory is created if needed). In a DDP
        job it must be on a file system that every rank reads.
    every : int, default=1
        Write after every ``every``-th epoch (counting from the start of the
        run, resumed epochs included).
    resume : bool, default=False
        If ``path`` exists when training starts, continue from it (on every
        rank). The parameters, the training data and the train/validation
        split must be those of the run that wrote it (use an integer
        ``random_state``); otherwise a ``ValueError`` names what differs.
        A checkpoint of a finished run resumes with no epoch left to train.

    Examples
    --------
    A fit stopped after 2 of 4 epochs, then the same fit again: it trains
    epochs 3 and 4 only and ends with the model of an uninterrupted fit.

    >>> import os, tempfile, warnings
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 4 epochs on purpose
    >>> import numpy as np
    >>> from semiclip import SemiClippedTransformer
    >>> from semiclip.callbacks import Callback, Checkpoint
    >>> from semiclip.datasets import make_weakly_paired
    >>> d = make_weakly_paired(n_perturbations=40, n_genes=30, random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
    >>> class Preempted(Callback):  # stands for a job killed after epoch 2
    ...     def on_epoch_end(self, trainer, record):
    ...         if record["epoch"] == 2:
    ...             raise RuntimeError("preempted")
    >>> params = dict(encoder_dim=8, max_iter=4, early_stopping=False, init="random",
    ...               control_label="control", random_state=0)
    >>> est = SemiClippedTransformer(**params, callbacks=[Checkpoint(path, resume=True),
    ...                                                   Preempted()])
    >>> est.fit(d.X, d.y, image_bank=d.image_bank)
    Traceback (most recent call last):
    ...
    RuntimeError: preempted
    >>> est = SemiClippedTransformer(**params, callbacks=[Checkpoint(path, resume=True)])
    >>> resumed = est.fit(d.X, d.y, image_bank=d.image_bank)
    >>> whole = SemiClippedTransformer(**params).fit(d.X, d.y, image_bank=d.image_bank)
    >>> resumed.loss_curve_ == whole.loss_curve_
    True
    >>> bool(np.array_equal(resumed.transform(d.X), whole.transform(d.X)))
    True
    """

    def __init__(self, path: str | os.PathLike[str], every: int = 1,
                 resume: bool = False) -> None:
        self.path = path
        self.every = every
        self.resume = resume

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, trainer: Trainer) -> None:
        """Check the parameters; with ``resume``, continue from ``path`` if it exists.

        Parameters
        ----------
        trainer : Trainer
            The training loop's state.
        """
        self._pending = None
        self._main = trainer.dist is None or trainer.dist.rank == 0
        if isinstance(self.every, bool) or not isinstance(self.every, numbers.Integral) \
                or self.every < 1:
            raise ValueError(f"Checkpoint(every=...) must be a positive integer; got "
                             f"{self.every!r}.")
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"Checkpoint(path=...) must be a file name (str or path-like); got "
                            f"{type(self.path).__name__}.")
        fingerprint = _fingerprint(trainer)
        if self.resume and os.path.exists(self.path):
            saved = read_checkpoint(self.path)
            diff = _differences(saved["fingerprint"], fingerprint)
            if diff and saved.get("token") == getattr(self, "_token", None):
                diff = []  # another run of this same fit (a structure_weight search): restart
                saved = None
            if diff:
                raise ValueError(
                    f"Checkpoint {os.fspath(self.path)!r} was written by another training run, "
                    f"so it cannot be continued: {'; '.join(diff)}. Fit with the same "
                    "parameters, data and an integer random_state, delete the file, or use "
                    "Checkpoint(resume=False). (structure_weight='auto' trains one run per "
                    "candidate: set a number to checkpoint it.)"
                )
            if saved is not None:
                trainer.load_state_dict(saved["trainer"])
        self._fingerprint = fingerprint
        self._token = secrets.token_hex(8)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Write the state every ``every`` epochs (rank 0); keep it in memory otherwise.

        Parameters
        ----------
        trainer : Trainer
            The training loop's state.
        record : dict
            The epoch's figures (unused).
        """
        if not self._main:
            return
        state = self._payload(trainer)
        if trainer.epoch % self.every == 0:
            self._write(state)
            self._pending = None
        else:
            self._pending = _cpu_copy(state)

    def on_train_end(self, trainer: Trainer) -> None:
        """Write the last completed epoch's state if it was not written yet (rank 0).

        Parameters
        ----------
        trainer : Trainer
            The training loop's state.
        """
        if getattr(self, "_main", False) and getattr(self, "_pending", None) is not None:
            self._write(self._pending)
            self._pending = None

    # ---------------------------------------------------------------- helpers
    def _payload(self, trainer):
        return {"format": _FORMAT, "version": _VERSION, "token": self._token,
                "fingerprint": self._fingerprint, "trainer": trainer.state_dict()}

    def _write(self, state):
        path = Path(os.fspath(self.path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".tmp-{secrets.token_hex(4)}-{path.name}"
        try:
            with open(tmp, "xb") as fh:
                torch.save(_cpu_copy(state), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def __getstate__(self):  # clone/pickle: the parameters only, never a pending state
        return {k: v for k, v in self.__dict__.items() if k in ("path", "every", "resume")}


def read_checkpoint(path):
    """The checkpoint's content, read without running code; a clear error for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = next((ln for ln in lines if ln.startswith(("Trying to load", "Unsupported"))),
                   lines[0] if lines else "")
        raise ValueError(
            f"{os.fspath(path)!r} is not a semiclip checkpoint: it is not a file of tensors "
            "and plain containers, so it was not loaded (loading it could run code). Delete it "
            f"or use Checkpoint(resume=False). ({why})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} is not a readable semiclip checkpoint ({exc}). Delete it or "
            "use Checkpoint(resume=False)."
        ) from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a semiclip checkpoint. Delete it or use "
                         "Checkpoint(resume=False).")
    if state.get("version") != _VERSION:
        raise ValueError(f"{os.fspath(path)!r} is a checkpoint of format version "
                         f"{state.get('version')!r}; this semiclip reads version {_VERSION}.")
    return state
