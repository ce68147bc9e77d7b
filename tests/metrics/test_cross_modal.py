"""Tests for semiclip.metrics.cross_modal_retrieval (student vs teacher by key)."""

import numpy as np
import pytest

from semiclip import ImageBank
from semiclip.metrics import (
    CrossModalResult,
    _bootstrap,
    cross_modal_retrieval,
    make_cross_modal_scorer,
)


def _reference(S, T, k_values):
    """Per-key expected reciprocal rank and top-k probability, by listing every tie order."""
    rr, top = [], {k: [] for k in k_values}
    for i in range(S.shape[0]):
        sims = [float(S[i] @ T[j] / (np.linalg.norm(S[i]) * np.linalg.norm(T[j])))
                for j in range(T.shape[0])]
        above = sum(s > sims[i] for s in sims)
        tied = sum(s == sims[i] for s in sims) - 1
        ranks = [above + 1 + t for t in range(tied + 1)]  # each position equally likely
        rr.append(sum(1.0 / r for r in ranks) / len(ranks))
        for k in k_values:
            top[k].append(sum(r <= k for r in ranks) / len(ranks))
    return np.array(rr), {k: np.array(v) for k, v in top.items()}


def test_hand_example():
    # 3 keys; student "a" sits nearest teacher "b", "b" nearest "b", "c" nearest "c"
    S = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0]])
    T = np.array([[1.0, 0.2], [0.0, 1.0], [1.0, -0.1]])
    res = cross_modal_retrieval(S, ["a", "b", "c"], T, ["a", "b", "c"], top_k=(1, 2),
                                n_bootstrap=0)
    # cos(a, .): teacher b 1.0 > a 0.196 > c -0.0995: own rank 2
    # cos(b, .): b 0.995 > a 0.29 > c 0.0: rank 1;  cos(c, .): c 0.995 > a 0.98 > b 0: rank 1
    assert res.rank.tolist() == [2.0, 1.0, 1.0]
    assert res.mrr == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert res.top_k == {1: pytest.approx(2 / 3), 2: 1.0}
    assert res.mrr_chance == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert res.top_k_chance == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    assert (res.n_keys, res.n_student_keys, res.n_teacher_keys) == (3, 3, 3)
    assert isinstance(res, CrossModalResult) and float(res) == res.mrr


@pytest.mark.filterwarnings("ignore:.* identical to a row of another key:UserWarning")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_slow_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 9
    # +-1 entries in 3 dims: few distinct directions, so many exact ties
    S = rng.choice([-1.0, 1.0], size=(n, 3))
    T = rng.choice([-1.0, 1.0], size=(n, 3))
    keys = np.array([f"k{i}" for i in range(n)])
    res = cross_modal_retrieval(S, keys, T, keys, top_k=(1, 3, 5), n_bootstrap=0)
    rr, top = _reference(S, T, (1, 3, 5))
    assert np.allclose(res.reciprocal_rank, rr, atol=1e-14)
    assert res.mrr == pytest.approx(rr.mean(), abs=1e-14)
    for k in (1, 3, 5):
        assert res.top_k[k] == pytest.approx(top[k].mean(), abs=1e-14)


def test_collapsed_teacher_scores_chance_and_warns():
    n = 6
    S = np.random.default_rng(0).normal(size=(n, 4))
    T = np.ones((n, 4))
    with pytest.warns(UserWarning, match=r"all 6 rows of the teacher key means are identical"):
        res = cross_modal_retrieval(S, np.arange(n), T, np.arange(n), top_k=(1, 4),
                                    n_bootstrap=0)
    harmonic = sum(1 / r for r in range(1, n + 1))
    assert res.mrr == pytest.approx(harmonic / n) == res.mrr_chance
    assert res.top_k[4] == pytest.approx(4 / n) == res.top_k_chance[4]


def test_rows_are_averaged_per_key_and_only_shared_keys_count():
    rng = np.random.default_rng(1)
    S = rng.normal(size=(10, 3))
    keys = np.array(list("aabbccddee"))
    T = rng.normal(size=(8, 3))
    tkeys = np.array(list("aabbccff"))
    res = cross_modal_retrieval(S, keys, T, tkeys, n_bootstrap=0)
    means_s = np.array([S[keys == k].mean(axis=0) for k in "abc"])
    means_t = np.array([T[tkeys == k].mean(axis=0) for k in "abc"])
    rr, _ = _reference(means_s, means_t, (1,))
    assert res.keys.tolist() == ["a", "b", "c"]
    assert (res.n_keys, res.n_student_keys, res.n_teacher_keys) == (3, 5, 4)
    assert np.allclose(res.reciprocal_rank, rr)
    # an ImageBank gives the same as the array
    bank = ImageBank(T.astype(np.float32), tkeys)
    via_bank = cross_modal_retrieval(S, keys, bank, n_bootstrap=0)
    ref32 = cross_modal_retrieval(S, keys, T.astype(np.float32), tkeys, n_bootstrap=0)
    assert np.array_equal(via_bank.reciprocal_rank, ref32.reciprocal_rank)


def test_control_label_is_dropped_on_both_sides():
    rng = np.random.default_rng(2)
    S = rng.normal(size=(8, 3))
    keys = np.array(["ctl", "ctl", "a", "a", "b", "b", "c", "c"])
    T = rng.normal(size=(4, 3))
    tkeys = np.array(["ctl", "a", "b", "c"])
    res = cross_modal_retrieval(S, keys, T, tkeys, control_label="ctl", n_bootstrap=0)
    assert res.keys.tolist() == ["a", "b", "c"] and res.n_keys == 3


def test_bootstrap_over_two_keys_is_the_exact_distribution():
    # reciprocal ranks 1 and 1/2: multisets {1, 1}, {1, 1/2}, {1/2, 1/2}, prob 1/4, 1/2, 1/4
    S = np.array([[1.0, 0.0], [1.0, 0.1]])
    T = np.array([[1.0, 0.0], [1.0, -0.05]])  # "b" ranks teacher "a" first
    res = cross_modal_retrieval(S, ["a", "b"], T, ["a", "b"], n_bootstrap=8000,
                                random_state=0, top_k=(1,))
    assert res.reciprocal_rank.tolist() == [1.0, 0.5]
    mrr = res.replicates[:, 0]
    for value, prob in ((1.0, 0.25), (0.75, 0.5), (0.5, 0.25)):
        assert abs(np.mean(mrr == value) - prob) < 0.02
    assert (res.ci_low, res.ci_high) == (0.5, 1.0)
    again = cross_modal_retrieval(S, ["a", "b"], T, ["a", "b"], n_bootstrap=8000,
                                  random_state=0, top_k=(1,))
    assert np.array_equal(again.replicates, res.replicates)


def test_bootstrap_replicates_are_means_of_resampled_keys():
    rng = np.random.default_rng(3)
    S, T = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    res = cross_modal_retrieval(S, np.arange(7), T, np.arange(7), top_k=(2,),
                                n_bootstrap=30, random_state=5)
    W = _bootstrap.multiplicities(7, 30, _bootstrap.check_random_state(5))
    for b in range(30):
        assert res.replicates[b, 0] == pytest.approx(
            np.repeat(res.reciprocal_rank, W[b]).mean(), abs=1e-14)
        lo, hi = res.top_k_ci[2]
        assert lo <= res.top_k[2] <= hi


def test_to_frame():
    rng = np.random.default_rng(4)
    S, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    res = cross_modal_retrieval(S, list("vwxyz"), T, list("vwxyz"), top_k=(1, 3),
                                n_bootstrap=0)
    frame = res.to_frame()
    assert frame.columns.tolist() == ["key", "rank", "reciprocal_rank", "n_tied", "top_1",
                                      "top_3"]
    assert frame.reciprocal_rank.tolist() == res.reciprocal_rank.tolist()
    assert "CrossModalResult(mrr=" in repr(res)


def test_bad_input():
    S = np.random.default_rng(0).normal(size=(4, 3))
    keys = list("abcd")
    with pytest.raises(ValueError, match=r"embeddings have 3 features but the teacher has 5"):
        cross_modal_retrieval(S, keys, np.ones((4, 5)), keys)
    with pytest.raises(ValueError, match=r"No key of keys is in teacher_keys .*'a', 'b'.*'w'"):
        cross_modal_retrieval(S, keys, S, list("wxyz"))
    with pytest.raises(ValueError, match=r"only 1 key .* at least 2"):
        cross_modal_retrieval(S, keys, S, list("awxy"))
    with pytest.raises(ValueError, match=r"teacher_keys is required"):
        cross_modal_retrieval(S, keys, S)
    with pytest.raises(ValueError, match=r"teacher_keys must not be given with an ImageBank"):
        cross_modal_retrieval(S, keys, ImageBank(S, keys), keys)
    with pytest.raises(ValueError, match=r"keys has 3 entries but embeddings has 4 rows"):
        cross_modal_retrieval(S, keys[:3], S, keys)
    with pytest.raises(ValueError, match=r"embeddings contains NaN or inf in 3 row"):
        cross_modal_retrieval(np.where(np.eye(4, 3) > 0, np.nan, S), keys, S, keys)
    with pytest.raises(ValueError, match=r"teacher contains NaN or inf"):
        cross_modal_retrieval(S, keys, np.where(np.eye(4, 3) > 0, np.inf, S), keys)
    with pytest.raises(ValueError, match=r"top_k must be positive integers; got \(0, 5\)"):
        cross_modal_retrieval(S, keys, S, keys, top_k=(0, 5))
    with pytest.raises(ValueError, match=r"distance must be one of"):
        cross_modal_retrieval(S, keys, S, keys, distance="manhattan")
    with pytest.raises(ValueError, match=r"integers .* strings|strings .* integers"):
        cross_modal_retrieval(S, [1, 2, 3, 4], S, keys)
    with pytest.raises(TypeError, match=r"teacher must be an ImageBank or a 2-D numeric array"):
        cross_modal_retrieval(S, keys, "bank", keys)


# ------------------------------------------------------------------- scorer
def test_cross_modal_scorer_in_grid_search():
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, KFold

    rng = np.random.default_rng(0)
    n_keys, reps, dim = 30, 3, 4
    y = np.repeat(np.arange(n_keys), reps)
    teacher = rng.normal(size=(n_keys, dim))
    # X: the teacher in its first 4 features, noise elsewhere, with large noise variance
    X = np.hstack([teacher[y] + 0.3 * rng.normal(size=(y.size, dim)),
                   3.0 * rng.normal(size=(y.size, 6))])
    bank = ImageBank(teacher, np.arange(n_keys))
    scorer = make_cross_modal_scorer(bank)
    pca = PCA(n_components=dim).fit(X)
    expected = cross_modal_retrieval(pca.transform(X), y, bank, n_bootstrap=0).mrr
    assert scorer(pca, X, y) == expected
    top1 = make_cross_modal_scorer(bank, metric="top1")
    assert top1(pca, X, y) == cross_modal_retrieval(pca.transform(X), y, bank,
                                                    n_bootstrap=0).top_k[1]
    search = GridSearchCV(PCA(), {"n_components": [dim]}, scoring=scorer,
                          cv=KFold(3, shuffle=True, random_state=0)).fit(X, y)
    assert np.isfinite(search.best_score_)


def test_cross_modal_scorer_routes_keys():
    import sklearn
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 3))
    keys = np.repeat(list("abcd"), 3)
    teacher = rng.normal(size=(4, 3))
    pca = PCA(n_components=3).fit(X)
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_cross_modal_scorer(teacher, teacher_keys=list("abcd"))
        scorer = scorer.set_score_request(keys=True)
        with pytest.warns(UserWarning, match="rests on 4 keys"):  # a fold of 4 keys: noisy
            routed = scorer(pca, X, np.zeros(12), keys=keys)
    assert routed == cross_modal_retrieval(pca.transform(X), keys, teacher, list("abcd"),
                                           n_bootstrap=0).mrr


def test_cross_modal_scorer_bad_metric():
    with pytest.raises(ValueError, match=r"metric must be 'mrr' or 'top<k>'"):
        make_cross_modal_scorer(np.eye(3), teacher_keys=[0, 1, 2], metric="top-one")


def test_harmonic_chance():
    for n in (2, 7, 40):
        keys = np.arange(n)
        res = cross_modal_retrieval(np.eye(n), keys, np.eye(n), keys, top_k=(1, n + 3),
                                    n_bootstrap=0)
        assert res.mrr_chance == pytest.approx(sum(1 / r for r in range(1, n + 1)) / n)
        assert res.top_k_chance[n + 3] == 1.0 and res.top_k[1] == 1.0
        assert res.mrr == 1.0


@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_other_distances_match_a_slow_reference(distance):
    rng = np.random.default_rng(6)
    n = 8
    S, T = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))

    def sim(a, b):
        if distance == "euclidean":
            return -float(np.sqrt(np.sum((a - b) ** 2)))
        a, b = a - a.mean(), b - b.mean()
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    ranks = [1 + sum(sim(S[i], T[j]) > sim(S[i], T[i]) for j in range(n)) for i in range(n)]
    res = cross_modal_retrieval(S, np.arange(n), T, np.arange(n), top_k=3, distance=distance,
                                n_bootstrap=0)
    assert res.rank.tolist() == ranks
    assert res.mrr == pytest.approx(np.mean(1.0 / np.array(ranks)))
    assert res.top_k == {3: pytest.approx(np.mean(np.array(ranks) <= 3))}
