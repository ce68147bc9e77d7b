"""Average precision of every query, computed by blocks of queries.

Convention of ``copairs`` (``copairs.map.average_precision``): for a query,
the candidates are its positives (same label, other group when groups are
given, never itself) and its negatives (any other label); same-label
same-group profiles are not candidates. Candidates are ranked by decreasing
similarity, a positive ranked before a negative of equal similarity, and
``AP = mean over positives j (j-th positive by rank) of j / rank_j``.

Only the ranks of the positives matter: ``rank_j = j + (number of negatives
strictly more similar than the j-th positive)``. The negatives are every
sample of another label, so that count is (samples strictly more similar)
minus (same-label samples strictly more similar); the second term only
involves the query's own label, and no ``n``-wide mask is ever built. With
few positives per query the first term is a handful of vectorised
comparisons of the similarity row; with many, the same-label entries are
set to -inf and the count comes from sorting the row and merging the
positives in (a stable sort of two sorted runs).
"""

import numpy as np

from ._similarity import block_rows

# Above this many positives per query, counting by sort-and-merge is cheaper.
_MAX_COMPARISONS = 24
# Memory budget of the AP loop's similarity block and its same-sized
# temporaries, in bytes (a bigger block than the recall's: fewer, larger
# matrix products).
_AP_BLOCK_BYTES = 256 * 2**20


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


def _above_compare(S, P_desc):
    """Samples strictly more similar than each positive, by direct comparison."""
    above = np.empty(P_desc.shape, dtype=np.int64)
    for j in range(P_desc.shape[1]):
        above[:, j] = np.count_nonzero(S > P_desc[:, j : j + 1], axis=1)
    return above


def _above_merge(S, P_desc, k):
    """Samples strictly more similar than each positive, by merging sorted runs."""
    n = S.shape[1]
    k_max = P_desc.shape[1]
    row_sorted = np.sort(S, axis=1)
    # ascending positives, padding (+inf) last; P_desc has its -inf padding last
    idx = np.clip(k[:, np.newaxis] - 1 - np.arange(k_max), 0, k_max - 1)
    P_asc = np.where(
        np.arange(k_max) < k[:, np.newaxis], np.take_along_axis(P_desc, idx, axis=1), np.inf
    )
    merged = np.concatenate([row_sorted, P_asc], axis=1)
    # stable: a sample equal to a positive stays before it, so it is not "above"
    order = np.argsort(merged, axis=1, kind="stable")
    _, position = np.nonzero(order >= n)
    t = np.tile(np.arange(k_max), S.shape[0])  # index among ascending positives
    above_asc = (n - (position - t)).reshape(-1, k_max)  # n - (samples <= positive)
    return np.take_along_axis(above_asc, idx, axis=1)  # back to descending


def _block_ap(S, rows, cols, is_pos, n_rows):
    """AP of each query row of a similarity block (``S`` is overwritten).

    ``rows, cols`` list every same-label sample of each query (itself
    included) and ``is_pos`` flags the positives among them.
    """
    same = S[rows, cols]
    k = np.bincount(rows[is_pos], minlength=n_rows)
    k_max = int(k.max())
    pr = rows[is_pos]
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    t = np.arange(pr.size) - np.repeat(starts, k)
    P_desc = np.full((n_rows, k_max), -np.inf)
    P_desc[pr, t] = same[is_pos]
    P_desc = -np.sort(-P_desc, axis=1)  # descending, -inf padding last
    if k_max <= _MAX_COMPARISONS:
        above = _above_compare(S, P_desc)
        # remove the same-label samples (not negatives) counted above each positive
        same_above = np.zeros((n_rows, k_max), dtype=np.int64)
        np.add.at(same_above, rows, same[:, np.newaxis] > P_desc[rows])
        above -= same_above
    else:  # large labels: hide the same-label samples, then count what is left
        S[rows, cols] = -np.inf
        above = _above_merge(S, P_desc, k)
    j = np.arange(1, k_max + 1, dtype=np.float64)
    valid = j <= k[:, np.newaxis]  # padding columns of rows with fewer positives
    precision = np.where(valid, j / (j + np.where(valid, above, 0)), 0.0)
    return precision.sum(axis=1) / k


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
    # members of every label, contiguous: by_label[label_start[l]:label_start[l + 1]]
    by_label = np.argsort(codes, kind="stable")
    label_size = np.bincount(codes)
    label_start = np.concatenate([[0], np.cumsum(label_size)])
    budget = _AP_BLOCK_BYTES if block_bytes is None else block_bytes
    step = block_rows(n, n_temporaries=3, block_bytes=budget)
    for start in range(0, queries.size, step):
        sel = order[start : start + step]
        q = queries[sel]
        S = similarity.rows_block(q)
        sizes = label_size[codes[q]]
        rows = np.repeat(np.arange(q.size), sizes)
        offset = np.arange(rows.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        cols = by_label[label_start[codes[q]][rows] + offset]
        if group_codes is None:
            is_pos = cols != q[rows]
        else:
            is_pos = group_codes[cols] != group_codes[q[rows]]
        ap[sel] = _block_ap(S, rows, cols, is_pos, q.size)
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
