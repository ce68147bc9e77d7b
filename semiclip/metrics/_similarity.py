"""Blocked pairwise similarity shared by the recall and retrieval metrics.

Similarities are computed block of rows by block of rows, so the full
``n x n`` matrix never exists in memory; the block height follows a memory
budget.
"""

import numpy as np

DISTANCES = ("cosine", "correlation", "euclidean")

# Bytes one block of similarities (and its same-shaped temporaries) may use.
_BLOCK_BYTES = 64 * 2**20


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


class PairwiseSimilarity:
    """Similarity of rows of ``X`` to each other, computed by blocks.

    ``"cosine"`` is the cosine similarity, ``"correlation"`` the Pearson
    correlation of the rows (cosine after centring each row) and
    ``"euclidean"`` the negated Euclidean distance (a similarity: larger means
    closer, ranking as copairs' ``1 / (1 + d)`` does).
    """

    def __init__(self, X, distance="cosine"):
        if distance not in DISTANCES:
            raise ValueError(
                f"distance must be one of {', '.join(map(repr, DISTANCES))}; "
                f"got {distance!r}."
            )
        X = np.asarray(X, dtype=np.float64)
        self.distance = distance
        if distance == "correlation":
            X = X - X.mean(axis=1, keepdims=True)
        if distance in ("cosine", "correlation"):
            self._rows = unit_rows(X)
        else:
            self._rows = np.ascontiguousarray(X)
            self._sq = np.einsum("ij,ij->i", X, X)
        self.n = X.shape[0]

    def block(self, start, stop, col_start=0):
        """Similarities of rows ``start:stop`` to rows ``col_start:``."""
        left = self._rows[start:stop]
        right = self._rows[col_start:]
        S = left @ right.T
        if self.distance == "euclidean":
            S *= -2.0
            S += self._sq[start:stop, np.newaxis]
            S += self._sq[np.newaxis, col_start:]
            np.maximum(S, 0.0, out=S)
            np.sqrt(S, out=S)
            np.negative(S, out=S)
        return S

    def rows_block(self, rows):
        """Similarities of the rows indexed by ``rows`` to all rows."""
        S = self._rows[rows] @ self._rows.T
        if self.distance == "euclidean":
            S *= -2.0
            S += self._sq[rows, np.newaxis]
            S += self._sq[np.newaxis, :]
            np.maximum(S, 0.0, out=S)
            np.sqrt(S, out=S)
            np.negative(S, out=S)
        return S
