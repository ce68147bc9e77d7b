"""Ridge start, anchor, choice of epochs and refit of ``SemiClippedTransformer.fit``.

The estimator's fit builds one :class:`RidgeFineTune` from its parameters
and its own training steps (:class:`TrainingRuns`, which the fold runs and
the refit run again) and calls these steps (issue 19):

1. :meth:`RidgeFineTune.start_map`: resolve ``init`` and, for a ridge
   start, choose ``ridge_alpha`` by K-fold over the training perturbation
   groups (:func:`._ridge_start.select_alpha`) and fit the scale-matched
   map on the training keys.
2. :meth:`RidgeFineTune.anchor`: put the map into the new adapter and
   return the frozen starting model that ``anchor_weight`` anchors to.
3. :meth:`RidgeFineTune.selector`: with held-out keys, the number of
   fine-tune epochs (0 = the start) of the best held-out ``MRR + RSA``:
   chosen on folds of the training groups where that is cheap
   (:meth:`RidgeFineTune.fold_epochs`, then the run on the training keys
   stops there), else by a :class:`._epochs.CheckpointSelection` on the
   validation split (see :mod:`._epochs`).
4. :meth:`RidgeFineTune.refit_all`: with ``refit``, fit the start again on
   every paired key with the chosen alpha and train for the chosen number of
   epochs of the same schedule (no held-out keys left, so no early
   stopping).

Every choice is recorded in ``training_params_`` (``init``, ``ridge_alpha``,
``refit``, ``selected_epoch`` and ``choices``: what ``"auto"`` chose and why).
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from .._nn import Checkpoint, History, frozen_copy, set_linear_start
from ._epochs import EPOCH_FOLDS, CheckpointSelection, HeldOutCurve, StopAfter, choose_epoch
from ._recipes import LARGE_KEYS
from ._ridge_start import MIN_GROUPS, centroid_spread, fit_ridge_map, group_folds, select_alpha

__all__ = ["RidgeFineTune", "TrainingRuns"]


@dataclasses.dataclass(frozen=True)
class TrainingRuns:
    """The estimator's training steps that the ridge start runs again (fold runs, the refit).

    Attributes
    ----------
    adapter_step : callable
        ``(plan, inputs, params, d_in, Xc, Z, seed) -> (model, adapter, features)``: a new
        adapter (and the trained model and its input).
    training_data : callable
        ``(plan, inputs, features, rows, held_out_rows, device) -> TrainData``.
    train : callable
        ``(plan, model, data, params, inputs, seed, device, ddp, threads, *, searching,
        selector, user_callbacks) -> History``: one run of the training loop.
    """

    adapter_step: Callable
    training_data: Callable
    train: Callable


class RidgeFineTune:
    """The ridge-start steps of one ``fit``.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params(deep=False)``): ``init``,
        ``ridge_alpha``, ``anchor_weight``, ``refit``, ``recipe``,
        ``n_iter_no_change`` and ``callbacks`` are read.
    runs : TrainingRuns
        The estimator's training steps.
    """

    def __init__(self, params, runs):
        self.init, self.ridge_alpha = params["init"], params["ridge_alpha"]
        self.anchor_weight, self.refit = params["anchor_weight"], params["refit"]
        self.recipe, self.n_iter_no_change = params["recipe"], params["n_iter_no_change"]
        self.callbacks = params["callbacks"]
        self.runs = runs

    def resolve_init(self, plan, params, Z):
        """``(init, why)``: ``"ridge"`` or ``"random"`` and the reason."""
        why_not = None
        if plan.warm:
            why_not = "warm start: the fitted adapter continues"
        elif plan.incremental:
            why_not = "partial_fit: no held-out keys to choose the start on"
        elif Z is None:
            why_not = "on-disk X: the ridge start needs the encoded X in memory"
        elif self.recipe == "paper" and self.init == "auto":
            why_not = "recipe='paper': the paper's random start"
        if self.init == "random":
            return "random", "init='random'"
        if why_not is None and any(isinstance(c, Checkpoint) for c in self.callbacks or ()):
            # a Checkpoint resumes one run of the loop; a ridge start is several (the held-out
            # epoch choice, then the refit), whose choice the checkpoint does not hold
            why_not = "a Checkpoint resumes one training run, a ridge start selects among runs"
        if why_not is None:
            return "ridge", "init='ridge'" if self.init == "ridge" else (
                "init='auto': a ridge start" + (" (a residual adapter: the ridge map plus the "
                                                "hidden layers, whose last starts at zero)"
                                                if params["hidden_layer_sizes"] else ""))
        if self.init == "ridge" and not plan.warm:
            raise ValueError(f"init='ridge' is not possible here ({why_not}); use init='auto' "
                             "or init='random'.")
        return "random", f"init='{self.init}' is random here: {why_not}"

    def start_map(self, plan, inputs, params, Z, train_idx, seed):
        """The scale-matched ridge map of the training keys, or None (a random start)."""
        init, why = self.resolve_init(plan, params, Z)
        choices = params.setdefault("choices", {})
        params["init"], choices["init"] = init, why
        params["anchor_weight"] = float(self.anchor_weight) if init == "ridge" else 0.0
        if init != "ridge":
            params["ridge_alpha"] = None
            return None
        codes, centroids = inputs.codes[train_idx], inputs.bank.centroids()
        if isinstance(self.ridge_alpha, str):
            alpha, record = select_alpha(Z[train_idx], codes, centroids,
                                         inputs.groups[train_idx],
                                         random_state=np.random.default_rng([int(seed), 19]))
            choices["ridge_alpha"] = record["reason"]
            params["ridge_alpha_search"] = record["search"]
            params["ridge_alpha_relative"] = record["relative"]
        else:
            alpha = float(self.ridge_alpha)
            choices["ridge_alpha"] = "given"
        params["ridge_alpha"] = alpha
        params["anchor_scale"] = centroid_spread(centroids[np.unique(codes)])
        return fit_ridge_map(Z[train_idx], codes, centroids, alpha)

    def anchor(self, model, adapter, start, params):
        """Put the ridge map into ``adapter``; the frozen start to anchor to (or None)."""
        if start is None:
            return None
        set_linear_start(adapter, start.weight, start.bias)
        return frozen_copy(model) if params["anchor_weight"] > 0 else None

    def selector(self, start, features, inputs, val_idx, device, choice=None):
        """The epoch choice of a ridge start with held-out keys (else None): ``choice`` (the
        K-fold one, a :class:`StopAfter`) or a :class:`CheckpointSelection` on the split."""
        if start is None or val_idx is None or features is None:
            return None
        if choice is not None:
            return choice
        return CheckpointSelection(features[val_idx], inputs.codes[val_idx],
                                   inputs.bank.centroids(), device)

    def fold_epochs(self, plan, inputs, params, d_in, Xc, Z, seed, train_idx, val_idx, start,
                     device, ddp, threads):
        """The K-fold choice of the number of fine-tune epochs (a :class:`StopAfter`), or None
        where it is not cheap or possible (the validation split chooses then)."""
        choices = params.setdefault("choices", {})
        if start is None or val_idx is None:
            return None
        groups = np.asarray(inputs.groups[train_idx], dtype=str)
        n_groups = int(np.unique(groups).size)
        why = (f"{inputs.n_keys} paired keys (folds below {LARGE_KEYS})"
               if inputs.n_keys >= LARGE_KEYS else "strategy='ddp'" if ddp is not None
               else f"{n_groups} training perturbation groups (folds need {MIN_GROUPS})"
               if n_groups < MIN_GROUPS else None)
        if why is not None:
            choices["epochs_by"] = f"the validation split: no folds with {why}"
            return None
        k = int(min(EPOCH_FOLDS, n_groups // 2))
        rng = np.random.default_rng([int(seed), 20])
        centroids, curves = inputs.bank.centroids(), []
        fold_params = dict(params, early_stopping=False, verbose=0)  # no progress bars
        for held in group_folds(groups, k, rng):
            test = np.isin(groups, held)
            fit_idx, held_idx = train_idx[~test], train_idx[test]
            fold_start = fit_ridge_map(Z[fit_idx], inputs.codes[fit_idx], centroids,
                                       params["ridge_alpha"])
            model, adapter, features = self.runs.adapter_step(plan, inputs, fold_params, d_in, Xc,
                                                          Z, seed)
            data = dataclasses.replace(
                self.runs.training_data(plan, inputs, features, fit_idx, None, device),
                anchor=self.anchor(model, adapter, fold_start, params))
            curve = HeldOutCurve(features[held_idx], inputs.codes[held_idx], centroids, device,
                                 patience=self.n_iter_no_change)
            self.runs.train(plan, model, data, fold_params, inputs, seed, device, None, threads,
                        searching=True, selector=curve, user_callbacks=False)
            curves.append([c["score"] for c in curve.curve])
        epoch, record = choose_epoch(curves)
        choices["epochs_by"] = (f"{k} folds of {n_groups} training perturbation groups: the "
                                "fewest epochs within one standard error of the best mean "
                                "held-out MRR + RSA")
        return StopAfter(epoch, record)

    def use_refit(self, inputs, params, selector):
        """Whether to refit on every key, and why; records the chosen epochs and why (in
        ``training_params_``)."""
        choices = params.setdefault("choices", {})
        by = choices.pop("epochs_by", "the best held-out MRR + RSA of the validation split")
        if selector is not None:  # the kept run's choice (one per structure_weight candidate)
            params["selected_epoch"] = selector.best_epoch
            choices["epochs"] = f"{selector.best_epoch} (0 = the ridge start), by {by}"
            if getattr(selector, "record", None) is not None:
                params["epoch_search"] = selector.record
        if selector is None:
            use, why = False, "no held-out selection to refit from"
        elif self.refit == "auto":
            use = inputs.n_keys < LARGE_KEYS
            why = (f"refit='auto': on below {LARGE_KEYS} paired keys" if use else
                   f"refit='auto': off from {LARGE_KEYS} paired keys (the held-out tenth "
                   "matters little and a second fit costs)")
        else:
            use, why = bool(self.refit), f"refit={self.refit}"
        params["refit"] = use
        params.setdefault("choices", {})["refit"] = why
        return use

    def refit_all(self, plan, inputs, params, d_in, Xc, Z, seed, device, ddp, threads,
                   best_epoch):
        """``(model, adapter, history)`` refitted on every paired key for ``best_epoch`` epochs
        of the ``max_iter`` schedule."""
        paired = inputs.paired
        start = fit_ridge_map(Z[paired], inputs.codes[paired], inputs.bank.centroids(),
                              params["ridge_alpha"])
        refit_params = dict(params, early_stopping=False)
        model, adapter, features = self.runs.adapter_step(plan, inputs, refit_params, d_in, Xc, Z,
                                                      seed)
        anchor = self.anchor(model, adapter, start, params)
        if best_epoch == 0:
            return model.eval(), adapter, History()
        data = self.runs.training_data(plan, inputs, features, paired, None, device)
        data = dataclasses.replace(data, anchor=anchor)
        history = self.runs.train(plan, model, data, refit_params, inputs, seed, device, ddp,
                              threads, searching=True, selector=StopAfter(best_epoch))
        return model, adapter, history
