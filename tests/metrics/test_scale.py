"""The metrics do not depend on the scale of the embedding (no underflow or overflow)."""

import warnings

import numpy as np
import pytest

from semiclip.metrics import known_relationship_recall, mean_average_precision


def _embedding(seed=0, n_labels=15, dim=6):
    rng = np.random.default_rng(seed)
    labels = np.repeat([f"g{i:02d}" for i in range(n_labels)], 3)
    X = rng.normal(size=(n_labels, dim))[np.arange(n_labels).repeat(3)]
    X += 0.7 * rng.normal(size=X.shape)
    return X, labels


def _quiet(fn, *args, **kw):
    """Call with every warning an error: no overflow, no degenerate-row warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kw)


@pytest.mark.parametrize("distance", ["cosine", "correlation", "euclidean"])
@pytest.mark.parametrize("scale", [1e-200, 1e160, 1e300, 2.0**-700, 2.0**600],
                         ids=["1e-200", "1e160", "1e300", "2^-700", "2^600"])
def test_map_is_scale_invariant(distance, scale):
    X, labels = _embedding()
    ref = mean_average_precision(X, labels, distance=distance)
    res = _quiet(mean_average_precision, X * scale, labels, distance=distance)
    assert np.all(np.isfinite(res.ap))
    np.testing.assert_allclose(res.ap, ref.ap, rtol=0, atol=1e-12)
    assert res.map == pytest.approx(ref.map, abs=1e-12) and ref.map < 0.99
    if np.log2(scale).is_integer():  # a power of two scales exactly: the same bits
        assert np.array_equal(res.ap, ref.ap)


@pytest.mark.parametrize("distance", ["cosine", "correlation"])
def test_map_ignores_the_scale_of_each_row(distance):
    X, labels = _embedding(1)
    scales = 10.0 ** np.random.default_rng(2).uniform(-250, 250, size=labels.size)
    ref = mean_average_precision(X, labels, distance=distance)
    res = _quiet(mean_average_precision, X * scales[:, np.newaxis], labels, distance=distance)
    np.testing.assert_allclose(res.ap, ref.ap, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-200, 1e160, 1e300])
def test_recall_is_scale_invariant(scale):
    X, labels = _embedding(3, n_labels=40)
    rng = np.random.default_rng(4)
    genes = np.unique(labels)
    pairs = genes[rng.integers(0, genes.size, size=(200, 2))]
    kw = dict(relationships=pairs, normalize=None, thresholds=(0.1, 0.9))
    ref = known_relationship_recall(X, labels, **kw)
    res = _quiet(known_relationship_recall, X * scale, labels, **kw)
    assert res.recall == ref.recall and ref.recall > 0
    assert np.array_equal(res.predicted, ref.predicted)
    np.testing.assert_allclose(res.similarity, ref.similarity, rtol=0, atol=1e-12)
