"""LINCS files as they are: -666 control doses, doses rounded differently, metadata untouched."""

import csv
import gzip
import re

import numpy as np
import pytest

from semiclip.cli import main

pd = pytest.importorskip("pandas")

# short fits on purpose: the warnings of short fits are tested elsewhere
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::semiclip.exceptions.GeneralizationWarning",
)

META = ["Metadata_pert_iname", "Metadata_dose_um", "Metadata_plate", "Metadata_note"]
DOSES = (10.0, 3.33, 1.11)


@pytest.fixture(scope="module")
def lincs(tmp_path_factory):
    """tx.csv (LINCS level 3 style: DMSO at dose -666) and img.csv (doses 3.333333...)."""
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("lincs")
    compounds = [f"cmpd{i}" for i in range(12)]
    rows = [(c, DOSES[i % 3], p) for i, c in enumerate(compounds) for p in ("P1", "P2", "P3")]
    rows += [("DMSO", -666.0, p) for p in ("P1", "P2", "P3") for _ in range(6)]
    n = len(rows)
    tx = pd.DataFrame(rng.normal(size=(n, 10)).round(4), columns=[f"G{j}" for j in range(10)])
    tx.insert(0, "Metadata_pert_iname", [r[0] for r in rows])
    tx.insert(1, "Metadata_dose_um", [r[1] for r in rows])
    tx.insert(2, "Metadata_plate", [r[2] for r in rows])
    # text that pandas would parse and write back differently: leading zeros, NA markers
    tx.insert(3, "Metadata_note", np.resize(["007", "NA", "", "1e3", "x,y"], n))
    tx.to_csv(d / "tx.csv", index=False)
    written = {10.0: 10.0, 3.33: 3.333333, 1.11: 1.111111}
    img = pd.DataFrame(rng.normal(size=(24, 4)), columns=[f"e{j}" for j in range(4)])
    img.insert(0, "pert", np.repeat(compounds, 2))
    img.insert(1, "dose", [written[DOSES[i % 3]] for i in range(12) for _ in range(2)])
    img.to_csv(d / "img.csv", index=False)
    return d


def _fit_args(d, *extra):
    return ["fit", "--tx", str(d / "tx.csv"), "--images", str(d / "img.csv"),
            "--key-col", "Metadata_pert_iname", "Metadata_dose_um", "--image-key-col", "pert",
            "dose", "--batch-col", "Metadata_plate", "--control-label", "DMSO",
            "--max-iter", "2", "--encoder-dim", "4", "--verbose", "0", "--overwrite", *extra]


@pytest.fixture(scope="module")
def model(lincs):
    path = lincs / "m.semiclip"
    assert main(_fit_args(lincs, "--dose-col", "Metadata_dose_um", "--dose-factor", "3",
                          "-o", str(path))) == 0
    return path


def test_fit_takes_minus_666_control_doses_and_snaps_the_rest(model):
    from semiclip.persistence import load_model

    est = load_model(model).estimator
    assert est.n_paired_keys_ == 12  # 3.33 ~ 3.333333 and 1.11 ~ 1.111111 after snapping


def test_the_key_report_suggests_the_dose_flags(lincs, capsys):
    assert main(_fit_args(lincs, "-o", str(lincs / "x.semiclip"))) == 2
    out, err = capsys.readouterr()
    # 8 of 12 compounds are at 3.33 or 1.11 and differ from the images by rounding only
    assert re.search(r"hint: 8 unmatched keys differ from an image key only in the rounding",
                     out)
    assert "'cmpd10|3.33' ~ 'cmpd10|3.333333'" in out
    assert "--dose-factor F or --dose-grid" in out
    assert "--dose-col with --dose-factor or --dose-grid" in err
    assert main(_fit_args(lincs, "--dose-col", "Metadata_dose_um", "--dose-grid", "1.111111",
                          "3.333333", "10", "-o", str(lincs / "x.semiclip"))) == 0


def _csv_rows(path, columns):
    """The cells of ``columns`` as written in the file (the csv module, not pandas)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        idx = [header.index(c) for c in columns]
        return [[row[i] for i in idx] for row in reader]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_transform_writes_the_csv_metadata_byte_for_byte(lincs, model, tmp_path, suffix):
    out = tmp_path / f"emb{suffix}"
    assert main(["transform", "-m", str(model), "--tx", str(lincs / "tx.csv"),
                 "-o", str(out)]) == 0
    expected = _csv_rows(lincs / "tx.csv", META)
    assert _csv_rows(out, META) == expected
    cells = {c for row in expected for c in row}
    assert {"3.33", "-666.0", "007", "NA", "", "1e3", "x,y"} <= cells
    header = next(csv.reader((gzip.open if suffix.endswith("gz") else open)(out, "rt")))
    assert header[:4] == META and header[4:] == [f"semiclippedtransformer{j}" for j in range(4)]


def test_transform_keeps_parquet_and_h5ad_metadata_unchanged(lincs, model, tmp_path):
    pytest.importorskip("pyarrow")
    anndata = pytest.importorskip("anndata")
    frame = pd.read_csv(lincs / "tx.csv")
    frame.to_parquet(tmp_path / "tx.parquet", index=False)
    assert main(["transform", "-m", str(model), "--tx", str(tmp_path / "tx.parquet"),
                 "-o", str(tmp_path / "emb.parquet")]) == 0
    got = pd.read_parquet(tmp_path / "emb.parquet")
    want = pd.read_parquet(tmp_path / "tx.parquet")[META]
    pd.testing.assert_frame_equal(got[META], want, check_exact=True)
    assert 3.33 in got["Metadata_dose_um"].tolist()  # not 3.333333333333333

    genes = [f"G{j}" for j in range(10)]
    obs = frame[META].astype({"Metadata_note": str})
    obs.index = [f"w{i}" for i in range(len(obs))]
    adata = anndata.AnnData(frame[genes].to_numpy(np.float32), obs=obs,
                            var=pd.DataFrame(index=genes))
    adata.write_h5ad(tmp_path / "tx.h5ad")
    assert main(["transform", "-m", str(model), "--tx", str(tmp_path / "tx.h5ad"),
                 "-o", str(tmp_path / "emb.h5ad")]) == 0
    out = anndata.read_h5ad(tmp_path / "emb.h5ad")
    pd.testing.assert_frame_equal(out.obs, anndata.read_h5ad(tmp_path / "tx.h5ad").obs,
                                  check_exact=True)
    assert out.obsm["X_semiclip"].shape == (len(obs), 4)


def test_transform_and_attribute_never_look_at_pairing_columns_they_do_not_need(
        lincs, model, tmp_path):
    frame = pd.read_csv(lincs / "tx.csv")
    # keys transform does not need: missing values and mixed types in both key columns
    frame["Metadata_pert_iname"] = frame["Metadata_pert_iname"].astype(object)
    frame.loc[0, "Metadata_pert_iname"] = None
    frame["Metadata_dose_um"] = frame["Metadata_dose_um"].astype(object)
    frame.loc[1, "Metadata_dose_um"] = "n/a"
    frame.to_csv(tmp_path / "odd.csv", index=False)
    assert main(["transform", "-m", str(model), "--tx", str(tmp_path / "odd.csv"),
                 "-o", str(tmp_path / "emb.csv")]) == 0
    # attribute per key needs the keys: the control rows' placeholders are never checked
    frame = pd.read_csv(lincs / "tx.csv")
    frame.loc[frame["Metadata_pert_iname"] == "DMSO", "Metadata_dose_um"] = np.nan
    frame.to_csv(tmp_path / "nan_ctl.csv", index=False)
    assert main(["attribute", "-m", str(model), "--tx", str(tmp_path / "nan_ctl.csv"),
                 "--keys", "cmpd0|10", "-o", str(tmp_path / "a.csv")]) == 0


def test_attribute_keys_are_snapped_like_the_model_keys(lincs, model, tmp_path, capsys):
    out = tmp_path / "att.csv"
    assert main(["attribute", "-m", str(model), "--tx", str(lincs / "tx.csv"), "--keys",
                 "cmpd1|3.33", "cmpd2|1.11111", "--top", "2", "-o", str(out)]) == 0
    keys = pd.read_csv(out)["key"].unique().tolist()
    # the grid points 10 * 3**k of a 3-fold series anchored at the largest dose
    third = np.format_float_positional(10 * 3.0**-1, unique=True)
    ninth = np.format_float_positional(10 * 3.0**-2, unique=True)
    assert keys == [f"cmpd1|{third}", f"cmpd2|{ninth}"]
    capsys.readouterr()
    assert main(["attribute", "-m", str(model), "--tx", str(lincs / "tx.csv"), "--keys",
                 "cmpd1|0.5", "-o", str(out), "--overwrite"]) == 2
    assert "'cmpd1|0.5 (read as cmpd1|0.37037037037037035)' not found" in \
        capsys.readouterr().err
