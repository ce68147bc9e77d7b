"""Cross-modal retrieval: each student key's own teacher among the teacher keys (MRR, top-k)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._bootstrap import (
    check_bootstrap,
    check_random_state,
    mean_replicates,
    percentile_interval,
    widen_to_wilson,
)
from ._paired_keys import shared_key_means
from ._similarity import DISTANCES, PairwiseSimilarity, block_rows, warn_degenerate

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["CrossModalResult", "cross_modal_retrieval"]


@dataclass(frozen=True, repr=False)
class CrossModalResult:
    """Cross-modal retrieval of the teacher by the student, key by key.

    Attributes
    ----------
    mrr : float
        Mean reciprocal rank of each key's own teacher among the ``n_keys``
        teacher keys (ties at chance: the expected reciprocal rank over the
        orders of the tied candidates).
    ci_low, ci_high : float
        Percentile bootstrap interval of ``mrr`` over the keys; NaN when the
        bootstrap is off.
    top_k : dict of int to float
        Fraction of the keys whose own teacher is among the ``k`` most similar
        teacher keys (ties at chance).
    top_k_ci : dict of int to tuple of float
        ``(low, high)`` bootstrap interval of each ``top_k`` value, widened to
        contain its Wilson score interval (honest at a few keys).
    mrr_chance : float
        MRR of a uniformly random rank among ``n_keys`` candidates,
        ``H_n / n`` (``H_n`` the harmonic number).
    top_k_chance : dict of int to float
        Top-k accuracy of a random ranking, ``min(k, n) / n``.
    n_keys : int
        Keys present on both sides: the queries, and the candidates of each.
    n_student_keys, n_teacher_keys : int
        Distinct keys of each side (controls excluded).
    keys : ndarray of shape (n_keys,)
        The shared keys, sorted.
    rank : ndarray of shape (n_keys,)
        Expected rank (1 is best) of each key's own teacher; a tie among
        ``t + 1`` candidates gives the mean of the ranks they span.
    reciprocal_rank : ndarray of shape (n_keys,)
        Expected reciprocal rank of each key's own teacher.
    n_tied : ndarray of int, shape (n_keys,)
        Other teacher keys exactly as similar as the own one.
    key_top_k : ndarray of shape (n_keys, len(top_k))
        Probability that each key's own teacher is in the top ``k``.
    distance : str
        Similarity used to rank.
    confidence : float
        Level of the intervals.
    n_bootstrap : int
        Bootstrap replicates (0: off).
    replicates : ndarray of shape (n_bootstrap, 1 + len(top_k))
        Replicates of ``mrr`` (column 0) and of each ``top_k`` value.
    """

    mrr: float
    ci_low: float
    ci_high: float
    top_k: dict
    top_k_ci: dict
    mrr_chance: float
    top_k_chance: dict
    n_keys: int
    n_student_keys: int
    n_teacher_keys: int
    keys: np.ndarray = field(compare=False)
    rank: np.ndarray = field(compare=False)
    reciprocal_rank: np.ndarray = field(compare=False)
    n_tied: np.ndarray = field(compare=False)
    key_top_k: np.ndarray = field(compare=False)
    distance: str = "cosine"
    confidence: float = 0.95
    n_bootstrap: int = 0
    replicates: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)), compare=False)

    def __float__(self):
        return float(self.mrr)

    def __repr__(self):
        ci = ""
        if self.n_bootstrap:
            ci = f", {self.confidence:.0%} CI [{self.ci_low:.4f}, {self.ci_high:.4f}]"
        tops = ", ".join(f"top_{k}={v:.4f}" for k, v in self.top_k.items())
        return (
            f"CrossModalResult(mrr={self.mrr:.4f}{ci}, mrr_chance={self.mrr_chance:.4f}, "
            f"{tops}, n_keys={self.n_keys}, distance={self.distance!r})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-key table: key, rank, reciprocal_rank, n_tied, top_<k> for each k.

        Returns
        -------
        frame : pandas.DataFrame
            One row per query key (needs pandas).
        """
        import pandas as pd

        columns = {
            "key": self.keys,
            "rank": self.rank,
            "reciprocal_rank": self.reciprocal_rank,
            "n_tied": self.n_tied,
        }
        for c, k in enumerate(self.top_k):
            columns[f"top_{k}"] = self.key_top_k[:, c]
        return pd.DataFrame(columns)


def check_top_k(top_k):
    """``top_k`` as a tuple of distinct positive ints, in the given order."""
    if isinstance(top_k, numbers.Integral):
        top_k = (top_k,)
    try:
        values = tuple(top_k)
    except TypeError:
        values = None
    if (not values or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1
                          for k in values)):
        raise ValueError(
            f"top_k must be positive integers; got {top_k!r}. Pass e.g. top_k=(1, 5, 10)."
        )
    return tuple(dict.fromkeys(int(k) for k in values))


def _own_ranks(student, teacher, distance):
    """``(above, n_tied)``: teacher keys more similar than, and as similar as, the own one.

    Row ``i`` of the student is compared with every teacher row, by blocks of
    rows (the ``n x n`` matrix is never held). Both sides go through one
    :class:`PairwiseSimilarity` of the stacked rows, so identical teacher rows
    give exactly equal similarities (exact ties).
    """
    n = student.shape[0]
    similarity = PairwiseSimilarity(np.vstack([student, teacher]), distance)
    above = np.empty(n, dtype=np.int64)
    n_tied = np.empty(n, dtype=np.int64)
    step = block_rows(2 * n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        sims = similarity.rows_block(np.arange(start, stop))[:, n:]
        own = sims[np.arange(stop - start), np.arange(start, stop)][:, np.newaxis]
        above[start:stop] = np.count_nonzero(sims > own, axis=1)
        n_tied[start:stop] = np.count_nonzero(sims == own, axis=1) - 1
    return above, n_tied


def _harmonic(n):
    """``H[m] = sum_{r <= m} 1 / r`` for ``m = 0..n``."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def cross_modal_retrieval(
    embeddings: ArrayLike, keys: ArrayLike, teacher: Any, teacher_keys: ArrayLike | None = None,
    *, top_k: Any = (1, 5, 10), distance: str = "cosine", control_label: Any = None,
    confidence: float = 0.95, n_bootstrap: int | None = 1000,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
) -> CrossModalResult:
    """Retrieval of each key's teacher by its student embedding (MRR, top-k, chance).

    The rows of each side are averaged per key (controls dropped); the keys
    present on both sides are kept. For every student key, all the teacher
    keys are ranked by similarity to its mean student embedding, and the rank
    of its own teacher is recorded. This is the cross-modal retrieval that
    morphology-molecule models report.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        Student embeddings (e.g. ``SemiClippedTransformer.transform``).
    keys : array-like of shape (n_samples,)
        Key (perturbation) of each row of ``embeddings``.
    teacher : ImageBank or array-like of shape (n_teacher, n_features)
        Teacher embeddings: an :class:`~semiclip.ImageBank` (its keys are
        used), or an array with ``teacher_keys``.
    teacher_keys : array-like of shape (n_teacher,), default=None
        Key of each teacher row; only with an array ``teacher``.
    top_k : int or sequence of int, default=(1, 5, 10)
        The ``k`` of the top-k accuracies (``k`` beyond the number of keys
        gives 1).
    distance : {"cosine", "correlation", "euclidean"}, default="cosine"
        Similarity used to rank.
    control_label : object, default=None
        Key of control rows, dropped on both sides.
    confidence : float, default=0.95
        Level of the bootstrap intervals, in (0, 1).
    n_bootstrap : int or None, default=1000
        Bootstrap replicates over the keys; 0 or None turns them off (NaN).
    random_state : int, RandomState, Generator or None, default=None
        Seed of the bootstrap (``None``: fresh entropy, NumPy's global state
        untouched).

    Returns
    -------
    result : CrossModalResult
        ``mrr``, ``top_k``, the chance levels ``mrr_chance`` and
        ``top_k_chance``, intervals ``ci_low``/``ci_high`` (MRR) and
        ``top_k_ci``, and the per-key ranks.

    Raises
    ------
    ValueError
        On NaN/inf rows (named), mismatched lengths, embeddings and teacher of
        different widths, no or only one shared key (with examples of both
        sides' keys), a bad ``top_k``, ``distance``, ``confidence`` or
        ``n_bootstrap``.
    TypeError
        On a teacher that is neither an ImageBank nor a numeric 2-D array.

    Warns
    -----
    UserWarning
        When key means of a side have no direction (all zeros) or are
        identical across keys: their similarities tie and those keys score
        at chance.

    Notes
    -----
    A key whose own teacher ties with ``t`` other teacher keys, ``a`` keys
    being strictly more similar, has each rank ``a + 1 .. a + 1 + t`` with
    probability ``1 / (t + 1)``: its reciprocal rank is
    ``(H_{a+t+1} - H_a) / (t + 1)``, its top-k probability
    ``clip(k - a, 0, t + 1) / (t + 1)``. A collapsed side thus scores exactly
    the chance levels.

    The intervals are percentile bootstraps over the keys: a replicate draws
    the shared keys with replacement and averages their reciprocal ranks
    (top-k probabilities); the ranks stay those among all the keys, so the
    interval is over which perturbations were measured.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.metrics import cross_modal_retrieval
    >>> teacher = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> student = teacher + 0.1
    >>> res = cross_modal_retrieval(student, ["a", "b", "c"], teacher, ["a", "b", "c"],
    ...                             top_k=(1,), n_bootstrap=0)
    >>> res.mrr, res.top_k[1], round(res.mrr_chance, 4)
    (1.0, 1.0, 0.6111)
    """
    top_k = check_top_k(top_k)
    if distance not in DISTANCES:
        raise ValueError(
            f"distance must be one of {', '.join(map(repr, DISTANCES))}; got {distance!r}."
        )
    confidence, n_bootstrap = check_bootstrap(confidence, n_bootstrap)
    rng = check_random_state(random_state) if n_bootstrap else None
    shared = shared_key_means(embeddings, keys, teacher, teacher_keys, control_label, 2,
                              "cross_modal_retrieval")
    S, T = shared.student, shared.teacher
    if S.shape[1] != T.shape[1]:
        raise ValueError(
            f"embeddings have {S.shape[1]} features but the teacher has {T.shape[1]}: "
            "cross-modal retrieval compares them directly, so both must live in one space "
            "(e.g. the transformer's output against its teacher bank)."
        )
    n = shared.keys.size
    for side, M in (("student", S), ("teacher", T)):
        warn_degenerate(
            PairwiseSimilarity(M, distance), np.arange(n), f"the {side} key means",
            "their keys tie in the ranking and score at chance",
            "every key scores at chance", other="another key", row_names=shared.keys,
            row_kind="keys",
        )
    above, n_tied = _own_ranks(S, T, distance)
    H = _harmonic(n)
    span = n_tied + 1.0
    reciprocal = np.where(n_tied == 0, 1.0 / (above + 1.0),
                          (H[above + n_tied + 1] - H[above]) / span)
    rank = above + 1.0 + n_tied / 2.0
    ks = np.array(top_k)
    key_top = np.clip(ks[np.newaxis, :] - above[:, np.newaxis], 0, span[:, np.newaxis])
    key_top = key_top / span[:, np.newaxis]
    per_key = np.column_stack([reciprocal, key_top])
    values = per_key.mean(axis=0)
    replicates = np.zeros((0, per_key.shape[1]))
    cis = [(float("nan"), float("nan"))] * per_key.shape[1]
    if n_bootstrap:
        replicates = mean_replicates(per_key, n_bootstrap, rng)
        cis = [percentile_interval(replicates[:, c], confidence)
               for c in range(per_key.shape[1])]
        # top-k is a proportion: never narrower than its Wilson interval (0 of 4 is not 0 to 0)
        cis[1:] = [widen_to_wilson(ci, v * n, n, confidence) for ci, v in zip(cis[1:], values[1:])]
    return CrossModalResult(
        mrr=float(values[0]),
        ci_low=cis[0][0],
        ci_high=cis[0][1],
        top_k={k: float(v) for k, v in zip(top_k, values[1:])},
        top_k_ci={k: ci for k, ci in zip(top_k, cis[1:])},
        mrr_chance=float(H[n] / n),
        top_k_chance={k: min(k, n) / n for k in top_k},
        n_keys=int(n),
        n_student_keys=shared.n_student_keys,
        n_teacher_keys=shared.n_teacher_keys,
        keys=shared.keys,
        rank=rank,
        reciprocal_rank=reciprocal,
        n_tied=n_tied,
        key_top_k=key_top,
        distance=distance,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        replicates=replicates,
    )
