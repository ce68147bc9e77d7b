"""Blocked pairwise similarity shared by the recall and retrieval metrics.

Similarities are computed block of rows by block of rows, so the full
``n x n`` matrix never exists in memory; the block height follows a memory
budget.

Two safeguards leave normal inputs bit for bit as they were:

- scale: a row (cosine, correlation) or the whole matrix (euclidean) whose
  largest absolute value lies outside ``[2**-500, 2**500]`` is first
  multiplied by a power of two that brings it near 1. Such a product is
  exact, the similarities do not depend on it, and the squared norms then
  neither underflow to 0 nor overflow to inf;
- duplicates: rows that are identical (after the normalisation of the
  distance) are computed once, so their similarities to any row are the
  very same float, an exact tie (a matrix product can round two copies of a
  row differently, which would break the tie by rounding noise).
"""

import warnings

import numpy as np

from .._core import format_examples

__all__ = ["DISTANCES", "PairwiseSimilarity", "block_rows", "unit_rows", "warn_degenerate"]

DISTANCES = ("cosine", "correlation", "euclidean")

# Bytes one block of similarities (and its same-shaped temporaries) may use.
_BLOCK_BYTES = 64 * 2**20
# Largest absolute values outside [2**-_SAFE_EXPONENT, 2**_SAFE_EXPONENT] are rescaled.
_SAFE_EXPONENT = 500
# Columns compared first when looking for duplicated rows.
_KEY_COLUMNS = 4


def block_rows(n_columns, *, n_temporaries=4, block_bytes=None):
    """Number of rows per block so that ``n_temporaries`` float64 blocks fit."""
    budget = _BLOCK_BYTES if block_bytes is None else int(block_bytes)
    return max(1, budget // (8 * max(1, n_columns) * n_temporaries))


def unit_rows(X):
    """Rows scaled to unit L2 norm; all-zero rows stay zero.

    Same arithmetic as :func:`sklearn.preprocessing.normalize`, so cosine
    similarities are bit-for-bit those of
    :func:`sklearn.metrics.pairwise.cosine_similarity` on the same rows.
    """
    X = np.asarray(X, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    norms[norms == 0.0] = 1.0
    return X / norms[:, np.newaxis]


def _max_abs(X):
    """Largest absolute value of each row (no temporary the size of ``X``)."""
    if X.shape[1] == 0:
        return np.zeros(X.shape[0])
    return np.maximum(X.max(axis=1), -X.min(axis=1))


def _unsafe(m):
    return (m > 0.0) & ((m < 2.0**-_SAFE_EXPONENT) | (m > 2.0**_SAFE_EXPONENT))


def _rescale_rows(X, m):
    """``X`` with each row of unsafe largest value ``m`` multiplied by a power of two."""
    bad = _unsafe(m)
    if not bad.any():
        return X
    X = X.copy()
    X[bad] = np.ldexp(X[bad], -np.frexp(m[bad])[1][:, np.newaxis])
    return X


def _duplicates(A):
    """``(first, inverse)``: the first of each set of identical rows and every row's set.

    ``None`` when all rows differ. Rows are compared on a few columns first
    (a sort of ``n`` short keys); only rows whose keys collide are compared
    in full. ``-0.0`` equals ``0.0``.
    """
    n, d = A.shape
    if n < 2:
        return None
    if d == 0:  # rows without features are all the same
        return np.zeros(1, dtype=np.intp), np.zeros(n, dtype=np.intp)
    cols = np.unique(np.linspace(0, d - 1, min(d, _KEY_COLUMNS)).astype(np.intp))
    key = A[:, cols] + 0.0
    order = np.lexsort(key.T[::-1])
    sorted_key = key[order]
    same_next = np.all(sorted_key[1:] == sorted_key[:-1], axis=1)
    collide = np.zeros(n, dtype=bool)
    collide[order[1:][same_next]] = True
    collide[order[:-1][same_next]] = True
    if not collide.any():
        return None
    rows = np.flatnonzero(collide)
    full = np.ascontiguousarray(A[rows]) + 0.0
    as_bytes = full.view(np.dtype((np.void, full.dtype.itemsize * d))).ravel()
    _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
    if first.size == rows.size:
        return None
    representative = np.arange(n)
    representative[rows] = rows[first][inverse.ravel()]
    first_rows, inverse_all = np.unique(representative, return_inverse=True)
    return first_rows, inverse_all.ravel()


class PairwiseSimilarity:
    """Similarity of rows of ``X`` to each other, computed by blocks.

    ``"cosine"`` is the cosine similarity, ``"correlation"`` the Pearson
    correlation of the rows (cosine after centring each row) and
    ``"euclidean"`` the negated Euclidean distance (a similarity: larger means
    closer, ranking as copairs' ``1 / (1 + d)`` does).

    Attributes
    ----------
    n : int
        Number of rows.
    zero_rows : ndarray of int
        Rows without a direction (all zeros; constant rows under
        ``"correlation"``): their similarity to every row is 0. Empty for
        ``"euclidean"``.
    row_set : ndarray of int, shape (n,)
        Index of each row's set of identical rows (identical after the
        normalisation of the distance); ``row_set[i] == row_set[j]`` exactly
        when rows ``i`` and ``j`` have the same similarity to every row.
    """

    def __init__(self, X, distance="cosine"):
        if distance not in DISTANCES:
            raise ValueError(
                f"distance must be one of {', '.join(map(repr, DISTANCES))}; "
                f"got {distance!r}."
            )
        X = np.asarray(X, dtype=np.float64)
        self.distance = distance
        self.n = X.shape[0]
        if distance == "euclidean":
            m = float(_max_abs(X).max()) if X.size else 0.0
            rows = np.ascontiguousarray(_rescale_rows(X, np.full(self.n, m)))
            self.zero_rows = np.zeros(0, dtype=np.intp)
        else:
            if distance == "correlation":
                X = _rescale_rows(X, _max_abs(X))  # the row sums cannot overflow
                X = X - X.mean(axis=1, keepdims=True)
            m = _max_abs(X)
            rows = unit_rows(_rescale_rows(X, m))
            self.zero_rows = np.flatnonzero(m == 0.0)
        found = _duplicates(rows)
        if found is None:
            self._rows, self._columns = rows, None
            self.row_set = np.arange(self.n)
        else:
            first, self.row_set = found
            self._rows, self._columns = rows[first], self.row_set
        if distance == "euclidean":
            self._sq = np.einsum("ij,ij->i", self._rows, self._rows)

    def _product(self, left, right):
        """Similarities of the distinct rows ``left`` to the distinct rows ``right``."""
        S = self._rows[left] @ self._rows[right].T
        if self.distance == "euclidean":
            S *= -2.0
            S += self._sq[left, np.newaxis]
            S += self._sq[np.newaxis, right]
            np.maximum(S, 0.0, out=S)
            np.sqrt(S, out=S)
            np.negative(S, out=S)
        return S

    def block(self, start, stop, col_start=0):
        """Similarities of rows ``start:stop`` to rows ``col_start:``."""
        if self._columns is None:
            return self._product(slice(start, stop), slice(col_start, None))
        S = self._product(self._columns[start:stop], slice(None))
        return np.take(S, self._columns[col_start:], axis=1)

    def rows_block(self, rows):
        """Similarities of the rows indexed by ``rows`` to all rows."""
        if self._columns is None:
            return self._product(rows, slice(None))
        S = self._product(self._columns[rows], slice(None))
        return np.take(S, self._columns, axis=1)


def warn_degenerate(similarity, codes, name, consequence, collapsed, *,
                    other="another label", row_names=None, row_kind="genes", stacklevel=3):
    """Warn about rows without a direction and rows no similarity tells apart.

    Parameters
    ----------
    similarity : PairwiseSimilarity
    codes : ndarray of int, shape (similarity.n,)
        Label of each row; identical rows of one label are not reported.
    name : str
        What the rows are, for the message (``"embeddings"``).
    consequence : str
        What the ties mean for the metric, ending the messages.
    collapsed : str
        What the metric is when all rows are identical.
    other : str, default="another label"
        What an identical row is reported against.
    row_names : ndarray, default=None
        Names shown for the rows (``"genes: ..."``) instead of their indices.
    row_kind : str, default="genes"
        What the names are, for the message.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn` (3: the caller of the metric).
    """
    n, distance = similarity.n, similarity.distance

    def shown(rows):
        if row_names is None:
            return f"row indices: {format_examples(rows)}"
        return f"{row_kind}: {format_examples(row_names[rows])}"

    zero = similarity.zero_rows
    if zero.size:
        kind = "constant" if distance == "correlation" else "all-zero"
        warnings.warn(
            f"{name} has {zero.size} {kind} row(s) ({shown(zero)}): "
            f"their {distance} similarity to every row is 0 (they have no direction), so "
            f"{consequence}. Drop those rows, or check the model for a collapse.",
            UserWarning,
            stacklevel=stacklevel,
        )
    sets = similarity.row_set
    if n < 2 or sets.max() == n - 1:  # all rows differ
        return
    if zero.size == n:
        return  # reported above
    compared = "" if distance == "euclidean" else f", compared after the {distance} normalisation"
    if sets.max() == 0:
        warnings.warn(
            f"all {n} rows of {name} are identical{compared} (a collapsed embedding?): "
            f"every similarity ties, so {collapsed}.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return
    n_sets = int(sets.max()) + 1
    low = np.full(n_sets, np.iinfo(np.int64).max)
    high = np.full(n_sets, -1)
    np.minimum.at(low, sets, codes)
    np.maximum.at(high, sets, codes)
    flagged = low[sets] != high[sets]
    flagged[zero] = False  # reported above
    rows = np.flatnonzero(flagged)
    if rows.size:
        warnings.warn(
            f"{rows.size} row(s) of {name} are identical to a row of {other} "
            f"({shown(rows)}){compared}: no similarity tells them apart, "
            f"so {consequence}.",
            UserWarning,
            stacklevel=stacklevel,
        )
