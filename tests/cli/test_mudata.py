"""MuData in: a ``.h5mu`` with a transcriptomics and an image modality, keyed by an obs column.

Built from the shipped TA-ORF L1000 plates, weakly paired by construction:
the transcriptomics modality holds two plates (controls included), the
"image" modality the treated wells of the third plate (their first 40 genes
as teacher features), so the two modalities share no observation, only keys.
"""

import numpy as np
import pytest

from semiclip.cli import main

pd = pytest.importorskip("pandas")
anndata = pytest.importorskip("anndata")
mudata = pytest.importorskip("mudata")

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning:mudata"),
              # 2 epochs on a random-looking teacher: the judgement says so; not tested here
              pytest.mark.filterwarnings("ignore::semiclip.exceptions.GeneralizationWarning")]

COLS = ["--key-col", "Metadata_gene", "--batch-col", "Metadata_Plate", "--control-col",
        "Metadata_pert_type", "--control-values", "ctl_vector", "ctl_untrt"]
TINY = ["--max-iter", "2", "--encoder-dim", "8", "--hidden-layer-sizes", "linear",
        "--normalize", "none", "--verbose", "0", "--unpaired", "drop"]


@pytest.fixture(scope="module")
def h5mu(tmp_path_factory):
    from semiclip.datasets import load_ta_orf_l1000

    d = tmp_path_factory.mktemp("mu")
    frame = load_ta_orf_l1000(as_frame=True).frame
    meta = [c for c in frame.columns if str(c).startswith("Metadata_")]
    genes = [c for c in frame.columns if c not in meta][:120]
    plates = sorted(frame["Metadata_Plate"].unique())
    tx_rows = frame["Metadata_Plate"].isin(plates[:2]).to_numpy()
    img_rows = ((frame["Metadata_Plate"] == plates[2]) &
                (frame["Metadata_pert_type"] == "trt_oe")).to_numpy()

    def ad(rows, cols, prefix):
        obs = frame.loc[rows, meta].astype(str)
        obs.index = [f"{prefix}{i}" for i in range(obs.shape[0])]
        return anndata.AnnData(frame.loc[rows, cols].to_numpy(np.float32), obs=obs,
                               var=pd.DataFrame(index=[f"{prefix}{c}" for c in cols]))

    rna = ad(tx_rows, genes, "rna_")
    cp = ad(img_rows, genes[:40], "cp_")
    with mudata.set_options(pull_on_update=False):
        mdata = mudata.MuData({"rna": rna, "cp": cp})
    mdata.write_h5mu(d / "screen.h5mu")
    rna.write_h5ad(d / "rna.h5ad")
    return d, rna, cp


def test_from_mudata_reads_both_modalities(h5mu):
    from semiclip.datasets import from_anndata, from_mudata

    d, rna, cp = h5mu
    data = from_mudata(d / "screen.h5mu", tx_mod="rna", image_mod="cp", key="Metadata_gene",
                       batch="Metadata_Plate",
                       control=("Metadata_pert_type", ["ctl_vector", "ctl_untrt"]))
    np.testing.assert_array_equal(data.X, rna.X)
    assert data.batch.tolist() == rna.obs["Metadata_Plate"].tolist()
    ctl = rna.obs["Metadata_pert_type"].isin(["ctl_vector", "ctl_untrt"]).to_numpy()
    assert data.is_control.tolist() == ctl.tolist() and ctl.any()
    teacher = from_anndata(cp, key="Metadata_gene")
    assert data.image_bank.n_dims == 40
    assert sorted(map(str, data.image_bank.keys)) == sorted(map(str, teacher.y))
    with pytest.raises(ValueError, match=r"image_mod: the MuData has modalities 'rna', 'cp'; "
                                         r"'img' is not one of them"):
        from_mudata(d / "screen.h5mu", tx_mod="rna", image_mod="img", key="Metadata_gene")


def test_cli_round_trip_adds_the_embedding_to_the_tx_modality(h5mu, capsys):
    d, rna, cp = h5mu
    model, out = d / "m.semiclip", d / "out.h5mu"
    assert main(["fit", "--tx", str(d / "screen.h5mu"), "--tx-mod", "rna", "--image-mod", "cp",
                 *COLS, *TINY, "-o", str(model)]) == 0
    assert main(["transform", "-m", str(model), "--tx", str(d / "screen.h5mu"), "--tx-mod",
                 "rna", "-o", str(out)]) == 0
    # the same model on the modality written as .h5ad: the same embedding
    assert main(["transform", "-m", str(model), "--tx", str(d / "rna.h5ad"), "-o",
                 str(d / "rna_out.h5ad")]) == 0
    capsys.readouterr()
    back = mudata.read_h5mu(out)
    ref = anndata.read_h5ad(d / "rna_out.h5ad")
    np.testing.assert_array_equal(back.mod["rna"].obsm["X_semiclip"], ref.obsm["X_semiclip"])
    assert back.mod["rna"].obsm["X_semiclip"].shape == (rna.n_obs, 40)  # the teacher's size
    # everything else as it was
    np.testing.assert_array_equal(back.mod["rna"].X, rna.X)
    np.testing.assert_array_equal(back.mod["cp"].X, cp.X)
    pd.testing.assert_frame_equal(back.mod["rna"].obs, rna.obs)
    assert "X_semiclip" not in back.mod["cp"].obsm


def test_cli_mudata_errors(h5mu, capsys):
    d, _, _ = h5mu
    assert main(["fit", "--tx", str(d / "screen.h5mu"), "--tx-mod", "rna", *COLS, *TINY,
                 "-o", str(d / "x.semiclip")]) == 2
    assert "--images is required, unless --tx is an .h5mu file and --image-mod" in \
        capsys.readouterr().err
    assert main(["fit", "--tx", str(d / "screen.h5mu"), "--image-mod", "cp", *COLS, *TINY,
                 "-o", str(d / "x.semiclip")]) == 2
    err = capsys.readouterr().err
    assert "--tx-mod: the MuData has modalities" in err and "e.g. --tx-mod rna" in err
