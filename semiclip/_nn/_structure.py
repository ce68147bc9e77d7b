"""Structure-preserving training terms: the teacher's structure and the input's.

- :func:`relational_loss` (relational distillation): the student's pairwise
  cosine similarities within a minibatch should be the teacher's. The
  contrastive losses only ask each student row to pick its partner; this
  term asks for the teacher's *graded* similarity between perturbations.
- :func:`cka_loss` (input preservation): ``1 - linear CKA`` between the
  student rows and the frozen encoder's rows of the minibatch (Kornblith et
  al. 2019), which keeps the structure the student inherits from its input.
- :func:`anchor_loss` (anchor to the start): the squared distance of every
  student row from the output of the adapter's starting point (the ridge
  start) on the same input, relative to the teacher centroids' spread. It
  keeps a fine-tuned adapter near the closed-form map that estimates the
  conditional mean of the teacher (what RSA rewards), while the contrastive
  loss moves it toward what retrieval rewards.

Both are means over a minibatch; :func:`relational_sum` is the building block
that also takes a separate set of candidate rows (how the distributed
trainer computes one rank's share against the rows of every rank).
"""

import torch
import torch.nn.functional as F

__all__ = ["anchor_loss", "anchor_sum", "cka_loss", "relational_loss", "relational_sum"]

_SPREAD_EPS = 8.0
"""Centred rows within ``_SPREAD_EPS * sqrt(n) * eps * ||X||_F`` of zero count as constant."""


def relational_sum(queries, candidates, teacher_queries, teacher_candidates):
    """``sum_ij (cos(q_i, c_j) - cos(tq_i, tc_j))^2`` over queries ``i`` and candidates ``j``.

    A zero row has cosine 0 with every row.
    """
    q = F.normalize(queries, dim=1)
    c = F.normalize(candidates, dim=1)
    tq = F.normalize(teacher_queries, dim=1)
    tc = F.normalize(teacher_candidates, dim=1)
    return (q @ c.T - tq @ tc.T).square().sum()


def relational_loss(student, teacher):
    """Mean over all pairs ``(i, j)`` of the minibatch of ``(cos(s_i, s_j) - cos(t_i, t_j))^2``.

    ``n^2`` pairs, the diagonal included (it is 0 for non-zero rows).
    Invariant to scaling rows and to orthogonal maps of either side; 0 when
    the student's cosine similarities are the teacher's. Gradients reach
    ``student`` (and ``teacher`` when it requires them).

    Parameters
    ----------
    student : Tensor (n, d)
    teacher : Tensor (n, k)
        Row ``i`` is the teacher row drawn for student row ``i``.

    Returns
    -------
    Tensor, a scalar in ``[0, 4]``.
    """
    n = student.shape[0]
    return relational_sum(student, student, teacher, teacher) / max(n * n, 1)


def _unit_centred(a):
    """``(a - mean) / ||a - mean||_F`` and whether ``a`` has any spread (CKA is scale-free).

    Spread at the rounding level of the mean (identical rows in float32
    whose mean is not exact) counts as none.
    """
    centred = a - a.mean(dim=0, keepdim=True)
    size = centred.square().sum()
    eps = torch.finfo(a.dtype).eps * _SPREAD_EPS * max(a.shape[0], 1) ** 0.5
    spread = size > (eps * eps) * a.square().sum()
    scale = torch.rsqrt(torch.where(spread, size, torch.ones_like(size)))
    return centred * scale, spread


def _gram_norm2(a):
    """``||a^T a||_F^2`` through the smaller of ``a^T a`` and ``a a^T`` (equal)."""
    gram = a.T @ a if a.shape[1] <= a.shape[0] else a @ a.T
    return gram.square().sum()


def cka_loss(student, inputs):
    """``1 - linear CKA`` between the student rows and the rows they were computed from.

    ``CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)``
    with ``X_c``, ``Y_c`` the column-centred rows (Kornblith et al. 2019,
    the centred-Gram form). Invariant to translation, isotropic scaling and
    orthogonal maps of either side (not to scaling single rows); the two
    sides may have different widths.

    A side with no spread (identical rows, one row; spread at the rounding
    level of the mean counts as none) has no structure to compare: CKA is
    then defined as 0, so the loss is 1 with a zero gradient, never NaN.

    Parameters
    ----------
    student : Tensor (n, d)
    inputs : Tensor (n, k)
        The frozen encoder's output (the adapter's input) of the same rows.

    Returns
    -------
    Tensor, a scalar in ``[0, 1]``.
    """
    x, x_spread = _unit_centred(student)
    y, y_spread = _unit_centred(inputs.to(student.dtype))
    cross = (y.T @ x).square().sum()
    ok = x_spread & y_spread
    denom2 = _gram_norm2(x) * _gram_norm2(y)
    # the sqrt and the division see 1 where a side is constant: no NaN in the gradient
    denom = torch.sqrt(torch.where(ok, denom2, torch.ones_like(denom2)))
    cka = torch.where(ok, cross / denom, torch.zeros_like(cross))
    return 1.0 - cka


def anchor_sum(student, start):
    """``sum_i ||s_i - start_i||^2`` over the rows (gradients reach ``student`` only)."""
    return (student - start.detach().to(student.dtype)).square().sum()


def anchor_loss(student, start, scale):
    """``mean_i ||s_i - start_i||^2 / scale``: the anchor to the starting adapter's output.

    Parameters
    ----------
    student : Tensor (n, d)
    start : Tensor (n, d)
        The starting adapter's output on the same input rows (treated as a
        constant).
    scale : float > 0
        The teacher centroids' spread ``E||c - mean c||^2``, which makes the
        term free of the teacher's units.

    Returns
    -------
    Tensor, a non-negative scalar (0 for no rows).
    """
    return anchor_sum(student, start) / (max(student.shape[0], 1) * float(scale))
