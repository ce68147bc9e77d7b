"""How many fine-tune epochs a ridge start gets: K-fold over perturbation groups, one-SE rule.

On a few hundred keys the held-out keys of one split are few, and their
``MRR + RSA`` after each epoch is noisy: on one split the best epoch is
often a lucky one (on TA-ORF, where every method is at chance, a single
split picked epochs 10-14 and the refitted model fell below the ridge map).
Where it is cheap (a linear or residual adapter, fewer than ``LARGE_KEYS``
paired keys, one process, ``X`` in memory), the number of epochs is chosen
instead on :data:`EPOCH_FOLDS` folds of the *training* perturbation groups
(the validation split stays untouched, so ``validation_report_`` is an
honest held-out figure of the chosen epoch):

1. every fold fine-tunes its own ridge start (the chosen alpha) on the
   other folds' groups and scores its held-out groups after every epoch
   (:class:`HeldOutCurve`), stopping once ``n_iter_no_change`` epochs have
   not beaten the fold's best;
2. :func:`choose_epoch` averages the curves (a fold that stopped keeps its
   last score) and applies the *one-standard-error rule*: the fewest epochs
   whose mean score is within one standard error (over folds) of the best
   mean. Epoch 0, the ridge start itself, is a candidate: a fine-tune must
   beat it by more than the folds disagree.
"""

import numpy as np

from .._nn import Callback, forward_numpy
from ._selection import held_out_scores, selection_score

__all__ = ["EPOCH_FOLDS", "CheckpointSelection", "HeldOutCurve", "StopAfter", "choose_epoch"]

#: folds of the training perturbation groups that choose the number of fine-tune epochs
EPOCH_FOLDS = 5
#: a later epoch replaces the kept one only when its held-out MRR + RSA is higher by
#: ``max(SELECT_TOL, SELECT_NOISE / sqrt(held-out keys))``: on a few held-out keys small gains
#: are noise (on dev seeds a tolerance of 0.01 let the fine-tune slip below ridge in MRR on
#: ~11 held-out keys), and ties and noise keep the earlier epoch, nearer the ridge start
SELECT_TOL = 0.01
SELECT_NOISE = 0.3


class HeldOutCurve(Callback):
    """Score the adapter on held-out keys by ``MRR + RSA`` at the start and after every epoch.

    ``curve`` holds one record per scored epoch (``epoch``, ``mrr``, ``rsa``,
    ``mrr_chance``, ``score``). With ``patience``, training stops once that
    many epochs in a row have not beaten the best score.
    """

    def __init__(self, features, codes, centroids, device, patience=None):
        self.features, self.codes, self.centroids, self.device = (
            features, codes, centroids, device)
        self.patience = patience
        self.curve = []

    def score(self, trainer):
        out = forward_numpy(trainer.module, self.features, trainer.device, in_training=True)
        scores, _ = held_out_scores(out, self.codes, self.centroids)
        score = selection_score(scores)
        self.curve.append({"epoch": trainer.epoch, **scores, "score": score})
        return score

    def on_train_begin(self, trainer):
        self.curve, self.best, self.since_best = [], -np.inf, 0
        self._seen(trainer, self.score(trainer))

    def on_epoch_end(self, trainer, record):
        self._seen(trainer, self.score(trainer))

    def _seen(self, trainer, score):
        if score > self.best:
            self.best, self.since_best = score, 0
        else:
            self.since_best += 1
        if self.patience is not None and self.since_best >= self.patience:
            trainer.stop_training = True


class CheckpointSelection(HeldOutCurve):
    """Keep the weights of the epoch (0: the start) with the highest held-out ``MRR + RSA``.

    The choice on one held-out split (where the K-fold choice is not cheap).
    A later epoch must beat the kept one by ``tol`` (default:
    :data:`SELECT_TOL`, or ``SELECT_NOISE / sqrt(n held-out keys)`` when
    larger). Runs after the loop's early stopping, so its restore wins;
    ``best_epoch`` and ``curve`` are read after training.
    """

    def __init__(self, features, codes, centroids, device, tol=None):
        super().__init__(features, codes, centroids, device)
        n_keys = max(np.unique(codes).size, 1)
        self.tol = max(SELECT_TOL, SELECT_NOISE / np.sqrt(n_keys)) if tol is None else tol
        self.best_epoch, self.state = 0, None

    def _seen(self, trainer, score):
        if score > self.best + (self.tol if self.state is not None else 0.0):
            state = trainer.module.state_dict()
            self.best, self.best_epoch = score, trainer.epoch
            self.state = {k: v.detach().clone() for k, v in state.items()}

    def on_train_begin(self, trainer):
        self.state = None
        super().on_train_begin(trainer)

    def on_train_end(self, trainer):
        if self.state is not None:
            trainer.module.load_state_dict(self.state)


class StopAfter(Callback):
    """Train ``epochs`` epochs (0: none) of a schedule that spans ``max_iter``; keep that epoch.

    The learning-rate schedule is the one of the run that chose the number,
    so the refit's epoch ``e`` is trained at the same point of the cosine
    schedule as the chosen epoch. Runs after the loop's early stopping: the
    weights of the last epoch up to ``epochs`` are put back at the end (the
    held-out loss is still recorded, but does not pick the weights).
    """

    def __init__(self, epochs, record=None):
        self.best_epoch = int(epochs)
        self.record = record  # how the number was chosen (the folds' scores), if it was

    def _snapshot(self, trainer):
        self.state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}

    def on_train_begin(self, trainer):
        self._first = trainer.epoch
        self._snapshot(trainer)
        trainer.stop_training = self.best_epoch <= 0

    def on_epoch_end(self, trainer, record):
        if trainer.epoch - self._first <= self.best_epoch:
            self._snapshot(trainer)
        if trainer.epoch - self._first >= self.best_epoch:
            trainer.stop_training = True

    def on_train_end(self, trainer):
        trainer.module.load_state_dict(self.state)


def choose_epoch(curves):
    """``(epoch, record)``: the one-standard-error choice over per-fold score curves.

    Parameters
    ----------
    curves : list of sequence of float
        One curve per fold: the held-out score at epoch 0 (the start), 1, ...
        A shorter curve (its run stopped) keeps its last score.

    Returns
    -------
    epoch : int
        The fewest epochs whose mean score is at least the best mean minus
        its standard error over the folds.
    record : dict
        ``{"n_folds", "mean", "se", "best_epoch", "chosen"}`` (``mean`` and
        ``se`` per epoch).
    """
    curves = [np.asarray(c, dtype=np.float64) for c in curves]
    length = max(c.size for c in curves)
    table = np.stack([np.concatenate([c, np.full(length - c.size, c[-1])]) for c in curves])
    mean = table.mean(axis=0)
    k = table.shape[0]
    se = table.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else np.zeros(length)
    best = int(np.argmax(mean))
    chosen = int(np.flatnonzero(mean >= mean[best] - se[best])[0])
    record = {"n_folds": k, "mean": mean.round(6).tolist(), "se": se.round(6).tolist(),
              "best_epoch": best, "chosen": chosen}
    return chosen, record
