"""Percentile ranks of selected gene pairs in the null of all gene pairs.

The null distribution is the strict upper triangle of the gene-gene
similarity matrix (``n * (n - 1) / 2`` values). For every query pair we need
how many null values lie strictly below its similarity (``searchsorted``
``side="left"``) and how many lie below or at it (``side="right"``), exactly
as EFAAR's ``compute_recall`` gets them from the fully sorted null. Sorting
the null would need ``n * (n - 1) / 2`` floats at once (1.6 GB for 20,000
genes, twice that while sorting); instead the null is streamed block of rows
by block of rows: each block's values are sorted and every query value is
located in them (``searchsorted`` both sides); the counts add up over blocks.
The query values must be known first, so a first pass over the blocks reads
them from the very same block products (bit-identical to their copies in the
null, so each query is found in the null exactly as in a full sort). Memory
is one block plus the queries; time is two block products plus sorting the
null piecewise.
"""

import numpy as np

from ._similarity import block_rows


def _triu_mask(m):
    return np.triu(np.ones((m, m), dtype=bool), k=1)


def _blocks(n, rows_per_block):
    starts = np.arange(0, n, rows_per_block)
    return [(int(a), int(min(a + rows_per_block, n))) for a in starts]


def _gather(S, a, b, qi, qj, out):
    """Copy the similarities of the query pairs whose first gene is in a:b."""
    sel = np.flatnonzero((qi >= a) & (qi < b))
    if sel.size:
        out[sel] = S[qi[sel] - a, qj[sel] - a]


def _count(S, a, b, u, count_lt, count_le):
    """Add, for each query value ``u``, the block's upper-triangle values below it."""
    m = b - a
    values = np.concatenate([S[:, :m][_triu_mask(m)], S[:, m:].ravel()])
    values.sort()
    count_lt += np.searchsorted(values, u, side="left")
    count_le += np.searchsorted(values, u, side="right")


def null_ranks(similarity, qi, qj, *, block_bytes=None):
    """Similarities and left/right null counts of query pairs.

    Parameters
    ----------
    similarity : PairwiseSimilarity
        The gene-level similarity (``similarity.n`` genes).
    qi, qj : ndarray of int, shape (n_queries,)
        Gene indices of the query pairs, ``qi < qj``.
    block_bytes : int, default=None
        Memory budget of one block (bytes); ``None`` for the default.

    Returns
    -------
    values : ndarray of float64, shape (n_queries,)
        The similarity of each query pair, taken from the same computation
        as the null (so a query is found exactly in the null).
    count_lt, count_le : ndarray of int64, shape (n_queries,)
        Number of null values ``< value`` and ``<= value``.
    n_null : int
        Size of the null distribution.
    """
    n = similarity.n
    n_null = n * (n - 1) // 2
    qi = np.asarray(qi, dtype=np.int64)
    qj = np.asarray(qj, dtype=np.int64)
    # searchsorted output (int64) and a masked copy live beside each block
    blocks = _blocks(n, block_rows(n, n_temporaries=4, block_bytes=block_bytes))
    values = np.empty(qi.size, dtype=np.float64)
    if len(blocks) == 1:
        S = similarity.block(0, n, col_start=0)
        _gather(S, 0, n, qi, qj, values)
        u, inverse = np.unique(values, return_inverse=True)
        count_lt = np.zeros(u.size, dtype=np.int64)
        count_le = np.zeros(u.size, dtype=np.int64)
        _count(S, 0, n, u, count_lt, count_le)
    else:
        # pass 1: the query values, from the very same block products as pass 2
        for a, b in blocks:
            if np.any((qi >= a) & (qi < b)):
                _gather(similarity.block(a, b, col_start=a), a, b, qi, qj, values)
        u, inverse = np.unique(values, return_inverse=True)
        count_lt = np.zeros(u.size, dtype=np.int64)
        count_le = np.zeros(u.size, dtype=np.int64)
        # pass 2: stream the null
        for a, b in blocks:
            _count(similarity.block(a, b, col_start=a), a, b, u, count_lt, count_le)
    return values, count_lt[inverse], count_le[inverse], n_null


def chance_fraction(n_null, low, high):
    """Fraction of null values predicted by the thresholds, assuming no ties.

    Without ties the i-th smallest null value (1-based) has right rank
    ``i / N`` and left rank ``(i - 1) / N``; the same float comparisons as
    the recall are used, so this is the recall of a pair drawn uniformly from
    the null.
    """
    N = int(n_null)
    if N == 0:
        return float("nan")
    # largest i in [0, N] with i / N <= low
    i = min(N, max(0, int(np.floor(low * N))))
    while i < N and (i + 1) / N <= low:
        i += 1
    while i > 0 and i / N > low:
        i -= 1
    # smallest m in [0, N] with m / N >= high (m = i - 1 is the left rank)
    m = min(N, max(0, int(np.ceil(high * N))))
    while m > 0 and (m - 1) / N >= high:
        m -= 1
    while m < N and m / N < high:
        m += 1
    n_low = i
    n_high = N - m
    overlap = max(0, n_low + n_high - N)
    return (n_low + n_high - overlap) / N
