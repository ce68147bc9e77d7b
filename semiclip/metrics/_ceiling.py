"""Split-half ceiling: how well one half of the replicates reproduces the other, by the same metric.

The data bound what any embedding can show: a relationship between two
perturbations, or the identity of a perturbation, that one half of the
replicates does not reproduce in the other half is noise. The ceiling is that
reproducibility, scored by the same metric as the embedding, so a score reads
as a position between chance (0) and the ceiling (1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .._core import check_labels, control_mask
from ._bootstrap import (
    check_bootstrap,
    check_random_state,
    mean_replicates,
    pair_ratio_replicates,
    percentile_interval,
)
from ._map import mean_average_precision
from ._recall import known_relationship_recall
from ._recall_inputs import check_thresholds

if TYPE_CHECKING:
    from typing import Any

    from numpy.typing import ArrayLike

__all__ = ["CeilingResult", "split_half_ceiling"]


@dataclass(frozen=True)
class CeilingResult:
    """Split-half ceiling of a metric on one data set.

    Attributes
    ----------
    metric : str
        ``"recall"`` or ``"mAP"``.
    ceiling : float
        Mean split-half score over the random splits.
    ci_low, ci_high : float
        Percentile bootstrap interval over the perturbations; NaN when off.
    chance : float
        The metric's chance level on the same split.
    n_perturbations : int
        Perturbations with at least two replicates (the others cannot be split).
    n_splits : int
        Random half splits averaged.
    confidence : float
        Level of the interval.
    replicates : ndarray of shape (n_bootstrap,)
        Bootstrap replicates of ``ceiling``.
    """

    metric: str
    ceiling: float
    ci_low: float
    ci_high: float
    chance: float
    n_perturbations: int
    n_splits: int
    confidence: float
    replicates: np.ndarray = field(repr=False, compare=False)

    def position(self, score: float, chance: float | None = None) -> float:
        """Where ``score`` sits between chance (0) and the ceiling (1).

        Parameters
        ----------
        score : float
            A score of the same metric on the same perturbations.
        chance : float, default=None
            The score's own chance level (e.g. ``MAPResult.chance``, whose
            queries are single replicates); None: the ceiling's ``chance``.

        Returns
        -------
        position : float
            ``(score - chance) / (ceiling - chance)``; NaN when the ceiling
            is not above chance.
        """
        chance = self.chance if chance is None else float(chance)
        span = self.ceiling - chance
        return float((score - chance) / span) if span > 0 else float("nan")


def _halves(codes, n_labels, rng):
    """Random half (0/1) of every row, each label's replicates split as evenly as possible."""
    half = np.empty(codes.size, dtype=np.int64)
    for c in range(n_labels):
        rows = np.flatnonzero(codes == c)
        order = rng.permutation(rows.size)
        half[rows[order]] = np.arange(rows.size) % 2
    return half


def _means(X, codes, half, n_labels, h):
    sums = np.zeros((n_labels, X.shape[1]))
    np.add.at(sums, codes[half == h], X[half == h])
    return sums / np.bincount(codes[half == h], minlength=n_labels)[:, np.newaxis]


def _extreme_pairs(means, low, high):
    """Pairs ``(i, j)`` whose cosine similarity is in the bottom ``low`` or top ``1 - high``."""
    unit = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    i, j = np.triu_indices(means.shape[0], k=1)
    sims = np.sum(unit[i] * unit[j], axis=1)
    rank = np.empty(sims.size)
    rank[np.argsort(sims, kind="stable")] = np.arange(sims.size)
    # the recall's rule: share of the pairs at or below <= low, or strictly below >= high
    keep = ((rank + 1) / sims.size <= low) | (rank / sims.size >= high)
    return i[keep], j[keep]


def split_half_ceiling(embeddings: ArrayLike, labels: ArrayLike, *, metric: str = "mAP",
                       control_label: Any = None, thresholds: tuple[float, float] = (0.05, 0.95),
                       n_splits: int = 10, confidence: float = 0.95,
                       n_bootstrap: int | None = 1000,
                       random_state: int | np.random.Generator | None = None) -> CeilingResult:
    """Split-half reproducibility of a data set: the best score a metric can show on it.

    The replicates of every perturbation are split at random in two halves
    (perturbations with one replicate are left out) and one half is scored
    against the other with the same metric:

    - ``"mAP"``: each perturbation's mean profile in one half retrieves its
      mean profile in the other half among the other perturbations' half
      means (:func:`mean_average_precision` with the halves as ``groups``:
      positives only from the other half);
    - ``"recall"``: the perturbation pairs whose similarity is extreme in
      half A (the bottom and top ``thresholds``, as the known-relationship
      recall calls a pair related) are the relationships, and
      :func:`known_relationship_recall` scores half B's perturbation means
      against them: the share of half A's relationship calls that half B
      repeats. Known relationships that the data itself does not reproduce
      cannot be recovered, so this is the recall a perfect annotation would
      get on this data.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        The profiles (one row per replicate), batch-corrected as for scoring.
    labels : array-like of shape (n_samples,)
        Perturbation of every row.
    metric : {"mAP", "recall"}, default="mAP"
        The metric whose ceiling is computed.
    control_label : object, default=None
        Label of control rows (left out).
    thresholds : tuple of two floats, default=(0.05, 0.95)
        Percentile thresholds of ``"recall"``.
    n_splits : int, default=10
        Random half splits averaged.
    confidence : float, default=0.95
        Level of the interval.
    n_bootstrap : int or None, default=1000
        Replicates of the percentile bootstrap over perturbations; 0 or None: off.
    random_state : int, Generator or None, default=None
        Seed of the splits and of the bootstrap.

    Returns
    -------
    result : CeilingResult
        The ceiling, its interval, the chance level, and
        :meth:`CeilingResult.position` to place a score between them.

    Raises
    ------
    ValueError
        If fewer than 3 perturbations have two replicates, or ``metric`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.metrics import split_half_ceiling
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(40), 4)
    >>> X = rng.normal(size=(40, 10))[y] + rng.normal(size=(160, 10))
    >>> c = split_half_ceiling(X, y, n_bootstrap=200, random_state=0)
    >>> c.chance < c.ci_low <= c.ceiling <= c.ci_high <= 1, c.n_perturbations
    (True, 40)
    """
    if metric not in ("mAP", "recall"):
        raise ValueError(f"metric must be 'mAP' or 'recall'; got {metric!r}.")
    X = np.asarray(embeddings, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_samples, n_features); got shape {X.shape}.")
    labels = check_labels(labels, X.shape[0], "labels")
    low, high = check_thresholds(thresholds)
    confidence, n_bootstrap = check_bootstrap(confidence, n_bootstrap)
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer; got {n_splits!r}.")
    keep = np.ones(X.shape[0], dtype=bool) if control_label is None else \
        ~control_mask(labels, control_label)
    names, counts = np.unique(labels[keep].astype(str), return_counts=True)
    split_names = names[counts >= 2]
    if split_names.size < 3:
        raise ValueError(
            f"split_half_ceiling needs at least 3 perturbations with 2 or more replicates; "
            f"got {split_names.size}. The ceiling cannot be estimated on this data.")
    rows = keep & np.isin(labels.astype(str), split_names)
    X, codes = X[rows], np.searchsorted(split_names, labels[rows].astype(str))
    P = split_names.size
    rng = check_random_state(random_state)
    per_label, pi, pj, hits, chance = np.zeros(P), [], [], [], np.nan
    for _ in range(int(n_splits)):
        half = _halves(codes, P, rng)
        A, B = _means(X, codes, half, P, 0), _means(X, codes, half, P, 1)
        if metric == "mAP":
            res = mean_average_precision(np.vstack([A, B]), np.tile(split_names, 2),
                                         groups=np.repeat([0, 1], P), n_bootstrap=0)
            per_label += res.label_map / n_splits
            chance = res.chance
        else:
            i, j = _extreme_pairs(A, low, high)
            res = known_relationship_recall(
                B, split_names, relationships=np.column_stack([split_names[i], split_names[j]]),
                normalize=None, thresholds=(low, high), n_bootstrap=0)
            code = {g: c for c, g in enumerate(split_names)}
            pi.append([code[g] for g in res.pairs[:, 0]])
            pj.append([code[g] for g in res.pairs[:, 1]])
            hits.append(res.predicted.astype(np.float64))
            chance = res.chance
    replicates = np.zeros(0)
    if metric == "mAP":
        ceiling = float(per_label.mean())
        if n_bootstrap:
            replicates = mean_replicates(per_label, n_bootstrap, rng)
    else:
        pi, pj = np.concatenate(pi).astype(np.int64), np.concatenate(pj).astype(np.int64)
        hits = np.concatenate(hits)
        ceiling = float(hits.mean())
        if n_bootstrap:
            replicates = pair_ratio_replicates(pi, pj, hits, [0, hits.size], P, n_bootstrap,
                                               rng)[0]
    low_ci, high_ci = (percentile_interval(replicates, confidence) if n_bootstrap
                       else (np.nan, np.nan))
    return CeilingResult(metric=metric, ceiling=ceiling, ci_low=float(low_ci),
                         ci_high=float(high_ci), chance=float(chance), n_perturbations=int(P),
                         n_splits=int(n_splits), confidence=confidence, replicates=replicates)
