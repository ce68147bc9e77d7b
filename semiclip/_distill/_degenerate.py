"""Training set-ups that would run without learning anything: refused, or warned about.

- a contrastive loss (InfoNCE, CLIP, SigLIP) contrasts the rows of a
  minibatch: minibatches of one row are skipped by the loop, and with a
  single paired key every other row is a masked positive (InfoNCE is
  exactly 0). Both would leave the adapter at its initialisation while the
  loss looks converged: :func:`check_contrastive` raises instead;
- a teacher embedding that is all zero has no direction: under the cosine
  losses the samples paired with it get no signal, and a bank of zeros has
  nothing to distil (:func:`check_teacher`).
"""

import warnings

import numpy as np

from .._core import format_examples
from .._nn import loss_object

__all__ = ["check_contrastive", "check_teacher"]

_USER_LEVEL = 6  # check -> _fit_inputs -> _fit -> fit / partial_fit -> _fit_context -> user


def check_contrastive(loss, batch_size, n_paired, n_keys, incremental=False):
    """Raise a ValueError when a contrastive ``loss`` cannot learn from these minibatches.

    Parameters
    ----------
    loss : str
    batch_size : int or "auto"
        The estimator's parameter (``"auto"`` resolves to at least 32).
    n_paired : int
        Paired samples of this ``fit`` (this chunk, for ``partial_fit``).
    n_keys : int
        Their distinct keys.
    incremental : bool
        Whether the call is ``partial_fit`` (for the wording).
    """
    if not loss_object(loss).contrastive:
        return
    name = f"loss={loss!r}"
    if not isinstance(batch_size, str) and batch_size < 2:
        raise ValueError(
            f"batch_size={batch_size} cannot train {name}: a contrastive loss compares every "
            "sample with the other rows of its minibatch, so minibatches need at least 2 rows "
            "(minibatches of 1 row would all be skipped and the adapter left untrained). Use "
            "batch_size >= 2 (e.g. the default 'auto'), or loss='kd' or 'kd_mse'."
        )
    where = "this partial_fit chunk has" if incremental else "the training data have"
    if n_paired < 2:
        fix = ("pass chunks with at least 2 paired samples (concatenate small chunks)"
               if incremental else "add paired samples")
        raise ValueError(
            f"{name} contrasts the samples of a minibatch and needs at least 2 paired "
            f"samples, but {where} {n_paired} sample paired with image_bank: {fix}, or use "
            "loss='kd' or 'kd_mse'."
        )
    if n_keys < 2:
        fix = ("Pass chunks that mix 2 or more keys (shuffle the samples before chunking)"
               if incremental else "Add samples of other keys")
        raise ValueError(
            f"{name} needs at least 2 distinct paired keys, but {where} n_paired_keys="
            f"{n_keys}: samples of one key are never each other's negatives, so the loss is "
            f"constant (InfoNCE exactly 0) and nothing is learned. {fix}, or use loss='kd' "
            "or 'kd_mse' (feature distillation)."
        )


def check_teacher(bank, used, loss, target):
    """Raise when the teacher rows of the keys ``used`` are all zero; warn when some are.

    ``used`` are the bank key codes of the paired samples; the rows checked
    are those the training draws from (every row of those keys, or their
    centroids with ``target="centroid"``). Zero rows are a warning only
    under the cosine losses (``kd_mse`` has a target for them).
    """
    if target == "centroid":
        table, what = bank.centroids()[used], "key centroids"
        keys = bank.unique_keys[used]
    else:
        order, _, counts = bank.grouped_rows()
        row_code = np.empty(bank.n_embeddings, dtype=np.int64)
        row_code[order] = np.repeat(np.arange(bank.n_keys), counts)
        rows = np.flatnonzero(np.isin(row_code, used))
        table, what = bank.embeddings[rows], "teacher rows"
        keys = bank.keys[rows]
    zero = ~table.any(axis=1)
    if zero.all():
        raise ValueError(
            f"image_bank: every teacher embedding of the {used.size} paired keys "
            f"({table.shape[0]} {what}) is zero: there is nothing to distil. Check how the "
            "bank was built (e.g. the embedding columns of ImageBank.from_dataframe)."
        )
    if zero.any() and loss_object(loss).cosine:  # a zero vector has no direction
        warnings.warn(
            f"{int(zero.sum())} {what} of the {table.shape[0]} used in training (keys e.g. "
            f"{format_examples(np.unique(keys[zero]))}) are all zero: under loss={loss!r} "
            "(cosine similarity) a zero vector has no direction, so the samples paired with "
            "them get no training signal. Drop these rows from the bank, or use "
            "loss='kd_mse'.",
            UserWarning,
            stacklevel=_USER_LEVEL,
        )
