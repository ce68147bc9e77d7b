"""Tied similarities score at chance in the retrieval mAP; degenerate embeddings warn."""

import itertools
import math
import warnings

import numpy as np
import pytest

from semiclip.metrics import _ap, make_retrieval_scorer, mean_average_precision
from semiclip.metrics._ap import expected_ap

from .test_map import _check


def _ap_of_order(is_pos):
    """AP of one ranking (``is_pos[r]``: the candidate at rank ``r + 1`` is a positive)."""
    ranks = [r for r, pos in enumerate(is_pos, start=1) if pos]
    return sum(j / r for j, r in enumerate(ranks, start=1)) / len(ranks)


def _all_orders_ap(values, is_pos):
    """Mean AP over every order of the candidates consistent with their values."""
    groups = [[p for v, p in zip(values, is_pos) if v == u] for u in sorted(set(values))[::-1]]
    aps = [_ap_of_order([p for perm in orders for p in perm])
           for orders in itertools.product(*(itertools.permutations(g) for g in groups))]
    return sum(aps) / len(aps)


def _circle_data():
    """a0 ties a1 (positive) with b0 (negative); b1 ties b0 (positive) with a1."""
    X = np.array([[1.0, 0.0], [3.0, 4.0], [3.0, -4.0], [-1.0, 0.0]])
    return X, np.array(["a", "a", "b", "b"])


def test_tied_positive_and_negative_score_their_mean():
    X, labels = _circle_data()
    res = mean_average_precision(X, labels)
    # a0: a1 and b0 both at cosine 0.6, then b1 at -1: AP 1 or 1/2 -> 3/4
    # a1: a0 (0.6), b0 (-0.28), b1 (-0.6) -> 1; b0: a0, a1, b1 -> 1/3
    # b1: b0 and a1 both at -0.6, then a0 -> 3/4
    assert res.ap.tolist() == pytest.approx([0.75, 1.0, 1 / 3, 0.75], abs=1e-15)
    assert res.map == pytest.approx(((0.75 + 1) / 2 + (1 / 3 + 0.75) / 2) / 2, abs=1e-15)
    assert _all_orders_ap([0.6, 0.6, -1.0], [True, False, False]) == 0.75


def test_small_tied_groups_match_every_order():
    # query 0 of label "q": 7 candidates in three tied groups of mixed labels
    # (values 2, 2, 2, 1, 1, 0, 0 along the first axis under euclidean ranking)
    coords = [0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    labels = np.array(["q", "q", "n", "n", "q", "n", "q", "q"])
    X = np.array([[c, 0.0] for c in coords])
    with pytest.warns(UserWarning, match="identical to a row of another label"):
        res = mean_average_precision(X, labels, distance="euclidean")
    values = [-c for c in coords[1:]]
    expected = _all_orders_ap(values, [lab == "q" for lab in labels[1:]])
    assert res.ap[0] == pytest.approx(expected, abs=1e-14)
    assert res.ap[0] != pytest.approx(_ap_of_order([True, False, False, True, False, True,
                                                    True]))  # copairs' positives-first order


def test_random_tie_breaking_average():
    """A slow reference: AP averaged over many random orders of the tied candidates."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(6), 3)
    X = rng.choice([-1.0, 1.0], size=(labels.size, 4))  # exact cosines -1, -1/2, ..., 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicated +-1 rows
        res = mean_average_precision(X, labels)
    S = X @ X.T / 4.0  # exact
    n_draws = 4000
    for i in range(labels.size):
        others = np.flatnonzero(np.arange(labels.size) != i)
        is_pos = labels[others] == labels[i]
        keys = rng.random((n_draws, others.size))
        order = np.lexsort((keys, np.broadcast_to(-S[i, others], keys.shape)), axis=1)
        pos = is_pos[order]
        ranks = np.nonzero(pos)[1].reshape(n_draws, -1) + 1.0
        draws = (np.arange(1, ranks.shape[1] + 1) / ranks).mean(axis=1)
        assert res.ap[i] == pytest.approx(draws.mean(), abs=5 * draws.std() / math.sqrt(n_draws)
                                          + 1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("merge", [False, True])
def test_random_ties_match_the_exact_reference(seed, merge, monkeypatch):
    # exact arithmetic: +-1 entries under cosine (norms 1, 2, 4), integers under euclidean
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 40))
    labels = np.array([f"L{v}" for v in rng.integers(0, 5, size=n)], dtype="<U4")
    labels[: n // 2] = "L0"  # one large label
    labels[-3:] = "ctrl"
    groups = rng.integers(0, 3, size=n) if seed % 2 else None
    if seed < 3:
        distance, X = "cosine", rng.choice([-1.0, 1.0], size=(n, [1, 4, 16][seed]))
    else:
        distance, X = "euclidean", rng.integers(-2, 3, size=(n, seed - 2)).astype(float)
    if merge:  # every query through the sort-and-merge count
        monkeypatch.setattr(_ap, "_MAX_COMPARISONS", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicated rows
        res = mean_average_precision(X, labels, groups=groups, distance=distance,
                                     control_label="ctrl")
    _check(res, X, labels, groups, distance, control="ctrl", ties=True)


@pytest.mark.parametrize("distance", ["cosine", "correlation", "euclidean"])
@pytest.mark.parametrize("use_groups", [False, True])
def test_constant_embedding_scores_chance(distance, use_groups):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), rng.integers(2, 40, size=12))  # > 24 positives too
    groups = rng.integers(0, 3, size=labels.size) if use_groups else None
    X = np.tile(rng.normal(size=5), (labels.size, 1))
    with pytest.warns(UserWarning, match=rf"all {labels.size} rows of embeddings are identical"):
        res = mean_average_precision(X, labels, groups=groups, distance=distance)
    ok = np.isfinite(res.ap)
    np.testing.assert_allclose(res.ap[ok], expected_ap(res.n_positives[ok], res.n_candidates[ok]),
                               rtol=1e-12)
    assert res.map == pytest.approx(res.chance, rel=1e-12) and res.map < 0.5


def test_zero_embedding_scores_chance_and_warns():
    labels = np.repeat(np.arange(8), 4)
    X = np.zeros((labels.size, 3))
    with pytest.warns(UserWarning, match=r"embeddings has 32 all-zero row\(s\)"):
        res = mean_average_precision(X, labels)
    assert res.map == pytest.approx(res.chance, rel=1e-12)
    assert res.map == pytest.approx(expected_ap(3, 31), rel=1e-12)


def test_degenerate_rows_are_counted_in_the_warning():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 3)
    X = rng.normal(size=(labels.size, 4))
    X[[4, 7, 20]] = 0.0
    with pytest.warns(UserWarning, match=r"3 all-zero row\(s\) \(row indices: 4, 7, 20\)"):
        mean_average_precision(X, labels)
    X = rng.normal(size=(labels.size, 4))
    X[[2, 9]] = 5.0  # constant rows: no correlation
    with pytest.warns(UserWarning, match=r"2 constant row\(s\) \(row indices: 2, 9\)"):
        mean_average_precision(X, labels, distance="correlation")
    X = rng.normal(size=(labels.size, 4))
    X[[5, 11]] = X[0]  # labels 1 and 3 share label 0's profile
    with pytest.warns(UserWarning, match=r"3 row\(s\) of embeddings are identical to a row "
                                         r"of another label \(row indices: 0, 5, 11\)"):
        mean_average_precision(X, labels)
    X[[1, 2]] = X[0]  # replicates of one label may coincide: no more rows are flagged
    X[[5, 11]] = rng.normal(size=(2, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean_average_precision(X, labels)
        mean_average_precision(rng.normal(size=(labels.size, 4)), labels)


def test_collapsed_model_loses_to_a_trained_one():
    """The scorer of a grid search must not prefer an embedding that maps all to zero."""
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 4)
    X = rng.normal(size=(20, 8))[labels] + rng.normal(size=(labels.size, 8))
    scorer = make_retrieval_scorer()
    trained = scorer(FunctionTransformer().fit(X), X, labels)
    collapsed = FunctionTransformer(np.zeros_like).fit(X)
    with pytest.warns(UserWarning, match="all-zero"):
        collapsed_score = scorer(collapsed, X, labels)
    assert collapsed_score == pytest.approx(expected_ap(3, labels.size - 1), rel=1e-12)
    assert trained > collapsed_score + 0.2
