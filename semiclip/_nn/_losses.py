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

Every loss is also one :class:`Loss` object, registered once (:func:`register`)
under its name: its value, its share on one DDP rank, its held-out value, and
what it is (contrastive, on cosine similarities, gathering the students of
every rank). The training loop, the DDP context, the held-out loss and the
estimators' checks ask that object (:func:`loss_object`); adding a loss is one
class here and its test.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "CONTRASTIVE",
    "LOSSES",
    "Loss",
    "clip_loss",
    "get_loss",
    "infonce_loss",
    "kd_cosine_loss",
    "kd_mse_loss",
    "loss_object",
    "masked_cross_entropy",
    "register",
    "siglip_loss",
    "siglip_sum",
    "soft_cross_entropy",
    "soft_infonce_loss",
]

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


# ------------------------------------------------------------ the loss objects
_REGISTRY = {}


def register(cls):
    """Class decorator: register one instance of a :class:`Loss` subclass under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"A loss named {cls.name!r} is already registered.")
    _REGISTRY[cls.name] = cls()
    return cls


class Loss:
    """One distillation loss and what the training code needs to know of it.

    Subclasses set ``name``, ``function`` (the plain loss
    ``f(student, teacher, keys, temperature)``) and the flags, and override
    a method only where the default does not fit.

    Attributes
    ----------
    contrastive : bool
        Contrasts a row with the other rows of its minibatch (minibatches
        need 2 rows and 2 keys).
    cosine : bool
        Computed on L2-normalised vectors (a zero teacher row gives no signal).
    gathers_students : bool
        Under DDP, needs the student rows of every rank (the gathered rows
        are then passed to :meth:`local`).
    """

    name = None
    function = None
    contrastive = False
    cosine = True
    gathers_students = False

    def value(self, student, teacher, keys, temperature, target_temperature=None):
        """The minibatch loss (``target_temperature``: of soft targets, where the loss has them)."""
        return self.function(student, teacher, keys, temperature)

    def local(self, student, teacher, keys, pos, world_size, temperature,
              target_temperature=None, gathered=None):
        """One DDP rank's share of the global-minibatch loss, scaled so that the mean over ranks
        is the single-process value.

        ``student`` holds this rank's rows, at positions ``pos`` of the global
        minibatch whose teacher rows and keys are ``teacher`` and ``keys``;
        ``gathered``: every rank's student rows (when :attr:`gathers_students`).
        The default scores each row against its own teacher row only.
        """
        scale = pos.numel() * world_size / teacher.shape[0]
        return self.value(student, teacher.index_select(0, pos), keys.index_select(0, pos),
                          temperature, target_temperature) * scale

    def held_out(self, student, table, codes, candidate_keys, temperature,
                 target_temperature=None):
        """The held-out loss of ``student`` rows of key ``codes`` against the key centroids
        ``table`` (``candidate_keys``: the code of every table row).

        Contrastive losses score key retrieval (InfoNCE against every
        centroid); the others their own loss against the key's centroid.
        """
        if self.contrastive:
            return masked_cross_entropy(student, table, codes, candidate_keys, codes,
                                        temperature)
        return self.value(student, table[codes], codes, temperature, target_temperature)


@register
class InfoNCE(Loss):
    """One-sided InfoNCE, student -> teacher (:func:`infonce_loss`)."""

    name = "infonce"
    function = staticmethod(infonce_loss)
    contrastive = True

    def local(self, student, teacher, keys, pos, world_size, temperature,
              target_temperature=None, gathered=None):
        scale = pos.numel() * world_size / teacher.shape[0]
        loss = masked_cross_entropy(student, teacher, keys.index_select(0, pos), keys, pos,
                                    temperature)
        return loss * scale


@register
class CLIP(Loss):
    """Symmetric InfoNCE (:func:`clip_loss`); the teacher->student half needs every rank's
    students."""

    name = "clip"
    function = staticmethod(clip_loss)
    contrastive = True
    gathers_students = True

    def local(self, student, teacher, keys, pos, world_size, temperature,
              target_temperature=None, gathered=None):
        scale = pos.numel() * world_size / teacher.shape[0]
        keys_local = keys.index_select(0, pos)
        loss = masked_cross_entropy(student, teacher, keys_local, keys, pos, temperature)
        back = masked_cross_entropy(teacher.index_select(0, pos), gathered, keys_local, keys, pos,
                                    temperature)
        loss = 0.5 * (loss + back)
        return loss * scale


@register
class SigLIP(Loss):
    """Pairwise sigmoid loss (:func:`siglip_loss`): a sum over pairs, divided by the rows."""

    name = "siglip"
    function = staticmethod(siglip_loss)
    contrastive = True

    def local(self, student, teacher, keys, pos, world_size, temperature,
              target_temperature=None, gathered=None):
        # this rank's rows against every rank's teacher rows
        return siglip_sum(student, teacher, keys.index_select(0, pos), keys, temperature) * (
            world_size / teacher.shape[0]
        )


@register
class KDCosine(Loss):
    """Feature distillation on cosine similarity (:func:`kd_cosine_loss`)."""

    name = "kd"
    function = staticmethod(kd_cosine_loss)


@register
class KDMSE(Loss):
    """Feature distillation by mean squared error (:func:`kd_mse_loss`)."""

    name = "kd_mse"
    function = staticmethod(kd_mse_loss)
    cosine = False


@register
class SoftInfoNCE(Loss):
    """Soft-target InfoNCE (:func:`soft_infonce_loss`); its targets come from the replicated
    teacher rows, so DDP needs no communication."""

    name = "soft_infonce"
    function = staticmethod(soft_infonce_loss)
    contrastive = True

    def value(self, student, teacher, keys, temperature, target_temperature=None):
        return soft_infonce_loss(student, teacher, keys, temperature,
                                 target_temperature=target_temperature)

    def local(self, student, teacher, keys, pos, world_size, temperature,
              target_temperature=None, gathered=None):
        scale = pos.numel() * world_size / teacher.shape[0]
        tau_t = temperature if target_temperature is None else target_temperature
        loss = soft_cross_entropy(student, teacher, teacher.index_select(0, pos), teacher,
                                  temperature, tau_t)
        return loss * scale

    def held_out(self, student, table, codes, candidate_keys, temperature,
                 target_temperature=None):
        # the target: the softmax of the own key's centroid's similarities to every centroid
        return soft_cross_entropy(student, table, table[codes], table, temperature,
                                  target_temperature)


LOSSES = tuple(_REGISTRY)
CONTRASTIVE = tuple(name for name, loss in _REGISTRY.items() if loss.contrastive)
"""Losses that contrast a row with the other rows of the minibatch."""


def loss_object(name):
    """The registered :class:`Loss` named ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {LOSSES}.") from None


def get_loss(name):
    """Return the loss function ``f(student, teacher, keys, temperature)``."""
    return loss_object(name).function
