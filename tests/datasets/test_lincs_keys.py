"""Control doses are never checked or used; doses rounded differently are pointed out."""

import re

import numpy as np
import pytest

from semiclip.datasets import from_dataframe, match_report, round_to_grid

pd = pytest.importorskip("pandas")


def _lincs_frame(control_dose):
    return pd.DataFrame({
        "Metadata_pert_iname": ["cmpdA", "cmpdA", "cmpdB", "DMSO", "DMSO"],
        "Metadata_dose_um": np.array([10.0, 3.33, 10.0, control_dose, control_dose],
                                     dtype=object if isinstance(control_dose, str) else float),
        "Metadata_plate": ["P1", "P2", "P1", "P1", "P2"],
        "g1": [0.5, 0.1, 0.2, 0.0, 0.3],
    })


@pytest.mark.parametrize("control_dose", [-666.0, np.nan, "-"])
def test_a_control_dose_is_never_checked_with_a_control_label(control_dose):
    d = from_dataframe(_lincs_frame(control_dose), key=["Metadata_pert_iname", "Metadata_dose_um"],
                       batch="Metadata_plate", control_label="DMSO")
    assert d.y.tolist() == ["cmpdA|10", "cmpdA|3.33", "cmpdB|10", "DMSO", "DMSO"]
    assert d.is_control.tolist() == [False, False, False, True, True]


@pytest.mark.parametrize("control_dose", [-666.0, np.nan])
def test_a_control_dose_is_never_checked_with_a_control_column(control_dose):
    d = from_dataframe(_lincs_frame(control_dose), key=["Metadata_pert_iname", "Metadata_dose_um"],
                       control=("Metadata_pert_iname", "DMSO"))
    assert d.y.tolist() == ["cmpdA|10", "cmpdA|3.33", "cmpdB|10", "control", "control"]


def test_a_missing_dose_of_a_treated_sample_is_still_an_error_with_its_row():
    frame = _lincs_frame(np.nan)
    frame.loc[1, "Metadata_dose_um"] = np.nan
    with pytest.raises(ValueError, match=re.escape(
            "key column 'Metadata_dose_um' has 1 missing value(s) (None/NaN) at rows 1 "
            "(not controls)")):
        from_dataframe(frame, key=["Metadata_pert_iname", "Metadata_dose_um"],
                       control_label="DMSO")


def test_round_to_grid_leaves_the_rows_outside_where_alone():
    doses = np.array([10.0, 3.33, -666.0, 1.11, -666.0])
    out = round_to_grid(doses, factor=3, where=doses != -666.0)
    # anchor: the largest dose among the snapped ones (10), not -666
    np.testing.assert_array_equal(out, [10.0, 10 * 3.0**-1, -666.0, 10 * 3.0**-2, -666.0])
    assert np.isnan(round_to_grid([np.nan, 2.0], decimals=0, where=[False, True])[0])
    with pytest.raises(ValueError, match="where must be a boolean array"):
        round_to_grid(doses, factor=3, where=[1, 0, 1, 0, 1])


def test_bad_doses_are_counted_once_each_and_the_fix_named():
    doses = np.r_[np.full(26, -666.0), 10.0, 3.33]
    with pytest.raises(ValueError, match=re.escape(
            "got 26 other value(s): -666.0 (x26). Drop those rows or fill the vehicle dose "
            "with 0; placeholder doses of controls (e.g. LINCS -666) are left alone with "
            "where=~is_control.")):
        round_to_grid(doses, factor=3)


def test_match_report_points_at_doses_rounded_differently():
    tx = ["a|3.33", "a|10", "b|1.11", "c|0.5", "DMSO"]
    im = ["a|3.333333", "a|10", "b|1.111111", "c|5"]
    report = match_report(tx, im, control_label="DMSO")
    assert report.n_fixable_by_dose == 2  # c|0.5 vs c|5 is another dose, not rounding
    assert report.dose_examples == [("a|3.33", "a|3.333333"), ("b|1.11", "b|1.111111")]
    assert "round_to_grid() before make_keys()" in repr(report)
    assert "--dose-factor" in repr(report)
    assert match_report(["a|10"], ["b|10"]).n_fixable_by_dose == 0
    assert "rounding" not in repr(match_report(["a|10"], ["a|10"]))
