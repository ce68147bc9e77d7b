"""Issue 19: the number of fine-tune epochs of a ridge start, chosen on K folds of the training
perturbations by the one-standard-error rule (below 2,000 keys)."""

import warnings

import numpy as np
import pytest

from semiclip import ImageBank, SemiClippedTransformer
from semiclip.callbacks import Callback


def _keys_data(seed, *, teacher, scales=None, n=80, noise=0.5):
    """``n`` keys x 3 samples of 20 features; the teacher is random per key ("noise") or a
    linear map of the key means ("linear"). ``scales`` multiply the feature columns."""
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.array([f"k{i:03d}" for i in range(n)], dtype=object), 3)
    means = rng.standard_normal((n, 20))
    X = np.repeat(means, 3, axis=0) + noise * rng.standard_normal((3 * n, 20))
    if scales is not None:
        X = X * scales
    T = rng.standard_normal((n, 12)) if teacher == "noise" else means @ rng.standard_normal(
        (20, 12))
    return X, keys, ImageBank(T.astype(np.float32), keys[::3])


def _fit(X, keys, bank, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SemiClippedTransformer(encoder=None, **{"max_iter": 20, **params}).fit(
            X, keys, image_bank=bank)


@pytest.mark.parametrize("seed", [1])
def test_noise_does_not_pick_later_epochs(seed):
    """A teacher unrelated to the profiles: later epochs score higher on some folds by chance
    (on this seed the best mean is at epoch 7; seeds 0 and 2 keep 0 too), but not by more than
    the folds disagree: the ridge start (epoch 0) is kept."""
    X, keys, bank = _keys_data(seed, teacher="noise")
    est = _fit(X, keys, bank, random_state=seed, refit=False)
    tp = est.training_params_
    assert tp["selected_epoch"] == 0
    assert est.n_iter_ == 0
    assert "5 folds of 72 training perturbation groups" in tp["choices"]["epochs"]


def test_a_fine_tune_that_helps_is_kept_for_the_fewest_epochs_within_one_se():
    """A ridge start made poor on purpose (alpha 1e9 on features of scales 1 to 100: the map
    follows the large columns) gains from the fine-tune: the choice is after the start, and is
    the fewest epochs whose mean held-out score is within one standard error of the best."""
    X, keys, bank = _keys_data(0, teacher="linear", scales=np.logspace(0, 2, 20), noise=0.3)
    est = _fit(X, keys, bank, random_state=0, refit=False, ridge_alpha=1e9, anchor_weight=0.0,
               learning_rate_init=1e-2)
    tp = est.training_params_
    record = tp["epoch_search"]
    mean, se = np.array(record["mean"]), np.array(record["se"])
    best = int(np.argmax(mean))
    want = min(e for e in range(mean.size) if mean[e] >= mean[best] - se[best])
    assert tp["selected_epoch"] == want > 0
    assert mean[want] > mean[0] + 0.5  # the fine-tune gained on held-out folds
    assert est.n_iter_ == want  # the run on the training keys stops there
    assert record["n_folds"] == 5


class _Runs(Callback):
    def __init__(self):
        self.runs = 0

    def on_train_begin(self, trainer):
        self.runs += 1


def test_fold_runs_do_not_reach_the_users_callbacks():
    """The user's callbacks see the run on the training keys and the refit, not the 5 fold
    runs that choose the epochs."""
    X, keys, bank = _keys_data(0, teacher="linear", scales=np.logspace(0, 2, 20), noise=0.3)
    runs = _Runs()
    _fit(X, keys, bank, random_state=0, ridge_alpha=1e9, anchor_weight=0.0,
         learning_rate_init=1e-2, callbacks=[runs])
    assert runs.runs == 2


def test_few_groups_choose_on_the_validation_split():
    """Fewer than 10 training perturbations: no folds; the split chooses and says so."""
    X, keys, bank = _keys_data(0, teacher="linear", n=12)
    est = _fit(X, keys, bank, random_state=0, early_stopping=True, validation_fraction=0.25,
               refit=False)
    assert "validation split" in est.training_params_["choices"]["epochs"]
    assert "epoch_search" not in est.training_params_
