"""Tests of the shipped real data and its loaders (semiclip.datasets._real)."""

import csv
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

import semiclip.datasets as ds
from semiclip.datasets import load_lincs_cellpainting, load_ta_orf_l1000

DATA = Path(ds.__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FILES = {
    "ta_orf_l1000": "TA_OE005_U2OS_72H_L1000_level4.csv.gz",
    "lincs_cellpainting": "SQ00015054_normalized_feature_select.csv.gz",
}


def _reference(folder):
    """Slow, obvious parse of a shipped file: csv module and Python float()."""
    with gzip.open(DATA / folder / FILES[folder], "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    meta = [j for j, h in enumerate(header) if h.startswith("Metadata_")]
    feat = [j for j, h in enumerate(header) if not h.startswith("Metadata_")]
    columns = {header[j]: [r[j] for r in rows[1:]] for j in meta}
    X = np.array([[float(r[j]) for j in feat] for r in rows[1:]], dtype=np.float64)
    return columns, X, [header[j] for j in feat]


@pytest.fixture(scope="module")
def ta_orf():
    return load_ta_orf_l1000()


@pytest.fixture(scope="module")
def lincs():
    return load_lincs_cellpainting()


def test_shipped_files_have_licences_and_readme():
    assert (DATA / "ta_orf_l1000" / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert "BSD 3-Clause" in (DATA / "lincs_cellpainting" / "LICENSE.md").read_text()
    readme = (DATA / "README.md").read_text()
    for name in FILES.values():
        assert name in readme
    profiles = sum((DATA / f / n).stat().st_size for f, n in FILES.items())
    assert profiles < 4_000_000


#: SHA-256 of the published files (recorded from the copies in ../shared/data)
PUBLISHED_SHA256 = {
    "ta_orf_l1000": "8cb92d191284433a2d90eb00d328966880ce74e87f226a4816ce5a003b69bbb8",
    "lincs_cellpainting": "0dab037c26926b143d3d64210bde3aa94943691edd226915dada9db85f5bd1c7",
}


@pytest.mark.parametrize("folder", sorted(FILES))
def test_shipped_files_identical_to_published(folder):
    """The shipped copy has the published file's digest (and equals ../shared/data when there)."""
    shipped = hashlib.sha256((DATA / folder / FILES[folder]).read_bytes()).hexdigest()
    assert shipped == PUBLISHED_SHA256[folder]
    source = SHARED / folder / FILES[folder]
    if source.exists():
        assert hashlib.sha256(source.read_bytes()).hexdigest() == shipped


def test_ta_orf_arrays_match_reference(ta_orf):
    columns, X, names = _reference("ta_orf_l1000")
    assert ta_orf.X.shape == (1092, 978) and ta_orf.X.dtype == np.float32
    assert ta_orf.X.flags.c_contiguous and ta_orf.data is ta_orf.X
    np.testing.assert_array_equal(ta_orf.X, X.astype(np.float32))
    assert ta_orf.feature_names.tolist() == names and "PSME1" in names
    pert_type = np.array(columns["Metadata_pert_type"])
    gene = np.array(columns["Metadata_gene"])
    is_ctl = np.isin(pert_type, ["ctl_vector", "ctl_untrt"])
    np.testing.assert_array_equal(ta_orf.is_control, is_ctl)
    assert int(is_ctl.sum()) == 158
    assert ta_orf.control_label == "control"
    assert ta_orf.y[is_ctl].tolist() == ["control"] * 158
    assert ta_orf.y[~is_ctl].tolist() == gene[~is_ctl].tolist()
    assert ta_orf.genes.tolist() == columns["Metadata_gene"]
    assert ta_orf.batch.tolist() == columns["Metadata_Plate"]
    assert ta_orf.well.tolist() == columns["Metadata_Well"]
    plates, counts = np.unique(ta_orf.batch, return_counts=True)
    assert dict(zip(plates.tolist(), counts.tolist())) == {
        "TA.OE005_U2OS_72H_X1_B15": 370,
        "TA.OE005_U2OS_72H_X2.A2_B18": 359,
        "TA.OE005_U2OS_72H_X3_B15": 363,
    }
    assert set(ta_orf.genes[ta_orf.pert_type == "ctl_vector"]) == {"LacZ", "Luciferase", "eGFP"}
    assert ta_orf.frame is None and ta_orf.metadata is None and "TA-ORF" in ta_orf.DESCR


def test_lincs_arrays_match_reference(lincs):
    columns, X, names = _reference("lincs_cellpainting")
    assert lincs.X.shape == (384, 454) and lincs.X.dtype == np.float32
    np.testing.assert_array_equal(lincs.X, X.astype(np.float32))
    assert lincs.feature_names.tolist() == names
    sample = np.array(columns["Metadata_broad_sample"])
    np.testing.assert_array_equal(lincs.is_control, sample == "DMSO")
    assert int(lincs.is_control.sum()) == 24 and lincs.control_label == "DMSO"
    assert lincs.y.tolist() == sample.tolist() and lincs.broad_sample.tolist() == sample.tolist()
    lincs.y[0] = "changed"  # y is its own array, not a view of broad_sample
    assert lincs.broad_sample[0] == sample[0]
    lincs.y[0] = sample[0]
    np.testing.assert_array_equal(lincs.dose,
                                  [float(v) for v in columns["Metadata_mmoles_per_liter"]])
    assert lincs.dose.dtype == np.float64 and np.all(lincs.dose[lincs.is_control] == 0)
    assert lincs.moa.tolist() == columns["Metadata_moa"]
    assert lincs.target_genes.tolist() == columns["Metadata_target"]
    assert lincs.moa[lincs.is_control].tolist() == [""] * 24
    assert lincs.pert_id.tolist() == columns["Metadata_pert_id"]
    assert set(lincs.batch) == {"SQ00015054"}
    assert len(set(lincs.y[~lincs.is_control])) == 58


@pytest.mark.parametrize("loader", [load_ta_orf_l1000, load_lincs_cellpainting])
def test_as_frame_equals_pandas_read_csv(loader):
    pd = pytest.importorskip("pandas")
    folder = "ta_orf_l1000" if loader is load_ta_orf_l1000 else "lincs_cellpainting"
    ref = pd.read_csv(DATA / folder / FILES[folder])
    bunch = loader(as_frame=True)
    meta_cols = [c for c in ref.columns if c.startswith("Metadata_")]
    pd.testing.assert_frame_equal(bunch.metadata, ref[meta_cols])
    assert list(bunch.frame.columns) == list(ref.columns)
    features = ref.drop(columns=meta_cols).astype(np.float32)
    pd.testing.assert_frame_equal(bunch.data, features)
    pd.testing.assert_frame_equal(bunch.frame[features.columns], features)
    assert isinstance(bunch.X, np.ndarray)
    np.testing.assert_array_equal(bunch.X, features.to_numpy())


def test_return_X_y(ta_orf):
    X, y = load_ta_orf_l1000(return_X_y=True)
    np.testing.assert_array_equal(X, ta_orf.X)
    np.testing.assert_array_equal(y, ta_orf.y)
    pd = pytest.importorskip("pandas")
    Xf, yf = load_lincs_cellpainting(as_frame=True, return_X_y=True)
    assert isinstance(Xf, pd.DataFrame) and Xf.shape == (384, 454) and yf.shape == (384,)


def test_arrays_need_no_pandas_and_frames_say_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    bunch = load_lincs_cellpainting()
    assert bunch.X.shape == (384, 454)
    with pytest.raises(ImportError, match=r"pip install semiclip\[pandas\]"):
        load_lincs_cellpainting(as_frame=True)


def test_real_keys_work_with_key_helpers(lincs, ta_orf):
    from semiclip.datasets import make_keys, normalize_gene_symbols, round_to_grid

    # the table's 3.3333 and another experiment's 3.33 snap to the same series point
    snapped = round_to_grid(lincs.dose, factor=3, anchor=10)
    treated = ~lincs.is_control & np.isclose(lincs.dose, 3.3333)
    assert treated.sum() > 0
    assert set(snapped[treated]) == set(round_to_grid([3.33], factor=3, anchor=10))
    keys = make_keys(lincs.y, snapped)
    assert keys[lincs.is_control].tolist() == ["DMSO|0"] * 24
    # TA-ORF alleles (BRAF_V600E) map to their gene
    constructs = ta_orf.genes[~ta_orf.is_control]
    genes = normalize_gene_symbols(constructs, strip_variant=True)
    assert "BRAF" in set(genes) and not any("_" in g for g in genes)
    assert len(set(constructs)) == 222 and len(set(genes)) == 189  # as DESCR says
