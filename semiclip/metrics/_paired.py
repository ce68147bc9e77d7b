"""Paired difference of two embeddings' scores on the same perturbations, with a bootstrap interval.

Both results are decomposed into per-perturbation parts (a label's mAP, a
key's reciprocal rank, an annotated pair's hit, a pair of keys' similarity);
only the parts present in both count, and every bootstrap replicate draws the
same perturbations for both embeddings, so the interval is that of the
difference itself (much narrower than two overlapping intervals when the
embeddings agree on which perturbations are easy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._bootstrap import (
    _multiplicity_chunks,
    check_bootstrap,
    check_random_state,
    correlation_replicates,
    mean_replicates,
    pair_ratio_replicates,
    percentile_interval,
)
from ._cross_modal import CrossModalResult
from ._map import MAPResult
from ._recall import RecallResult
from ._rsa import RSAResult

if TYPE_CHECKING:
    from typing import Any

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Difference ``a - b`` of one score of two embeddings on shared perturbations.

    Attributes
    ----------
    metric : str
        ``"recall"``, ``"mAP"``, ``"MRR"`` or ``"RSA"``.
    difference : float
        ``value_a - value_b``.
    value_a, value_b : float
        Each embedding's score on the shared perturbations only.
    ci_low, ci_high : float
        Paired percentile bootstrap interval of ``difference`` over the
        perturbations; NaN when the bootstrap is off.
    n : int
        Shared units: annotated pairs (recall), labels (mAP) or keys (MRR,
        RSA).
    n_perturbations : int
        Perturbations resampled by the bootstrap.
    confidence : float
        Level of the interval.
    replicates : ndarray of shape (n_bootstrap,)
        The bootstrap replicates of the difference.
    """

    metric: str
    difference: float
    value_a: float
    value_b: float
    ci_low: float
    ci_high: float
    n: int
    n_perturbations: int
    confidence: float
    replicates: np.ndarray = field(repr=False, compare=False)


def _pair_keys(result):
    left, right = result.pairs[:, 0].astype(str), result.pairs[:, 1].astype(str)
    return [(a, b) if a <= b else (b, a) for a, b in zip(left, right)]


def _units(a, b):
    """``(metric, shared unit ids, values_a, values_b, (i, j) or None, n_items)``."""
    if isinstance(a, RecallResult):
        ka, kb = _pair_keys(a), _pair_keys(b)
        index_b = {k: p for p, k in enumerate(kb)}
        shared = [(p, index_b[k]) for p, k in enumerate(ka) if k in index_b]
        pa = np.array([p for p, _ in shared], dtype=np.int64)
        pb = np.array([q for _, q in shared], dtype=np.int64)
        genes = sorted({g for p in pa for g in ka[p]})
        code = {g: c for c, g in enumerate(genes)}
        i = np.array([code[ka[p][0]] for p in pa], dtype=np.int64)
        j = np.array([code[ka[p][1]] for p in pa], dtype=np.int64)
        return ("recall", a.predicted[pa].astype(np.float64), b.predicted[pb].astype(np.float64),
                (i, j), len(genes))
    if isinstance(a, MAPResult):
        ids_a, va, ids_b, vb, metric = a.labels, a.label_map, b.labels, b.label_map, "mAP"
    else:
        ids_a, va, ids_b, vb = a.keys, a.reciprocal_rank, b.keys, b.reciprocal_rank
        metric = "MRR"
    ids_a = np.asarray(ids_a).astype(str)
    ids_b = np.asarray(ids_b).astype(str)
    shared, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
    return metric, np.asarray(va, float)[ia], np.asarray(vb, float)[ib], None, shared.size


def _shared_pairs(result, shared):
    """``(student, teacher)`` similarities of the pairs of ``shared`` keys (row-major order)."""
    inside = np.isin(result.keys.astype(str), shared)
    keep = inside[result.pairs[:, 0]] & inside[result.pairs[:, 1]]
    return result.student_similarity[keep], result.teacher_similarity[keep]


def _rsa_difference(a, b, n_bootstrap, rng):
    """``(value_a, value_b, replicates of a - b, n shared keys)`` of two RSA results."""
    if a.method != b.method or a.distance != b.distance:
        raise ValueError(f"a and b are RSA results of different kinds ({a.method}/{a.distance} "
                         f"and {b.method}/{b.distance}); compute both the same way.")
    shared = np.intersect1d(a.keys.astype(str), b.keys.astype(str))
    n = shared.size
    if n < 3:
        raise ValueError(f"a and b share {n} key(s) (RSA): the correlation needs 3; compare "
                         "two embeddings of the same perturbations.")
    i, j = np.triu_indices(n, 1)
    (xa, ya), (xb, yb) = _shared_pairs(a, shared), _shared_pairs(b, shared)
    ones = np.ones((1, n))
    value_a = float(correlation_replicates(xa, ya, i, j, n, 1, None, a.method, W=ones)[0])
    value_b = float(correlation_replicates(xb, yb, i, j, n, 1, None, b.method, W=ones)[0])
    replicates = np.zeros(0)
    if n_bootstrap:  # one draw of keys per replicate, used by both sides
        replicates = np.empty(n_bootstrap)
        for sl, W in _multiplicity_chunks(n, n_bootstrap, rng, n + 12 * i.size):
            replicates[sl] = (correlation_replicates(xa, ya, i, j, n, 0, None, a.method, W=W)
                              - correlation_replicates(xb, yb, i, j, n, 0, None, b.method,
                                                       W=W))
    return value_a, value_b, replicates, n


def paired_difference(a: Any, b: Any, *, confidence: float = 0.95, n_bootstrap: int | None = 1000,
                      random_state: int | np.random.Generator | None = None) -> PairedDifference:
    """Paired bootstrap difference ``a - b`` of two embeddings' scores.

    The two results must come from the same metric, computed on two
    embeddings of the same perturbations (e.g. a distilled embedding and the
    raw profiles, or two models). The score is recomputed on the
    perturbations both results scored, and a replicate draws perturbations
    with replacement and recomputes both scores on the same draw.

    Parameters
    ----------
    a, b : RecallResult, MAPResult, CrossModalResult or RSAResult
        Results of :func:`known_relationship_recall` (annotated pairs matched
        by their two genes), :func:`mean_average_precision` (labels matched),
        :func:`cross_modal_retrieval` (keys matched, MRR) or
        :func:`representational_similarity` (keys matched; computed with the
        same ``method`` and ``distance``), of the same type.
    confidence : float, default=0.95
        Level of the percentile interval.
    n_bootstrap : int or None, default=1000
        Replicates; 0 or None: no interval.
    random_state : int, Generator or None, default=None
        Seed of the replicates.

    Returns
    -------
    result : PairedDifference
        The difference, each side's score on the shared perturbations and the
        paired interval.

    Raises
    ------
    TypeError
        If ``a`` and ``b`` are not results of the same supported metric.
    ValueError
        If the two results share no perturbation.

    Notes
    -----
    Recall: pair ``(i, j)`` of a replicate weighs ``w_i w_j`` (``w`` the
    multiplicity of each gene in the draw), as in the recall's own interval,
    and the difference of the two recalls is ``sum w_i w_j (h^a - h^b) / sum
    w_i w_j`` (same pairs, same weights). mAP and MRR: the mean of the
    per-label (per-key) differences over the drawn labels (keys). RSA: both
    correlations are recomputed on the pairs of the shared keys, and a
    replicate weighs pair ``(i, j)`` by ``w_i w_j`` on both sides (the RSA's
    own interval), so the difference of the two replicates is paired.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.metrics import mean_average_precision, paired_difference
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(30), 3)
    >>> signal = rng.normal(size=(30, 8))[y]
    >>> good = mean_average_precision(signal + 0.5 * rng.normal(size=(90, 8)), y, n_bootstrap=0)
    >>> bad = mean_average_precision(signal + 3.0 * rng.normal(size=(90, 8)), y, n_bootstrap=0)
    >>> diff = paired_difference(good, bad, random_state=0)
    >>> diff.metric, diff.n, bool(diff.ci_low > 0)
    ('mAP', 30, True)
    """
    supported = (RecallResult, MAPResult, CrossModalResult, RSAResult)
    if not isinstance(a, supported) or type(a) is not type(b):
        raise TypeError(
            "a and b must be two results of the same metric (RecallResult, MAPResult, "
            f"CrossModalResult or RSAResult); got {type(a).__name__} and {type(b).__name__}.")
    confidence, n_bootstrap = check_bootstrap(confidence, n_bootstrap)
    if isinstance(a, RSAResult):
        rng = check_random_state(random_state) if n_bootstrap else None
        value_a, value_b, replicates, n = _rsa_difference(a, b, n_bootstrap, rng)
        low, high = (percentile_interval(replicates, confidence) if n_bootstrap
                     else (np.nan, np.nan))
        return PairedDifference(metric="RSA", difference=value_a - value_b, value_a=value_a,
                                value_b=value_b, ci_low=float(low), ci_high=float(high), n=n,
                                n_perturbations=n, confidence=confidence,
                                replicates=replicates)
    metric, va, vb, pairs, n_items = _units(a, b)
    if not va.size:
        raise ValueError(f"a and b share no scored perturbation ({metric}): compare two "
                         "embeddings of the same perturbations (the same keys or genes).")
    replicates = np.zeros(0)
    if n_bootstrap:
        rng = check_random_state(random_state)
        if pairs is None:
            replicates = mean_replicates(va - vb, n_bootstrap, rng)
        else:
            replicates = pair_ratio_replicates(pairs[0], pairs[1], va - vb, [0, va.size],
                                               n_items, n_bootstrap, rng)[0]
    low, high = percentile_interval(replicates, confidence) if n_bootstrap else (np.nan, np.nan)
    mean_a, mean_b = float(va.mean()), float(vb.mean())
    return PairedDifference(metric=metric, difference=mean_a - mean_b, value_a=mean_a,
                            value_b=mean_b, ci_low=float(low), ci_high=float(high), n=int(va.size),
                            n_perturbations=int(n_items), confidence=confidence,
                            replicates=replicates)
