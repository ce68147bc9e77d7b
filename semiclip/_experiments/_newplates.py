"""The new-plates protocol: held-out perturbations on plates never seen in training.

Train on the training keys of the first :data:`N_TRAIN_PLATES` plates, score
the held-out keys on the remaining plates, corrected by a TVN fitted on
their own controls (a new experiment). This is where the paper's PEA should
help: the student meets at inference a correction it never saw. Both the
no-PEA and the PEA model get the same corrected test input
(:class:`CorrectedOnNewPlates`).
"""

import copy
import warnings

import numpy as np

__all__ = ["N_TRAIN_PLATES", "CorrectedOnNewPlates", "NewPlates", "prepare_new_plates"]

N_TRAIN_PLATES = 8


def prepare_new_plates(data, *, seed, test_size=1 / 3, n_train_plates=N_TRAIN_PLATES):
    """``prepare_heldout`` for the new-plates protocol, and the test plates' correction.

    Held-out keys (the same split as
    :func:`~semiclip._experiments.prepare_heldout`) are scored on the plates
    after the first ``n_train_plates``; training keys are used on the first
    ``n_train_plates`` plates only. Each side is TVN-corrected on its own
    controls. Returns ``((train, test, X_train, X_test), test_correction)``.
    """
    from .._correction import ControlNormalizer
    from ..datasets import split_by_key

    ctl = data.control_label
    tr_key, te_key = split_by_key(data.y, test_size=test_size, control_label=ctl,
                                  random_state=seed)
    train_plates = np.isin(data.batch, np.unique(data.batch)[:n_train_plates])
    tr, te = tr_key & train_plates, te_key & ~train_plates
    X, y, b = data.X, data.y, data.batch

    def tvn():
        return ControlNormalizer("tvn", control_label=ctl, basis="feature")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        warnings.filterwarnings("ignore", message=r"ControlNormalizer\(method='tvn'\)")
        Xtr = tvn().fit_transform(X[tr], y[tr], batch=b[tr])
        test_norm = tvn().fit(X[te], y[te], batch=b[te])
        Xte = test_norm.transform(X[te], batch=b[te])
    return (tr, te, Xtr, Xte), test_norm


class CorrectedOnNewPlates:
    """A PEA-trained estimator whose inference correction is fitted on the new plates.

    ``SemiClippedTransformer.transform`` applies the canonical correction
    fitted on the training plates, which does not know the new plates; this
    wrapper applies ``test_correction`` (the correction the no-PEA model's
    input gets) instead, then the trained encoder and adapter.
    """

    def __init__(self, estimator, test_correction):
        self.estimator = estimator
        self.augmenter = estimator.augmenter  # run_heldout: uncorrected X + batch
        self.test_correction = test_correction

    def fit(self, X, y, *, image_bank, batch):
        self.estimator.fit(X, y, image_bank=image_bank, batch=batch)
        return self

    def transform(self, X, *, batch):
        est = copy.copy(self.estimator)
        est.correction_ = self.test_correction
        return est.transform(X, batch=batch)


class NewPlates:
    """A benchmark row scored under the new-plates protocol: ``factory(seed)`` -> estimator."""

    def __init__(self, factory):
        self.factory = factory

    def bind(self, test_correction):
        """The factory of this row for one seed, PEA models reading ``test_correction``."""
        def make(seed):
            est = self.factory(seed)
            if getattr(est, "augmenter", None) is None:
                return est
            return CorrectedOnNewPlates(est, test_correction)
        return make
