"""Tests of semiclip.datasets._adapters: from_dataframe and from_anndata."""

import re

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from semiclip.datasets import from_anndata, from_dataframe, load_ta_orf_l1000, make_keys  # noqa: E402


def _frame():
    return pd.DataFrame(
        {
            "Metadata_gene": ["TP53", "TP53", "KRAS", "EMPTY", "EMPTY"],
            "Metadata_dose": [1.0, 3.0, 1.0, 0.0, 0.0],
            "Metadata_Plate": ["P1", "P2", "P1", "P1", "P2"],
            "Metadata_pert_type": ["trt", "trt", "trt", "ctl", "ctl"],
            "Metadata_is_ctl": [False, False, False, True, True],
            "g1": [0.5, 0.1, 0.2, 0.0, np.nan],
            "g2": np.arange(5, dtype=np.int64),
        }
    )


# -- from_dataframe ------------------------------------------------------------------
def test_from_dataframe_basic():
    frame = _frame()
    d = from_dataframe(frame, key="Metadata_gene", batch="Metadata_Plate", control_label="EMPTY")
    assert d.X.dtype == np.float32 and d.X.shape == (5, 2)
    np.testing.assert_array_equal(d.X, frame[["g1", "g2"]].to_numpy(dtype=np.float32))
    assert np.isnan(d.X[4, 0])  # NaN kept for the user to impute
    assert d.y.tolist() == frame["Metadata_gene"].tolist()
    assert d.batch.tolist() == frame["Metadata_Plate"].tolist()
    assert d.is_control.tolist() == [False, False, False, True, True]
    assert d.control_label == "EMPTY"
    assert d.feature_names.tolist() == ["g1", "g2"]
    assert list(d.metadata.columns) == [c for c in frame.columns if c.startswith("Metadata_")]


def test_from_dataframe_multi_column_key_and_controls():
    frame = _frame()
    d = from_dataframe(frame, key=["Metadata_gene", "Metadata_dose"],
                       control=("Metadata_pert_type", "ctl"))
    expected = make_keys(frame["Metadata_gene"].to_numpy(), frame["Metadata_dose"].to_numpy())
    expected[3:] = "control"
    assert d.y.tolist() == expected.tolist() == ["TP53|1", "TP53|3", "KRAS|1", "control", "control"]
    assert d.control_label == "control" and d.batch is None
    # a boolean column and a custom label
    d = from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl", control_label="ctl")
    assert d.y.tolist()[3:] == ["ctl", "ctl"] and d.is_control.sum() == 2
    # several values
    d = from_dataframe(frame, key="Metadata_gene", control=("Metadata_gene", ["EMPTY", "KRAS"]))
    assert d.is_control.tolist() == [False, False, True, True, True]
    # no controls at all
    d = from_dataframe(frame, key="Metadata_gene")
    assert not d.is_control.any() and d.control_label is None


def test_from_dataframe_numeric_keys_become_strings_when_controls_are_relabelled():
    frame = pd.DataFrame({"pert": [7, 8, 9], "Metadata_ctl": [False, False, True],
                          "f": [1.0, 2.0, 3.0]})
    d = from_dataframe(frame, key="pert", control="Metadata_ctl")
    assert d.y.tolist() == ["7", "8", "control"]
    d = from_dataframe(frame, key="pert", control="Metadata_ctl", control_label=-1)
    assert d.y.tolist() == [7, 8, -1]
    assert d.feature_names.tolist() == ["f"]  # the key column is not a feature


def test_from_dataframe_agrees_with_the_loader():
    tx = load_ta_orf_l1000(as_frame=True)
    d = from_dataframe(tx.frame, key="Metadata_gene", batch="Metadata_Plate",
                       control=("Metadata_pert_type", ["ctl_vector", "ctl_untrt"]))
    np.testing.assert_array_equal(d.X, tx.X)
    np.testing.assert_array_equal(d.y, tx.y)
    np.testing.assert_array_equal(d.batch, tx.batch)
    np.testing.assert_array_equal(d.is_control, tx.is_control)
    np.testing.assert_array_equal(d.feature_names, tx.feature_names)


def test_from_dataframe_explicit_features():
    d = from_dataframe(_frame(), key="Metadata_gene", features=["g2"])
    assert d.feature_names.tolist() == ["g2"] and d.X[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert "g1" in d.metadata.columns


def test_from_dataframe_errors():
    frame = _frame()
    with pytest.raises(ValueError, match=re.escape("key column 'gene' not found in the DataFrame; "
                                                   "it has columns 'Metadata_gene'")):
        from_dataframe(frame, key="gene")
    with pytest.raises(ValueError, match="batch column 'Plate' not found"):
        from_dataframe(frame, key="Metadata_gene", batch="Plate")
    with pytest.raises(ValueError, match=re.escape("control_label='DMSO' matches none of the keys "
                                                   "of 'Metadata_gene'; keys look like 'EMPTY', "
                                                   "'KRAS', 'TP53'")):
        from_dataframe(frame, key="Metadata_gene", control_label="DMSO")
    with pytest.raises(ValueError, match="control column 'Metadata_pert_type' must be boolean"):
        from_dataframe(frame, key="Metadata_gene", control="Metadata_pert_type")
    with pytest.raises(ValueError,
                       match=re.escape("control=('Metadata_pert_type', 'x') matches no row")):
        from_dataframe(frame, key="Metadata_gene", control=("Metadata_pert_type", "x"))
    with pytest.raises(ValueError, match=re.escape("control_label='TP53' is already the key of 2 "
                                                   "non-control row(s)")):
        from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl", control_label="TP53")
    with pytest.raises(ValueError, match="a column name or a \\(column, values\\) pair"):
        from_dataframe(frame, key="Metadata_gene", control=("a", "b", "c"))
    bad = frame.assign(Metadata_gene=["TP53", None, "KRAS", "EMPTY", "EMPTY"])
    with pytest.raises(ValueError, match=re.escape("key column 'Metadata_gene' has 1 missing "
                                                   "value(s) (None/NaN) at rows 1")):
        from_dataframe(bad, key="Metadata_gene")
    with pytest.raises(ValueError, match=re.escape("1 column(s) are neither numeric features nor "
                                                   "Metadata_ columns: 'note'")):
        from_dataframe(frame.assign(note="x"), key="Metadata_gene")
    with pytest.raises(ValueError, match=re.escape("features 'g3' not found")):
        from_dataframe(frame, key="Metadata_gene", features=["g1", "g3"])
    with pytest.raises(ValueError, match="features must be numeric columns; 'Metadata_Plate'"):
        from_dataframe(frame, key="Metadata_gene", features=["Metadata_Plate"])
    with pytest.raises(ValueError, match="no feature columns left"):
        from_dataframe(frame[["Metadata_gene", "Metadata_Plate"]], key="Metadata_gene")
    dup = pd.DataFrame([[1, 2.0, 3.0]], columns=["Metadata_k", "f", "f"])
    with pytest.raises(ValueError, match=re.escape("duplicated column names 'f'")):
        from_dataframe(dup, key="Metadata_k")
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame; got ndarray"):
        from_dataframe(np.zeros((2, 2)), key="a")


def test_from_dataframe_error_lists_metadata_first_for_wide_tables():
    wide = pd.DataFrame(np.zeros((2, 40)), columns=[f"f{i}" for i in range(40)])
    wide.insert(0, "Metadata_well", ["A1", "A2"])
    with pytest.raises(ValueError, match=re.escape("its metadata columns are 'Metadata_well' "
                                                   "(and 40 numeric feature columns)")):
        from_dataframe(wide, key="Metadata_gene")


# -- from_anndata ----------------------------------------------------------------------
try:
    import anndata
except ImportError:  # pragma: no cover - anndata is an optional extra
    anndata = None
needs_anndata = pytest.mark.skipif(anndata is None, reason="anndata is not installed")


def _adata(X):
    obs = pd.DataFrame(
        {
            "gene": pd.Categorical(["A", "B", "A", "B", "ctl", "ctl"]),
            "plate": ["p1", "p1", "p2", "p2", "p1", "p2"],
            "type": ["trt"] * 4 + ["ctl"] * 2,
        },
        index=[f"cell{i}" for i in range(6)],
    )
    var = pd.DataFrame({"symbol": ["TP53", "KRAS", "MYC", "EGFR"]},
                       index=[f"ENSG{i:011d}" for i in range(4)])
    adata = anndata.AnnData(X, obs=obs, var=var)
    adata.layers["scaled"] = np.asarray(adata.X.todense() if hasattr(adata.X, "todense")
                                        else adata.X) * 2
    adata.obsm["X_pca"] = np.arange(12, dtype=np.float64).reshape(6, 2)
    adata.obsm["X_df"] = pd.DataFrame({"u": np.ones(6), "v": np.zeros(6)}, index=obs.index)
    return adata


DENSE = np.arange(24, dtype=np.float32).reshape(6, 4) % 5


@needs_anndata
@pytest.mark.parametrize("kind", ["dense", "csr", "csc"])
@pytest.mark.parametrize("backed", [None, "r"])
def test_from_anndata_h5ad_round_trip(tmp_path, kind, backed):
    import scipy.sparse as sp

    X = {"dense": DENSE, "csr": sp.csr_matrix(DENSE), "csc": sp.csc_matrix(DENSE)}[kind]
    path = tmp_path / f"{kind}.h5ad"
    _adata(X).write_h5ad(path)
    adata = anndata.read_h5ad(path, backed=backed)
    try:
        d = from_anndata(adata, key="gene", batch="plate", control_label="ctl")
        assert isinstance(d.X, np.ndarray) and d.X.dtype == np.float32
        np.testing.assert_array_equal(d.X, DENSE)
        assert d.y.tolist() == ["A", "B", "A", "B", "ctl", "ctl"]
        assert d.batch.tolist() == ["p1", "p1", "p2", "p2", "p1", "p2"]
        assert d.is_control.tolist() == [False] * 4 + [True] * 2
        assert d.feature_names.tolist() == [f"ENSG{i:011d}" for i in range(4)]
        d = from_anndata(adata, key="gene", obsm="X_pca", var_column=None)
        np.testing.assert_array_equal(d.X, np.arange(12).reshape(6, 2))
        assert d.feature_names.tolist() == ["X_pca_0", "X_pca_1"]
    finally:
        if backed:
            adata.file.close()


@needs_anndata
def test_from_anndata_layers_obsm_frames_and_var_column(tmp_path):
    adata = _adata(DENSE)
    d = from_anndata(adata, key="gene", layer="scaled", var_column="symbol",
                     control=("type", "ctl"))
    np.testing.assert_array_equal(d.X, DENSE * 2)
    assert d.feature_names.tolist() == ["TP53", "KRAS", "MYC", "EGFR"]
    assert d.y.tolist()[4:] == ["control", "control"] and d.metadata is adata.obs
    d = from_anndata(adata, key=["gene", "plate"], obsm="X_df")
    assert d.feature_names.tolist() == ["u", "v"] and d.y.tolist()[0] == "A|p1"
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    d = from_anndata(str(path), key="gene")  # a path is read with anndata.read_h5ad
    np.testing.assert_array_equal(d.X, DENSE)


@needs_anndata
def test_from_anndata_errors():
    adata = _adata(DENSE)
    with pytest.raises(ValueError, match=re.escape("key column 'perturbation' not found in "
                                                   "adata.obs; it has columns 'gene', 'plate', "
                                                   "'type'")):
        from_anndata(adata, key="perturbation")
    with pytest.raises(ValueError,
                       match=re.escape("layer='counts' not found; adata.layers has 'scaled'")):
        from_anndata(adata, key="gene", layer="counts")
    with pytest.raises(ValueError,
                       match=re.escape("obsm='X_umap' not found; adata.obsm has 'X_pca', 'X_df'")):
        from_anndata(adata, key="gene", obsm="X_umap")
    with pytest.raises(ValueError, match="pass layer= or obsm=, not both"):
        from_anndata(adata, key="gene", layer="scaled", obsm="X_pca")
    with pytest.raises(ValueError, match=re.escape("var_column='name' not found in adata.var; "
                                                   "it has columns 'symbol'")):
        from_anndata(adata, key="gene", var_column="name")
    with pytest.raises(TypeError, match="adata must be an AnnData object"):
        from_anndata(pd.DataFrame({"a": [1]}), key="a")
    empty = anndata.AnnData(obs=adata.obs)
    with pytest.raises(ValueError, match="adata.X is empty"):
        from_anndata(empty, key="gene")


# -- the label given to relabelled controls is kept exactly -----------------------------
def _int_keys(dtype=np.int64):
    return pd.DataFrame({"pert": np.array([0, 1, 2, 0, 1], dtype=dtype),
                         "is_ctrl": [False, False, False, True, True],
                         "f": [1.0, 2.0, 3.0, 4.0, 5.0]})


@pytest.mark.parametrize("label", [-0.5, 2.5, np.float64(0.25), -1, 7])
def test_numeric_keys_keep_a_numeric_control_label_exactly(label):
    d = from_dataframe(_int_keys(), key="pert", control="is_ctrl", control_label=label)
    # the hand-written expectation: perturbations 0, 1, 2 and then the label twice
    assert d.y.tolist() == [0, 1, 2, label, label]
    assert d.y[3] == label and d.y[3] != 0  # never merged with perturbation 0
    assert d.is_control.tolist() == [False, False, False, True, True]
    assert np.unique(d.y).size == 4
    if isinstance(label, int):  # an integer label fits: the integer keys stay integers
        assert d.y.dtype == np.int64


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8])
def test_small_integer_keys_hold_a_control_label_out_of_their_range(dtype):
    label = -1 if np.dtype(dtype).kind == "u" else 300
    d = from_dataframe(_int_keys(dtype), key="pert", control="is_ctrl", control_label=label)
    assert d.y.tolist() == [0, 1, 2, label, label]
    assert d.control_label == label


def test_huge_integer_keys_keep_every_key_with_a_float_control_label():
    frame = _int_keys().assign(pert=np.array([2**60, 2**60 + 1, 5, 0, 0], dtype=np.int64))
    d = from_dataframe(frame, key="pert", control="is_ctrl", control_label=-0.5)
    assert d.y.tolist() == [2**60, 2**60 + 1, 5, -0.5, -0.5]  # no rounding through float64


@needs_anndata
@pytest.mark.parametrize("label", [-0.5, "DMSO"])
def test_from_anndata_numeric_keys_keep_the_control_label(label):
    obs = pd.DataFrame({"pert": [0, 1, 0], "ctl": [False, False, True]},
                       index=["a", "b", "c"])
    d = from_anndata(anndata.AnnData(np.ones((3, 2), dtype=np.float32), obs=obs), key="pert",
                     control="ctl", control_label=label)
    expected = [0, 1, label] if label == -0.5 else ["0", "1", "DMSO"]
    assert d.y.tolist() == expected and d.y[2] == label


def test_string_keys_with_a_numeric_control_label_is_an_error():
    frame = _frame()
    with pytest.raises(ValueError, match=re.escape(
            "control_label=-1 is a number but the keys of 'Metadata_gene' are str (e.g. "
            "'KRAS', 'TP53'); pass a str control_label (e.g. control_label='control') "
            "so that the keys stay one type.")):
        from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl", control_label=-1)
    with pytest.raises(ValueError, match=r"control_label=True is a bool but the keys of 'pert'"):
        from_dataframe(_int_keys().assign(pert=[0, 2, 3, 0, 2]), key="pert", control="is_ctrl",
                       control_label=True)


def test_uint8_keys_and_a_control_label_they_cannot_hold():
    with pytest.raises(ValueError, match=re.escape("control_label=-1 matches none of the keys "
                                                   "of 'pert'")):
        from_dataframe(_int_keys(np.uint8), key="pert", control_label=-1)


def test_pandas_missing_values_in_key_columns():
    frame = _frame().assign(Metadata_gene=pd.array(["TP53", pd.NA, "KRAS", "EMPTY", pd.NA],
                                                   dtype="string"))
    with pytest.raises(ValueError, match=re.escape("key column 'Metadata_gene' has 2 missing "
                                                   "value(s) (None/NaN) at rows 1, 4")):
        from_dataframe(frame, key="Metadata_gene")
    frame = _frame().assign(Metadata_dose=pd.array([1, None, 3, 0, 0], dtype="Int64"))
    with pytest.raises(ValueError, match=re.escape("key column 'Metadata_dose' has 1 missing")):
        from_dataframe(frame, key=["Metadata_gene", "Metadata_dose"])


def test_mixed_type_key_and_batch_columns_are_named():
    frame = _frame().assign(Metadata_gene=np.array([1, "a", 2, "b", "b"], dtype=object))
    with pytest.raises(TypeError, match=re.escape(
            # the controls' keys (rows 3, 4) are replaced, so only rows 0-2 are looked at
            "key column 'Metadata_gene' mixes value types (int: 2 values, e.g. 1, 2; str: 1 "
            "value, e.g. 'a')")):
        from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl")
    frame = _frame().assign(Metadata_Plate=np.array([1, "P1", 1, 1, 1], dtype=object))
    with pytest.raises(TypeError, match="batch column 'Metadata_Plate' mixes value types"):
        from_dataframe(frame, key="Metadata_gene", batch="Metadata_Plate")


def test_bytes_keys_with_a_str_control_label_is_an_error():
    frame = _frame().assign(Metadata_gene=np.array([b"TP53", b"TP53", b"KRAS", b"E", b"E"]))
    with pytest.raises(ValueError, match=re.escape(
            "control_label='control' is a str but the keys of 'Metadata_gene' are bytes")):
        from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl")
    d = from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl", control_label=b"C")
    assert d.y.tolist() == [b"TP53", b"TP53", b"KRAS", b"C", b"C"]


def test_object_numeric_keys_with_a_str_control_label_become_text():
    frame = _frame().assign(Metadata_gene=np.array([1, 2.5, 3, 0, 0], dtype=object))
    d = from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl")
    assert d.y.tolist() == ["1", "2.5", "3", "control", "control"]
    with pytest.raises(ValueError, match=re.escape("control_label=nan is a missing value")):
        from_dataframe(frame, key="Metadata_gene", control="Metadata_is_ctl",
                       control_label=float("nan"))


# -- feature names as a DataFrame, tables without keys, list columns of embeddings -------
def test_as_frame_gives_the_features_as_a_dataframe_of_gene_symbols():
    tx = load_ta_orf_l1000(as_frame=True)
    d = from_dataframe(tx.frame, key="Metadata_gene", batch="Metadata_Plate",
                       control=("Metadata_pert_type", ["ctl_vector", "ctl_untrt"]), as_frame=True)
    # the published table's own column names, in order, after the 7 Metadata_ columns
    assert list(d.data.columns) == list(tx.frame.columns[7:])
    assert d.data.columns[:3].tolist() == ["PSME1", "CISD1", "VDAC1"]
    assert d.data.index.equals(tx.frame.index) and d.data.dtypes.unique().tolist() == [
        np.float32]
    np.testing.assert_array_equal(d.data.to_numpy(), tx.X)
    assert isinstance(d.X, np.ndarray)  # X stays the array, as in load_ta_orf_l1000
    plain = from_dataframe(tx.frame, key="Metadata_gene")
    assert plain.data is plain.X  # as_frame=False: data is X


@needs_anndata
def test_from_anndata_as_frame_keeps_var_names_and_obs_names():
    adata = _adata(DENSE)
    d = from_anndata(adata, key="gene", as_frame=True)
    assert d.data.columns.tolist() == list(adata.var_names)
    assert d.data.index.tolist() == list(adata.obs_names)
    np.testing.assert_array_equal(d.data.to_numpy(), DENSE)
    d = from_anndata(adata, key="gene", var_column="symbol", as_frame=True)
    assert d.data.columns.tolist() == ["TP53", "KRAS", "MYC", "EGFR"]


def test_tables_without_a_key_column_give_features_for_inference():
    frame = _frame().drop(columns=["Metadata_gene"])
    d = from_dataframe(frame, batch="Metadata_Plate")
    assert d.y is None and d.control_label is None and not d.is_control.any()
    assert d.feature_names.tolist() == ["g1", "g2"]
    np.testing.assert_array_equal(d.batch, frame["Metadata_Plate"].to_numpy())
    d = from_dataframe(frame, control="Metadata_is_ctl")
    assert d.is_control.tolist() == [False, False, False, True, True] and d.y is None
    with pytest.raises(ValueError, match=re.escape("control_label='EMPTY' needs the key column "
                                                   "(key=...)")):
        from_dataframe(frame, control_label="EMPTY")


def _list_frame(n_dims=3):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, n_dims)).astype(np.float32)
    frame = pd.DataFrame({"compound": ["a", "a", "b", "c"], "conc": [1.0, 1.0, 3.0, 1.0],
                          "pheno_embedding": list(vectors), "note": ["x", "y", "z", "w"]})
    return frame, vectors


def test_a_list_column_of_embeddings_is_the_features(tmp_path):
    frame, vectors = _list_frame()
    frame.to_parquet(tmp_path / "emb.parquet")
    read = pd.read_parquet(tmp_path / "emb.parquet")  # cells come back as arrays
    d = from_dataframe(read, key=["compound", "conc"], embedding="pheno_embedding")
    np.testing.assert_array_equal(d.X, vectors)
    assert d.X.dtype == np.float32 and d.X.flags.c_contiguous
    assert d.y.tolist() == make_keys(frame["compound"], frame["conc"]).tolist()
    assert d.feature_names.tolist() == ["pheno_embedding_0", "pheno_embedding_1",
                                        "pheno_embedding_2"]
    assert "note" in d.metadata.columns and "pheno_embedding" not in d.metadata.columns
    as_lists = frame.assign(pheno_embedding=[v.tolist() for v in vectors])
    np.testing.assert_array_equal(from_dataframe(as_lists, key="compound",
                                                 embedding="pheno_embedding").X, vectors)


def test_list_column_errors_name_rows_and_the_fix():
    frame, vectors = _list_frame()
    ragged = frame.assign(pheno_embedding=[vectors[0], vectors[1][:2], vectors[2], vectors[3][:1]])
    with pytest.raises(ValueError, match=re.escape(
            "embedding column 'pheno_embedding' holds vectors of different lengths: 2 row(s) "
            "(rows 1, 3) differ from the 3 entries of row 0")):
        from_dataframe(ragged, key="compound", embedding="pheno_embedding")
    missing = frame.assign(pheno_embedding=[vectors[0], None, vectors[2], vectors[3]])
    with pytest.raises(ValueError, match=re.escape(
            "embedding column 'pheno_embedding' has 1 missing value(s) (None/NaN) at rows 1")):
        from_dataframe(missing, key="compound", embedding="pheno_embedding")
    text = frame.assign(pheno_embedding=[str(v.tolist()) for v in vectors])  # as read from CSV
    with pytest.raises(ValueError, match="holds text such as .*Store the table as Parquet"):
        from_dataframe(text, key="compound", embedding="pheno_embedding")
    with pytest.raises(ValueError, match="embedding column 'emb' not found"):
        from_dataframe(frame, key="compound", embedding="emb")
    with pytest.raises(ValueError, match="pass features= or embedding=, not both"):
        from_dataframe(frame, key="compound", embedding="pheno_embedding", features=["conc"])
