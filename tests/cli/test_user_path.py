"""The user's path through the CLI: gene names, metadata, AnnData, attribute, evaluate, demo."""

import re

import numpy as np
import pytest

from semiclip.cli import main
from semiclip.persistence import load_model

from ._common import COLS, FIT_PARAMS

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

pd = pytest.importorskip("pandas")

TA_COLS = ["--key-col", "Metadata_gene", "--batch-col", "Metadata_Plate", "--control-col",
           "Metadata_pert_type", "--control-values", "ctl_vector", "ctl_untrt"]
TINY = ["--max-iter", "2", "--encoder-dim", "8", "--hidden-layer-sizes", "linear",
        "--normalize", "none", "--verbose", "0"]


@pytest.fixture(scope="module")
def ta_orf(tmp_path_factory):
    """The shipped TA-ORF table as a Parquet file, a random teacher per gene, a fitted model."""
    from semiclip.datasets import load_ta_orf_l1000

    d = tmp_path_factory.mktemp("ta_orf")
    table = load_ta_orf_l1000(as_frame=True).frame
    table.to_parquet(d / "tx.parquet")
    genes = np.unique(table.loc[table["Metadata_pert_type"] == "trt_oe", "Metadata_gene"])
    emb = np.random.default_rng(0).standard_normal((genes.size, 8))
    img = pd.DataFrame(emb, columns=[f"e{j}" for j in range(8)])
    img.insert(0, "Metadata_gene", genes)
    img.insert(1, "Metadata_note", "x")
    img.to_parquet(d / "img.parquet")
    assert main(["fit", "--tx", str(d / "tx.parquet"), "--images", str(d / "img.parquet"),
                 *TA_COLS, *TINY, "-o", str(d / "m.semiclip")]) == 0
    return d, table


def _emb(frame):
    return frame[[c for c in frame.columns if c.startswith("semiclippedtransformer")]].to_numpy()


# -- gene names end to end; semiclip attribute -------------------------------------------
@pytest.mark.slow  # the TA-ORF fit of the fixture (once)
def test_a_model_from_fit_knows_its_genes(ta_orf):
    d, table = ta_orf
    loaded = load_model(d / "m.semiclip")
    symbols = list(table.columns[7:])
    assert loaded.columns["feature_names"] == symbols
    from semiclip.interpret import gradient_attributions

    assert loaded.normalizer is None  # --normalize none: the test stays fast
    X = table[symbols].to_numpy(np.float32)
    att = gradient_attributions(loaded.estimator, X[:3], direction=np.ones(8),
                                feature_names=loaded.columns["feature_names"])
    assert att.feature_names.tolist() == symbols


@pytest.mark.slow  # the TA-ORF fit of the fixture (once)
def test_attribute_writes_gene_symbols_per_key(ta_orf, tmp_path, capsys):
    d, table = ta_orf
    out = tmp_path / "att.csv"
    assert main(["attribute", "-m", str(d / "m.semiclip"), "--tx", str(d / "tx.parquet"),
                 "--keys", "BRAF", "KRAS", "--top", "5", "-o", str(out)]) == 0
    assert "Wrote 10 rows" in capsys.readouterr().out
    result = pd.read_csv(out)
    assert list(result.columns) == ["key", "rank", "gene", "score", "flat_in_controls"]
    assert result["key"].tolist() == ["BRAF"] * 5 + ["KRAS"] * 5
    symbols = set(table.columns[7:])
    assert set(result["gene"]) <= symbols
    # independent: the library, one key at a time, towards the key's mean embedding
    from semiclip.interpret import gradient_attributions

    loaded = load_model(d / "m.semiclip")
    names = list(table.columns[7:])
    X = table[names].to_numpy(np.float32)
    for key in ("BRAF", "KRAS"):
        rows = (table["Metadata_gene"] == key).to_numpy()
        v = loaded.estimator.transform(X[rows]).mean(axis=0)
        mean = gradient_attributions(loaded.estimator, X[rows], direction=v).mean()
        top = np.argsort(-np.abs(mean), kind="stable")[:5]
        got = result[result["key"] == key]
        assert got["gene"].tolist() == [names[i] for i in top]
        np.testing.assert_allclose(got["score"], mean[top], rtol=1e-4, atol=1e-6)
        assert got["rank"].tolist() == [1, 2, 3, 4, 5]


@pytest.mark.slow  # the TA-ORF fit of the fixture (once)
def test_attribute_direction_file_and_plot(ta_orf, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    d, table = ta_orf
    v = np.zeros((2, 8))
    v[0, 0], v[1, 1] = 1.0, 1.0
    pd.DataFrame(v, index=pd.Index(["dim0", "dim1"], name="direction")).to_csv(
        tmp_path / "dirs.csv")
    out, png = tmp_path / "att.parquet", tmp_path / "att.png"
    assert main(["attribute", "-m", str(d / "m.semiclip"), "--tx", str(d / "tx.parquet"),
                 "--direction-file", str(tmp_path / "dirs.csv"), "--top", "3", "-o", str(out),
                 "--plot", str(png)]) == 0
    result = pd.read_parquet(out)
    assert list(result.columns) == ["direction", "rank", "gene", "score", "flat_in_controls"]
    assert result["direction"].tolist() == ["dim0"] * 3 + ["dim1"] * 3
    assert png.stat().st_size > 0
    # the embedding is linear in X here: attributions of dimension 0 sum to z_0(x) - z_0(0)
    loaded = load_model(d / "m.semiclip")
    assert set(result["gene"]) <= set(loaded.columns["feature_names"])
    # refuses to overwrite an input, and a wrong direction width names both numbers
    assert main(["attribute", "-m", str(d / "m.semiclip"), "--tx", str(d / "tx.parquet"),
                 "-o", str(d / "tx.parquet"), "--overwrite"]) == 2
    assert "is the --tx input file" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.ones(5))
    assert main(["attribute", "-m", str(d / "m.semiclip"), "--tx", str(d / "tx.parquet"),
                 "--direction-file", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "x.csv")]) == 2
    assert re.search(r"--direction-file .* 5 entries .* 8 dimensions", capsys.readouterr().err)
    assert main(["attribute", "-m", str(d / "m.semiclip"), "--tx", str(d / "tx.parquet"),
                 "--keys", "NOTAGENE", "-o", str(tmp_path / "y.csv")]) == 2
    assert "--keys 'NOTAGENE' not found" in capsys.readouterr().err


# -- transform: metadata kept, no key needed, .h5ad conventions --------------------------
@pytest.mark.slow  # the TA-ORF fit of the fixture (once)
def test_transform_keeps_every_metadata_column_and_needs_no_key(ta_orf, tmp_path):
    d, table = ta_orf
    assert main(["transform", "-m", str(d / "m.semiclip"), "--tx", str(d / "tx.parquet"),
                 "-o", str(tmp_path / "e.parquet")]) == 0
    full = pd.read_parquet(tmp_path / "e.parquet")
    assert list(full.columns[:7]) == list(table.columns[:7])  # Metadata_Well, pert_id...
    pd.testing.assert_frame_equal(full.iloc[:, :7], table.iloc[:, :7])
    keyless = table.drop(columns=["Metadata_gene", "Metadata_pert_type"])
    keyless.to_parquet(tmp_path / "keyless.parquet")
    assert main(["transform", "-m", str(d / "m.semiclip"), "--tx",
                 str(tmp_path / "keyless.parquet"), "-o", str(tmp_path / "k.csv")]) == 0
    np.testing.assert_allclose(_emb(pd.read_csv(tmp_path / "k.csv")), _emb(full),
                               rtol=1e-5, atol=1e-6)


def test_h5ad_in_h5ad_out_adds_obsm_and_uns(data, files, tmp_path):
    anndata = pytest.importorskip("anndata")
    obs = pd.DataFrame({"Metadata_gene": data.y.astype(str),
                        "Metadata_Plate": data.batch.astype(str),
                        "dose": np.arange(data.X.shape[0]) * 0.5},
                       index=[f"w{i}" for i in range(data.X.shape[0])])
    var = pd.DataFrame(index=[f"g{j}" for j in range(data.X.shape[1])])
    adata = anndata.AnnData(data.X.copy(), obs=obs, var=var)
    adata.write_h5ad(tmp_path / "tx.h5ad")
    model = tmp_path / "m.semiclip"
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "-o", str(model)]) == 0
    assert main(["transform", "-m", str(model), "--tx", str(tmp_path / "tx.h5ad"),
                 "-o", str(tmp_path / "out.h5ad")]) == 0
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(tmp_path / "ref.csv")]) == 0
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    np.testing.assert_array_equal(out.X, adata.X)  # the input, not the embedding, as X
    assert list(out.var_names) == list(adata.var_names)
    pd.testing.assert_frame_equal(out.obs, adata.obs)
    np.testing.assert_allclose(out.obsm["X_semiclip"], _emb(pd.read_csv(tmp_path / "ref.csv")),
                               rtol=1e-5, atol=1e-6)
    info = out.uns["semiclip"]
    assert info["n_dims"] == 8 and list(info["embedding_columns"])[0] == "semiclippedtransformer0"
    assert '"encoder_dim": 8' in info["params"]
    # a table in, .h5ad out: the table's features as X, the gene names as var_names
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(tmp_path / "t.h5ad")]) == 0
    t = anndata.read_h5ad(tmp_path / "t.h5ad")
    assert list(t.var_names) == [f"g{j}" for j in range(30)]
    np.testing.assert_allclose(t.obsm["X_semiclip"], out.obsm["X_semiclip"], rtol=0, atol=0)


# -- --version, hints ---------------------------------------------------------------------
def test_version(capsys):
    import semiclip

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"semiclip {semiclip.__version__}"


def test_an_extra_image_column_names_the_image_flag(files, tmp_path, capsys):
    img = pd.read_csv(files / "img.csv")
    img.insert(1, "source", "lab")
    img.to_csv(tmp_path / "img.csv", index=False)
    args = ["fit", "--tx", str(files / "tx.csv"), "--images", str(tmp_path / "img.csv"), *COLS,
            *FIT_PARAMS, "-o", str(tmp_path / "m.semiclip")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--image-exclude-cols source" in err and "features=" not in err
    assert "--exclude-cols" not in err.replace("--image-exclude-cols", "")
    assert main(args + ["--image-exclude-cols", "source"]) == 0


def test_an_extra_tx_column_names_the_tx_flag(data, files, tmp_path, capsys):
    tx = pd.read_csv(files / "tx.csv")
    tx.insert(2, "operator", "ab")
    tx.to_csv(tmp_path / "tx.csv", index=False)
    assert main(["fit", "--tx", str(tmp_path / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "-o", str(tmp_path / "m.semiclip")]) == 2
    err = capsys.readouterr().err
    assert "--exclude-cols operator" in err and "features=" not in err


# -- teacher tables as users have them ----------------------------------------------------
def test_images_from_a_parquet_list_column(data, files, tmp_path):
    bank = data.image_bank
    img = pd.DataFrame({"compound": bank.keys, "pheno_embedding": list(bank.embeddings)})
    img.to_parquet(tmp_path / "img.parquet")
    a, b = tmp_path / "a.semiclip", tmp_path / "b.semiclip"
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(tmp_path / "img.parquet"),
                 "--image-key-col", "compound", "--image-embedding-col", "pheno_embedding",
                 *COLS, *FIT_PARAMS, "-o", str(a)]) == 0
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "-o", str(b)]) == 0
    X = np.asarray(data.X[:5], dtype=np.float32)
    za = load_model(a).estimator.transform(X)
    np.testing.assert_array_equal(za, load_model(b).estimator.transform(X))


# -- evaluate without relationship databases ----------------------------------------------
def test_evaluate_map_only_prints_the_chance_level(data, files, tmp_path, capsys):
    from semiclip.metrics import mean_average_precision

    model, emb = tmp_path / "m.semiclip", tmp_path / "emb.csv"
    main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
          *FIT_PARAMS, "-o", str(model)])
    main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o", str(emb)])
    capsys.readouterr()
    assert main(["evaluate", "--emb", str(emb), *COLS, "--relationships", "none",
                 "--normalize", "none", "--out", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert "| recall |" not in out
    table = pd.read_csv(tmp_path / "r.csv")
    assert table["metric"].tolist() == ["mAP"]
    Z = _emb(pd.read_csv(emb)).astype(np.float64)
    trt = ~data.is_control
    mp = mean_average_precision(Z[trt], data.y[trt], groups=data.batch[trt], random_state=0)
    assert table["value"].iloc[0] == pytest.approx(mp.map)
    # chance: the mean over labels of the expected AP of a random ranking, by hand
    labels, counts = np.unique(data.y[trt], return_counts=True)
    assert table["chance"].iloc[0] == pytest.approx(mp.chance) and 0 < mp.chance < 1
    assert f"{mp.chance:.3f}" in out.split("| mAP |")[1].splitlines()[0]
    assert labels.size == 40 and counts.min() == 3


def test_evaluate_compound_keys_fall_back_to_map_with_intervals(tmp_path, capsys):
    rng = np.random.default_rng(0)
    compounds = np.repeat([f"cmpd{i}" for i in range(12)], 4)
    doses = np.tile([1.0, 1.0, 10.0, 10.0], 12)
    Z = rng.normal(size=(compounds.size, 6)) + np.repeat(rng.normal(size=(24, 6)) * 2, 2, axis=0)
    frame = pd.DataFrame(Z, columns=[f"semiclippedtransformer{j}" for j in range(6)])
    frame.insert(0, "Metadata_compound", compounds)
    frame.insert(1, "Metadata_dose", doses)
    frame.to_csv(tmp_path / "emb.csv", index=False)
    args = ["evaluate", "--emb", str(tmp_path / "emb.csv"), "--normalize", "none"]
    assert main(args + ["--key-col", "Metadata_compound"]) == 0  # default databases: no gene
    out = capsys.readouterr().out
    assert "mAP only: no key is a gene of the shipped HuMAP" in out and "| recall |" not in out
    # two key columns (compound, dose) need mAP only, and say so otherwise
    assert main(args + ["--key-col", "Metadata_compound", "Metadata_dose"]) == 2
    assert "pass --relationships none" in capsys.readouterr().err
    assert main(args + ["--key-col", "Metadata_compound", "Metadata_dose",
                        "--relationships", "none"]) == 0
    row = capsys.readouterr().out.split("| mAP |")[1].splitlines()[0]
    cells = [c.strip() for c in row.split("|")]
    from semiclip.datasets import make_keys
    from semiclip.metrics import mean_average_precision

    mp = mean_average_precision(Z, make_keys(compounds, doses), random_state=0)
    assert cells[1] == f"{mp.map:.4f}" and cells[-2] == f"{mp.chance:.3f}"
    low, high = getattr(mp, "ci_low", float("nan")), getattr(mp, "ci_high", float("nan"))
    if np.isfinite(low):  # the metrics' bootstrap interval, when they provide one
        assert cells[2] == f"{low:.4f} to {high:.4f}"


def test_control_messages_name_flags_not_python_arguments(files, tmp_path, capsys):
    tx = pd.read_csv(files / "tx.csv")
    tx.insert(2, "Metadata_type", np.where(tx["Metadata_gene"] == "control", "ctl", "trt"))
    tx.to_csv(tmp_path / "tx.csv", index=False)
    base = ["fit", "--tx", str(tmp_path / "tx.csv"), "--images", str(files / "img.csv"),
            "--key-col", "Metadata_gene", "--batch-col", "Metadata_Plate", *FIT_PARAMS,
            "-o", str(tmp_path / "m.semiclip")]
    assert main(base + ["--control-col", "Metadata_type"]) == 2
    err = capsys.readouterr().err
    assert "--control-col 'Metadata_type' --control-values VALUE" in err, err
    assert main(base + ["--control-col", "Metadata_type", "--control-values", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--control-col 'Metadata_type' --control-values 'nope' matches no row" in err, err
    assert "control=(" not in err
