"""The plan of one :meth:`SemiClippedTransformer.fit` or ``partial_fit`` call: its modes, decided
once.

A fit has six modes: a warm start, ``partial_fit``, an on-disk ``X``, an
augmenter, ``train_encoder`` and DDP. :func:`plan_fit` reads them (and
whether the estimator is already fitted) at the start of the call and
derives every decision the steps need: keep the fitted encoder or fit a new
one, continue the adapter, its history and its optimizer, which
hyper-parameters carry over, whether held-out keys may be split off and the
structure weight searched. The steps of the fit read the plan, never the
estimator's attributes, so that each mode is decided in one place.
"""

from dataclasses import dataclass

import numpy as np

from .._core import ImageBank

__all__ = ["FitInputs", "FitPlan", "plan_fit"]


@dataclass(frozen=True)
class FitPlan:
    """What one ``fit`` / ``partial_fit`` call does, decided before any work.

    Attributes
    ----------
    incremental : bool
        A ``partial_fit`` call: one epoch at a constant learning rate, no
        early stopping, no ``ConvergenceWarning`` and no
        ``GeneralizationWarning``.
    warm : bool
        Continue the fitted adapter (``warm_start=True``, or a ``partial_fit``
        after the first); the input's width is then checked against the
        fitted one instead of recorded anew.
    keep_encoder : bool
        Keep the fitted encoder instead of fitting a new one (the only place
        this is decided): whenever the adapter is continued, since it was
        trained on that encoder's outputs.
    continue_history : bool
        Append to the fitted training record (``loss_curve_``, ``n_iter_``).
    continue_keys : bool
        Count the keys of the fits continued in ``n_paired_keys_`` (a warm
        start of a model that recorded them).
    reuse_optimizer : bool
        Continue with the optimizer of the previous ``partial_fit`` call
        (momentum kept); a new optimizer otherwise.
    reuse_bank : bool
        A ``partial_fit`` call given no ``image_bank`` reuses the bank of the
        calls before (held in memory only, never pickled).
    keep_params : bool
        Train with the resolved hyper-parameters of the previous call
        (``partial_fit``: the first chunk's ``"auto"`` values hold).
    keep_structure_weight : bool
        Keep the structure weight chosen by the fit being continued.
    fresh_draws : bool
        Seed this call's shuffle and pairing draws with the epoch count too,
        so that every ``partial_fit`` chunk gets new ones.
    on_disk : bool
        ``X`` is read from disk (numpy.memmap, backed AnnData) in minibatches.
    augment : bool
        An augmenter corrects ``X`` and draws a new student input every epoch.
    train_encoder : bool
        The encoder is trained with the adapter.
    ddp : bool
        This process is one rank of a DDP job.
    explicit_early_stopping : bool
        ``early_stopping=True`` was asked for (not ``"auto"``) in a full fit:
        too few keys to split is then an error, not a silent no.
    """

    incremental: bool
    warm: bool
    keep_encoder: bool
    continue_history: bool
    continue_keys: bool
    reuse_optimizer: bool
    reuse_bank: bool
    keep_params: bool
    keep_structure_weight: bool
    fresh_draws: bool
    on_disk: bool
    augment: bool
    train_encoder: bool
    ddp: bool
    explicit_early_stopping: bool

    @property
    def one_epoch(self):
        """One epoch at a constant learning rate (``partial_fit``)."""
        return self.incremental

    @property
    def may_validate(self):
        """Whether held-out keys may be split off for early stopping."""
        return not self.incremental


def plan_fit(estimator, *, incremental, on_disk):
    """The :class:`FitPlan` of a ``fit`` (``incremental=False``) or ``partial_fit`` call.

    ``estimator`` is read here once: its parameters and whether it holds a
    fitted adapter (and a ``partial_fit`` optimizer) to continue.
    """
    state = vars(estimator)
    warm = bool((estimator.warm_start or incremental) and "adapter_" in state)
    previous = state.get("training_params_", {}) if warm else {}
    return FitPlan(
        incremental=incremental,
        warm=warm,
        keep_encoder=warm,
        continue_history=warm,
        continue_keys=warm and state.get("_paired_keys") is not None,
        reuse_optimizer=incremental and warm and state.get("_partial_optimizer") is not None,
        reuse_bank=incremental and warm and "_partial_bank" in state,
        keep_params=incremental and warm,
        keep_structure_weight=warm and "structure_weight" in previous,
        fresh_draws=incremental and warm,
        on_disk=on_disk,
        augment=estimator.augmenter is not None,
        train_encoder=bool(estimator.train_encoder),
        ddp=estimator.strategy == "ddp",
        explicit_early_stopping=estimator.early_stopping is True and not incremental,
    )


@dataclass(frozen=True)
class FitInputs:
    """The validated inputs of one ``fit`` / ``partial_fit`` call, paired with the bank."""

    X: object  # validated in-memory X, or the on-disk row source
    source: object  # the row source of an on-disk X, else None
    y: np.ndarray
    batch: np.ndarray
    bank: ImageBank
    codes: np.ndarray  # bank key code of every sample, -1 for unpaired and controls
    paired: np.ndarray  # indices of the paired samples
    n_keys: int
    groups: np.ndarray = None  # perturbation group of every sample (held-out splits)
