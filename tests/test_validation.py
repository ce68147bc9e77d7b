"""Tests of semiclip._core: the label, control and finite checks below every layer."""

import re
import sys

import numpy as np
import pytest

from semiclip import ControlNormalizer, ImageBank, RidgeDistiller
from semiclip._core import check_finite_rows, check_labels, control_mask, missing_mask
from semiclip.metrics import known_relationship_recall, mean_average_precision

pd = pytest.importorskip("pandas")

MIXED = np.array([1, "a", 2, "b", 3], dtype=object)


# -- mixed value types -----------------------------------------------------------------
def test_check_labels_names_the_mixed_types_with_counts_and_examples():
    expected = re.escape(
        "y mixes value types (int: 3 values, e.g. 1, 2, 3; str: 2 values, e.g. 'a', 'b'), "
        "which cannot be compared; convert it to one type first (e.g. y.astype(str))."
    )
    with pytest.raises(TypeError, match=expected):
        check_labels(MIXED, 5)


@pytest.mark.parametrize(
    "values, types",
    [
        ([1, "a"], "int: 1 value, e.g. 1; str: 1 value, e.g. 'a'"),
        ([1.5, "a", "b"], "float: 1 value, e.g. 1.5; str: 2 values, e.g. 'a', 'b'"),
        ([True, "a"], "bool: 1 value, e.g. True; str: 1 value, e.g. 'a'"),
    ],
)
def test_check_labels_catches_a_list_numpy_would_turn_into_strings(values, types):
    # np.asarray([1, "a"]) is silently ['1', 'a']: the labels 1 and "1" would merge
    with pytest.raises(TypeError, match=re.escape(f"batch mixes value types ({types})")):
        check_labels(values, len(values), name="batch")


def test_check_labels_mixed_bytes_and_str_and_bool_and_int():
    with pytest.raises(TypeError, match=re.escape("(bytes: 1 value, e.g. b'a'; str: 1 value")):
        check_labels(np.array([b"a", "a"], dtype=object), 2)
    # True == 1 for numpy, so np.unique would silently merge the two keys
    with pytest.raises(TypeError, match=re.escape("(bool: 1 value, e.g. True; int: 2 values")):
        check_labels(np.array([True, 1, 2], dtype=object), 3)


def test_check_labels_keeps_one_type_arrays_and_int_float_mixes():
    for values in (
        np.array(["a", np.str_("b")], dtype=object),
        np.array([1, 2.5, np.int64(3)], dtype=object),
        np.array([np.bool_(True), False], dtype=object),
        ["a", "b"],
        [1, 2],
    ):
        out = check_labels(values, 2 if len(values) == 2 else 3)
        assert out.tolist() == list(values)
    # list of strings: still the same numpy string array as np.asarray gives
    out = check_labels(["a", "bb"], 2)
    assert out.dtype == np.asarray(["a", "bb"]).dtype


def test_mixed_labels_give_the_clear_error_in_every_consumer():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    msg = r"mixes value types \(int: 3 values, e.g. 1, 2, 3; str: 2 values"
    with pytest.raises(TypeError, match="ImageBank keys " + msg):
        ImageBank(X, MIXED)
    bank = ImageBank(X, ["a", "b", "c", "d", "e"])
    with pytest.raises(TypeError, match="y " + msg):
        RidgeDistiller().fit(X, MIXED, image_bank=bank)
    with pytest.raises(TypeError, match="batch " + msg):
        ControlNormalizer("center", control_label="a").fit(
            X, np.array(["a", "a", "b", "b", "c"]), batch=MIXED
        )
    with pytest.raises(TypeError, match="genes " + msg):
        known_relationship_recall(X, MIXED, relationships=[["a", "b"]])
    with pytest.raises(TypeError, match="labels " + msg):
        mean_average_precision(X, MIXED)


# -- missing values --------------------------------------------------------------------
@pytest.mark.parametrize(
    "missing",
    [pd.NA, pd.NaT, None, float("nan"), np.float32("nan"), np.datetime64("NaT")],
    ids=["NA", "NaT", "None", "nan", "float32-nan", "datetime64-NaT"],
)
def test_check_labels_reports_every_kind_of_missing_label(missing):
    y = np.array(["a", missing, "b", missing], dtype=object)
    with pytest.raises(ValueError, match=re.escape("y has 2 missing labels (None/NaN) at rows "
                                                   "1, 3; remove those rows.")):
        check_labels(y, 4)


def test_missing_labels_from_pandas_nullable_columns():
    ints = pd.array([1, None, 3], dtype="Int64")  # numpy reads it as float64 with NaN
    with pytest.raises(ValueError, match=re.escape("keys contains NaN or inf labels (1 missing")):
        check_labels(ints, 3, name="keys")
    text = pd.Series(["a", None, None], dtype="string")
    with pytest.raises(ValueError, match=re.escape("2 missing labels (None/NaN) at rows 1, 2")):
        check_labels(text, 3)
    dates = np.array(["2020-01-01", "NaT"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match=re.escape("1 missing labels (None/NaN) at rows 1")):
        check_labels(dates, 2)


def test_missing_mask_against_a_hand_example():
    values = np.array(["a", pd.NA, None, 1.0, float("nan"), pd.NaT, 0, ""], dtype=object)
    expected = [False, True, True, False, True, True, False, False]
    assert missing_mask(values).tolist() == expected
    assert missing_mask(np.array([1.0, np.nan, np.inf])).tolist() == [False, True, False]
    assert missing_mask(np.array(["a", "nan"])).tolist() == [False, False]
    assert missing_mask(np.arange(3)).tolist() == [False, False, False]


def test_float_labels_name_the_non_finite_rows():
    with pytest.raises(ValueError, match=re.escape("y contains NaN or inf labels (2 missing or "
                                                   "infinite, at rows 1, 2); remove those rows.")):
        check_labels(np.array([0.5, np.nan, np.inf]), 3)


# -- control_mask ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8])
@pytest.mark.parametrize("label", [-1, np.int64(-1), 2**70, -(2**70), 1000])
def test_control_mask_label_the_dtype_cannot_hold_matches_no_row(dtype, label):
    y = np.array([0, 1, 127], dtype=dtype)
    assert control_mask(y, label).tolist() == [False, False, False]


def test_control_mask_large_unsigned_keys_are_compared_exactly():
    # a float64 comparison would merge these two neighbours
    y = np.array([2**63, 2**63 + 1], dtype=np.uint64)
    assert control_mask(y, 2**63 + 1).tolist() == [False, True]
    assert control_mask(y, np.int64(-1)).tolist() == [False, False]
    assert control_mask(np.array([3, -1, 5], dtype=np.int8), -1).tolist() == [False, True, False]
    # int64 keys against a numpy unsigned label: numpy compares in float64, 2**62 + 1 -> 2**62
    y = np.array([2**62, 2**62 + 1], dtype=np.int64)
    assert control_mask(y, np.uint64(2**62 + 1)).tolist() == [False, True]
    assert control_mask(y, np.uint64(2**63)).tolist() == [False, False]


def test_uint8_keys_with_control_label_minus_one_give_the_no_controls_error():
    X = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([0, 0, 1, 1, 2, 255], dtype=np.uint8)
    with pytest.raises(ValueError, match="No control samples"):
        ControlNormalizer("center", control_label=-1).fit(X, y)


# -- shapes ----------------------------------------------------------------------------
def test_check_labels_shapes():
    assert check_labels(np.array([[1], [2]]), 2).tolist() == [1, 2]
    with pytest.raises(ValueError, match=re.escape("batch must be 1-D with one label per sample; "
                                                   "got an array of shape (2, 2)")):
        check_labels(np.array([[1, 2], [3, 4]]), 2, name="batch")


def test_check_finite_rows_of_an_object_array():
    X = np.array([[1.0, 2.0], [np.nan, 1.0]], dtype=object)
    with pytest.raises(ValueError, match=re.escape("X contains NaN or inf in 1 row(s) (row "
                                                   "indices: 1)")):
        check_finite_rows(X)
    check_finite_rows(np.array([[1.0, 2.0]], dtype=object))


def test_checks_without_pandas_loaded(monkeypatch):
    # without pandas in sys.modules no pandas.NA can exist: the numpy fallback is exact
    monkeypatch.setitem(sys.modules, "pandas", None)
    values = np.array(["a", None, float("nan"), np.float32("nan"), "b"], dtype=object)
    assert missing_mask(values).tolist() == [False, True, True, True, False]
    with pytest.raises(TypeError, match=re.escape("y mixes value types (int: 3 values")):
        check_labels(MIXED, 5)
    assert check_labels(np.array(["a", "b"], dtype=object), 2).tolist() == ["a", "b"]
    assert check_labels(np.array([1, 2.5], dtype=object), 2).tolist() == [1, 2.5]


def test_value_types_hand_example():
    from semiclip._core import value_types

    got = value_types(np.array([1, "a", np.int64(2), 1, b"x", 2.5, True], dtype=object))
    assert got == {"bool": (1, [True]), "bytes": (1, [b"x"]), "float": (1, [2.5]),
                   "int": (3, [1, 2]), "str": (1, ["a"])}
