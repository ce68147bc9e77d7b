"""Tests of semiclip.datasets._matching.

make_keys, normalize_gene_symbols, round_to_grid, match_report.
"""

import re

import numpy as np
import pytest

from semiclip.datasets import make_keys, match_report, normalize_gene_symbols, round_to_grid


# -- make_keys -----------------------------------------------------------------------
def test_make_keys_hand_example():
    keys = make_keys(["BRAF", "BRAF", "DMSO"], [10.0, 3.3333, 0.0], [1, 2, 3])
    assert keys.dtype == object
    assert keys.tolist() == ["BRAF|10|1", "BRAF|3.3333|2", "DMSO|0|3"]


def test_make_keys_matches_python_join():
    rng = np.random.default_rng(0)
    genes = rng.choice(["TP53", "KRAS", "A-B", "x y"], size=200)
    plates = rng.integers(0, 50, size=200)
    flags = rng.random(200) > 0.5
    expected = [f"{g}#{p}#{f}" for g, p, f in zip(genes.tolist(), plates.tolist(), flags.tolist())]
    assert make_keys(genes, plates, flags, sep="#").tolist() == expected


def test_make_keys_float_and_int_doses_agree():
    assert (make_keys(np.array([10, 1, 0])).tolist()
            == make_keys(np.array([10.0, 1.0, 0.0])).tolist())
    # shortest round-trip form of the column's own dtype: no float32 noise
    assert make_keys(np.array([0.1, 2.5], dtype=np.float32)).tolist() == ["0.1", "2.5"]
    assert make_keys(np.array([0.1 + 0.2])).tolist() == [repr(0.1 + 0.2)]


def test_make_keys_used_by_imagebank_from_dataframe():
    pd = pytest.importorskip("pandas")
    from semiclip import ImageBank

    frame = pd.DataFrame(
        {"Metadata_gene": ["A", "A", "B"], "Metadata_dose": [1.0, 2.0, 1.0], "e0": [1.0, 2.0, 3.0]}
    )
    bank = ImageBank.from_dataframe(frame, key=["Metadata_gene", "Metadata_dose"])
    assert bank.keys.tolist() == ["A|1", "A|2", "B|1"]
    assert bank.n_dims == 1


def test_make_keys_errors():
    with pytest.raises(TypeError, match="at least one column"):
        make_keys()
    with pytest.raises(ValueError, match=re.escape("differ in length: [2, 3]")):
        make_keys(["a", "b"], [1, 2, 3])
    with pytest.raises(ValueError,
                       match=re.escape("column 1 has 1 missing value(s) (None/NaN) at rows 1")):
        make_keys(["a", "b"], [1.0, np.nan])
    with pytest.raises(ValueError,
                       match=re.escape("column 0 has 2 missing value(s) (None/NaN) at rows 0, 2")):
        make_keys(np.array([None, "b", float("nan")], dtype=object))
    with pytest.raises(ValueError, match="containing the separator '\\|' \\('a\\|b'\\)"):
        make_keys(["a|b", "c"], [1, 2])
    with pytest.raises(ValueError, match="must be 1-D"):
        make_keys(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="mixes value types"):
        make_keys(np.array(["a", 1], dtype=object))
    with pytest.raises(ValueError, match="sep must be a non-empty string"):
        make_keys(["a"], sep="")


# -- normalize_gene_symbols ----------------------------------------------------------------
def test_normalize_gene_symbols_rules():
    got = normalize_gene_symbols(
        [" tp53 ", "Kras", "c9ORF72", "CXorf56", "ENSG00000141510.16", "BRAF_V600E", "HLA-DMA"]
    )
    assert got.tolist() == [
        "TP53", "KRAS", "C9orf72", "CXorf56", "ENSG00000141510", "BRAF_V600E", "HLA-DMA",
    ]
    stripped = normalize_gene_symbols(["BRAF_V600E", "prkca_del1-325", "ERG_truncated", "TP53"],
                                      strip_variant=True)
    assert stripped.tolist() == ["BRAF", "PRKCA", "ERG", "TP53"]


def test_normalize_gene_symbols_keeps_shape_and_missing():
    arr = np.array([["a", None], [float("nan"), "b "]], dtype=object)
    got = normalize_gene_symbols(arr)
    assert got.shape == (2, 2)
    assert got[0, 0] == "A" and got[1, 1] == "B"
    assert got[0, 1] is None and np.isnan(got[1, 0])
    assert normalize_gene_symbols([]).shape == (0,)


def test_normalize_gene_symbols_rejects_numbers():
    with pytest.raises(TypeError, match=re.escape("got 1 other value(s): 7")):
        normalize_gene_symbols(np.array([7, 7], dtype=object))


# -- round_to_grid ---------------------------------------------------------------------------
def test_round_to_grid_explicit_grid_matches_brute_force():
    rng = np.random.default_rng(1)
    grid = np.array([0.04, 0.12, 0.37, 1.1, 3.3, 10.0])
    doses = np.exp(rng.uniform(np.log(0.01), np.log(40), size=500))
    got = round_to_grid(doses, grid=grid)
    nearest = grid[np.argmin(np.abs(np.log(doses)[:, None] - np.log(grid)[None, :]), axis=1)]
    np.testing.assert_array_equal(got, nearest)
    assert round_to_grid([0.0, 3.3333, 3.33], grid=grid).tolist() == [0.0, 3.3, 3.3]
    assert round_to_grid([5.0], grid=[0, 2.0]).tolist() == [2.0]  # a 0 in the grid is ignored


def test_round_to_grid_factor_matches_brute_force():
    rng = np.random.default_rng(2)
    doses = np.exp(rng.uniform(np.log(0.001), np.log(30), size=300))
    got = round_to_grid(doses, factor=3, anchor=10)
    series = 10.0 * 3.0 ** np.arange(-12, 5)
    expected = series[np.argmin(np.abs(np.log(doses)[:, None] - np.log(series)[None, :]), axis=1)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # written differently, same dose: exactly the same float, hence the same key
    a, b = round_to_grid([3.3333, 3.33], factor=3, anchor=10)
    assert a == b and make_keys([a]).tolist() == make_keys([b]).tolist()
    # default anchor is the largest dose
    np.testing.assert_allclose(round_to_grid([9.0, 1.0], factor=3), [9.0, 1.0])


def test_round_to_grid_decimals_and_shape():
    doses = np.array([[0.041152, 3.3333], [0.0, 19.999]])
    np.testing.assert_array_equal(round_to_grid(doses, decimals=2), np.round(doses, 2))
    assert round_to_grid(doses, grid=[0.04, 3.3, 20]).shape == (2, 2)


def test_round_to_grid_errors():
    with pytest.raises(ValueError, match="exactly one of grid=, factor= or decimals=; got none"):
        round_to_grid([1.0])
    with pytest.raises(ValueError, match=re.escape("got ['grid', 'decimals']")):
        round_to_grid([1.0], grid=[1.0], decimals=2)
    with pytest.raises(ValueError,
                       match=re.escape("finite and >= 0; got 2 other value(s): -1.0, nan")):
        round_to_grid([-1.0, np.nan, 1.0], factor=3)
    with pytest.raises(ValueError, match="factor must be > 1"):
        round_to_grid([1.0], factor=1)
    with pytest.raises(ValueError, match="anchor must be"):
        round_to_grid([1.0], factor=3, anchor=0)
    with pytest.raises(ValueError, match="at least one concentration > 0"):
        round_to_grid([1.0], grid=[0.0])
    with pytest.raises(ValueError, match=re.escape("1 dose(s) lie more than tolerance=0.1")):
        round_to_grid([1.0, 20.0], grid=[1.0, 10.0], tolerance=0.1)
    with pytest.raises(ValueError, match="tolerance= applies"):
        round_to_grid([1.0], decimals=1, tolerance=0.1)


# -- match_report ---------------------------------------------------------------------------
def test_match_report_counts_against_sets():
    rng = np.random.default_rng(3)
    tx = rng.choice([f"G{i}" for i in range(40)] + ["ctl"], size=400)
    img = rng.choice([f"G{i}" for i in range(20, 70)], size=150)
    report = match_report(tx, img, control_label="ctl")
    tx_set, img_set = set(tx.tolist()) - {"ctl"}, set(img.tolist())
    assert report.matched_keys.tolist() == sorted(tx_set & img_set)
    assert report.unmatched_tx_keys.tolist() == sorted(tx_set - img_set)
    assert report.unmatched_image_keys.tolist() == sorted(img_set - tx_set)
    assert report.n_tx_keys == len(tx_set) and report.n_image_keys == len(img_set)
    assert report.n_tx_controls == int((tx == "ctl").sum())
    assert report.n_tx_rows == int((tx != "ctl").sum())
    assert report.n_tx_rows_matched == sum(k in img_set for k in tx.tolist())
    assert report.n_image_rows_matched == sum(k in tx_set for k in img.tolist())
    assert report.n_matched == len(tx_set & img_set)


def test_match_report_repr_and_case_hint():
    report = match_report(["TP53", "tp53", "BRAF", "ctl"], ["TP53", "KRAS"], control_label="ctl")
    text = repr(report)
    assert text.splitlines()[0] == "MatchReport: 1 key on both sides"
    assert "transcriptomics: 3 keys (3 rows), 1 matched (33%), 1 row usable" in text
    assert "unmatched: 'BRAF', 'tp53'" in text
    assert "images: 2 keys (2 rows), 1 matched (50%)" in text
    assert "controls ('ctl'): 1 row" in text
    assert report.n_fixable_by_case == 1 and "hint: 1 unmatched key would match" in text


def test_match_report_integer_keys_and_errors():
    report = match_report(np.array([1, 2, 2, 3]), np.array([2, 3, 4]))
    assert report.matched_keys.tolist() == [2, 3] and report.n_tx_rows_matched == 3
    assert "hint" not in repr(report)
    report = match_report(["1", "2"], [1, 2])
    assert report.n_matched == 0 and report.types_differ
    assert "string keys and the other numbers" in repr(report)
    with pytest.raises(ValueError,
                       match=re.escape("tx_keys has 1 missing key(s) (None/NaN) at rows 1")):
        match_report(np.array(["a", None], dtype=object), ["a"])
    with pytest.raises(TypeError, match="image_keys mixes value types"):
        match_report(["a"], np.array(["a", 1], dtype=object))


# -- signed zeros, pandas missing values, mixed types, decimals ---------------------------------
@pytest.mark.parametrize("order", [[-0.0, 0.0], [0.0, -0.0], [-0.0, -0.0]])
def test_make_keys_signed_zero_is_one_key_whatever_the_order(order):
    assert make_keys(["G", "G"], order).tolist() == ["G|0", "G|0"]
    objects = np.array(order + [0], dtype=object)
    assert make_keys(objects).tolist() == ["0", "0", "0"]


def test_make_keys_signed_zero_rows_pair_with_the_bank():
    from semiclip import ImageBank

    bank = ImageBank(np.ones((2, 2)), make_keys(["G", "H"], [0.0, 1.0]))
    keys = make_keys(["G", "G", "H"], [-0.0, 0.0, 1.0])
    assert (bank.codes(keys) >= 0).all()


def test_make_keys_pandas_missing_values():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError,
                       match=re.escape("column 0 has 2 missing value(s) (None/NaN) at rows 1, 2")):
        make_keys(np.array(["a", pd.NA, pd.NaT], dtype=object))


def test_make_keys_mixed_types_name_counts_and_examples():
    with pytest.raises(TypeError, match=re.escape(
            "make_keys column 1 mixes value types (int: 2 values, e.g. 1, 2; str: 1 value, e.g. "
            "'a'), which cannot be compared; convert it to one type first (e.g. .astype(str)).")):
        make_keys(["x", "y", "z"], np.array([1, "a", 2], dtype=object))
    # True == 1 for numpy: merging them would make one key of two
    with pytest.raises(TypeError, match=r"mixes value types \(bool: 1 value"):
        make_keys(np.array([True, 1], dtype=object))


@pytest.mark.parametrize("decimals", [2.7, 2.0, "2", True])
def test_round_to_grid_decimals_must_be_an_integer(decimals):
    with pytest.raises(TypeError, match=re.escape(f"decimals must be an integer (the number of "
                                                  f"decimal places); got {decimals!r}")):
        round_to_grid([0.123], decimals=decimals)


def test_round_to_grid_integer_decimals_of_any_integer_type():
    assert round_to_grid([0.126, 12.5], decimals=np.int64(2)).tolist() == [0.13, 12.5]
    assert round_to_grid([0.126, 12.5], decimals=-1).tolist() == [0.0, 10.0]


@pytest.mark.parametrize("tolerance", [float("nan"), -0.1, "0.1"])
def test_round_to_grid_tolerance_must_be_a_number_at_least_zero(tolerance):
    # NaN compared False everywhere: no dose was ever "too far"
    with pytest.raises((TypeError, ValueError), match="tolerance must be a finite number >= 0"):
        round_to_grid([1.0, 5.0], grid=[1.0], tolerance=tolerance)


def test_normalize_gene_symbols_keeps_pandas_missing_values():
    pd = pytest.importorskip("pandas")
    got = normalize_gene_symbols(np.array([" tp53", pd.NA, pd.NaT, None], dtype=object))
    assert got[0] == "TP53" and got[1] is pd.NA and got[2] is pd.NaT and got[3] is None


def test_match_report_unsigned_keys_and_a_control_label_they_cannot_hold():
    report = match_report(np.array([1, 2, 255], dtype=np.uint8), np.array([1, 2]),
                          control_label=-1)
    assert report.n_tx_controls == 0 and report.n_tx_rows == 3
    assert report.matched_keys.tolist() == [1, 2]
