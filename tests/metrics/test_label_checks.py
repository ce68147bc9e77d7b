"""Labels of the metrics: mixed value types and missing values are clear errors."""

import numpy as np
import pytest

from semiclip.metrics import known_relationship_recall, mean_average_precision

pd = pytest.importorskip("pandas")


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)), np.repeat(np.array(["a", "b", "c", "d"], dtype=object), 2)


def _mixed(labels):
    out = labels.copy()
    out[[1, 4]] = [1, 2]  # ints among strings
    return out


def _with(labels, value):
    out = labels.copy()
    out[3] = value
    return out


MISSING = {"None": None, "nan": np.nan, "pd.NA": pd.NA}


def _map_labels(X, labels):
    mean_average_precision(X, labels)


def _map_groups(X, labels):
    mean_average_precision(X, np.repeat([0, 1, 2, 3], 2), groups=labels)


def _recall_genes(X, labels):
    known_relationship_recall(X, labels, relationships=[["a", "b"]], normalize=None)


ENTRY_POINTS = {"map labels": _map_labels, "map groups": _map_groups,
                "recall genes": _recall_genes}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_mixed_value_types(entry):
    X, labels = _data()
    with pytest.raises((TypeError, ValueError), match="mixes value types"):
        ENTRY_POINTS[entry](X, _mixed(labels))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_mixed_types_in_a_list(entry):
    # np.asarray([1, "a"]) would silently turn 1 into "1"
    X, labels = _data()
    with pytest.raises((TypeError, ValueError), match="mixes value types"):
        ENTRY_POINTS[entry](X, _mixed(labels).tolist())


@pytest.mark.parametrize("missing", MISSING)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_missing_values(entry, missing):
    X, labels = _data()
    with pytest.raises(ValueError, match="missing"):
        ENTRY_POINTS[entry](X, _with(labels, MISSING[missing]))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_missing_in_a_pandas_series(entry):
    X, labels = _data()
    series = pd.Series(labels, dtype="string")
    series[5] = pd.NA
    with pytest.raises(ValueError, match="missing"):
        ENTRY_POINTS[entry](X, series)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_nan_in_float_labels(entry):
    X, _ = _data()
    labels = np.repeat([0.0, 1.0, 2.0, 3.0], 2)
    labels[2] = np.nan
    with pytest.raises(ValueError, match="missing"):
        ENTRY_POINTS[entry](X, labels)
