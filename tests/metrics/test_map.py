"""Tests for semiclip.metrics.mean_average_precision and the retrieval scorer."""

import itertools
import math
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest

from semiclip.metrics import MAPResult, _ap, make_retrieval_scorer, mean_average_precision
from semiclip.metrics._ap import expected_ap, random_ap


def _sim(a, b, distance):
    if distance == "euclidean":
        return -math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b)))
    if distance == "correlation":
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        a, b = [u - ma for u in a], [v - mb for v in b]
    na = math.sqrt(sum(u * u for u in a)) or 1.0
    nb = math.sqrt(sum(v * v for v in b)) or 1.0
    return sum((u / na) * (v / nb) for u, v in zip(a, b))


def _reference(X, labels, groups=None, distance="cosine", control=None):
    """copairs' AP with plain Python: candidates sorted by (-similarity, negatives last)."""
    X = X.tolist()
    n = len(X)
    ap, n_pos, n_cand = [math.nan] * n, [0] * n, [0] * n
    for i in range(n):
        if control is not None and labels[i] == control:
            continue
        ranked = []
        for j in range(n):
            if j == i:
                continue
            if labels[j] == labels[i]:
                if groups is not None and groups[j] == groups[i]:
                    continue
                ranked.append((-_sim(X[i], X[j], distance), 0))
            else:
                ranked.append((-_sim(X[i], X[j], distance), 1))
        ranked.sort()
        positives = [r for r, (_, neg) in enumerate(ranked, start=1) if not neg]
        n_pos[i], n_cand[i] = len(positives), len(ranked)
        if positives:
            ap[i] = sum(j / r for j, r in enumerate(positives, start=1)) / len(positives)
    per_label = {}
    for i in range(n):
        if not math.isnan(ap[i]):
            per_label.setdefault(labels[i], []).append(ap[i])
    label_map = {k: sum(v) / len(v) for k, v in per_label.items()}
    return np.array(ap), np.array(n_pos), np.array(n_cand), label_map


def _tied_group_sum(P, A, p, s):
    """E[sum of j / rank_j over a tied group's positives], by counting arrangements.

    The group's ``s`` candidates (``p`` positives) take ranks ``A+1 .. A+s`` in a
    uniformly random order, ``P`` positives ranking above the group: a positive in
    slot ``t`` that is the group's ``u``-th positive has ``j = P + u`` and rank
    ``A + t``, in ``C(t-1, u-1) * C(s-t, p-u)`` of the ``C(s, p)`` arrangements.
    """
    total = Fraction(0)
    for t in range(1, s + 1):
        for u in range(1, min(t, p) + 1):
            total += Fraction(math.comb(t - 1, u - 1) * math.comb(s - t, p - u) * (P + u), A + t)
    return total / math.comb(s, p)


def _reference_ties(X, labels, groups=None, distance="cosine", control=None):
    """AP with ties at chance: the expected AP over random orders within tied groups."""
    X = X.tolist()
    n = len(X)
    ap, n_pos, n_cand = [math.nan] * n, [0] * n, [0] * n
    for i in range(n):
        if control is not None and labels[i] == control:
            continue
        by_value = {}
        for j in range(n):
            if j == i or (labels[j] == labels[i] and groups is not None
                          and groups[j] == groups[i]):
                continue
            cell = by_value.setdefault(_sim(X[i], X[j], distance), [0, 0])
            cell[labels[j] != labels[i]] += 1
        P = A = 0
        total = Fraction(0)
        for value in sorted(by_value, reverse=True):
            p, neg = by_value[value]
            if p:
                total += _tied_group_sum(P, A, p, p + neg)
            P, A = P + p, A + p + neg
        n_pos[i], n_cand[i] = P, A
        if P:
            ap[i] = float(total / P)
    per_label = {}
    for i in range(n):
        if not math.isnan(ap[i]):
            per_label.setdefault(labels[i], []).append(ap[i])
    label_map = {k: sum(v) / len(v) for k, v in per_label.items()}
    return np.array(ap), np.array(n_pos), np.array(n_cand), label_map


def _data(seed=0, n_labels=12, dim=5, integer=False, big_label=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=n_labels)
    if big_label:
        sizes[0] = big_label
    labels = np.repeat([f"L{i:02d}" for i in range(n_labels)], sizes)
    centers = rng.normal(size=(n_labels, dim))
    X = np.repeat(centers, sizes, axis=0) + rng.normal(size=(labels.size, dim))
    if integer:  # +-1 in 16 dims: cosines are exact multiples of 1/8, so exact ties
        X = rng.choice([-1.0, 1.0], size=(labels.size, 16))
    groups = rng.integers(0, 3, size=labels.size)
    return X, labels, groups


def _check(res, X, labels, groups=None, distance="cosine", control=None, ties=False):
    reference = _reference_ties if ties else _reference
    ap, n_pos, n_cand, label_map = reference(X, labels.tolist(),
                                             groups if groups is None else groups.tolist(),
                                             distance, control)
    assert np.array_equal(np.isnan(res.ap), np.isnan(ap))
    ok = ~np.isnan(ap)
    np.testing.assert_allclose(res.ap[ok], ap[ok], rtol=0, atol=1e-12)
    assert np.array_equal(res.n_positives[ok], n_pos[ok])
    assert np.array_equal(res.n_candidates[ok], n_cand[ok])
    assert res.labels.tolist() == sorted(label_map)
    np.testing.assert_allclose(res.label_map, [label_map[k] for k in res.labels], atol=1e-12)
    assert res.map == pytest.approx(np.mean(list(label_map.values())), abs=1e-12)


def test_hand_example():
    # query a0 ranks a1 first? no: b0 (cos .995) > a1 (cos .8) > b1 (cos 0)
    X = np.array([[1.0, 0.0], [0.8, 0.6], [0.995, np.sqrt(1 - 0.995**2)], [0.0, 1.0]])
    labels = ["a", "a", "b", "b"]
    res = mean_average_precision(X, labels)
    # a0: ranking b0, a1, b1 -> AP = 1/2
    assert res.ap[0] == pytest.approx(0.5)
    # a1: cos to b0 0.8*.995+.6*.0999=0.856, to a0 0.8, to b1 0.6 -> b0, a0, b1 -> 1/2
    assert res.ap[1] == pytest.approx(0.5)
    # b1: cos to a1 0.6, to b0 0.0999, to a0 0 -> a1, b0, a0 -> 1/2
    assert res.ap[3] == pytest.approx(0.5)
    # b0: cos to a0 .995, to a1 .856, to b1 .0999 -> a0, a1, b1 -> 1/3
    assert res.ap[2] == pytest.approx(1 / 3)
    assert res.label_map.tolist() == pytest.approx([0.5, (0.5 + 1 / 3) / 2])
    assert res.map == pytest.approx((0.5 + 5 / 12) / 2)
    assert isinstance(res, MAPResult) and float(res) == res.map


@pytest.mark.parametrize("distance", ["cosine", "correlation", "euclidean"])
@pytest.mark.parametrize("use_groups", [False, True])
def test_matches_reference(distance, use_groups):
    X, labels, groups = _data(1)
    g = groups if use_groups else None
    res = mean_average_precision(X, labels, groups=g, distance=distance)
    _check(res, X, labels, g, distance)


@pytest.mark.parametrize("big_label", [0, 40])
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_ties_and_many_positives(big_label, distance, monkeypatch):
    # +-1 profiles: exact ties, which must score at chance (the expected AP over
    # random orders of the tied candidates; copairs ranked positives first);
    # a 40-member label exercises the sort-and-merge path (> 24 positives)
    X, labels, groups = _data(2, integer=True, big_label=big_label)

    def run(**kw):
        with warnings.catch_warnings():  # the 72 +-1 rows: two duplicates
            warnings.filterwarnings("ignore", r"2 row\(s\) of embeddings are identical")
            return mean_average_precision(X, labels, distance=distance, **kw)

    _check(run(), X, labels, distance=distance, ties=True)
    _check(run(groups=groups), X, labels, groups, distance, ties=True)
    monkeypatch.setattr(_ap, "_AP_BLOCK_BYTES", 8 * len(labels) * 3 * 5)  # 5 rows per block
    _check(run(groups=groups), X, labels, groups, distance, ties=True)
    if big_label:  # a large label with few positives per query (most in one group)
        lopsided = np.where(labels == labels[0], 0, groups)
        lopsided[:3] = 1
        _check(run(groups=lopsided), X, labels, lopsided, distance, ties=True)


def test_control_label_not_queries_but_negatives():
    X, labels, _ = _data(3)
    labels = labels.astype("<U8")
    labels[:6] = "ctrl"
    res = mean_average_precision(X, labels, control_label="ctrl")
    _check(res, X, labels, control="ctrl")
    assert "ctrl" not in res.labels.tolist() and "ctrl" not in res.skipped_labels.tolist()
    assert np.isnan(res.ap[:6]).all() and (res.n_positives[:6] == 0).all()
    with pytest.raises(ValueError, match="control_label='DMSO' matches no entry of labels"):
        mean_average_precision(X, labels, control_label="DMSO")


def test_single_member_labels_are_skipped_and_counted():
    X, labels, groups = _data(4)
    counts = {k: int((labels == k).sum()) for k in np.unique(labels)}
    singles = sorted(k for k, c in counts.items() if c == 1)
    assert singles  # the fixture has some
    res = mean_average_precision(X, labels)
    assert res.skipped_labels.tolist() == singles and res.n_skipped_labels == len(singles)
    # with groups, labels whose members all share one group are skipped too
    res_g = mean_average_precision(X, labels, groups=groups)
    one_group = sorted(k for k in counts if np.unique(groups[labels == k]).size == 1)
    assert res_g.skipped_labels.tolist() == one_group
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        empty = mean_average_precision(X[:3], ["a", "b", "c"])
    assert math.isnan(empty.map) and empty.n_skipped_labels == 3
    assert any("the mAP is NaN" in str(w.message) for w in caught)


def test_chance_matches_random_rankings():
    # expected AP (closed form) vs enumeration of every placement of M positives
    for M, L in [(1, 1), (1, 4), (2, 5), (3, 7), (4, 4)]:
        aps = [
            sum(j / (r + 1) for j, r in enumerate(pos, start=1)) / M
            for pos in itertools.combinations(range(L), M)
        ]
        assert expected_ap(M, L) == pytest.approx(sum(aps) / len(aps), abs=1e-12)
    rng = np.random.default_rng(0)
    for k, L in [(2, 50), (30, 40)]:  # rejection and argpartition samplers
        draws = random_ap(k, L, 20000, rng)
        assert draws.mean() == pytest.approx(expected_ap(k, L),
                                             abs=4 * draws.std() / np.sqrt(draws.size))
    X, labels, _ = _data(5)
    res = mean_average_precision(X, labels)
    ok = ~np.isnan(res.ap)
    chance = expected_ap(res.n_positives[ok], res.n_candidates[ok])
    per_label = {k: chance[labels[ok] == k].mean() for k in res.labels}
    assert res.label_chance == pytest.approx([per_label[k] for k in res.labels])
    assert res.chance == pytest.approx(np.mean(list(per_label.values())))


def test_p_values():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(30), 4)
    strong = rng.normal(size=(30, 16))[labels] + 0.05 * rng.normal(size=(120, 16))
    res = mean_average_precision(strong, labels, null_size=200, random_state=0)
    # perfect retrieval: no null mAP exceeds it -> the smallest p-value possible
    assert np.allclose(res.label_map, 1.0) and np.allclose(res.label_p_values, 1 / 201)
    noise = rng.normal(size=(120, 16))
    a = mean_average_precision(noise, labels, null_size=500, random_state=1)
    b = mean_average_precision(noise, labels, null_size=500, random_state=1)
    assert np.array_equal(a.label_p_values, b.label_p_values)
    assert ((a.label_p_values > 0) & (a.label_p_values <= 1)).all()
    assert np.mean(a.label_p_values < 0.05) < 0.25  # no signal: few small p-values
    assert a.label_p_values.mean() == pytest.approx(0.5, abs=0.15)
    assert mean_average_precision(noise, labels).label_p_values is None


def test_real_replicates_match_reference(ta_orf_frame):
    """TA-ORF L1000: replicates = same gene on another plate (a 300-profile subset)."""
    df = ta_orf_frame[ta_orf_frame.Metadata_pert_type == "trt_oe"]
    keep = df.Metadata_gene.isin(df.Metadata_gene.unique()[:70]).to_numpy()
    df = df[keep]
    X = df[[c for c in df.columns if not c.startswith("Metadata_")]].to_numpy()[:, :60]
    labels, plates = df.Metadata_gene.to_numpy(), df.Metadata_Plate.to_numpy()
    res = mean_average_precision(X, labels, groups=plates)
    _check(res, X, labels, plates)
    assert res.map > 1.5 * res.chance  # replicate retrieval carries signal there


def test_to_frame():
    pytest.importorskip("pandas")
    X, labels, _ = _data(6)
    res = mean_average_precision(X, labels, null_size=50, random_state=0)
    frame = res.to_frame()
    assert frame.columns.tolist() == ["label", "mean_average_precision", "n_queries", "chance",
                                      "p_value"]
    assert frame.mean_average_precision.tolist() == res.label_map.tolist()


# ------------------------------------------------------------------- scorer
def test_retrieval_scorer_in_grid_search():
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    n_labels, plates = 25, 4
    labels = np.tile(np.arange(n_labels), plates * 2)
    groups = np.repeat(np.arange(plates), n_labels * 2)
    # the labels differ in a 3-D subspace of the 30 features: top PCs keep it
    signal = 2.0 * rng.normal(size=(n_labels, 3)) @ rng.normal(size=(3, 30))
    X = signal[labels] + rng.normal(size=(labels.size, 30))
    pipe = make_pipeline(StandardScaler(), PCA())
    search = GridSearchCV(
        pipe, {"pca__n_components": [3, 25]}, scoring=make_retrieval_scorer(), cv=GroupKFold(4)
    ).fit(X, labels, groups=groups)
    assert search.best_params_ == {"pca__n_components": 3}
    # each fold's score is the mAP of the held-out plate's transformed profiles
    for c_idx, n_comp in enumerate([3, 25]):
        for f, (train, test) in enumerate(GroupKFold(4).split(X, labels, groups)):
            fitted = make_pipeline(StandardScaler(),
                                   PCA(n_components=n_comp)).fit(X[train], labels[train])
            expected = mean_average_precision(fitted.transform(X[test]), labels[test]).map
            assert (search.cv_results_[f"split{f}_test_score"][c_idx]
                    == pytest.approx(expected, abs=1e-12))


def test_retrieval_scorer_routes_groups():
    import sklearn
    from sklearn.decomposition import PCA

    X, labels, groups = _data(7)
    pca = PCA(n_components=3).fit(X)
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_retrieval_scorer().set_score_request(groups=True)
        with pytest.warns(UserWarning, match="rests on 10 labels"):
            routed = scorer(pca, X, labels, groups=groups)
    assert routed == mean_average_precision(pca.transform(X), labels, groups=groups).map
    assert routed != mean_average_precision(pca.transform(X), labels).map


# ----------------------------------------------------------------- bad input
def test_nan_rows_are_named():
    X, labels, _ = _data(0)
    X[[2, 9]] = np.nan
    with pytest.raises(ValueError, match=re.escape("embeddings contains NaN or inf in 2 row(s) "
                                                   "(row indices: 2, 9)")):
        mean_average_precision(X, labels)


def test_bad_arguments():
    X, labels, groups = _data(0)
    with pytest.raises(ValueError,
                       match=f"labels has {labels.size - 1} entries but X has {labels.size} rows"):
        mean_average_precision(X, labels[:-1])
    with pytest.raises(ValueError, match="groups has 2 entries"):
        mean_average_precision(X, labels, groups=[0, 1])
    with pytest.raises(ValueError, match="distance must be one of 'cosine', 'correlation', "
                                         "'euclidean'; got 'l1'"):
        mean_average_precision(X, labels, distance="l1")
    with pytest.raises(ValueError, match="null_size must be a positive integer or None; got 0"):
        mean_average_precision(X, labels, null_size=0)
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        mean_average_precision(X.ravel(), labels)
    with pytest.raises(TypeError, match="embeddings must be numeric"):
        mean_average_precision(X.astype(str), labels)


def test_retrieval_scorer_accepts_folds_without_controls():
    """GroupKFold puts every control in one fold; the other folds have none."""
    from sklearn.preprocessing import FunctionTransformer

    from semiclip.metrics import make_retrieval_scorer

    identity = FunctionTransformer().fit(np.zeros((1, 4)))

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    y = np.repeat(np.array(["a", "b", "c"]), 4)
    X[y == "a"] += 5.0
    scorer = make_retrieval_scorer(control_label="ctl")
    with pytest.warns(UserWarning, match="rests on 3 labels"):
        score = scorer(identity, X, y)
    ref = mean_average_precision(X, y).map
    assert score == pytest.approx(ref)


def test_one_label_and_no_negatives_is_an_error():
    X = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(ValueError, match="labels has one value .* no other sample to rank"):
        mean_average_precision(X, np.array(["a"] * 5))
    # controls are candidates too: one label plus controls is a valid retrieval
    res = mean_average_precision(X, np.array(["a", "a", "a", "c", "c"]), control_label="c")
    assert 0 < res.map <= 1
