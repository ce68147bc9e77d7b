"""Percentile bootstrap over perturbations (genes, labels, keys), vectorised over replicates.

A replicate draws ``n`` items with replacement out of ``n``; item ``i`` is
drawn ``w_i`` times (its multiplicity). Every statistic here is a function of
the multiplicities only, so a replicate is a few matrix products on a chunk
of the ``(n_bootstrap, n)`` multiplicity matrix, never a Python loop per
replicate:

- a mean over items: ``sum_i w_i v_i / n``;
- a ratio over pairs of items (the recall): ``sum_p w_i w_j h_p / sum_p w_i w_j``
  over the pairs ``p = (i, j)``, ``i != j`` (the copies of an item are not a
  pair of it with itself);
- a correlation over pairs (RSA): weighted Pearson, or Pearson of the
  mid-ranks of the resampled multiset (Spearman), the pair weights
  ``w_i w_j``.

The interval is the percentile interval, the ``(1 - confidence) / 2`` and
``(1 + confidence) / 2`` quantiles of the defined replicates.
"""

import numbers
import warnings

import numpy as np

__all__ = [
    "check_bootstrap",
    "check_random_state",
    "correlation_replicates",
    "interval",
    "mean_replicates",
    "multiplicities",
    "pair_ratio_replicates",
    "percentile_interval",
    "weighted_correlation",
    "widen_to_wilson",
    "wilson_interval",
]

# Share of undefined replicates above which the interval warns.
_UNDEFINED_SHARE = 0.01
# Bytes of one chunk of replicates (multiplicities and pair weights).
_CHUNK_BYTES = 32 * 2**20


def check_bootstrap(confidence, n_bootstrap):
    """Validated ``(confidence, n_bootstrap)``; ``n_bootstrap`` None becomes 0 (off)."""
    if (isinstance(confidence, bool) or not isinstance(confidence, numbers.Real)
            or not 0.0 < float(confidence) < 1.0):
        raise ValueError(
            f"confidence must be a float in (0, 1); got {confidence!r}. For a 95 % interval "
            "pass confidence=0.95."
        )
    if n_bootstrap is None:
        return float(confidence), 0
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, numbers.Integral) \
            or n_bootstrap < 0:
        raise ValueError(
            f"n_bootstrap must be a non-negative integer or None; got {n_bootstrap!r}. Pass "
            "e.g. 1000, or 0 / None to skip the confidence interval."
        )
    return float(confidence), int(n_bootstrap)


def check_random_state(random_state):
    """A :class:`numpy.random.Generator` for the replicates.

    ``None`` draws fresh entropy from the operating system and leaves NumPy's
    global random state untouched; an int seeds the generator; a
    ``RandomState`` instance (advanced by one draw) or a ``Generator`` (used
    as is) are accepted too.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state}.")
        return np.random.default_rng(int(random_state))
    raise ValueError(
        f"random_state must be None, an int, a numpy RandomState or Generator; got "
        f"{random_state!r}."
    )


def _chunk_rows(n_columns):
    return max(1, _CHUNK_BYTES // (8 * max(1, n_columns)))


def _multiplicity_chunks(n, n_bootstrap, rng, n_columns):
    """Chunks ``(rows, W)`` of the multiplicity matrix, ``W`` float64 of shape (rows, n)."""
    step = _chunk_rows(max(n, n_columns))
    for start in range(0, n_bootstrap, step):
        rows = min(step, n_bootstrap - start)
        draws = rng.integers(0, n, size=(rows, n))
        draws += (n * np.arange(rows))[:, np.newaxis]
        W = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)
        yield slice(start, start + rows), W.astype(np.float64)


def multiplicities(n, n_bootstrap, rng):
    """The ``(n_bootstrap, n)`` multiplicities (int) that the replicates use, for ``rng``."""
    return np.vstack(
        [W for _, W in _multiplicity_chunks(n, n_bootstrap, rng, n)] or [np.zeros((0, n))]
    ).astype(np.int64)


def mean_replicates(values, n_bootstrap, rng):
    """Replicates of the column means of ``values`` (shape ``(n,)`` or ``(n, k)``).

    Returns an array of shape ``(n_bootstrap,)`` or ``(n_bootstrap, k)``.
    """
    values = np.asarray(values, dtype=np.float64)
    flat = values.ndim == 1
    V = values.reshape(values.shape[0], -1)
    n = V.shape[0]
    out = np.empty((n_bootstrap, V.shape[1]))
    for sl, W in _multiplicity_chunks(n, n_bootstrap, rng, n):
        out[sl] = (W @ V) / n
    return out[:, 0] if flat else out


def pair_ratio_replicates(i, j, hits, bounds, n, n_bootstrap, rng):
    """Replicates of ``sum w_i w_j h / sum w_i w_j`` for consecutive segments of pairs.

    Parameters
    ----------
    i, j : ndarray of int, shape (n_pairs,)
        Items of each pair (``i != j``), indices into ``range(n)``.
    hits : ndarray of float, shape (n_pairs,)
    bounds : sequence of int
        Segment ``s`` is the pairs ``bounds[s]:bounds[s + 1]`` (one source each);
        every segment sees the same multiplicities.
    n : int
        Number of items resampled.

    Returns
    -------
    replicates : ndarray of shape (n_segments, n_bootstrap)
        NaN where a replicate drew no pair of the segment.
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    hits = np.asarray(hits, dtype=np.float64)
    out = np.full((bounds.size - 1, n_bootstrap), np.nan)
    for sl, W in _multiplicity_chunks(n, n_bootstrap, rng, n + i.size):
        pw = W[:, i] * W[:, j]
        for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            den = pw[:, a:b].sum(axis=1)
            num = pw[:, a:b] @ hits[a:b]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s, sl] = np.where(den > 0, num / den, np.nan)
    return out


def _mid_ranks(sorted_values, order, weights):
    """Mid-ranks of the multiset of ``values`` with multiplicities ``weights`` (rows).

    ``order`` sorts the values; ``weights`` has shape (rows, n_values). Equal
    values share the mean of their ranks, as :func:`scipy.stats.rankdata` gives
    them on the expanded data.
    """
    new = np.ones(sorted_values.size, dtype=bool)
    new[1:] = sorted_values[1:] != sorted_values[:-1]
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    ws = weights[:, order]
    totals = np.add.reduceat(ws, starts, axis=1)
    before = np.cumsum(totals, axis=1) - totals
    ranks_sorted = (before + (totals + 1.0) / 2.0)[:, group]
    ranks = np.empty_like(ranks_sorted)
    ranks[:, order] = ranks_sorted
    return ranks


def weighted_correlation(x, y, weights):
    """Pearson correlation of ``x`` and ``y`` with observation weights, one per row.

    ``x``, ``y`` have shape (n,) or (rows, n); ``weights`` (rows, n). NaN where a
    weighted variance is zero.
    """
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (weights * x).sum(axis=1) / total
        my = (weights * y).sum(axis=1) / total
        dx = x - mx[:, np.newaxis]
        dy = y - my[:, np.newaxis]
        sxy = (weights * dx * dy).sum(axis=1)
        sxx = (weights * dx * dx).sum(axis=1)
        syy = (weights * dy * dy).sum(axis=1)
        r = sxy / np.sqrt(sxx * syy)
    # constant over the drawn observations: exactly, not up to rounding
    drawn = weights > 0
    flat = ~drawn.any(axis=1)
    for v in (x, y):
        v = np.broadcast_to(v, weights.shape)
        flat |= np.where(drawn, v, np.inf).min(axis=1) == np.where(drawn, v, -np.inf).max(axis=1)
    return np.where(flat, np.nan, np.clip(r, -1.0, 1.0))


def correlation_replicates(x, y, i, j, n, n_bootstrap, rng, method, *, W=None):
    """Replicates of the correlation of ``x`` and ``y`` over resampled pairs of items.

    Pair ``p = (i_p, j_p)`` enters a replicate ``w_i w_j`` times (pairs of an
    item with itself are dropped); ``method`` is ``"pearson"`` or
    ``"spearman"`` (mid-ranks of each replicate's multiset). ``W`` replaces the
    random multiplicities (shape ``(rows, n)``), for tests.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if method == "spearman":
        ox, oy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
        sx, sy = x[ox], y[oy]

    def one_chunk(Wc):
        pw = Wc[:, i] * Wc[:, j]
        if method == "spearman":
            return weighted_correlation(_mid_ranks(sx, ox, pw), _mid_ranks(sy, oy, pw), pw)
        return weighted_correlation(x[np.newaxis, :], y[np.newaxis, :], pw)

    if W is not None:
        return one_chunk(np.asarray(W, dtype=np.float64))
    out = np.empty(n_bootstrap)
    # spearman holds a few (rows, n_pairs) temporaries
    for sl, Wc in _multiplicity_chunks(n, n_bootstrap, rng, n + 6 * i.size):
        out[sl] = one_chunk(Wc)
    return out


def percentile_interval(replicates, confidence):
    """``(low, high)`` percentile interval of the finite replicates (NaN if none)."""
    finite = replicates[np.isfinite(replicates)]
    if not finite.size:
        return float("nan"), float("nan")
    # rounded so that confidence=0.95 gives the levels 0.025 and 0.975 exactly
    tail = round((1.0 - confidence) / 2.0, 12)
    low, high = np.quantile(finite, [tail, round(1.0 - tail, 12)])
    return float(low), float(high)


def interval(replicates, confidence, what, undefined, *, stacklevel=3):
    """The percentile interval, with a warning when over 1 % of the replicates are undefined.

    ``what`` names the statistic and ``undefined`` says why a replicate can be
    undefined (both for the message).
    """
    n_bad = int(np.count_nonzero(~np.isfinite(replicates)))
    if replicates.size and n_bad > _UNDEFINED_SHARE * replicates.size:
        tail = ("the interval is NaN" if n_bad == replicates.size
                else "the interval is over the others")
        warnings.warn(
            f"{n_bad} of {replicates.size} bootstrap replicates of {what} are undefined "
            f"({undefined}); {tail}. With so few perturbations the interval is unreliable: "
            "evaluate more of them.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return percentile_interval(replicates, confidence)


def wilson_interval(k, n, confidence):
    """Wilson score interval ``(low, high)`` of a proportion ``k / n`` (NaN for ``n == 0``).

    Unlike a percentile bootstrap it is never a single point at small ``n``:
    0 of 4 gives ``(0, 0.49)`` at 95 %, not ``(0, 0)``.
    """
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def widen_to_wilson(ci, k, n, confidence):
    """A bootstrap interval of a proportion, widened to contain its Wilson interval.

    The bootstrap over perturbations carries the dependence between pairs that
    share a gene; the Wilson interval is the floor of honesty at small ``n``
    (where the bootstrap collapses to a point, e.g. 0 hits in every replicate).
    """
    low, high = wilson_interval(k, n, confidence)
    if not np.isfinite(low):
        return ci
    if not np.isfinite(ci[0]):
        return low, high
    return float(min(ci[0], low)), float(max(ci[1], high))
