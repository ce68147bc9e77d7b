"""Tests of semiclip.plotting: assertions on what the Axes contain."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from scipy import stats  # noqa: E402

from semiclip import plotting  # noqa: E402

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- loss curves ---------------------------------------------------------------------
def test_loss_curves_from_estimator_like():
    est = SimpleNamespace(loss_curve_=[3.0, 2.0, 1.5, 1.2],
                          validation_scores_=[0.1, 0.3, 0.25, 0.2])
    ax = plotting.plot_loss_curves(est)
    (loss_line,) = ax.get_lines()
    np.testing.assert_array_equal(loss_line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(loss_line.get_ydata(), est.loss_curve_)
    twin = ax.figure.axes[-1]
    assert twin is not ax and len(ax.figure.axes) == 2
    val_line, best_line = twin.get_lines()
    np.testing.assert_array_equal(val_line.get_ydata(), est.validation_scores_)
    assert list(best_line.get_xdata()) == [2, 2]  # best validation score at epoch 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training loss", "validation score", "best epoch (2)"]
    assert ax.get_xlabel() == "epoch" and twin.get_ylabel() == "validation score"


def test_loss_curves_from_mlp_history_and_list(tmp_path):
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=15, early_stopping=True,
                        n_iter_no_change=100, random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning at max_iter
        mlp.fit(X, X[:, 0] > 0)
    ax = plotting.plot_loss_curves(mlp)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), mlp.loss_curve_)
    np.testing.assert_allclose(ax.figure.axes[-1].get_lines()[0].get_ydata(),
                               mlp.validation_scores_)
    # a history with plain names, no validation: a single axes
    before = plt.get_fignums()
    path = tmp_path / "loss.png"
    ax = plotting.plot_loss_curves(SimpleNamespace(loss_curve=[2.0, 1.0], validation_scores=[]),
                                   path=path)
    assert _is_png(path) and len(ax.figure.axes) == 1 and len(ax.get_lines()) == 1
    assert plt.get_fignums() == before  # saving without ax does not leave a pyplot figure open
    ax = plotting.plot_loss_curves({"loss_curve": [1.0, 0.5, 0.2]})
    assert ax.get_lines()[0].get_ydata().tolist() == [1.0, 0.5, 0.2]
    ax = plotting.plot_loss_curves([4.0, 3.0])
    assert ax.get_lines()[0].get_ydata().tolist() == [4.0, 3.0]


def test_loss_curves_unfitted():
    from sklearn.exceptions import NotFittedError
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(NotFittedError, match="MLPClassifier has no loss curve"):
        plotting.plot_loss_curves(MLPClassifier())


# -- recall bars -------------------------------------------------------------------------
def _bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def _t_half_width(values, level=0.95):
    lo, hi = stats.t.interval(level, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    return (hi - lo) / 2


def test_recall_bars_flat_with_intervals_and_objects():
    results = {
        "CORUM": [0.10, 0.14, 0.12],
        "HuMAP": [SimpleNamespace(recall=0.2), SimpleNamespace(recall=0.3)],
        "Reactome": 0.05,
    }
    ax = plotting.plot_recall_bars(results, chance=0.1)
    (bars,) = _bars(ax)
    heights = [p.get_height() for p in bars.patches]
    np.testing.assert_allclose(heights, [0.12, 0.25, 0.05])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CORUM", "HuMAP", "Reactome"]
    segments = bars.errorbar.lines[2][0].get_segments()
    assert len(segments) == 3 and segments[2].size == 0  # no interval for the single value
    spans = [seg[1, 1] - seg[0, 1] for seg in segments[:2]]
    np.testing.assert_allclose(spans[0] / 2, _t_half_width([0.10, 0.14, 0.12]))
    np.testing.assert_allclose(spans[1] / 2, _t_half_width([0.2, 0.3]))
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.1, 0.1]
    assert ax.get_ylabel() == "recall"


def test_recall_bars_grouped_by_method(tmp_path):
    results = {
        "raw": {"CORUM": [0.1, 0.12], "HuMAP": [0.2, 0.22]},
        "Semi-Clipped": {"CORUM": [0.3, 0.35], "HuMAP": {"recall": 0.4}},
        "PCA": {"HuMAP": 0.15},
    }
    path = tmp_path / "bars.png"
    ax = plotting.plot_recall_bars(results, ci=None, path=path)
    assert _is_png(path)
    bars = _bars(ax)
    assert len(bars) == 3 and sum(len(b.patches) for b in bars) == 6
    assert all(b.errorbar is None for b in bars)  # ci=None: no error bars
    np.testing.assert_allclose([p.get_height() for p in bars[1].patches], [0.325, 0.4])
    assert np.isnan(bars[2].patches[0].get_height())  # PCA has no CORUM value
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["raw", "Semi-Clipped", "PCA"]
    x = [b.patches[1].get_x() + b.patches[1].get_width() / 2 for b in bars]
    assert x[0] < x[1] < x[2] and x[1] == pytest.approx(1.0)  # side by side around the tick


def test_recall_bars_errors():
    with pytest.raises(TypeError, match="results must be a non-empty dict"):
        plotting.plot_recall_bars([0.1, 0.2])
    with pytest.raises(TypeError, match=r"results\['CORUM'\] must be a number"):
        plotting.plot_recall_bars({"CORUM": "high"})
    with pytest.raises(ValueError, match="ci must be in"):
        plotting.plot_recall_bars({"CORUM": 0.1}, ci=95)


# -- embedding map ----------------------------------------------------------------------------
def _pairwise(points):
    return np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)


def test_embedding_map_points_are_pca_of_key_means():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(90, 6))
    keys = np.repeat([f"k{i:02d}" for i in range(30)], 3)
    ax = plotting.plot_embedding_map(E, keys)
    (points,) = ax.collections
    xy = points.get_offsets()
    assert xy.shape == (30, 2)
    means = E.reshape(30, 3, 6).mean(axis=1)  # keys are sorted and contiguous
    centred = means - means.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    # equal up to the sign of each component: compare distances between points
    np.testing.assert_allclose(_pairwise(np.asarray(xy)), _pairwise(expected), atol=1e-8)
    assert ax.get_xlabel().startswith("PC1 (") and ax.get_title() == "30 perturbations (PCA)"


def test_embedding_map_groups_controls_and_max_groups(tmp_path):
    rng = np.random.default_rng(1)
    keys = np.array([f"g{i}" for i in range(12)] * 2 + ["ctl"] * 5)
    E = rng.normal(size=(keys.size, 4))
    groups = {f"g{i}": ("big" if i < 6 else "mid" if i < 9 else "small") for i in range(11)}
    path = tmp_path / "map.png"
    ax = plotting.plot_embedding_map(E, keys, groups=groups, control_label="ctl", max_groups=2,
                                     path=path)
    assert _is_png(path)
    sizes = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    # g11 has no group and "small" is beyond max_groups: both are "other"; controls are left out
    assert sizes == {"other": 3, "big": 6, "mid": 3}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["other", "big", "mid"]
    # one group per row: the group of each key's first row is used
    row_groups = np.where(np.char.startswith(keys.astype(str), "g1"), "one", "rest")
    ax = plotting.plot_embedding_map(E, keys, groups=row_groups, control_label="ctl")
    sizes = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    assert sizes == {"one": 3, "rest": 9}  # g1, g10, g11


def test_embedding_map_errors():
    E = np.random.default_rng(0).normal(size=(6, 3))
    keys = np.array(list("aabbcc"))
    with pytest.raises(ValueError, match="method must be 'pca' or 'umap'"):
        plotting.plot_embedding_map(E, keys, method="tsne")
    with pytest.raises(ValueError, match=r"one entry per row of embeddings \(6\)"):
        plotting.plot_embedding_map(E, keys[:5])
    with pytest.raises(ValueError, match="at least 3 distinct keys; got 2"):
        plotting.plot_embedding_map(E[:4], keys[:4])
    with pytest.raises(ValueError, match=r"one group per row of embeddings \(6\)"):
        plotting.plot_embedding_map(E, keys, groups=["x", "y"])
    with pytest.raises(ValueError, match="max_groups must be a positive integer"):
        plotting.plot_embedding_map(E, keys, max_groups=0)


def test_embedding_map_umap_needs_umap(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match="umap-learn"):
        plotting.plot_embedding_map(np.eye(4), np.arange(4), method="umap")


# -- gene attributions ----------------------------------------------------------------------
def test_gene_attributions_top_features_in_order(tmp_path):
    rng = np.random.default_rng(2)
    scores = rng.normal(size=40)
    names = [f"G{i}" for i in range(40)]
    path = tmp_path / "attr.png"
    ax = plotting.plot_gene_attributions(scores, names, top=7, path=path)
    assert _is_png(path)
    expected = sorted(range(40), key=lambda j: -abs(scores[j]))[:7]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    ticks = list(ax.get_yticks())
    top_down = [labels[ticks.index(p)] for p in sorted(ticks, reverse=True)]
    assert top_down == [names[j] for j in expected]
    widths = {round(p.get_y() + p.get_height() / 2): p.get_width() for p in ax.patches}
    assert len(ax.patches) == 7
    np.testing.assert_allclose([widths[p] for p in sorted(widths, reverse=True)], scores[expected])
    red, blue = matplotlib.colors.to_rgba("C3"), matplotlib.colors.to_rgba("C0")
    assert all(p.get_facecolor() == (red if p.get_width() >= 0 else blue) for p in ax.patches)


def test_gene_attributions_series_and_errors():
    pd = pytest.importorskip("pandas")
    ax = plotting.plot_gene_attributions(pd.Series([0.1, -3.0, 2.0], index=["a", "b", "c"]), top=5)
    assert len(ax.patches) == 3
    labels = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())))
    assert [labels[p] for p in sorted(labels, reverse=True)] == ["b", "c", "a"]  # largest on top
    with pytest.raises(ValueError, match=r"must be 1-D .* np.abs\(scores\).mean\(axis=0\)"):
        plotting.plot_gene_attributions(np.ones((2, 3)))
    with pytest.raises(ValueError, match="feature_names has 2 entries but scores has 3"):
        plotting.plot_gene_attributions([1.0, 2.0, 3.0], ["a", "b"])
    with pytest.raises(ValueError, match="1 NaN or inf"):
        plotting.plot_gene_attributions([1.0, np.nan])
    with pytest.raises(ValueError, match="top must be a positive integer"):
        plotting.plot_gene_attributions([1.0], top=0)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install semiclip\[plot\]"):
        plotting.plot_gene_attributions([1.0, 2.0])


def test_draws_on_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    ax = plotting.plot_gene_attributions([1.0, -2.0], ["a", "b"], ax=right)
    assert ax is right and len(left.patches) == 0 and len(right.patches) == 2


def test_gene_attributions_take_an_attributions_object_with_its_gene_names():
    from semiclip.interpret import Attributions

    values = np.array([[1.0, -4.0, 0.5], [3.0, -2.0, 0.5]])  # mean: 2, -3, 0.5
    att = Attributions(values, np.array(["TP53", "KRAS", "MYC"], dtype=object))
    ax = plotting.plot_gene_attributions(att, top=2, title="BRAF")
    labels = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())))
    assert [labels[p] for p in sorted(labels, reverse=True)] == ["KRAS", "TP53"]
    widths = sorted(p.get_width() for p in ax.patches)
    np.testing.assert_allclose(widths, [-3.0, 2.0])  # the mean over samples
    assert ax.get_title() == "BRAF"


def test_recall_bars_title():
    ax = plotting.plot_recall_bars({"HuMAP": 0.2}, chance=0.1, title="held out")
    assert ax.get_title() == "held out"
