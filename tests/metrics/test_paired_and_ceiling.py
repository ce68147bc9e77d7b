"""Honest intervals at small n, paired differences and the split-half ceiling.

- the recall (a proportion of pairs) never reports "0 to 0" from 0 of 4 pairs:
  its interval contains the Wilson score interval, checked on a hand example;
- ``paired_difference`` against a slow reference bootstrap (one loop per
  replicate, the same draws);
- ``split_half_ceiling`` on data with known reproducibility.
"""

import math
import re
import warnings

import numpy as np
import pytest

from semiclip.metrics import (
    cross_modal_retrieval,
    known_relationship_recall,
    mean_average_precision,
    paired_difference,
    representational_similarity,
    split_half_ceiling,
)


def _wilson_by_hand(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_hand_values():
    # 0 of 4 at 95 %: centre = half = (z^2/8) / (1 + z^2/4) = 0.24495 -> (0, 0.48990)
    assert _wilson_by_hand(0, 4) == pytest.approx((0.0, 0.4898908), abs=1e-6)
    # 5 of 10: the textbook (0.2366, 0.7634)
    assert _wilson_by_hand(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-5)


def test_recall_of_zero_in_four_pairs_is_not_zero_to_zero():
    rng = np.random.default_rng(0)
    genes = np.repeat([f"g{i}" for i in range(12)], 2)
    X = rng.normal(size=(24, 5))
    pairs = [["g0", "g1"], ["g2", "g3"], ["g4", "g5"], ["g6", "g7"]]
    with pytest.warns(UserWarning, match="replicates of the recall .* are undefined"):
        res = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                        random_state=0)
    assert res.n_pairs == 4 and int(res.predicted.sum()) == 0  # this seed: 0 of 4
    assert np.nanmax(res.replicates) == 0  # the bootstrap alone says "0 to 0"
    assert (res.ci_low, res.ci_high) == pytest.approx(_wilson_by_hand(0, 4), abs=1e-9)


def test_top_k_interval_contains_wilson():
    rng = np.random.default_rng(3)
    teacher = rng.normal(size=(5, 4))
    keys = np.repeat(np.arange(5), 2)
    res = cross_modal_retrieval(rng.normal(size=(10, 4)), keys, teacher, np.arange(5),
                                top_k=(1,), random_state=0)
    k = res.top_k[1] * 5
    low, high = _wilson_by_hand(k, 5)
    assert res.top_k_ci[1][0] <= low + 1e-12 and res.top_k_ci[1][1] >= high - 1e-12


# ------------------------------------------------------------ paired difference
def _reference_draws(n, n_bootstrap, seed):
    """The draws of the vectorised bootstrap (one chunk: an (n_bootstrap, n) matrix)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))


def test_paired_map_difference_matches_a_slow_reference():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(25), 3)
    signal = rng.normal(size=(25, 6))[y]
    a = mean_average_precision(signal + rng.normal(size=(75, 6)), y, n_bootstrap=0)
    keep = y != 3  # B misses one label: only the shared labels count
    b = mean_average_precision(signal[keep] + 2 * rng.normal(size=(72, 6)), y[keep],
                               n_bootstrap=0)
    d = paired_difference(a, b, n_bootstrap=300, random_state=5)
    shared = [lab for lab in a.labels if lab in set(b.labels)]
    per = {lab: a.label_map[list(a.labels).index(lab)] - b.label_map[list(b.labels).index(lab)]
           for lab in shared}
    diffs = np.array([per[lab] for lab in sorted(shared, key=str)])
    assert d.n == 24 and d.difference == pytest.approx(diffs.mean())
    reps = [np.mean([diffs[i] for i in draw]) for draw in _reference_draws(24, 300, 5)]
    assert (d.ci_low, d.ci_high) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])))


def test_paired_recall_difference_matches_a_slow_reference():
    rng = np.random.default_rng(1)
    genes = np.repeat([f"g{i:02d}" for i in range(30)], 2)
    pairs = [[f"g{i:02d}", f"g{(i * 7 + 3) % 30:02d}"] for i in range(30) if i != (i * 7 + 3) % 30]
    base = rng.normal(size=(30, 8))[np.repeat(np.arange(30), 2)]
    a = known_relationship_recall(base + 0.3 * rng.normal(size=base.shape), genes,
                                  relationships=pairs, normalize=None, n_bootstrap=0)
    b = known_relationship_recall(rng.normal(size=base.shape), genes, relationships=pairs,
                                  normalize=None, n_bootstrap=0)
    d = paired_difference(a, b, n_bootstrap=200, random_state=2)
    assert d.difference == pytest.approx(a.recall - b.recall)
    # slow reference: every replicate a loop over pairs, weight w_i * w_j
    key = [tuple(sorted(p)) for p in a.pairs.astype(str)]
    hb = {tuple(sorted(p)): h for p, h in zip(b.pairs.astype(str), b.predicted)}
    names = sorted({g for p in key for g in p})
    reps = []
    for draw in _reference_draws(len(names), 200, 2):
        w = {g: int(np.sum(draw == c)) for c, g in enumerate(names)}
        num = sum(w[p[0]] * w[p[1]] * (float(ha) - float(hb[p])) for p, ha in
                  zip(key, a.predicted))
        den = sum(w[p[0]] * w[p[1]] for p in key)
        reps.append(num / den if den else np.nan)
    reps = np.array(reps)
    expected = np.quantile(reps[np.isfinite(reps)], [0.025, 0.975])
    assert (d.ci_low, d.ci_high) == pytest.approx(tuple(expected))


def test_paired_rsa_difference_matches_a_slow_reference():
    """Each replicate expands the drawn keys (key i drawn w_i times), forms every pair of copies
    of two different keys and takes scipy's Spearman correlation, on both sides alike."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    keys = np.repeat(np.arange(12), 2)
    teacher = rng.normal(size=(12, 4))
    a_emb = teacher[keys] @ rng.normal(size=(4, 6)) + 0.5 * rng.normal(size=(24, 6))
    b_emb = rng.normal(size=(24, 6))
    keep = keys != 5  # B misses one key: only the 11 shared keys count
    a = representational_similarity(a_emb, keys, teacher, np.arange(12), n_bootstrap=0)
    b = representational_similarity(b_emb[keep], keys[keep], teacher, np.arange(12),
                                    n_bootstrap=0)
    d = paired_difference(a, b, n_bootstrap=60, random_state=4)
    shared = [k for k in range(12) if k != 5]

    def rsa_of(emb, rows, draw=None):
        means = np.array([emb[rows][keys[rows] == k].mean(axis=0) for k in shared])
        unit = lambda M: M / np.linalg.norm(M, axis=1, keepdims=True)  # noqa: E731
        s, t = unit(means) @ unit(means).T, unit(teacher[shared]) @ unit(teacher[shared]).T
        copies = np.arange(len(shared)) if draw is None else np.sort(draw)
        x, y = [], []
        for p in range(copies.size):
            for q in range(p + 1, copies.size):
                if copies[p] != copies[q]:
                    x.append(s[copies[p], copies[q]])
                    y.append(t[copies[p], copies[q]])
        return spearmanr(x, y).statistic

    every = np.ones(24, dtype=bool)
    assert d.n == 11
    assert d.value_a == pytest.approx(rsa_of(a_emb, every))
    assert d.value_b == pytest.approx(rsa_of(b_emb, keep))
    reps = [rsa_of(a_emb, every, draw) - rsa_of(b_emb, keep, draw)
            for draw in _reference_draws(11, 60, 4)]
    np.testing.assert_allclose(d.replicates, reps, atol=1e-10)


def test_paired_difference_bad_input():
    y = np.repeat(np.arange(4), 2)
    X = np.random.default_rng(0).normal(size=(8, 3))
    mp = mean_average_precision(X, y, n_bootstrap=0)
    with pytest.raises(TypeError, match="same metric .* got MAPResult and float"):
        paired_difference(mp, 0.5)
    other = mean_average_precision(X, y + 10, n_bootstrap=0)
    with pytest.raises(ValueError, match=re.escape("a and b share no scored perturbation (mAP)")):
        paired_difference(mp, other)


# -------------------------------------------------------------------- ceiling
def test_ceiling_of_noiseless_replicates_is_one_and_of_noise_is_chance():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(30), 4)
    clean = rng.normal(size=(30, 8))[y]
    top = split_half_ceiling(clean, y, n_bootstrap=100, random_state=0)
    assert top.ceiling == pytest.approx(1.0) and top.position(top.chance) == 0
    assert top.position(1.0) == pytest.approx(1.0)
    noise = split_half_ceiling(rng.normal(size=(120, 8)), y, n_bootstrap=200, random_state=0)
    assert noise.ci_low <= noise.chance * 1.5 and noise.ceiling < 0.3
    rec = split_half_ceiling(clean, y, metric="recall", n_bootstrap=0, random_state=0)
    assert rec.ceiling == pytest.approx(1.0)  # half B repeats every call of half A
    rec_noise = split_half_ceiling(rng.normal(size=(120, 8)), y, metric="recall",
                                   n_bootstrap=200, random_state=0)
    assert rec_noise.ci_low <= rec_noise.chance <= rec_noise.ci_high


def test_ceiling_leaves_out_controls_and_singletons():
    rng = np.random.default_rng(1)
    y = np.array(["c"] * 6 + list(np.repeat(["a", "b", "d"], 2)) + ["e"], dtype=object)
    X = rng.normal(size=(y.size, 3))
    res = split_half_ceiling(X, y, control_label="c", n_bootstrap=0)
    assert res.n_perturbations == 3
    with pytest.raises(ValueError, match="needs at least 3 perturbations with 2 or more "
                                         "replicates; got 2"):
        split_half_ceiling(X[:-3], y[:-3], control_label="c")
    with pytest.raises(ValueError, match="metric must be 'mAP' or 'recall'; got 'mrr'"):
        split_half_ceiling(X, y, metric="mrr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split_half_ceiling(X, y, control_label="c", n_bootstrap=50, random_state=0)


def _reference_halves(y, seed):
    """The halves of one split, drawn as the ceiling draws them (a permutation per key)."""
    rng = np.random.default_rng(seed)
    names = sorted(set(y.tolist()), key=str)  # keys in string order, as the ceiling
    half = np.empty(y.size, dtype=int)
    for name in names:
        rows = np.flatnonzero(y == name)
        half[rows[rng.permutation(rows.size)]] = np.arange(rows.size) % 2
    return names, half


def _cos(u, v):
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def test_ceiling_matches_a_slow_reference_split():
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(30), 3)
    X = rng.normal(size=(30, 5))[y] + 1.2 * rng.normal(size=(90, 5))
    names, half = _reference_halves(y, 9)
    A = np.array([X[(y == n) & (half == 0)].mean(axis=0) for n in names])
    B = np.array([X[(y == n) & (half == 1)].mean(axis=0) for n in names])
    P = len(names)
    # mAP: each half mean has one positive (its other half) among the 2P - 1 other means
    means = np.vstack([A, B])
    aps = []
    for q in range(2 * P):
        pos = (q + P) % (2 * P)
        sims = {c: _cos(means[q], means[c]) for c in range(2 * P) if c != q}
        aps.append(1.0 / (1 + sum(s > sims[pos] for s in sims.values())))
    res = split_half_ceiling(X, y, n_splits=1, n_bootstrap=0, random_state=9)
    assert res.ceiling == pytest.approx(np.mean(aps))
    # recall: the pairs in the bottom / top 5 % of half A, called again in half B
    pairs = [(i, j) for i in range(P) for j in range(i + 1, P)]

    def calls(M):
        sims = np.array([_cos(M[i], M[j]) for i, j in pairs])
        n = len(pairs)
        return {p for p, s in zip(pairs, sims)
                if np.sum(sims <= s) / n <= 0.05 or np.sum(sims < s) / n >= 0.95}

    in_a, in_b = calls(A), calls(B)
    rec = split_half_ceiling(X, y, metric="recall", n_splits=1, n_bootstrap=0, random_state=9)
    assert len(in_a) > 5
    assert rec.ceiling == pytest.approx(len(in_a & in_b) / len(in_a))
