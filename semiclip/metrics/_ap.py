"""Average precision of every query, computed by blocks of queries.

Convention of ``copairs`` (``copairs.map.average_precision``): for a query,
the candidates are its positives (same label, other group when groups are
given, never itself) and its negatives (any other label); same-label
same-group profiles are not candidates. Candidates are ranked by decreasing
similarity, a positive ranked before a negative of equal similarity, and
``AP = mean over positives j (j-th positive by rank) of j / rank_j``.

Only the ranks of the positives matter: ``rank_j = j + (number of negatives
strictly more similar than the j-th positive)``. With few positives per
query that count is a handful of vectorised comparisons; with many it comes
from sorting the negatives and merging the positives in (a stable sort of
two sorted runs).
"""

import numpy as np

from ._similarity import block_rows

# Above this many positives per query, counting by sort-and-merge is cheaper.
_MAX_COMPARISONS = 24


def n_positives(codes, group_codes):
    """Number of positives of every sample, from label (and group) counts."""
    n_labels = int(codes.max()) + 1 if codes.size else 0
    per_label = np.bincount(codes, minlength=n_labels)
    if group_codes is None:
        return per_label[codes] - 1
    n_groups = int(group_codes.max()) + 1
    cell = codes.astype(np.int64) * n_groups + group_codes
    _, cell_index, per_cell = np.unique(cell, return_inverse=True, return_counts=True)
    return per_label[codes] - per_cell[cell_index]


def _negatives_above_compare(S_neg, P_desc, k_max):
    """Negatives strictly above each positive, by direct comparison."""
    above = np.empty(P_desc.shape, dtype=np.int64)
    for j in range(k_max):
        above[:, j] = np.count_nonzero(S_neg > P_desc[:, j : j + 1], axis=1)
    return above


def _negatives_above_merge(S_neg, P_vals, k, k_max):
    """Negatives strictly above each positive, by merging two sorted runs."""
    n = S_neg.shape[1]
    S_neg.sort(axis=1)  # ascending; non-negatives are -inf and come first
    P_asc = np.where(np.arange(k_max) < k[:, np.newaxis], P_vals, np.inf)
    P_asc.sort(axis=1)  # real positives first, +inf padding last
    merged = np.concatenate([S_neg, P_asc], axis=1)
    # stable: a negative equal to a positive stays before it (not counted above)
    order = np.argsort(merged, axis=1, kind="stable")
    rows, position = np.nonzero(order >= n)
    t = np.tile(np.arange(k_max), S_neg.shape[0])  # index among ascending positives
    at_or_below = (position - t).reshape(-1, k_max)  # negatives <= the t-th positive
    above_asc = n - at_or_below
    # reorder to descending positives: the j-th best is ascending index k - 1 - j
    j = np.arange(k_max)
    idx = np.clip(k[:, np.newaxis] - 1 - j, 0, k_max - 1)
    return np.take_along_axis(above_asc, idx, axis=1)


def _block_ap(S, pos, neg, k):
    """AP of each row of a block given its similarity row and masks."""
    B = S.shape[0]
    k_max = int(k.max())
    rows, cols = np.nonzero(pos)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    t = np.arange(rows.size) - np.repeat(starts, k)
    P_vals = np.full((B, k_max), -np.inf)
    P_vals[rows, t] = S[rows, cols]
    S_neg = np.where(neg, S, -np.inf)
    if k_max <= _MAX_COMPARISONS:
        P_desc = -np.sort(-P_vals, axis=1)  # descending, -inf padding last
        above = _negatives_above_compare(S_neg, P_desc, k_max)
    else:
        above = _negatives_above_merge(S_neg, P_vals, k, k_max)
    j = np.arange(1, k_max + 1, dtype=np.float64)
    precision = j / (j + above)
    valid = j <= k[:, np.newaxis]
    return np.where(valid, precision, 0.0).sum(axis=1) / k


def average_precision(similarity, codes, group_codes, queries, *, block_bytes=None):
    """AP of each of the ``queries`` (row indices of samples with a positive).

    Returns
    -------
    ap : ndarray of float64, shape (n_queries,)
    """
    n = similarity.n
    ap = np.empty(queries.size, dtype=np.float64)
    # order queries by number of positives so a block's padding stays small
    order = np.argsort(n_positives(codes, group_codes)[queries], kind="stable")
    step = block_rows(n, n_temporaries=6, block_bytes=block_bytes)
    for start in range(0, queries.size, step):
        sel = order[start : start + step]
        rows = queries[sel]
        S = similarity.rows_block(rows)
        same = codes[rows, np.newaxis] == codes[np.newaxis, :]
        neg = ~same
        pos = same
        if group_codes is not None:
            pos &= group_codes[rows, np.newaxis] != group_codes[np.newaxis, :]
        else:
            pos[np.arange(rows.size), rows] = False
        ap[sel] = _block_ap(S, pos, neg, np.count_nonzero(pos, axis=1))
    return ap


def expected_ap(n_pos, n_candidates):
    """Expected AP of a uniformly random ranking (copairs' ``expected_ap``).

    ``E[AP] = ((M - 1) / (L - 1) * (L - H_L) + H_L) / L`` for ``M`` positives
    among ``L`` candidates, ``H_L`` the L-th harmonic number.
    """
    from scipy.special import digamma

    M = np.asarray(n_pos, dtype=np.float64)
    L = np.asarray(n_candidates, dtype=np.float64)
    H = digamma(L + 1.0) + np.euler_gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = ((M - 1.0) / (L - 1.0) * (L - H) + H) / L
    return np.where(M >= L, 1.0, mu)


def random_ap(k, L, size, rng):
    """``size`` APs of rankings with ``k`` positives placed at random among ``L``."""
    if k >= L:
        return np.ones(size)
    ranks = np.empty((size, k), dtype=np.int64)
    if k * k <= 2 * L:  # duplicates rare: draw with replacement and redraw rows
        todo = np.arange(size)
        while todo.size:
            draw = np.sort(rng.integers(0, L, size=(todo.size, k)), axis=1)
            ok = (np.diff(draw, axis=1) > 0).all(axis=1)
            ranks[todo[ok]] = draw[ok]
            todo = todo[~ok]
    else:  # k random keys of L: the k smallest of L uniforms
        rows_per_chunk = max(1, (8 * 2**20) // L)
        for s in range(0, size, rows_per_chunk):
            keys = rng.random((min(rows_per_chunk, size - s), L))
            part = np.argpartition(keys, k - 1, axis=1)[:, :k]
            ranks[s : s + part.shape[0]] = np.sort(part, axis=1)
    j = np.arange(1, k + 1, dtype=np.float64)
    return (j / (ranks + 1.0)).mean(axis=1)
