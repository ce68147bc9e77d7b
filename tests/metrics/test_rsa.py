"""Tests for semiclip.metrics.representational_similarity (RSA against the teacher)."""

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from semiclip import ImageBank
from semiclip.metrics import (
    RSAResult,
    _bootstrap,
    make_rsa_scorer,
    representational_similarity,
)


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _upper(M):
    """Pairwise cosines of the rows, pair by pair in (i < j) order."""
    n = M.shape[0]
    return np.array([_cos(M[i], M[j]) for i in range(n) for j in range(i + 1, n)])


@pytest.mark.filterwarnings("ignore:.* identical to a row of another key:UserWarning")
def test_hand_example():
    # 3 keys: student cosines (a-b, a-c, b-c) = (1, 0, 0); teacher (0.6, 0, 0.8)
    S = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    T = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    res = representational_similarity(S, list("abc"), T, list("abc"), method="pearson",
                                      n_bootstrap=0)
    assert np.allclose(res.student_similarity, [1, 0, 0])
    assert np.allclose(res.teacher_similarity, [0.6, 0, 0.8])
    # pearson of (1, 0, 0) and (0.6, 0, 0.8): centred (2/3, -1/3, -1/3), (4/30, -14/30, 10/30)
    x, y = np.array([2, -1, -1]) / 3, np.array([4, -14, 10]) / 30
    assert res.correlation == pytest.approx(x @ y / np.sqrt((x @ x) * (y @ y)))
    assert (res.n_keys, res.n_pairs) == (3, 3)
    assert isinstance(res, RSAResult) and float(res) == res.correlation


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_matches_scipy_on_pairwise_cosines(method):
    rng = np.random.default_rng(0)
    n = 12
    S = rng.normal(size=(3 * n, 5))
    keys = np.repeat(np.arange(n), 3)
    T = rng.normal(size=(n, 7)) + S.reshape(n, 3, 5).mean(axis=1) @ rng.normal(size=(5, 7))
    res = representational_similarity(S, keys, T, np.arange(n), method=method,
                                      n_bootstrap=0)
    xs, ys = _upper(S.reshape(n, 3, 5).mean(axis=1)), _upper(T)
    ref = (spearmanr if method == "spearman" else pearsonr)(xs, ys)[0]
    assert res.correlation == pytest.approx(ref, abs=1e-12)
    assert res.n_pairs == n * (n - 1) // 2


def test_weighted_spearman_is_spearman_of_the_expanded_draws():
    """A replicate's correlation equals scipy on the explicitly resampled keys."""
    rng = np.random.default_rng(1)
    n = 7
    S, T = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    # ties among the similarities: round them
    res = representational_similarity(np.round(S, 1), np.arange(n), np.round(T, 1),
                                      np.arange(n), n_bootstrap=0)
    x, y = res.student_similarity, res.teacher_similarity
    i, j = np.triu_indices(n, 1)
    W = rng.multinomial(n, np.full(n, 1 / n), size=20)
    got = {m: _bootstrap.correlation_replicates(x, y, i, j, n, 20, None, m, W=W)
           for m in ("spearman", "pearson")}
    for b in range(20):
        draws = np.repeat(np.arange(n), W[b])
        ea, eb = np.triu_indices(draws.size, 1)
        keep = draws[ea] != draws[eb]  # a key with itself is no pair
        pair = {(a, c): p for p, (a, c) in enumerate(zip(i, j))}
        idx = [pair[(min(a, c), max(a, c))] for a, c in zip(draws[ea][keep], draws[eb][keep])]
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            assert np.isnan(got["spearman"][b])
            continue
        assert got["spearman"][b] == pytest.approx(spearmanr(x[idx], y[idx])[0], abs=1e-12)
        assert got["pearson"][b] == pytest.approx(pearsonr(x[idx], y[idx])[0], abs=1e-12)
    # all multiplicities 1: the point estimate
    ones = np.ones((1, n))
    one = _bootstrap.correlation_replicates(x, y, i, j, n, 1, None, "spearman", W=ones)
    assert one[0] == pytest.approx(res.correlation, abs=1e-12)


def test_bootstrap_interval_is_reproducible_and_brackets():
    rng = np.random.default_rng(2)
    n = 15
    Z = rng.normal(size=(n, 4))
    S = Z + 0.3 * rng.normal(size=(n, 4))
    T = Z @ rng.normal(size=(4, 6))
    res = representational_similarity(S, np.arange(n), T, np.arange(n), n_bootstrap=200,
                                      random_state=0)
    again = representational_similarity(S, np.arange(n), T, np.arange(n), n_bootstrap=200,
                                        random_state=0)
    assert np.array_equal(res.replicates, again.replicates)
    assert res.replicates.shape == (200,) and res.n_bootstrap == 200
    assert res.ci_low < res.correlation < res.ci_high
    assert (res.ci_low, res.ci_high) == tuple(np.quantile(res.replicates, [0.025, 0.975]))
    off = representational_similarity(S, np.arange(n), T, np.arange(n), n_bootstrap=None)
    assert off.correlation == res.correlation and np.isnan(off.ci_low)


def test_interval_covers_the_population_rsa():
    """Keys from a population: the percentile interval covers the population correlation."""
    rng = np.random.default_rng(3)
    N, n, d = 400, 25, 4
    Z = rng.normal(size=(N, d))
    S = Z + 0.8 * rng.normal(size=(N, d))
    T = Z @ rng.normal(size=(d, 5))
    truth = spearmanr(_upper(S), _upper(T))[0]
    covered = []
    for _ in range(40):
        pick = rng.choice(N, size=n, replace=False)
        res = representational_similarity(S[pick], pick, T[pick], pick, confidence=0.9,
                                          n_bootstrap=150,
                                          random_state=int(rng.integers(2**31)))
        covered.append(res.ci_low <= truth <= res.ci_high)
    assert 0.75 <= np.mean(covered) <= 1.0


def test_ranks_are_invariant_to_monotone_and_key_order():
    rng = np.random.default_rng(4)
    S, T = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    keys = np.array(list("hgfedcba"))
    res = representational_similarity(S, keys, T, keys, n_bootstrap=0)
    perm = rng.permutation(8)
    shuffled = representational_similarity(S[perm], keys[perm], ImageBank(T, keys),
                                           n_bootstrap=0)
    assert shuffled.correlation == pytest.approx(res.correlation, abs=1e-6)
    assert res.keys.tolist() == sorted(keys.tolist())


@pytest.mark.filterwarnings("ignore:all 5 rows of the teacher key means:UserWarning")
def test_collapsed_teacher_warns_and_is_nan():
    S = np.random.default_rng(5).normal(size=(5, 3))
    with pytest.warns(UserWarning, match=r"teacher similarities are all equal"):
        res = representational_similarity(S, np.arange(5), np.ones((5, 3)), np.arange(5),
                                          n_bootstrap=0)
    assert np.isnan(res.correlation)


def test_to_frame_and_repr():
    rng = np.random.default_rng(6)
    S, T = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    res = representational_similarity(S, list("abcd"), T, list("abcd"), n_bootstrap=0)
    frame = res.to_frame()
    assert frame.columns.tolist() == ["key_a", "key_b", "student_similarity",
                                      "teacher_similarity"]
    assert frame.shape == (6, 4)
    assert "RSAResult(correlation=" in repr(res)


def test_bad_input():
    S = np.random.default_rng(0).normal(size=(4, 3))
    keys = list("abcd")
    with pytest.raises(ValueError, match=r"method must be 'spearman' or 'pearson'"):
        representational_similarity(S, keys, S, keys, method="kendall")
    with pytest.raises(ValueError, match=r"only 2 keys .* at least 3"):
        representational_similarity(S, keys, S, list("abxy"))
    with pytest.raises(ValueError, match=r"No key of keys is in teacher_keys"):
        representational_similarity(S, keys, S, list("wxyz"))


def test_rsa_scorer():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(7)
    y = np.repeat(np.arange(10), 2)
    X = rng.normal(size=(20, 6))
    teacher = rng.normal(size=(10, 3))
    pca = PCA(n_components=2).fit(X)
    scorer = make_rsa_scorer(teacher, teacher_keys=np.arange(10))
    expected = representational_similarity(pca.transform(X), y, teacher, np.arange(10),
                                           n_bootstrap=0).correlation
    with pytest.warns(UserWarning, match="rests on 10 keys"):
        assert scorer(pca, X, y) == expected
    pearson = make_rsa_scorer(ImageBank(teacher, np.arange(10)), method="pearson")
    with pytest.warns(UserWarning, match="rests on 10 keys"):
        score = pearson(pca, X, y)
    assert score == pytest.approx(representational_similarity(
        pca.transform(X), y, teacher.astype(np.float32), np.arange(10), method="pearson",
        n_bootstrap=0).correlation)


def test_euclidean_distance_and_controls():
    rng = np.random.default_rng(8)
    S, T = rng.normal(size=(7, 3)), rng.normal(size=(7, 5))
    keys = np.array(["ctl", "a", "b", "c", "d", "e", "f"])
    res = representational_similarity(S, keys, T, keys, distance="euclidean",
                                      control_label="ctl", n_bootstrap=0)
    def neg_dist(M):
        n = M.shape[0]
        return np.array([-np.linalg.norm(M[i] - M[j]) for i in range(n) for j in range(i + 1, n)])

    ref = spearmanr(neg_dist(S[1:]), neg_dist(T[1:]))[0]
    assert res.keys.tolist() == list("abcdef") and res.n_pairs == 15
    assert res.correlation == pytest.approx(ref, abs=1e-12) and res.rsa == res.correlation
