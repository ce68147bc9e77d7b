"""Tests for semiclip.metrics.known_relationship_recall (EFAAR recall)."""

import bisect
import math
import re
import warnings

import numpy as np
import pytest

from semiclip.metrics import (
    RecallResult,
    _similarity,
    known_relationship_recall,
    make_recall_scorer,
)

SOURCES = ["CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB"]


def _reference(X, genes, controls, pairs, low, high):
    """EFAAR's recall with Python loops: means, cosines, sorted null, bisect."""
    rows = {}
    for x, g, c in zip(X.tolist(), genes.tolist(), controls.tolist()):
        if not c:
            rows.setdefault(str(g), []).append(x)
    names = sorted(rows)
    means = {g: [sum(col) / len(col) for col in zip(*rows[g])] for g in names}

    def cos(a, b):
        na = math.sqrt(sum(v * v for v in a)) or 1.0
        nb = math.sqrt(sum(v * v for v in b)) or 1.0
        return sum((u / na) * (v / nb) for u, v in zip(a, b))

    sim = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            sim[(a, b)] = cos(means[a], means[b])
    null = sorted(sim.values())
    clean = sorted({tuple(sorted(p)) for p in pairs if p[0] != p[1]})
    queries = [p for p in clean if p[0] in means and p[1] in means]
    predicted = []
    for p in queries:
        left = bisect.bisect_left(null, sim[p]) / len(null)
        right = bisect.bisect_right(null, sim[p]) / len(null)
        predicted.append(right <= low or left >= high)
    return sum(predicted) / len(queries), queries, predicted


def _data(seed=0, n_genes=30, dim=6, integer=False):
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{i:02d}" for i in range(n_genes)])
    reps = rng.integers(1, 4, size=n_genes)
    y = np.repeat(genes, reps)
    centers = rng.normal(size=(n_genes, dim))
    X = np.repeat(centers, reps, axis=0) + 0.5 * rng.normal(size=(y.size, dim))
    if integer:  # +-1 in 16 dims: cosines are exact multiples of 1/8, so exact ties
        X = np.repeat(rng.choice([-1.0, 1.0], size=(n_genes, 16)), reps, axis=0)
    controls = np.zeros(y.size, dtype=bool)
    pairs = genes[rng.integers(0, n_genes, size=(120, 2))]
    return X, y, controls, pairs


def test_hand_example():
    # 4 genes on the unit circle at 0, 10, 90 and 180 degrees: the 6 cosines are
    # cos 10 (A-B), 0 (A-C), -1 (A-D), cos 80 (B-C), -cos 10 (B-D), 0 (C-D)
    c, s = np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))
    X = np.array([[1.0, 0.0], [c, s], [0.0, 1.0], [-1.0, 0.0]])  # exact zeros: a tie
    genes = ["A", "B", "C", "D"]
    # 4 genes: many bootstrap draws hold no annotated pair, and the recall says so
    with pytest.warns(UserWarning, match="bootstrap replicates of the recall"):
        res = known_relationship_recall(
            X, genes, relationships=[["A", "B"], ["C", "A"], ["A", "D"]],
            normalize=None, thresholds=(0.2, 0.8),
        )
    # sorted null: -1, -cos10, 0, 0, cos80, cos10 (N = 6)
    # A-B: left 5/6 >= 0.8 -> predicted; A-C: right 4/6 -> no; A-D: right 1/6 <= 0.2 -> yes
    assert res.pairs.tolist() == [["A", "B"], ["A", "C"], ["A", "D"]]
    assert res.predicted.tolist() == [True, False, True]
    assert np.allclose(res.rank_left, [5 / 6, 2 / 6, 0])
    assert np.allclose(res.rank_right, [1, 4 / 6, 1 / 6])
    assert res.recall == pytest.approx(2 / 3)
    assert (res.n_pairs, res.n_genes, res.n_null) == (3, 4, 6)
    assert np.allclose(res.similarity, [c, 0, -1], atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("integer", [False, True])
def test_matches_reference(seed, integer):
    X, y, controls, pairs = _data(seed, integer=integer)
    expected, queries, predicted = _reference(X, y, controls, pairs.tolist(), 0.05, 0.95)
    res = known_relationship_recall(X, y, relationships=pairs, normalize=None)
    assert res.recall == expected
    assert [tuple(p) for p in res.pairs.tolist()] == queries
    assert res.predicted.tolist() == predicted
    assert isinstance(res, RecallResult) and float(res) == expected


def test_blocked_null_matches_reference(monkeypatch):
    X, y, controls, pairs = _data(3, n_genes=40, integer=True)
    expected, _, predicted = _reference(X, y, controls, pairs.tolist(), 0.1, 0.9)
    full = known_relationship_recall(X, y, relationships=pairs, normalize=None,
                                     thresholds=(0.1, 0.9))
    monkeypatch.setattr(_similarity, "_BLOCK_BYTES", 8 * 40 * 4 * 3)  # 3 rows per block
    blocked = known_relationship_recall(X, y, relationships=pairs, normalize=None,
                                        thresholds=(0.1, 0.9))
    assert blocked.recall == full.recall == expected
    assert np.array_equal(blocked.rank_left, full.rank_left)
    assert np.array_equal(blocked.rank_right, full.rank_right)
    assert blocked.predicted.tolist() == predicted


def test_all_pairs_recall_equals_chance():
    rng = np.random.default_rng(5)
    genes = np.array([f"g{i}" for i in range(41)])
    X = rng.normal(size=(41, 5))
    pairs = np.array([(a, b) for i, a in enumerate(genes) for b in genes[i + 1 :]])
    res = known_relationship_recall(X, genes, relationships=pairs, normalize=None)
    assert res.n_pairs == res.n_null == 41 * 40 // 2
    # without ties the i-th smallest of N has right rank i/N: floor(0.05 N) + ...
    N = res.n_null
    lo = sum(1 for i in range(1, N + 1) if i / N <= 0.05)
    hi = sum(1 for i in range(1, N + 1) if (i - 1) / N >= 0.95)
    assert res.chance == (lo + hi) / N == res.recall


def test_controls_are_excluded_and_counts():
    X, y, _, pairs = _data(2)
    rng = np.random.default_rng(0)
    Xc = np.vstack([X, rng.normal(size=(5, X.shape[1]))])
    yc = np.concatenate([y, ["CTRL"] * 5])
    with_ctrl = known_relationship_recall(
        Xc, yc, relationships=pairs, control_label="CTRL", normalize=None
    )
    mask = known_relationship_recall(
        Xc, yc, relationships=pairs, is_control=yc == "CTRL", normalize=None
    )
    plain = known_relationship_recall(X, y, relationships=pairs, normalize=None)
    assert with_ctrl.recall == mask.recall == plain.recall
    assert with_ctrl.n_genes == 30
    # pair / gene bookkeeping
    names = set(np.unique(y).tolist())
    clean = {tuple(sorted(p)) for p in pairs.tolist() if p[0] != p[1]}
    assert plain.n_pairs + plain.n_pairs_dropped == len(clean)
    extra = [["G00", "UNKNOWN1"], ["UNKNOWN1", "UNKNOWN2"], ["G01", "G02"]]
    with pytest.warns(UserWarning, match="bootstrap replicates of the recall"):  # 1 pair
        res = known_relationship_recall(X, y, relationships=extra, normalize=None)
    assert (res.n_pairs, res.n_pairs_dropped, res.n_genes_missing) == (1, 2, 2)
    assert {"G01", "G02"} <= names


def test_integer_gene_labels():
    X, y, _, pairs = _data(4)
    to_int = {g: int(g[1:]) for g in np.unique(y)}
    yi = np.array([to_int[g] for g in y])
    pi = np.array([[to_int[a], to_int[b]] for a, b in pairs])
    expected, _, _ = _reference(X, yi, np.zeros(len(y), bool), pi.astype(str).tolist(), 0.05, 0.95)
    res = known_relationship_recall(X, yi, relationships=pi, normalize=None)
    assert res.recall == expected


def test_several_sources_share_one_null():
    X, y, _, pairs = _data(6)
    other = pairs[::-1][:40]
    multi = known_relationship_recall(
        X, y, relationships={"first": pairs, "second": other}, normalize=None
    )
    assert set(multi) == {"first", "second"}
    assert multi["first"].recall == known_relationship_recall(X, y, relationships=pairs,
                                                              normalize=None).recall
    assert multi["second"].recall == known_relationship_recall(X, y, relationships=other,
                                                               normalize=None).recall
    assert multi["second"].source == "second"


def test_shipped_source_by_name():
    from semiclip.datasets import load_relationships

    pairs = load_relationships("Reactome")
    names = np.unique(pairs[:200])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(names.size, 8))
    by_name = known_relationship_recall(X, names, relationships="Reactome", normalize=None)
    by_array = known_relationship_recall(X, names, relationships=pairs, normalize=None)
    assert by_name.recall == by_array.recall and by_name.n_pairs == by_array.n_pairs >= 200
    assert by_name.source == "Reactome" and by_name.normalize is None
    assert by_name.thresholds == (0.05, 0.95) and 0.09 < by_name.chance <= 0.1


#: efaar_benchmarking 1.0 (tvn_on_controls + known_relationship_benchmark) on the first
#: 100 genes of the TA-ORF profiles, measured in benchmarks/bench_recall.py: (hits, pairs)
EFAAR_TA_ORF = {"CORUM": (19, 200), "HuMAP": (9, 59), "Reactome": (36, 373),
                "SIGNOR": (43, 527), "StringDB": (68, 736)}


def _ta_orf_recall(df, sources, data_dir=None):
    features = [c for c in df.columns if not c.startswith("Metadata_")][:100]
    control = (df.Metadata_pert_type != "trt_oe").to_numpy()
    genes = np.where(control, "CTRL", df.Metadata_gene.to_numpy())
    return known_relationship_recall(
        df[features].to_numpy(), genes, relationships=list(sources),
        batch=df.Metadata_Plate.to_numpy(), control_label="CTRL", normalize="tvn",
        data_dir=data_dir,
    )


def test_tvn_matches_efaar_on_ta_orf(ta_orf_frame):
    """The shipped TA-ORF plates and the shipped relationship sources."""
    res = _ta_orf_recall(ta_orf_frame, ("HuMAP", "Reactome", "StringDB"))
    for name in ("HuMAP", "Reactome", "StringDB"):
        hits, n_pairs = EFAAR_TA_ORF[name]
        assert res[name].n_pairs == n_pairs
        assert res[name].recall == hits / n_pairs
        assert res[name].normalize == "tvn" and res[name].n_genes == 222


def test_tvn_matches_efaar_on_ta_orf_non_commercial_sources(ta_orf_frame, shared_data_dir):
    """CORUM and SIGNOR are not shipped (CC-BY-NC): read from ../shared/data when present."""
    res = _ta_orf_recall(ta_orf_frame, SOURCES, data_dir=shared_data_dir / "annotations")
    for name, (hits, n_pairs) in EFAAR_TA_ORF.items():
        assert res[name].n_pairs == n_pairs
        assert res[name].recall == hits / n_pairs
        assert res[name].normalize == "tvn" and res[name].n_genes == 222


def test_tvn_uses_control_normalizer():
    from semiclip import ControlNormalizer

    X, y, _, pairs = _data(7, dim=5)
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 2, size=y.size)
    Xc = np.vstack([X, rng.normal(size=(12, 5))])
    yc = np.concatenate([y, ["CTRL"] * 12])
    bc = np.concatenate([batch, [0] * 6 + [1] * 6])
    res = known_relationship_recall(Xc, yc, relationships=pairs, batch=bc, control_label="CTRL")
    corrected = ControlNormalizer(method="tvn",
                                  control_label="CTRL").fit_transform(Xc, yc, batch=bc)
    expected = known_relationship_recall(
        corrected, yc, relationships=pairs, control_label="CTRL", normalize=None
    )
    assert res.recall == expected.recall and res.normalize == "tvn"
    masked = known_relationship_recall(Xc, yc, relationships=pairs, batch=bc,
                                       is_control=yc == "CTRL")
    assert masked.recall == res.recall
    centred = known_relationship_recall(
        Xc, yc, relationships=pairs, batch=bc, control_label="CTRL", normalize="center"
    )
    assert centred.normalize == "center"


def test_recall_scorer_calls_transform():
    from sklearn.decomposition import PCA

    X, y, _, pairs = _data(8)
    pca = PCA(n_components=3).fit(X)
    scorer = make_recall_scorer(pairs)
    expected = known_relationship_recall(pca.transform(X), y, relationships=pairs, normalize=None)
    assert scorer(pca, X, y) == expected.recall


# ----------------------------------------------------------------- bad input
def test_nan_rows_are_named():
    X, y, _, pairs = _data(0)
    X[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"embeddings contains NaN or inf in 2 row\(s\) "
                                         r"\(row indices: 3, 7\)"):
        known_relationship_recall(X, y, relationships=pairs, normalize=None)


def test_length_mismatch():
    X, y, _, pairs = _data(0)
    with pytest.raises(ValueError,
                       match=re.escape(f"genes has {y.size - 1} entries but X has {y.size} rows")):
        known_relationship_recall(X, y[:-1], relationships=pairs, normalize=None)
    with pytest.raises(ValueError, match="batch has 3 entries"):
        known_relationship_recall(X, y, relationships=pairs, batch=[0, 1, 2], normalize=None)


def test_zero_overlap_names_both_sides():
    X, y, _, _ = _data(0)
    with pytest.raises(ValueError,
                       match=r"overlap 0 of 30 embedding genes and 2 database genes\)\. "
                             r"Embedding genes: 'G00', .*database genes: 'X1', 'X2'.*Ensembl"):
        known_relationship_recall(X, y, relationships=[["X1", "X2"]], normalize=None)
    lower = np.char.lower(y.astype(str))
    with pytest.raises(ValueError, match=r"2 genes match when case is ignored"):
        known_relationship_recall(X, lower, relationships=[["G00", "G01"]], normalize=None)


def test_single_gene():
    X = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"at least 2 distinct non-control genes .*got 1 \('A'\)"):
        known_relationship_recall(X, ["A"] * 4, relationships=[["A", "B"]], normalize=None)
    with pytest.raises(ValueError, match=r"got 1 \('A'\)"):
        known_relationship_recall(
            X, ["A", "A", "C", "C"], relationships=[["A", "B"]], control_label="C", normalize=None
        )


def test_control_and_option_errors():
    X, y, _, pairs = _data(0)
    with pytest.raises(ValueError, match="either is_control or control_label, not both"):
        known_relationship_recall(X, y, relationships=pairs, is_control=y == "G00",
                                  control_label="G00")
    with pytest.raises(ValueError, match="control_label='CTRL' matches no entry of genes"):
        known_relationship_recall(X, y, relationships=pairs, control_label="CTRL")
    with pytest.raises(ValueError, match="normalize='tvn' fits the batch correction on control "
                                         "samples, but none"):
        known_relationship_recall(X, y, relationships=pairs)
    with pytest.raises(TypeError, match="is_control must be a boolean mask"):
        known_relationship_recall(X, y, relationships=pairs, is_control=np.zeros(y.size),
                                  normalize=None)
    with pytest.raises(ValueError, match="normalize must be one of"):
        known_relationship_recall(X, y, relationships=pairs, normalize="zscore")
    with pytest.raises(ValueError,
                       match=r"thresholds must lie in \[0, 1\] \(fractions, not percents\)"):
        known_relationship_recall(X, y, relationships=pairs, normalize=None, thresholds=(5, 95))
    with pytest.raises(ValueError, match="thresholds must be a pair of floats"):
        known_relationship_recall(X, y, relationships=pairs, normalize=None, thresholds=0.05)
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2\)"):
        known_relationship_recall(X, y, relationships=np.zeros((3, 3)), normalize=None)
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        known_relationship_recall(X[0], y[:1], relationships=pairs, normalize=None)


def test_no_pair_in_map_warns():
    X, y, _, _ = _data(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = known_relationship_recall(X, y, relationships=[["G00", "NOPE"]], normalize=None)
    assert np.isnan(res.recall) and res.n_pairs == 0 and res.n_pairs_dropped == 1
    assert any("recall is NaN" in str(w.message) for w in caught)


def test_relationships_as_dataframe():
    pd = pytest.importorskip("pandas")
    X, y, _, pairs = _data(9)
    frame = pd.DataFrame({"score": 1.0, "entity2": pairs[:, 1], "entity1": pairs[:, 0]})
    expected, _, _ = _reference(X, y, np.zeros(y.size, bool), pairs.tolist(), 0.05, 0.95)
    assert known_relationship_recall(X, y, relationships=frame, normalize=None).recall == expected


def test_degenerate_gene_means_warn():
    X, y, _, pairs = _data(0)
    with pytest.warns(UserWarning, match=r"all 30 rows of the gene-mean matrix are identical.*"
                                         r"the recall is 0"):
        res = known_relationship_recall(np.ones_like(X), y, relationships=pairs, normalize=None)
    assert res.recall == 0.0
    X[y == "G03"] = 0.0
    with pytest.warns(UserWarning, match=r"gene-mean matrix has 1 all-zero row\(s\) "
                                         r"\(genes: 'G03'\)"):
        known_relationship_recall(X, y, relationships=pairs, normalize=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        known_relationship_recall(np.random.default_rng(1).normal(size=X.shape), y,
                                  relationships=pairs, normalize=None)
