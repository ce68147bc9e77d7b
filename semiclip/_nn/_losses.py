"""Distillation losses between student (transcriptomics) and teacher (image) rows.

Every loss takes a minibatch of student embeddings, the teacher embeddings
drawn for them (row ``i`` of ``teacher`` is the weak pair of row ``i`` of
``student``) and the pairing-key id of every row. Rows of the same key are
positives of each other, never negatives: contrastive losses mask them out of
the denominator (InfoNCE, CLIP) or count them as positives (SigLIP). The
soft-target loss (``"soft_infonce"``, as CWCL) needs no mask: its target for
a student row is the teacher's own similarity profile, the same for rows of
the same key.

The building blocks :func:`masked_cross_entropy`, :func:`soft_cross_entropy`
and :func:`siglip_sum` also
take a separate set of candidate rows, which is how the distributed trainer
computes a rank's share of the loss against the negatives of every rank.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "CONTRASTIVE",
    "LOSSES",
    "clip_loss",
    "get_loss",
    "infonce_loss",
    "kd_cosine_loss",
    "kd_mse_loss",
    "masked_cross_entropy",
    "siglip_loss",
    "siglip_sum",
    "soft_cross_entropy",
    "soft_infonce_loss",
]

LOSSES = ("infonce", "clip", "siglip", "kd", "kd_mse", "soft_infonce")
CONTRASTIVE = ("infonce", "clip", "siglip", "soft_infonce")
"""Losses that contrast a row with the other rows of the minibatch."""


def masked_cross_entropy(queries, candidates, query_keys, candidate_keys, positives, temperature):
    """Mean InfoNCE of L2-normalised ``queries`` against ``candidates``.

    ``positives[i]`` is the column of query ``i``'s positive. Columns that
    share query ``i``'s key but are not its positive are removed from the
    softmax (false negatives of weak pairing).
    """
    q = F.normalize(queries, dim=1)
    c = F.normalize(candidates, dim=1)
    logits = q @ c.T / temperature
    same_key = query_keys[:, None] == candidate_keys[None, :]
    not_positive = torch.ones_like(same_key)
    not_positive[torch.arange(q.shape[0], device=q.device), positives] = False
    logits = logits.masked_fill(same_key & not_positive, float("-inf"))
    return F.cross_entropy(logits, positives)


def infonce_loss(student, teacher, keys, temperature=0.1):
    """One-sided InfoNCE, student -> teacher (the Semi-Clipped loss).

    For each student row, softmax over all teacher rows of the minibatch with
    its own weak pair as the target; other rows of the same key are masked.
    Only the student receives gradients (the teacher is frozen).
    """
    idx = torch.arange(student.shape[0], device=student.device)
    return masked_cross_entropy(student, teacher, keys, keys, idx, temperature)


def clip_loss(student, teacher, keys, temperature=0.1):
    """Symmetric CLIP loss: mean of the student->teacher and teacher->student InfoNCE."""
    idx = torch.arange(student.shape[0], device=student.device)
    forward = masked_cross_entropy(student, teacher, keys, keys, idx, temperature)
    backward = masked_cross_entropy(teacher, student, keys, keys, idx, temperature)
    return 0.5 * (forward + backward)


def soft_cross_entropy(queries, candidates, target_queries, target_candidates, temperature,
                       target_temperature):
    """Mean cross-entropy of soft targets: the soft-target contrastive loss's building block.

    For query ``i`` the target distribution over the candidates is
    ``softmax_j(cos(target_queries_i, target_candidates_j) / target_temperature)``
    and the prediction ``softmax_j(cos(queries_i, candidates_j) / temperature)``;
    the value is the mean over queries of ``-sum_j target_ij log prediction_ij``.
    The targets carry no gradient.
    """
    q = F.normalize(queries, dim=1)
    c = F.normalize(candidates, dim=1)
    log_pred = F.log_softmax(q @ c.T / temperature, dim=1)
    with torch.no_grad():
        tq = F.normalize(target_queries, dim=1)
        tc = F.normalize(target_candidates, dim=1)
        target = F.softmax(tq @ tc.T / target_temperature, dim=1)
    return -(target * log_pred).sum(dim=1).mean()


def soft_infonce_loss(student, teacher, keys=None, temperature=0.1, target_temperature=None):
    """Soft-target contrastive loss (CWCL, Srinivasa et al. 2023), student -> teacher.

    For each student row the target over the minibatch's teacher rows is
    ``softmax_j(cos(t_i, t_j) / target_temperature)`` (the teacher's graded
    similarity of the pairs, not a one-hot partner) and the loss is the
    cross-entropy of ``softmax_j(cos(s_i, t_j) / temperature)`` against it
    (see :func:`soft_cross_entropy`). ``target_temperature`` defaults to
    ``temperature``. Rows of the same key have identical targets, so no
    masking is needed (``keys`` is unused). Only the student receives
    gradients.
    """
    if target_temperature is None:
        target_temperature = temperature
    return soft_cross_entropy(student, teacher, teacher, teacher, temperature,
                              target_temperature)


def siglip_sum(queries, candidates, query_keys, candidate_keys, temperature):
    """Sum over all (query, candidate) pairs of the SigLIP pairwise sigmoid loss.

    ``logit_ij = (cos(q_i, c_j) - 1) / temperature``: SigLIP's initial scale
    ``1 / temperature`` and bias ``-1 / temperature``, kept fixed. Pairs of
    the same key are positives (+1), all others negatives (-1).
    """
    s = F.normalize(queries, dim=1)
    t = F.normalize(candidates, dim=1)
    logits = (s @ t.T - 1.0) / temperature
    sign = (query_keys[:, None] == candidate_keys[None, :]).to(logits.dtype) * 2.0 - 1.0
    return -F.logsigmoid(sign * logits).sum()


def siglip_loss(student, teacher, keys, temperature=0.1):
    """Pairwise sigmoid loss (SigLIP) on cosine similarities (see :func:`siglip_sum`).

    The sum over pairs divided by the number of rows, as in SigLIP.
    """
    return siglip_sum(student, teacher, keys, keys, temperature) / student.shape[0]


def kd_cosine_loss(student, teacher, keys=None, temperature=None):
    """Feature distillation: mean of ``1 - cos(student_i, teacher_i)``."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=1)).mean()


def kd_mse_loss(student, teacher, keys=None, temperature=None):
    """Feature distillation: mean squared error over all coordinates."""
    return F.mse_loss(student, teacher)


_LOSS_FUNCTIONS = {
    "infonce": infonce_loss,
    "clip": clip_loss,
    "siglip": siglip_loss,
    "kd": kd_cosine_loss,
    "kd_mse": kd_mse_loss,
    "soft_infonce": soft_infonce_loss,
}


def get_loss(name):
    """Return the loss function ``f(student, teacher, keys, temperature)``."""
    try:
        return _LOSS_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {LOSSES}.") from None
