"""Bootstrap confidence intervals of the recall and the mAP (over perturbations)."""

import itertools
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from semiclip.metrics import _bootstrap, known_relationship_recall, mean_average_precision


def _compositions(n, k):
    """Every multiplicity vector of ``n`` draws among ``k`` items, with its probability."""
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        w = np.diff([-1, *bars, n + k - 1]) - 1
        prob = Fraction(math.factorial(n), math.prod(math.factorial(int(c)) for c in w))
        yield w, prob / k**n


def _three_genes():
    # A-B the most similar pair (left rank 2/3 >= 0.6: predicted), B-C the middle one
    # (ranks 1/3, 2/3: not predicted), A-C the least similar (not annotated)
    X = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    return X, np.array(["A", "B", "C"]), [["A", "B"], ["B", "C"]]


def test_recall_bootstrap_of_three_genes_is_the_exact_multiset_distribution():
    X, genes, pairs = _three_genes()
    with pytest.warns(UserWarning, match=r"bootstrap replicates .* no annotated pair"):
        res = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                        thresholds=(0.3, 0.6), n_bootstrap=6000,
                                        random_state=0)
    assert res.predicted.tolist() == [True, False]
    # exact: enumerate the multisets of 3 draws among A, B, C
    exact = {}
    for (wa, wb, wc), prob in _compositions(3, 3):
        den = wa * wb + wb * wc
        value = Fraction(int(wa * wb), int(den)) if den else None
        exact[value] = exact.get(value, 0) + prob
    undefined = exact.pop(None)
    assert undefined == Fraction(1, 3)
    defined = {v: p / (1 - undefined) for v, p in exact.items()}  # 0, 1/2, 1: 1/3 each
    reps = res.replicates
    assert reps.shape == (6000,)
    assert abs(np.isnan(reps).mean() - float(undefined)) < 0.03
    ok = reps[~np.isnan(reps)]
    for value, prob in defined.items():
        assert abs(np.mean(ok == float(value)) - float(prob)) < 0.03
    # the 2.5 % and 97.5 % quantiles of {0, 1/2, 1} (1/3 each) are 0 and 1
    assert (res.ci_low, res.ci_high) == (0.0, 1.0)
    assert (res.confidence, res.n_bootstrap) == (0.95, 6000)


def test_recall_interval_quantiles_match_the_exact_distribution():
    # 5 genes, 6 annotated pairs: the exact bootstrap distribution by enumeration
    X = np.random.default_rng(0).normal(size=(5, 3))
    genes = np.array(list("ABCDE"))
    pairs = [["A", "B"], ["A", "C"], ["B", "D"], ["C", "D"], ["D", "E"], ["B", "E"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                        thresholds=(0.3, 0.6), confidence=0.5,
                                        n_bootstrap=20000, random_state=1)
    hits = dict(zip(map(tuple, res.pairs.tolist()), res.predicted.tolist()))
    assert 0 < sum(hits.values()) < len(hits)
    values, probs = [], []
    for w, prob in _compositions(5, 5):
        wd = dict(zip("ABCDE", w.tolist()))
        den = sum(wd[a] * wd[b] for (a, b) in hits)
        if den:
            values.append(Fraction(sum(wd[a] * wd[b] * h for (a, b), h in hits.items()), den))
            probs.append(prob)
    order = np.argsort(values)
    cdf = np.cumsum(np.array(probs, dtype=object)[order]) / sum(probs)
    vals = np.array(values, dtype=object)[order]

    def exact_quantile(level):
        return float(vals[np.searchsorted(cdf.astype(float), level)])

    # the empirical quantile of 20000 replicates lies within +-0.01 in level of the exact one
    for level, got in ((0.25, res.ci_low), (0.75, res.ci_high)):
        assert exact_quantile(level - 0.01) <= got <= exact_quantile(level + 0.01)
    assert exact_quantile(0.24) < exact_quantile(0.76)


def test_recall_interval_covers_the_population_recall():
    """200 samples of 60 genes from a population of 1500 genes with known recall."""
    rng = np.random.default_rng(0)
    N, n = 1500, 60
    u = rng.normal(size=N)
    iu, ju = np.triu_indices(N, 1)
    annotated = rng.random(iu.size) < 0.08
    hit = rng.random(iu.size) < 1.0 / (1.0 + np.exp(-(u[iu] + u[ju] - 1.5)))
    truth = hit[annotated].mean()
    index = np.full((N, N), -1)
    index[iu[annotated], ju[annotated]] = np.arange(annotated.sum())
    hit_a = hit[annotated]
    covered = []
    for _ in range(200):
        genes = np.sort(rng.choice(N, size=n, replace=False))
        a, b = np.triu_indices(n, 1)
        p = index[genes[a], genes[b]]
        keep = p >= 0
        i, j, h = a[keep], b[keep], hit_a[p[keep]]
        reps = _bootstrap.pair_ratio_replicates(i, j, h.astype(float), [0, i.size], n, 400,
                                                np.random.default_rng(rng.integers(2**32)))
        low, high = _bootstrap.percentile_interval(reps[0], 0.9)
        covered.append(low <= truth <= high)
    # nominal 0.9; 200 draws have a binomial sd of 0.02
    assert 0.84 <= np.mean(covered) <= 0.96


def test_recall_point_estimate_does_not_depend_on_the_bootstrap():
    rng = np.random.default_rng(3)
    genes = np.repeat([f"g{i}" for i in range(25)], 2)
    X = rng.normal(size=(50, 6))
    pairs = np.array([f"g{i}" for i in range(25)])[rng.integers(0, 25, size=(60, 2))]
    off = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                    n_bootstrap=0)
    on = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                   random_state=0)
    assert on.recall == off.recall and on.n_pairs == off.n_pairs
    assert np.isnan(off.ci_low) and np.isnan(off.ci_high) and off.n_bootstrap == 0
    assert off.replicates.shape == (0,)
    assert on.n_bootstrap == 1000 and on.ci_low <= on.recall <= on.ci_high
    # reproducible with a seed, different without the same one
    again = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                      random_state=0)
    assert np.array_equal(again.replicates, on.replicates)
    other = known_relationship_recall(X, genes, relationships=pairs, normalize=None,
                                      random_state=1)
    assert not np.array_equal(other.replicates, on.replicates)
    # None leaves NumPy's global random state alone
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    known_relationship_recall(X, genes, relationships=pairs, normalize=None)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_recall_replicates_match_a_slow_reference():
    rng = np.random.default_rng(4)
    names = np.array([f"g{i}" for i in range(12)])
    X = rng.normal(size=(12, 4))
    pairs = names[rng.integers(0, 12, size=(30, 2))]
    res = known_relationship_recall(X, names, relationships=pairs, normalize=None,
                                    n_bootstrap=50, random_state=7)
    # the same multiplicities, drawn as the helper draws them, applied pair by pair
    W = _bootstrap.multiplicities(12, 50, _bootstrap.check_random_state(7))
    lookup = {g: k for k, g in enumerate(sorted(names.tolist()))}  # genes in sorted order
    for b in range(50):
        num = den = 0
        for (ga, gb), h in zip(res.pairs.tolist(), res.predicted.tolist()):
            w = W[b, lookup[ga]] * W[b, lookup[gb]]
            num, den = num + w * h, den + w
        assert res.replicates[b] == (num / den if den else np.nan) or (
            den == 0 and np.isnan(res.replicates[b]))


def test_several_sources_share_the_multiplicities():
    rng = np.random.default_rng(5)
    names = np.array([f"g{i}" for i in range(20)])
    X = rng.normal(size=(20, 5))
    p1 = names[rng.integers(0, 20, size=(40, 2))]
    p2 = names[rng.integers(0, 20, size=(40, 2))]
    both = known_relationship_recall(X, names, relationships={"one": p1, "two": p2},
                                     normalize=None, n_bootstrap=200, random_state=3)
    alone = known_relationship_recall(X, names, relationships=p2, normalize=None,
                                      n_bootstrap=200, random_state=3)
    assert np.array_equal(both["two"].replicates, alone.replicates)


def test_recall_bad_bootstrap_arguments():
    X, genes, pairs = _three_genes()
    kw = dict(relationships=pairs, normalize=None)
    with pytest.raises(ValueError, match=r"confidence must be a float in \(0, 1\); got 95"):
        known_relationship_recall(X, genes, confidence=95, **kw)
    with pytest.raises(ValueError, match=r"n_bootstrap must be a non-negative integer or None"):
        known_relationship_recall(X, genes, n_bootstrap=-5, **kw)
    with pytest.raises(ValueError, match=r"n_bootstrap must be .* got 2.5"):
        known_relationship_recall(X, genes, n_bootstrap=2.5, **kw)
    with pytest.raises(ValueError, match=r"random_state"):
        known_relationship_recall(X, genes, random_state="seed", **kw)


# ---------------------------------------------------------------------- mAP
def _map_data(rng, n_labels=12, reps=3, dim=6, signal=1.0):
    labels = np.repeat(np.arange(n_labels), reps)
    X = signal * rng.normal(size=(n_labels, dim))[labels] + rng.normal(size=(labels.size, dim))
    return X, labels


def test_map_bootstrap_of_three_labels_is_the_exact_multiset_distribution():
    X = np.random.default_rng(8).normal(size=(6, 2))  # label mAPs 3/4, 2/3 and 1
    labels = ["a", "a", "b", "b", "c", "c"]
    res = mean_average_precision(X, labels, n_bootstrap=8000, random_state=0)
    m = dict(zip(res.labels.tolist(), res.label_map.tolist()))
    assert len(set(m.values())) == 3
    exact = {}
    for (wa, wb, wc), prob in _compositions(3, 3):
        value = (wa * m["a"] + wb * m["b"] + wc * m["c"]) / 3
        key = round(value, 12)
        exact[key] = exact.get(key, 0) + float(prob)
    got = np.round(res.replicates, 12)
    assert set(np.unique(got).tolist()) <= set(exact)
    for value, prob in exact.items():
        assert abs(np.mean(got == value) - prob) < 0.025
    assert res.chance == pytest.approx(res.label_chance.mean())
    assert res.ci_low <= res.map <= res.ci_high


def test_map_interval_covers_the_mean_label_map():
    """Labels drawn from a population: the interval covers the population mean mAP."""
    rng = np.random.default_rng(1)
    # a population of 3000 labels of which every data set sees 40; the truth is the
    # expected mAP of such a data set (estimated by the mean over the 150 data sets)
    pool_centers = rng.normal(size=(3000, 6)) * rng.uniform(0.3, 1.5, size=(3000, 1))
    noise = rng.normal(size=(3000, 3, 6))
    rows = (pool_centers[:, None, :] + noise).reshape(-1, 6)
    covered, estimates = [], []
    for _ in range(150):
        pick = rng.choice(3000, size=40, replace=False)
        res = mean_average_precision(rows.reshape(3000, 3, 6)[pick].reshape(-1, 6),
                                     np.repeat(np.arange(40), 3), confidence=0.9,
                                     n_bootstrap=300, random_state=int(rng.integers(2**31)))
        estimates.append(res.map)
        covered.append((res.ci_low, res.ci_high))
    truth = np.mean(estimates)  # unbiased estimate of the expected mAP of such a data set
    cover = np.mean([lo <= truth <= hi for lo, hi in covered])
    assert 0.82 <= cover <= 0.97


def test_map_point_estimate_and_p_values_unchanged():
    rng = np.random.default_rng(2)
    X, labels = _map_data(rng)
    off = mean_average_precision(X, labels, null_size=50, random_state=4, n_bootstrap=None)
    on = mean_average_precision(X, labels, null_size=50, random_state=4)
    assert on.map == off.map
    assert np.array_equal(on.label_p_values, off.label_p_values)
    assert np.array_equal(on.ap, off.ap, equal_nan=True)
    assert np.isnan(off.ci_low) and off.n_bootstrap == 0
    again = mean_average_precision(X, labels, random_state=4)
    assert np.array_equal(again.replicates, on.replicates)
    assert (on.ci_low, on.ci_high) == tuple(np.quantile(on.replicates, [0.025, 0.975]))


def test_map_replicates_are_means_of_resampled_labels():
    rng = np.random.default_rng(3)
    X, labels = _map_data(rng, n_labels=7)
    res = mean_average_precision(X, labels, n_bootstrap=40, random_state=9)
    W = _bootstrap.multiplicities(7, 40, _bootstrap.check_random_state(9))
    for b in range(40):
        drawn = np.repeat(res.label_map, W[b])
        assert res.replicates[b] == pytest.approx(drawn.mean(), abs=1e-14)


def test_map_without_queries_has_nan_interval():
    with pytest.warns(UserWarning, match="No sample has a positive"):
        res = mean_average_precision(np.eye(3), ["a", "b", "c"], random_state=0)
    assert np.isnan(res.map) and np.isnan(res.ci_low) and np.isnan(res.ci_high)


def test_map_bad_bootstrap_arguments():
    X, labels = _map_data(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"confidence must be a float in \(0, 1\); got 1.0"):
        mean_average_precision(X, labels, confidence=1.0)
    with pytest.raises(ValueError, match=r"n_bootstrap must be a non-negative integer"):
        mean_average_precision(X, labels, n_bootstrap="many")
