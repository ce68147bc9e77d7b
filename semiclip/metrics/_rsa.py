"""Representational similarity analysis: student vs teacher pairwise similarities by key."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._bootstrap import check_bootstrap, check_random_state, correlation_replicates, interval
from ._paired_keys import shared_key_means
from ._similarity import DISTANCES, PairwiseSimilarity, warn_degenerate

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["RSAResult", "representational_similarity"]

_METHODS = ("spearman", "pearson")


@dataclass(frozen=True, repr=False)
class RSAResult:
    """Correlation of the student's and the teacher's pairwise similarities.

    Attributes
    ----------
    correlation : float
        Spearman (or Pearson) correlation, over the pairs of shared keys, of
        the student similarities with the teacher similarities; NaN when one
        side's similarities are all equal. Also available as ``rsa``.
    ci_low, ci_high : float
        Percentile bootstrap interval over the keys; NaN when off or undefined.
    method : str
        ``"spearman"`` or ``"pearson"``.
    distance : str
        Similarity of the key means within each side.
    n_keys : int
        Keys present on both sides.
    n_pairs : int
        Pairs of shared keys, ``n_keys * (n_keys - 1) / 2``.
    n_student_keys, n_teacher_keys : int
        Distinct keys of each side (controls excluded).
    keys : ndarray of shape (n_keys,)
        The shared keys, sorted.
    pairs : ndarray of int, shape (n_pairs, 2)
        Indices into ``keys`` of each pair (``i < j``, row-major order).
    student_similarity, teacher_similarity : ndarray of shape (n_pairs,)
        The similarities of each pair on each side.
    confidence : float
        Level of the interval.
    n_bootstrap : int
        Bootstrap replicates (0: off).
    replicates : ndarray of shape (n_bootstrap,)
        Bootstrap replicates of ``correlation`` (NaN where undefined).
    """

    correlation: float
    ci_low: float
    ci_high: float
    method: str
    distance: str
    n_keys: int
    n_pairs: int
    n_student_keys: int
    n_teacher_keys: int
    keys: np.ndarray = field(compare=False)
    pairs: np.ndarray = field(compare=False)
    student_similarity: np.ndarray = field(compare=False)
    teacher_similarity: np.ndarray = field(compare=False)
    confidence: float = 0.95
    n_bootstrap: int = 0
    replicates: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)

    @property
    def rsa(self):
        """The correlation (alias of ``correlation``)."""
        return self.correlation

    def __float__(self):
        return float(self.correlation)

    def __repr__(self):
        ci = ""
        if self.n_bootstrap:
            ci = f", {self.confidence:.0%} CI [{self.ci_low:.4f}, {self.ci_high:.4f}]"
        return (
            f"RSAResult(correlation={self.correlation:.4f}{ci}, method={self.method!r}, "
            f"n_keys={self.n_keys}, n_pairs={self.n_pairs}, distance={self.distance!r})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-pair table: key_a, key_b, student_similarity, teacher_similarity.

        Returns
        -------
        frame : pandas.DataFrame
            One row per pair of keys (needs pandas).
        """
        import pandas as pd

        return pd.DataFrame({
            "key_a": self.keys[self.pairs[:, 0]],
            "key_b": self.keys[self.pairs[:, 1]],
            "student_similarity": self.student_similarity,
            "teacher_similarity": self.teacher_similarity,
        })


def _upper_similarities(M, distance, i, j, side, names):
    similarity = PairwiseSimilarity(M, distance)
    warn_degenerate(
        similarity, np.arange(M.shape[0]), f"the {side} key means",
        "their pairs tie in the similarities", "the correlation is NaN",
        other="another key", row_names=names, row_kind="keys", stacklevel=4,
    )
    full = similarity.block(0, M.shape[0])
    return full[i, j]


def representational_similarity(
    embeddings: ArrayLike, keys: ArrayLike, teacher: Any, teacher_keys: ArrayLike | None = None,
    *, method: str = "spearman", distance: str = "cosine", control_label: Any = None,
    confidence: float = 0.95, n_bootstrap: int | None = 1000,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
) -> RSAResult:
    """Representational similarity (RSA) of the student with the teacher, by key.

    The rows of each side are averaged per key (controls dropped) and the
    keys present on both sides kept; within each side the similarity of every
    pair of shared keys is computed (the upper triangle), and the result is
    the correlation of the student's pair similarities with the teacher's:
    does the student preserve the teacher's graded similarity between
    perturbations? The two sides may have different widths.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        Student embeddings.
    keys : array-like of shape (n_samples,)
        Key (perturbation) of each row of ``embeddings``.
    teacher : ImageBank or array-like of shape (n_teacher, n_teacher_features)
        Teacher embeddings: an :class:`~semiclip.ImageBank`, or an array with
        ``teacher_keys``.
    teacher_keys : array-like of shape (n_teacher,), default=None
        Key of each teacher row; only with an array ``teacher``.
    method : {"spearman", "pearson"}, default="spearman"
        Correlation of the two sets of pair similarities.
    distance : {"cosine", "correlation", "euclidean"}, default="cosine"
        Similarity within each side.
    control_label : object, default=None
        Key of control rows, dropped on both sides.
    confidence : float, default=0.95
        Level of the bootstrap interval, in (0, 1).
    n_bootstrap : int or None, default=1000
        Bootstrap replicates over the keys; 0 or None turns the interval off.
    random_state : int, RandomState, Generator or None, default=None
        Seed of the bootstrap (``None``: fresh entropy).

    Returns
    -------
    result : RSAResult
        ``correlation`` (alias ``rsa``), ``ci_low``, ``ci_high`` and the pair
        similarities.

    Raises
    ------
    ValueError
        On NaN/inf rows, mismatched lengths, fewer than 3 shared keys (no two
        pairs to correlate), a bad ``method``, ``distance``, ``confidence`` or
        ``n_bootstrap``.

    Warns
    -----
    UserWarning
        When one side's pair similarities are all equal (the correlation is
        NaN), when key means have no direction or are identical across keys,
        and when over 1 % of the bootstrap replicates are undefined.

    Notes
    -----
    The interval is a percentile bootstrap over the keys: a replicate draws
    the shared keys with replacement (key ``i`` drawn ``w_i`` times); pair
    ``(i, j)`` then enters the correlation ``w_i w_j`` times and a key's
    copies form no pair with each other (their similarity is 1 by
    construction). Spearman ranks each replicate's multiset afresh (mid-ranks
    for ties). The similarities are those of the full data.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.metrics import representational_similarity
    >>> rng = np.random.default_rng(0)
    >>> teacher = rng.normal(size=(6, 3))
    >>> student = 2.0 * teacher  # the teacher's geometry, scaled
    >>> res = representational_similarity(student, np.arange(6), teacher, np.arange(6),
    ...                                   n_bootstrap=0)
    >>> round(res.correlation, 6), res.n_pairs
    (1.0, 15)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be 'spearman' or 'pearson'; got {method!r}.")
    if distance not in DISTANCES:
        raise ValueError(
            f"distance must be one of {', '.join(map(repr, DISTANCES))}; got {distance!r}."
        )
    confidence, n_bootstrap = check_bootstrap(confidence, n_bootstrap)
    rng = check_random_state(random_state) if n_bootstrap else None
    shared = shared_key_means(embeddings, keys, teacher, teacher_keys, control_label, 3,
                              "representational_similarity")
    n = shared.keys.size
    i, j = np.triu_indices(n, 1)
    x = _upper_similarities(shared.student, distance, i, j, "student", shared.keys)
    y = _upper_similarities(shared.teacher, distance, i, j, "teacher", shared.keys)
    for side, v in (("student", x), ("teacher", y)):
        if v.min() == v.max():
            warnings.warn(
                f"the {side} similarities are all equal ({v[0]:.4g}) over the {v.size} pairs "
                f"of {n} keys (a collapsed embedding?): the correlation is undefined (NaN).",
                UserWarning,
                stacklevel=2,
            )
    ones = np.ones((1, n))
    correlation = float(correlation_replicates(x, y, i, j, n, 1, None, method, W=ones)[0])
    replicates, ci = np.zeros(0), (float("nan"), float("nan"))
    if n_bootstrap:
        replicates = correlation_replicates(x, y, i, j, n, n_bootstrap, rng, method)
        ci = interval(replicates, confidence, "the RSA",
                      "the drawn keys' similarities are constant")
    return RSAResult(
        correlation=correlation,
        ci_low=ci[0],
        ci_high=ci[1],
        method=method,
        distance=distance,
        n_keys=int(n),
        n_pairs=int(i.size),
        n_student_keys=shared.n_student_keys,
        n_teacher_keys=shared.n_teacher_keys,
        keys=shared.keys,
        pairs=np.stack([i, j], axis=1),
        student_similarity=x,
        teacher_similarity=y,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        replicates=replicates,
    )
