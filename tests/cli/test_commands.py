"""The file-based ``semiclip`` commands: fit / transform / evaluate / benchmark (and demo)."""

import re
import warnings

import numpy as np
import pytest

from semiclip.cli import main
from semiclip.persistence import load_model

from ._common import COLS, FIT_PARAMS

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

pd = pytest.importorskip("pandas")


def _api_embedding(data, **params):
    """The embedding the CLI should produce, through the Python API."""
    from semiclip import ControlNormalizer, SemiClippedTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = ControlNormalizer("tvn", control_label="control", basis="feature")
        X = norm.fit_transform(data.X, data.y, batch=data.batch)
        est = SemiClippedTransformer(encoder_dim=8, max_iter=3, control_label="control",
                                     random_state=0, **params)
        return est.fit(X, data.y, image_bank=data.image_bank).transform(X)


def _emb_columns(frame):
    return [c for c in frame.columns if c.startswith("semiclippedtransformer")]


@pytest.mark.slow  # fits through the CLI and the Python API, end to end
def test_fit_transform_csv_matches_python_api(data, files, tmp_path, capsys):
    model, emb = tmp_path / "model.semiclip", tmp_path / "emb.csv"
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert "MatchReport: 40 keys on both sides" in out
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(emb)]) == 0
    frame = pd.read_csv(emb)
    assert list(frame.columns[:2]) == ["Metadata_gene", "Metadata_Plate"]
    np.testing.assert_array_equal(frame["Metadata_gene"].to_numpy(), data.y)
    Z = frame[_emb_columns(frame)].to_numpy()
    assert Z.shape == (data.X.shape[0], 8)
    np.testing.assert_allclose(Z, _api_embedding(data), rtol=1e-5, atol=1e-5)

    loaded = load_model(model)
    assert loaded.columns["feature_names"] == [f"g{j}" for j in range(30)]
    assert loaded.estimator.training_params_["max_iter"] == 3


def test_h5ad_round_trip_matches_csv(data, files, tmp_path):
    anndata = pytest.importorskip("anndata")
    obs = pd.DataFrame({"gene": data.y.astype(str), "plate": data.batch.astype(str),
                        "n_counts": np.arange(data.X.shape[0])},
                       index=[f"w{i}" for i in range(data.X.shape[0])])
    var = pd.DataFrame(index=[f"g{j}" for j in range(data.X.shape[1])])
    adata = anndata.AnnData(data.X.copy(), obs=obs, var=var)
    adata.write_h5ad(tmp_path / "tx.h5ad")
    model = tmp_path / "m.semiclip"
    assert main(["fit", "--tx", str(tmp_path / "tx.h5ad"), "--images", str(files / "img.csv"),
                 "--key-col", "gene", "--image-key-col", "Metadata_gene", "--batch-col", "plate",
                 "--control-label", "control", *FIT_PARAMS, "-o", str(model)]) == 0
    # transform a file whose genes come in another order: matched by name
    shuffled = adata[:, adata.var_names[::-1]].copy()
    shuffled.write_h5ad(tmp_path / "tx_rev.h5ad")
    for src, out in (("tx.h5ad", "emb.h5ad"), ("tx_rev.h5ad", "emb.parquet")):
        assert main(["transform", "-m", str(model), "--tx", str(tmp_path / src),
                     "-o", str(tmp_path / out)]) == 0
    emb = anndata.read_h5ad(tmp_path / "emb.h5ad")
    assert list(emb.obs_names[:2]) == ["w0", "w1"]
    # every obs column is kept, and the embedding is obsm["X_semiclip"], not X (the old
    # expectation, obs = key + batch and X = embedding, was the bug of issue 14)
    assert list(emb.obs.columns) == ["gene", "plate", "n_counts"]
    np.testing.assert_allclose(emb.obsm["X_semiclip"], _api_embedding(data), rtol=1e-5,
                               atol=1e-5)
    frame = pd.read_parquet(tmp_path / "emb.parquet")
    assert list(frame.index[:2]) == ["w0", "w1"]
    assert "n_counts" in frame.columns
    np.testing.assert_allclose(frame[_emb_columns(frame)].to_numpy(), emb.obsm["X_semiclip"],
                               rtol=1e-5, atol=1e-6)


def test_evaluate_matches_metrics(data, files, tmp_path, capsys):
    from semiclip import ControlNormalizer
    from semiclip.metrics import known_relationship_recall, mean_average_precision

    model, emb, res = tmp_path / "m.semiclip", tmp_path / "emb.parquet", tmp_path / "res.csv"
    main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
          *FIT_PARAMS, "-o", str(model)])
    main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o", str(emb)])
    capsys.readouterr()
    assert main(["evaluate", "--emb", str(emb), *COLS, "--relationships",
                 str(files / "rel.csv"), "--out", str(res)]) == 0
    assert "| recall |" in capsys.readouterr().out
    table = pd.read_csv(res)
    Z = pd.read_parquet(emb).filter(like="semiclippedtransformer").to_numpy(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Zc = ControlNormalizer("center_scale", control_label="control").fit_transform(
            Z, data.y, batch=data.batch)
    rec = known_relationship_recall(Zc, data.y, relationships=data.relationships,
                                    control_label="control", normalize=None)
    trt = ~data.is_control
    mp = mean_average_precision(Zc[trt], data.y[trt], groups=data.batch[trt])
    recall_row = table[table["metric"] == "recall"].iloc[0]
    assert recall_row["value"] == pytest.approx(rec.recall)
    assert recall_row["n"] == rec.n_pairs
    assert table[table["metric"] == "mAP"]["value"].iloc[0] == pytest.approx(mp.map)


def test_pea_model_transform_needs_and_uses_batch(data, files, tmp_path):
    from semiclip import PEAAugmenter, SemiClippedTransformer

    model, emb = tmp_path / "m.semiclip", tmp_path / "emb.csv"
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "--pea", "-o", str(model)]) == 0
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(emb)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SemiClippedTransformer(encoder_dim=8, max_iter=3, control_label="control",
                                     random_state=0, augmenter=PEAAugmenter(random_state=0))
        est.fit(data.X, data.y, image_bank=data.image_bank, batch=data.batch)
        expected = est.transform(data.X, batch=data.batch)
    frame = pd.read_csv(emb)
    np.testing.assert_allclose(frame[_emb_columns(frame)].to_numpy(), expected, rtol=1e-5,
                               atol=1e-5)


def test_key_normalisation_and_match_errors(data, files, tmp_path, capsys):
    img = pd.read_csv(files / "img.csv")
    img["Metadata_gene"] = img["Metadata_gene"].str.lower()
    img.to_csv(tmp_path / "img_lower.csv", index=False)
    args = ["fit", "--tx", str(files / "tx.csv"), "--images", str(tmp_path / "img_lower.csv"),
            *COLS, *FIT_PARAMS, "--overwrite", "-o", str(tmp_path / "m.semiclip")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "no pairing key of --tx occurs in --images" in captured.err
    assert "would match after normalize_gene_symbols()" in captured.out  # the report's hint
    assert main(args + ["--normalize-symbols"]) == 0

    img[img["Metadata_gene"] != "p0003"].to_csv(tmp_path / "img_part.csv", index=False)
    args[4] = str(tmp_path / "img_part.csv")
    args.append("--normalize-symbols")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.search(r"3 transcriptomics row\(s\) \(1 key\(s\)\) have no image embedding", err)
    assert "--unpaired drop" in err
    assert main(args + ["--unpaired", "drop"]) == 0


def test_dose_keys_are_snapped_on_both_sides(tmp_path):
    rng = np.random.default_rng(0)
    genes = np.repeat([f"G{i}" for i in range(12)], 4)
    tx = pd.DataFrame(rng.normal(size=(48, 6)), columns=[f"f{j}" for j in range(6)])
    tx.insert(0, "Metadata_gene", genes)
    tx.insert(1, "Metadata_dose", np.tile([10.0, 3.3333, 10.0, 3.3333], 12))
    img = pd.DataFrame(rng.normal(size=(24, 4)), columns=[f"e{j}" for j in range(4)])
    img.insert(0, "gene", np.repeat([f"G{i}" for i in range(12)], 2))
    img.insert(1, "dose_uM", np.tile([10, 3.33], 12))
    tx.to_csv(tmp_path / "tx.csv", index=False)
    img.to_csv(tmp_path / "img.csv", index=False)
    args = ["fit", "--tx", str(tmp_path / "tx.csv"), "--images", str(tmp_path / "img.csv"),
            "--key-col", "Metadata_gene", "Metadata_dose", "--image-key-col", "gene", "dose_uM",
            "--normalize", "none", *FIT_PARAMS, "--encoder-dim", "4", "--overwrite", "-o",
            str(tmp_path / "m.semiclip")]
    assert main(args + ["--unpaired", "drop"]) == 0  # only the 10 (not 3.3333) keys match
    assert load_model(tmp_path / "m.semiclip").estimator.n_paired_keys_ == 12
    assert main(args + ["--dose-col", "Metadata_dose", "--dose-factor", "3"]) == 0
    assert load_model(tmp_path / "m.semiclip").estimator.n_paired_keys_ == 24


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.__setitem__(a.index("Metadata_Plate"), "Plate"),
         r"key/batch/control column\(s\) 'Plate' not found; its columns are "
         r"'Metadata_gene', 'Metadata_Plate' \(and 30 numeric feature columns\)"),
        (lambda a: a.__setitem__(a.index("--tx") + 1, "missing.csv"), r"--tx: no file at"),
        (lambda a: a.__setitem__(a.index("--images") + 1, "img.xlsx"),
         r"cannot tell the format of 'img.xlsx'"),
        (lambda a: a.__setitem__(a.index("control"), "DMSO"), r"'DMSO' matches none of the keys"),
        (lambda a: a.extend(["--dose-col", "Metadata_gene"]),
         r"--dose-col needs exactly one of --dose-decimals"),
    ],
)
def test_fit_errors_are_clear(files, tmp_path, capsys, monkeypatch, edit, message):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
            *FIT_PARAMS, "-o", "m.semiclip"]
    edit(args)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("semiclip fit: error:")
    assert re.search(message, err), err


def test_unreadable_and_wrong_files(files, tmp_path, capsys):
    (tmp_path / "broken.parquet").write_bytes(b"not a parquet file")
    assert main(["fit", "--tx", str(tmp_path / "broken.parquet"), "--images",
                 str(files / "img.csv"), *COLS, "-o", str(tmp_path / "m.semiclip")]) == 2
    assert re.search(r"--tx: cannot read '.*broken.parquet' as parquet", capsys.readouterr().err)
    import joblib

    joblib.dump({"something": 1}, tmp_path / "other.joblib")
    args = ["transform", "-m", str(tmp_path / "other.joblib"), "--tx", str(files / "tx.csv"),
            "-o", str(tmp_path / "e.csv")]
    assert main(args) == 2
    assert "is not a semiclip model file" in capsys.readouterr().err
    assert main(args + ["--allow-pickle"]) == 2
    assert "holds a dict, not a semiclip model" in capsys.readouterr().err


def test_transform_errors_name_missing_features_and_plates(data, files, tmp_path, capsys):
    model = tmp_path / "m.semiclip"
    main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
          *FIT_PARAMS, "-o", str(model)])
    tx = pd.read_csv(files / "tx.csv")
    tx.drop(columns=["g3", "g7"]).to_csv(tmp_path / "fewer.csv", index=False)
    assert main(["transform", "-m", str(model), "--tx", str(tmp_path / "fewer.csv"),
                 "-o", str(tmp_path / "e.csv")]) == 2
    assert "feature column(s) 'g3', 'g7' not found" in capsys.readouterr().err
    tx["Metadata_Plate"] = "new_" + tx["Metadata_Plate"].astype(str)
    tx.to_csv(tmp_path / "new_plates.csv", index=False)
    args = ["transform", "-m", str(model), "--tx", str(tmp_path / "new_plates.csv"),
            "-o", str(tmp_path / "e.csv")]
    assert main(args) == 2
    assert "--refit-normalizer" in capsys.readouterr().err
    assert main(args + ["--refit-normalizer"]) == 0
    Z = pd.read_csv(tmp_path / "e.csv").filter(like="semiclippedtransformer").to_numpy()
    # same samples, correction refitted on the same controls: the original embedding
    np.testing.assert_allclose(Z, _api_embedding(data), rtol=1e-4, atol=1e-4)


def _raw_heldout_recall(seed):
    """The benchmark's raw row, recomputed with the slow references: split by key, TVN on the
    training controls, center-scale per plate on the held-out controls, recall of the treated."""
    from semiclip import ControlNormalizer
    from semiclip.datasets import make_weakly_paired, split_by_key

    from .._reference import slow_center_scale, slow_recall

    d = make_weakly_paired(n_perturbations=40, n_genes=30, random_state=seed)
    tr, te = split_by_key(d.y, test_size=1 / 3, control_label="control", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer controls than genes
        norm = ControlNormalizer("tvn", control_label="control", basis="feature")
        Z = norm.fit(d.X[tr], d.y[tr], batch=d.batch[tr]).transform(d.X[te], batch=d.batch[te])
    y, b = d.y[te], d.batch[te]
    Z = slow_center_scale(Z, y, b, "control", scale=True)
    trt = y != "control"
    return slow_recall(Z[trt], y[trt], d.relationships)


@pytest.mark.slow
def test_benchmark_tiny(tmp_path, capsys):
    from scipy import stats

    png, md = tmp_path / "bench.png", tmp_path / "bench.md"
    assert main(["benchmark", "--seeds", "2", "--n-perturbations", "40", "--n-genes", "30",
                 "--max-iter", "2", "--methods", "raw,semiclipped", "--n-jobs", "2",
                 "--plot", str(png),
                 "--out", str(md)]) == 0
    out = capsys.readouterr().out
    assert png.stat().st_size > 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "raw transcriptomics", "Semi-Clipped (frozen encoder + adapter)"]
    # the raw row, recomputed independently: mean and 95 % t-interval of the two seeds
    recalls = [_raw_heldout_recall(s) for s in (0, 1)]
    half = stats.t.ppf(0.975, 1) * np.std(recalls, ddof=1) / np.sqrt(2)
    assert f"| raw transcriptomics | {np.mean(recalls):.3f} ± {half:.3f} |" in out
    assert "Orderings reported by the paper" in out


def test_benchmark_rows_and_orderings(capsys):
    from semiclip import _experiments as experiments

    with pytest.raises(ValueError, match=r"unknown benchmark row\(s\) \['clipp'\]"):
        experiments.benchmark_methods(rows=["raw", "clipp"])
    assert list(experiments.benchmark_methods(rows=["finetuned", "raw"])) == [
        "ablation: encoder fine-tuned (train_encoder=True)", "raw transcriptomics"]
    assert main(["benchmark", "--methods", "raw,nope", "--plot", ""]) == 2
    assert "unknown benchmark row(s) ['nope']" in capsys.readouterr().err

    labels = dict(experiments.ROWS)
    table = {labels[k]: {"recall": (v, 0.0)} for k, v in
             {"raw": 0.1, "kd": 0.5, "clip": 0.6, "siglip": 0.4, "semiclipped": 0.55,
              "pea": 0.58, "finetuned": 0.6}.items()}
    checks = {claim: ok for claim, ok, _ in experiments.expected_order(table)}
    assert checks["Semi-Clipped > symmetric CLIP"] is False
    assert checks["Semi-Clipped > feature KD"] is True
    assert checks["SigLIP > raw"] is True
    assert checks["PEA > no PEA"] is True
    assert checks["frozen encoder + adapter > fine-tuned encoder"] is False


@pytest.mark.slow  # the demo with PEA end to end (~6 s)
def test_demo_says_when_pea_changed_nothing(capsys, monkeypatch):
    """The + PEA row equal to the plain one on every seed (the ridge start kept: PEA acts only
    through training) gets a note saying so and how to see PEA's effect; never otherwise."""
    from functools import partial

    import semiclip.datasets
    from semiclip import _experiments as experiments

    monkeypatch.setattr(semiclip.datasets, "make_weakly_paired",
                        partial(semiclip.datasets.make_weakly_paired, n_genes=50))
    monkeypatch.setattr(experiments, "demo_methods", partial(experiments.demo_methods, max_iter=2))
    assert main(["demo", "--seeds", "1", "--n-perturbations", "60", "--plot", "",
                 "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    rows = {m: re.search(rf"\| {re.escape(m)} \| ([^\n]*)", out).group(1).rsplit("|", 3)[0]
            for m in ("Semi-Clipped", "Semi-Clipped + PEA")}
    same = rows["Semi-Clipped"] == rows["Semi-Clipped + PEA"]
    assert same  # on this toy run the ridge start is kept by both
    assert ("Semi-Clipped + PEA equals Semi-Clipped on every seed" in out) == same
    assert "init='random'" in out


def test_demo_tiny(capsys, monkeypatch, tmp_path):
    from functools import partial

    import semiclip.datasets
    import semiclip.plotting as plotting
    from semiclip import _experiments as experiments

    # the command's wiring at toy size: 50 genes, 2 epochs
    monkeypatch.setattr(semiclip.datasets, "make_weakly_paired",
                        partial(semiclip.datasets.make_weakly_paired, n_genes=50))
    monkeypatch.setattr(experiments, "demo_methods", partial(experiments.demo_methods, max_iter=2))
    drawn = {}
    original = plotting.plot_recall_bars

    def spy(*args, **kwargs):
        drawn["ax"] = original(*args, **kwargs)
        return drawn["ax"]

    monkeypatch.setattr(plotting, "plot_recall_bars", spy)
    png = tmp_path / "demo.png"
    assert main(["demo", "--seeds", "1", "--n-perturbations", "60", "--no-pea", "--plot",
                 str(png), "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    # one seed: a value without "± 0.000" (that interval was the bug of issue 14)
    assert re.search(r"\| Semi-Clipped \| 0\.\d{3} \|", out)
    # the linear floor beside raw and Semi-Clipped, in the table and the summary line
    assert re.search(r"\| ridge \(RidgeDistiller\) \| 0\.\d{3} \|", out)
    assert re.search(r"and the ridge floor 0\.\d{3}\.", out)
    assert "±" not in out.split("Known-relationship")[0]
    assert "Known-relationship recall on held-out perturbations" in out
    assert "intervals need --seeds 2 or more" in out
    # the columns explained, and why mAP / interpretability drop
    assert re.search(r"mAP: .*replicates", out) and "interpretability: how well" in out
    assert "Both drop as distillation gets stronger" in out
    # the figure: a title and a chance line at the printed chance level
    assert png.stat().st_size > 0
    ax = drawn["ax"]
    assert "held-out recall" in ax.get_title()
    chance = float(re.search(r"\(chance (\d\.\d+)\)", out).group(1))
    lines = [ln for ln in ax.get_lines() if ln.get_label() == "chance"]
    assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(chance, abs=0.005)


@pytest.mark.parametrize("argv, seeds, n", [
    ([], (0, 1, 2), 600), (["--quick"], (0,), 300), (["--quick", "--seeds", "2"], (0, 1), 300),
    (["--n-perturbations", "90"], (0, 1, 2), 90),
])
def test_demo_quick_runs_one_seed_on_half_the_perturbations(monkeypatch, argv, seeds, n):
    from semiclip import _experiments as experiments

    seen = {}

    def spy(methods, *, seeds, data_params, progress):
        seen.update(methods=list(methods), seeds=seeds, **data_params)
        raise ValueError("stop here")

    monkeypatch.setattr(experiments, "run_experiment", spy)
    assert main(["demo", *argv, "--plot", ""]) == 2
    assert seen["seeds"] == seeds and seen["n_perturbations"] == n
    assert seen["methods"] == ["raw transcriptomics", "ridge (RidgeDistiller)", "Semi-Clipped",
                               "Semi-Clipped + PEA"]


def test_fit_passes_the_term_weights(files, tmp_path, capsys):
    model = tmp_path / "m.semiclip"
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "--structure-weight", "2", "--preservation-weight", "0.5",
                 "--loss", "soft_infonce", "-o", str(model)]) == 0
    est = load_model(model).estimator
    assert (est.structure_weight, est.preservation_weight, est.loss) == (2.0, 0.5,
                                                                         "soft_infonce")
    for flag, value in (("--structure-weight", "-1"), ("--preservation-weight", "auto"),
                        ("--structure-weight", "lots")):
        assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                     *COLS, *FIT_PARAMS, flag, value, "-o", str(tmp_path / "x.semiclip")]) == 2
        assert f"{flag} must be a number >= 0" in capsys.readouterr().err


def test_fit_prints_the_judgement_and_holds_out_validation_groups(data, files, tmp_path,
                                                                  capsys):
    """Issue 19: one judgement line after every fit; --validation-group-col holds out whole
    groups (here pairs of genes), not keys."""
    tx = pd.read_csv(files / "tx.csv")
    genes = sorted(set(tx["Metadata_gene"]) - {"control"})
    pair = {g: f"pair{i // 2}" for i, g in enumerate(genes)}
    tx.insert(2, "Metadata_pair", [pair.get(g, "control") for g in tx["Metadata_gene"]])
    tx.to_csv(tmp_path / "tx.csv", index=False)
    base = ["fit", "--tx", str(tmp_path / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
            *FIT_PARAMS, "--exclude-cols", "Metadata_pair"]
    assert main([*base, "--verbose", "1", "-o", str(tmp_path / "a.semiclip")]) == 0
    out = capsys.readouterr().out
    assert "semiclip fit: held-out judgement: held-out perturbations 4 (4 keys)" in out
    assert out.count("held-out perturbations 4") == 1  # the estimator's verbose line: not twice
    assert main([*base, "--validation-group-col", "Metadata_pair",
                 "-o", str(tmp_path / "b.semiclip")]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "held-out judgement" in x)
    assert "held-out perturbations 2 (4 keys)" in line
    assert line.endswith("verdict: too few held-out perturbations to judge")
    assert main(["info", str(tmp_path / "b.semiclip")]) == 0
    assert "held-out perturbations 2 (4 keys)" in capsys.readouterr().out
