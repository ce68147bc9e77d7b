"""What the training loop is given and what it gives back: settings, data, history.

:class:`TrainConfig` and :class:`TrainData` are frozen and validated when
built, so the loop never meets a half-filled bag of options; :class:`History`
is the record the loop appends to (across warm starts and ``partial_fit``).
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .._losses import LOSSES

__all__ = ["History", "TrainConfig", "TrainData"]

_SOLVERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("cosine", "constant")


def _check(ok, name, value, what):
    if not ok:
        raise ValueError(f"TrainConfig.{name} must be {what}; got {value!r}.")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, resolved (no ``"auto"`` left) and validated.

    Besides the optimiser's settings:

    structure_weight : float, default=0.0
        Weight of the teacher-structure term
        (:func:`semiclip._nn.relational_loss` of the student and teacher rows
        of each minibatch) added to the loss.
    preservation_weight : float, default=0.0
        Weight of the input-preservation term (:func:`semiclip._nn.cka_loss`
        of the student rows and the adapter's input rows: the frozen
        encoder's output, see :func:`semiclip._nn.fit_loop`) added to the loss.
        With both weights 0 neither term is computed.
    target_temperature : float, optional
        Temperature of the soft targets of ``loss="soft_infonce"``; None
        uses ``temperature``.
    anchor_weight : float, default=0.0
        Weight of the anchor term (:func:`semiclip._nn.anchor_loss` of the
        student rows and the starting model's output on the same inputs,
        ``TrainData.anchor``), divided by ``anchor_scale``.
    anchor_scale : float, default=1.0
        The teacher centroids' spread ``E||c - mean c||^2``.
    """

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
    structure_weight: float = 0.0
    preservation_weight: float = 0.0
    target_temperature: float = None
    anchor_weight: float = 0.0
    anchor_scale: float = 1.0

    @property
    def soft_target_temperature(self):
        """The temperature of ``"soft_infonce"``'s targets (``temperature`` unless set)."""
        return self.temperature if self.target_temperature is None else self.target_temperature

    @property
    def has_terms(self):
        """Whether a structure-preserving term has a non-zero weight."""
        return self.structure_weight > 0 or self.preservation_weight > 0 or self.anchor_weight > 0

    def __post_init__(self):
        def positive_int(v):
            return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1

        def real(v, low, closed=True):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
                return False
            return v >= low if closed else v > low

        _check(self.loss in LOSSES, "loss", self.loss, f"one of {LOSSES}")
        _check(self.solver in _SOLVERS, "solver", self.solver, f"one of {_SOLVERS}")
        _check(self.lr_schedule in _SCHEDULES, "lr_schedule", self.lr_schedule,
               f"one of {_SCHEDULES}")
        for name in ("batch_size", "max_epochs", "n_iter_no_change"):
            _check(positive_int(getattr(self, name)), name, getattr(self, name),
                   "a positive integer")
        for name in ("temperature", "learning_rate"):
            _check(real(getattr(self, name), 0, closed=False), name, getattr(self, name),
                   "a finite number > 0")
        for name in ("weight_decay", "min_learning_rate", "tol", "structure_weight",
                     "preservation_weight", "anchor_weight"):
            _check(real(getattr(self, name), 0), name, getattr(self, name), "a finite number >= 0")
        _check(real(self.momentum, 0) and self.momentum <= 1, "momentum", self.momentum,
               "a number in [0, 1]")
        _check(self.target_temperature is None or real(self.target_temperature, 0, closed=False),
               "target_temperature", self.target_temperature,
               "None (the temperature) or a finite number > 0")
        _check(real(self.anchor_scale, 0, closed=False), "anchor_scale", self.anchor_scale,
               "a finite number > 0")
        _check(isinstance(self.early_stopping, (bool, np.bool_)), "early_stopping",
               self.early_stopping, "True or False")


@dataclass
class History:
    """What happened during training, appended to across warm starts.

    ``structure_curve`` and ``preservation_curve`` hold the epoch mean of
    each structure-preserving term (unweighted; None for an epoch in which
    its weight was 0), aligned with ``loss_curve`` (the total loss).
    """

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
    structure_curve: list = field(default_factory=list)
    preservation_curve: list = field(default_factory=list)

    def __setstate__(self, state):
        """Restore a pickled or saved history; one from before the term curves gets them
        filled with None (aligned with its ``loss_curve``)."""
        self.__dict__.update(state)
        for name in ("structure_curve", "preservation_curve"):
            if name not in state:
                setattr(self, name, [None] * len(self.loss_curve))


@dataclass(frozen=True)
class TrainData:
    """The arrays the loop trains on; ``features`` rows align with ``codes``.

    Parameters
    ----------
    codes : ndarray (n,), int
        Bank key code of every training sample (used to mask false negatives).
    sampler : object
        The weak-pair sampler: ``sampler.table`` is the teacher table and
        ``sampler.draw(positions, rng)`` the table row of every position.
    features : ndarray (n, d_in) or feature provider, optional
        Student input of the training samples: an array in memory, or a
        provider such as :class:`semiclip._nn.StreamFeatures` (rows read from
        disk). Exactly one of ``features`` and ``epoch_features``.
    epoch_features : callable ``rng -> ndarray (n, d_in)``, optional
        Fresh student input for every epoch (data augmentation).
    epoch_features_ahead : bool, default=False
        Draw the next epoch's ``epoch_features`` in a background thread
        while the current epoch trains (the draws, made in order by that
        thread only, do not depend on timing).
    val_features, val_codes, val_table : optional
        Held-out samples (their keys never appear in training): features
        (array or provider), key codes, and the teacher centroid of every key
        (indexed by ``val_codes``). All three or none.
    anchor : torch.nn.Module, optional
        The frozen starting model of the anchor term
        (``TrainConfig.anchor_weight``): its output on each minibatch's input
        is what the student is anchored to.
    """

    codes: np.ndarray
    sampler: object
    features: object = None
    epoch_features: object = None
    epoch_features_ahead: bool = False
    val_features: object = None
    val_codes: np.ndarray = None
    val_table: np.ndarray = None
    anchor: object = None

    def __post_init__(self):
        if (self.features is None) == (self.epoch_features is None):
            raise ValueError("TrainData needs exactly one of features and epoch_features.")
        n = len(self.codes)
        if isinstance(self.features, np.ndarray) and self.features.shape[0] != n:
            raise ValueError(
                f"TrainData.features has {self.features.shape[0]} rows but codes has {n}."
            )
        given = [v is not None for v in (self.val_features, self.val_codes, self.val_table)]
        if any(given) and not all(given):
            raise ValueError("TrainData needs all of val_features, val_codes and val_table, "
                             "or none of them.")

    @property
    def n(self):
        return len(self.codes)

    @property
    def has_validation(self):
        return self.val_codes is not None
