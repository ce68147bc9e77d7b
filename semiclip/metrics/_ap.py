"""Average precision of every query, computed by blocks of queries.

Convention of ``copairs`` (``copairs.map.average_precision``): for a query,
the candidates are its positives (same label, other group when groups are
given, never itself) and its negatives (any other label); same-label
same-group profiles are not candidates. Candidates are ranked by decreasing
similarity and ``AP = mean over positives j (j-th positive by rank) of
j / rank_j``.

Ties score at chance: the AP of a query is its expected AP when the
candidates of equal similarity come in a uniformly random order (copairs
ranks a positive before a negative of equal similarity, which gives a
constant embedding an AP of 1). A tied group of ``s`` candidates, ``p`` of
them positives, below ``A`` candidates of which ``P`` are positives, adds
in expectation (McSherry and Najork, ECIR 2008, for this AP)::

    sum_{t=1}^{s} (p / s) * (P + 1 + (t - 1) (p - 1) / (s - 1)) / (A + t)
        = (p / s) * [(P + 1) H + (p - 1) / (s - 1) * (s - (A + 1) H)],

``H = sum_{t=1}^{s} 1 / (A + t)``: slot ``t`` holds a positive with
probability ``p / s`` and then ``(t - 1)(p - 1)/(s - 1)`` of the group's
other positives before it, on average. Each of the ``p`` positives takes a
``1 / p`` share. Without a negative in the group the order does not matter
and the AP is computed as before, so untied results are unchanged.

Only the ranks of the positives matter: ``rank_j = j + (number of negatives
strictly more similar than the j-th positive)``. The negatives are every
sample of another label, so that count is (samples strictly more similar)
minus (same-label samples strictly more similar); the second term only
involves the query's own label, and no ``n``-wide mask is ever built. With
few positives per query the first term is a handful of vectorised
comparisons of the similarity row; with many, the same-label entries are
set to -inf and the count comes from sorting the row and merging the
positives in (a stable sort of two sorted runs). The negatives tied with
each positive are counted alongside: by equality comparisons, or by
bisection in the sorted row for the positives that have a tie.
"""

import numpy as np

from ._similarity import block_rows

# Above this many positives per query, counting by sort-and-merge is cheaper.
_MAX_COMPARISONS = 24
# Memory budget of the AP loop's similarity block and its same-sized
# temporaries, in bytes (a bigger block than the recall's: fewer, larger
# matrix products).
_AP_BLOCK_BYTES = 256 * 2**20
# Rows of a similarity block compared at once (they stay in cache).
_CACHE_BYTES = 2 * 2**20
# Tied groups up to this size sum their harmonic terms directly.
_DIRECT_SUM = 64


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
    """Samples strictly more similar than, and as similar as, each positive.

    A few rows at a time, so that the ``2 k`` comparisons read them from cache.
    """
    above = np.empty(P_desc.shape, dtype=np.int64)
    equal = np.empty(P_desc.shape, dtype=np.int64)
    step = max(1, _CACHE_BYTES // (8 * max(1, S.shape[1])))
    buffer = np.empty((min(step, S.shape[0]), S.shape[1]), dtype=bool)
    for a in range(0, S.shape[0], step):
        b = min(a + step, S.shape[0])
        rows, mask = S[a:b], buffer[: b - a]
        as_bytes = mask.view(np.uint8)  # summing bytes (int32) is faster than count_nonzero
        for j in range(P_desc.shape[1]):
            np.greater(rows, P_desc[a:b, j : j + 1], out=mask)
            above[a:b, j] = np.add.reduce(as_bytes, axis=1, dtype=np.int32)
            np.equal(rows, P_desc[a:b, j : j + 1], out=mask)
            equal[a:b, j] = np.add.reduce(as_bytes, axis=1, dtype=np.int32)
    return above, equal


def _above_merge(S, P_desc, k):
    """Samples strictly more similar than, and as similar as, each positive (by merging)."""
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
    at_or_below = (position - t).reshape(-1, k_max)  # samples <= each positive
    above_asc = n - at_or_below
    # the samples equal to a positive end just before it in the merge: count them
    last = np.maximum(at_or_below - 1, 0)
    tied = (at_or_below > 0) & (np.take_along_axis(row_sorted, last, axis=1) == P_asc)
    above = np.take_along_axis(above_asc, idx, axis=1)  # back to descending
    r, c = np.nonzero(tied)
    if not r.size:
        return above, np.zeros(above.shape, dtype=np.int64)
    equal_asc = np.zeros(tied.shape, dtype=np.int64)
    below = _count_below(row_sorted, r, P_asc[r, c], at_or_below[r, c])
    equal_asc[r, c] = at_or_below[r, c] - below
    return above, np.take_along_axis(equal_asc, idx, axis=1)


def _count_below(row_sorted, r, v, upper):
    """Entries of ``row_sorted[r]`` strictly below ``v`` (at most ``upper``), by bisection.

    Vectorised over the queries ``(r, v)``: about ``log2(n)`` steps of
    ``O(len(r))`` work, no temporary of the size of the rows.
    """
    lo = np.zeros(r.size, dtype=np.int64)
    hi = np.asarray(upper, dtype=np.int64).copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        right = active & (row_sorted[r, np.minimum(mid, row_sorted.shape[1] - 1)] < v)
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)


def _harmonic(A, s):
    """``sum_{t=1}^{s} 1 / (A + t)`` for arrays ``A >= 0``, ``s >= 1``."""
    out = np.empty(A.shape, dtype=np.float64)
    small = np.flatnonzero(s <= _DIRECT_SUM)
    t = np.arange(1, _DIRECT_SUM + 1, dtype=np.float64)
    step = max(1, 2**22 // _DIRECT_SUM)  # direct sums (no cancellation), 32 MiB at a time
    for a in range(0, small.size, step):
        part = small[a : a + step]
        terms = 1.0 / (A[part, np.newaxis] + t)
        out[part] = np.where(t <= s[part, np.newaxis], terms, 0.0).sum(axis=1)
    big = np.flatnonzero(s > _DIRECT_SUM)
    if big.size:  # long runs: large enough for the difference of digammas
        from scipy.special import digamma

        out[big] = digamma(A[big] + s[big] + 1.0) - digamma(A[big] + 1.0)
    return out


def _tied_share(P_desc, above, equal, tied):
    """Expected ``j / rank_j`` of each tied positive (its share of its group, see top)."""
    k_max = P_desc.shape[1]
    cols = np.arange(k_max)
    new_run = np.ones(P_desc.shape, dtype=bool)
    new_run[:, 1:] = P_desc[:, 1:] != P_desc[:, :-1]
    first = np.maximum.accumulate(np.where(new_run, cols, 0), axis=1)  # = P of the group
    ends = np.ones(P_desc.shape, dtype=bool)
    ends[:, :-1] = new_run[:, 1:]
    last = np.minimum.accumulate(np.where(ends, cols, k_max)[:, ::-1], axis=1)[:, ::-1]
    P = first[tied].astype(np.float64)
    p = (last - first + 1)[tied].astype(np.float64)
    s = p + equal[tied]
    A = P + above[tied]
    H = _harmonic(A, s)
    return ((P + 1.0) * H + (p - 1.0) / (s - 1.0) * (s - (A + 1.0) * H)) / s


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
        above, equal = _above_compare(S, P_desc)
        # remove the same-label samples (not negatives) counted above each positive
        same_above = np.zeros((n_rows, k_max), dtype=np.int64)
        np.add.at(same_above, rows, same[:, np.newaxis] > P_desc[rows])
        above -= same_above
        same_equal = np.zeros((n_rows, k_max), dtype=np.int64)
        np.add.at(same_equal, rows, same[:, np.newaxis] == P_desc[rows])
        equal -= same_equal
    else:  # large labels: hide the same-label samples, then count what is left
        S[rows, cols] = -np.inf
        above, equal = _above_merge(S, P_desc, k)
    j = np.arange(1, k_max + 1, dtype=np.float64)
    valid = j <= k[:, np.newaxis]  # padding columns of rows with fewer positives
    precision = np.where(valid, j / (j + np.where(valid, above, 0)), 0.0)
    tied = valid & (equal > 0)  # a negative as similar as the positive
    if tied.any():
        precision[tied] = _tied_share(P_desc, above, equal, tied)
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
