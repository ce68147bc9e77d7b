"""Retrieval mean average precision (the convention of the copairs package, ties at chance)."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import check_finite_rows, check_labels, control_mask, format_examples
from ._ap import average_precision, expected_ap, n_positives, random_ap
from ._bootstrap import check_bootstrap, check_random_state, interval, mean_replicates
from ._similarity import DISTANCES, PairwiseSimilarity, warn_degenerate

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike


@dataclass(frozen=True, repr=False)
class MAPResult:
    """Retrieval mAP per label and overall, with per-query diagnostics.

    Attributes
    ----------
    map : float
        Overall mAP: the mean of ``label_map`` (every evaluated label counts
        once, whatever its number of replicates). NaN if nothing could be
        evaluated.
    labels : ndarray of shape (n_labels,)
        Evaluated labels (at least one query with a positive), sorted.
    label_map : ndarray of shape (n_labels,)
        Mean AP of each label's queries.
    label_n_queries : ndarray of int, shape (n_labels,)
        Number of queries averaged for each label.
    label_chance : ndarray of shape (n_labels,)
        Expected mAP of each label under random rankings.
    label_p_values : ndarray of shape (n_labels,) or None
        Permutation p-value of each label's mAP (``None`` unless
        ``null_size`` was given).
    chance : float
        Mean of ``label_chance``: the overall mAP of a random embedding.
    ap : ndarray of shape (n_samples,)
        AP of every sample as a query; NaN where the sample was not a query
        (no positive, or a control).
    n_positives, n_candidates : ndarray of int, shape (n_samples,)
        Positives and candidates (positives + negatives) of every sample as a
        query (0 for controls, which are not queries).
    skipped_labels : ndarray
        Labels without any query that has a positive (a single member, or all
        members in one group when ``groups`` is given); counted, not errors.
    distance : str
        Similarity used to rank.
    null_size : int or None
        Number of permutations behind ``label_p_values``.
    ci_low, ci_high : float
        Percentile bootstrap interval of ``map`` over the labels (see
        :func:`mean_average_precision`); NaN when the bootstrap is off or
        nothing was evaluated.
    confidence : float
        Level of the interval.
    n_bootstrap : int
        Number of bootstrap replicates (0: off).
    replicates : ndarray of shape (n_bootstrap,)
        The bootstrap replicates of ``map``.
    """

    map: float
    labels: np.ndarray = field(compare=False)
    label_map: np.ndarray = field(compare=False)
    label_n_queries: np.ndarray = field(compare=False)
    label_chance: np.ndarray = field(compare=False)
    label_p_values: object = field(compare=False)
    chance: float
    ap: np.ndarray = field(compare=False)
    n_positives: np.ndarray = field(compare=False)
    n_candidates: np.ndarray = field(compare=False)
    skipped_labels: np.ndarray = field(compare=False)
    distance: str
    null_size: object
    ci_low: float = field(default=float("nan"), compare=False)
    ci_high: float = field(default=float("nan"), compare=False)
    confidence: float = field(default=0.95, compare=False)
    n_bootstrap: int = field(default=0, compare=False)
    replicates: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)

    @property
    def n_skipped_labels(self):
        """Number of labels that could not be evaluated."""
        return int(len(self.skipped_labels))

    def __float__(self):
        return float(self.map)

    def __repr__(self):
        ci = ""
        if self.n_bootstrap:
            ci = f", {self.confidence:.0%} CI [{self.ci_low:.4f}, {self.ci_high:.4f}]"
        return (
            f"MAPResult(map={self.map:.4f}{ci}, chance={self.chance:.4f}, "
            f"n_labels={len(self.labels)}, n_queries={int(np.sum(self.label_n_queries))}, "
            f"n_skipped_labels={self.n_skipped_labels}, distance={self.distance!r})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-label table as a :class:`pandas.DataFrame` (needs pandas).

        Returns
        -------
        frame : pandas.DataFrame
            One row per label: ``label``, ``mean_average_precision``,
            ``n_queries``, ``chance``, and ``p_value`` when the null was drawn.
        """
        import pandas as pd

        data = {
            "label": self.labels,
            "mean_average_precision": self.label_map,
            "n_queries": self.label_n_queries,
            "chance": self.label_chance,
        }
        if self.label_p_values is not None:
            data["p_value"] = self.label_p_values
        return pd.DataFrame(data)


def mean_average_precision(embeddings: ArrayLike, labels: ArrayLike, *,
                           groups: ArrayLike | None = None, distance: str = "cosine",
                           control_label: Any = None, null_size: int | None = None,
                           random_state: int | np.random.RandomState | None = None,
                           confidence: float = 0.95, n_bootstrap: int | None = 1000) -> MAPResult:
    """Replicate / same-label retrieval mAP, as the copairs package computes it.

    Every sample is a query. Its candidates are ranked by decreasing
    similarity: the positives are the other samples with the same label (from
    a different group, e.g. another plate, when ``groups`` is given); the
    negatives are all samples with another label. Samples with the same label
    and the same group are not candidates. ``AP = (1/M) sum_j j / rank_j``
    over the ``M`` positives (the j-th positive at rank ``rank_j``); a label's
    mAP is the mean AP of its queries; the overall mAP the mean over labels.
    Candidates of exactly equal similarity are ranked at chance: the AP is the
    expected AP over every order of the tied candidates (so a constant or
    all-zero embedding scores the chance level, not 1).

    Similarities are computed in float64 by blocks of queries, so memory is
    bounded (50,000 profiles run in well under 4 GiB).

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        The profiles.
    labels : array-like of shape (n_samples,)
        Label of each sample (perturbation, gene...); samples sharing one are
        positives of each other.
    groups : array-like of shape (n_samples,), default=None
        Group of each sample (plate, batch); when given, positives must come
        from another group (copairs' ``pos_diffby``).
    distance : {"cosine", "correlation", "euclidean"}, default="cosine"
        How candidates are ranked: cosine similarity, Pearson correlation, or
        Euclidean distance (ascending).
    control_label : object, default=None
        Label of control samples: they are never queries (they stay
        candidates, as negatives of every other label).
    null_size : int, default=None
        Number of random rankings for a permutation p-value per label; ``None``
        skips it. See Notes for the null model.
    random_state : int, RandomState instance or None, default=None
        Seed of the permutations and of the bootstrap (``None``: the
        permutations use NumPy's global random state, the bootstrap fresh
        entropy, leaving the global state alone).
    confidence : float, default=0.95
        Level of the bootstrap confidence interval of ``map``, in (0, 1).
    n_bootstrap : int or None, default=1000
        Bootstrap replicates; 0 or None turns the interval off (NaN).

    Returns
    -------
    result : MAPResult
        Overall and per-label mAP, chance levels, p-values, per-query AP and
        numbers of positives and candidates.

    Raises
    ------
    ValueError
        NaN/inf profiles (the rows are named), mismatched lengths, an unknown
        distance, or a ``control_label`` absent from ``labels``.

    Warns
    -----
    UserWarning
        When no sample has a positive; when rows have no direction (all zeros,
        or constant under ``"correlation"``); when rows are identical to a row
        of another label, or all rows are identical (the rows are counted and
        named): their similarities tie.

    Notes
    -----
    Without ties the AP is copairs' (up to its float32 rounding, below);
    with ties it is not: copairs ranks a
    positive before a negative of equal similarity, which rewards a collapsed
    embedding (every similarity equal: copairs' mAP is 1); here a tied group
    of ``s`` candidates with ``p`` positives adds its expected contribution
    (McSherry and Najork, ECIR 2008), in closed form.

    The similarities do not depend on the scale of the rows: rows (the whole
    matrix for ``"euclidean"``) with values beyond ``2**-500`` or ``2**500``
    are first scaled exactly by a power of two, so squared norms neither
    underflow nor overflow.

    Labels with one member (or, with ``groups``, all in one group) have no
    positive: they are skipped and listed in ``skipped_labels``; they still
    serve as negatives.

    Null model of the p-values: for each query, its ``M`` positives are placed
    uniformly at random among its ``L`` candidates, independently across
    queries and permutations; a label's null mAP is the mean of its queries'
    null APs and ``p = (1 + #{null mAP > observed}) / (1 + null_size)``, the
    formula of copairs. copairs reuses one null sample per distinct
    ``(M, L)``, so queries sharing a configuration get identical null APs;
    the independent draws here give the exact permutation distribution of
    the label mean (copairs' p-values are more conservative for labels whose
    queries share a configuration).

    The confidence interval is a percentile bootstrap over the labels
    (perturbations): a replicate draws the evaluated labels with replacement
    and averages their mAP (a label drawn twice counts twice). The
    per-label mAPs stay those of the full data (each label's ranking against
    all samples), so the interval is over which perturbations were measured.

    copairs stores similarities in float32 and ranks by ``1 - similarity``
    in float32: near-tied similarities (within ~1e-7) can swap ranks there,
    so per-query APs may differ slightly from the float64 values here.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.metrics import mean_average_precision
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> res = mean_average_precision(X, ["a", "a", "b", "b"])
    >>> float(res.map)
    1.0
    >>> res.n_positives.tolist(), res.n_candidates.tolist()
    ([1, 1, 1, 1], [3, 3, 3, 3])
    >>> round(res.chance, 4), (res.ci_low, res.ci_high)  # chance: mAP of a random ranking
    (0.6111, (1.0, 1.0))
    """
    X = np.asarray(embeddings)
    if X.ndim != 2:
        raise ValueError(
            f"embeddings must be 2-D (n_samples, n_features); got shape {X.shape}."
        )
    if X.dtype.kind not in "biuf":
        raise TypeError(f"embeddings must be numeric; got dtype {X.dtype}.")
    check_finite_rows(X, "embeddings", fix="drop or impute those rows first")
    n = X.shape[0]
    labels = check_labels(labels, n, "labels")
    groups = check_labels(groups, n, "groups", allow_none=True)
    if distance not in DISTANCES:
        raise ValueError(
            f"distance must be one of {', '.join(map(repr, DISTANCES))}; got {distance!r}."
        )
    confidence, n_bootstrap = check_bootstrap(confidence, n_bootstrap)
    if null_size is not None and (
        not isinstance(null_size, numbers.Integral) or isinstance(null_size, bool) or null_size < 1
    ):
        raise ValueError(f"null_size must be a positive integer or None; got {null_size!r}.")

    names, codes = np.unique(labels, return_inverse=True)
    codes = codes.astype(np.int64)
    group_codes = None
    if groups is not None:
        group_codes = np.unique(groups, return_inverse=True)[1].astype(np.int64)
    is_query = np.ones(n, dtype=bool)
    if control_label is not None:
        control = control_mask(labels, control_label)
        if not np.any(control):
            raise ValueError(
                f"control_label={control_label!r} matches no entry of labels (examples: "
                f"{format_examples(names)}); pass the label of the control samples."
            )
        is_query &= ~control
    k_all = n_positives(codes, group_codes)
    is_query &= k_all > 0

    queries = np.flatnonzero(is_query)
    ap_all = np.full(n, np.nan)
    if queries.size:
        similarity = PairwiseSimilarity(X, distance)
        warn_degenerate(
            similarity, codes, "embeddings",
            "their ties are scored at chance (the expected AP over random orders of the "
            "tied candidates)", "the mAP is its chance level",
        )
        ap_all[queries] = average_precision(similarity, codes, group_codes, queries)
    # diagnostics from counts: negatives are all samples with another label
    n_pos = k_all.copy()
    n_cand = k_all + (n - np.bincount(codes)[codes])
    if control_label is not None:
        n_pos[control] = 0
        n_cand[control] = 0
    if queries.size and np.all(n_cand[queries] == n_pos[queries]):
        raise ValueError(
            f"labels has one value ({format_examples(names)}) and no other sample to rank "
            "against: every candidate is a positive, so each AP would be 1 by construction. "
            "mAP needs samples of at least two labels (or controls as negatives)."
        )

    q_codes = codes[queries]
    n_names = names.size
    per_label_n = np.bincount(q_codes, minlength=n_names)
    evaluated = per_label_n > 0
    if control_label is not None:
        evaluated &= ~control_mask(names, control_label)
    label_sum = np.bincount(q_codes, weights=ap_all[queries], minlength=n_names)
    chance_q = expected_ap(k_all[queries], n_cand[queries])
    chance_sum = np.bincount(q_codes, weights=chance_q, minlength=n_names)
    with np.errstate(invalid="ignore", divide="ignore"):
        label_map = (label_sum / per_label_n)[evaluated]
        label_chance = (chance_sum / per_label_n)[evaluated]
    skipped = names[~evaluated]
    if control_label is not None:
        skipped = skipped[~control_mask(skipped, control_label)]

    p_values = None
    if null_size is not None and queries.size:
        p_values = _label_p_values(
            q_codes, k_all[queries], n_cand[queries], label_map, np.flatnonzero(evaluated),
            int(null_size), random_state,
        )
    replicates, ci = np.zeros(0), (float("nan"), float("nan"))
    if n_bootstrap and label_map.size:
        rng = check_random_state(random_state)
        replicates = mean_replicates(label_map, n_bootstrap, rng)
        ci = interval(replicates, confidence, "the mAP", "NaN label mAP")
    if not queries.size:
        warnings.warn(
            "No sample has a positive (every label has a single member"
            + (", or all its members in one group" if groups is not None else "")
            + "); the mAP is NaN.",
            UserWarning,
            stacklevel=2,
        )
    return MAPResult(
        map=float(label_map.mean()) if label_map.size else float("nan"),
        labels=names[evaluated],
        label_map=label_map,
        label_n_queries=per_label_n[evaluated],
        label_chance=label_chance,
        label_p_values=p_values,
        chance=float(label_chance.mean()) if label_chance.size else float("nan"),
        ap=ap_all,
        n_positives=n_pos,
        n_candidates=n_cand,
        skipped_labels=skipped,
        distance=distance,
        null_size=None if null_size is None else int(null_size),
        ci_low=ci[0],
        ci_high=ci[1],
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        replicates=replicates,
    )


def _label_p_values(q_codes, k, L, label_map, label_index, null_size, random_state):
    """Permutation p-values of the evaluated labels' mAP (see Notes above)."""
    from sklearn.utils import check_random_state

    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    rng = np.random.default_rng(seed)
    row_of_label = np.full(int(q_codes.max()) + 1, -1, dtype=np.int64)
    row_of_label[label_index] = np.arange(label_index.size)
    null_sum = np.zeros((label_index.size, null_size))
    configs, inverse = np.unique(np.stack([k, L], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for c, (kc, Lc) in enumerate(configs):
        members = np.flatnonzero(inverse == c)
        # bound the draws held at once to about 4 million ranks
        step = max(1, (4 * 2**20) // (null_size * max(1, int(kc))))
        for s in range(0, members.size, step):
            chunk = members[s : s + step]
            draws = random_ap(int(kc), int(Lc), chunk.size * null_size, rng)
            np.add.at(null_sum, row_of_label[q_codes[chunk]], draws.reshape(chunk.size, null_size))
    n_queries = np.bincount(row_of_label[q_codes], minlength=label_index.size)
    null_map = null_sum / n_queries[:, np.newaxis]
    exceed = np.count_nonzero(null_map > label_map[:, np.newaxis], axis=1)
    return (exceed + 1.0) / (null_size + 1.0)
