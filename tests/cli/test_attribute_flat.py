"""`semiclip attribute` names genes (nearly) constant in the controls, marks and can drop them."""

import numpy as np
import pytest

from semiclip.cli import main

from ._common import COLS, FIT_PARAMS

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::semiclip.exceptions.GeneralizationWarning",
)


@pytest.fixture(scope="module")
def flat(files, tmp_path_factory):
    """g0 nearly constant everywhere (sd 0.01, like GAPDH in DMSO) but for one odd well."""
    d = tmp_path_factory.mktemp("flat")
    tx = pd.read_csv(files / "tx.csv")
    rng = np.random.default_rng(0)
    tx["g0"] = 5 + 0.01 * rng.normal(size=len(tx))
    odd = int(np.flatnonzero(tx["Metadata_gene"] != "control")[0])
    tx.loc[odd, "g0"] = 7.5
    tx.to_csv(d / "tx.csv", index=False)
    model = d / "m.semiclip"
    assert main(["fit", "--tx", str(d / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
                 *FIT_PARAMS, "-o", str(model)]) == 0
    return d, model, tx, str(tx.loc[odd, "Metadata_gene"])


def _control_sd(tx):
    """The smallest, over plates, of each gene's sd in the controls (independent pandas code)."""
    ctl = tx[tx["Metadata_gene"] == "control"]
    genes = [c for c in tx.columns if not c.startswith("Metadata_")]
    return ctl.groupby("Metadata_Plate")[genes].std(ddof=1).min()


def test_flat_genes_are_named_marked_and_lead_without_exclusion(flat, tmp_path, capsys,
                                                                monkeypatch):
    d, model, tx, key = flat
    sd = _control_sd(tx)
    assert sd.idxmin() == "g0" and (sd.drop("g0") > 0.2 * sd.median()).all()
    saved = []
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: saved.append(self))
    capsys.readouterr()
    assert main(["attribute", "-m", str(model), "--tx", str(d / "tx.csv"), "--keys", key,
                 "--top", "0", "-o", str(tmp_path / "a.csv"),
                 "--plot", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err
    assert "semiclip attribute: warning: 1 gene(s) are (nearly) constant in the controls" in err
    assert f"g0 (sd {sd['g0']:.3g})" in err and "--exclude-flat-genes" in err
    table = pd.read_csv(tmp_path / "a.csv")
    assert table.loc[table["flat_in_controls"], "gene"].tolist() == ["g0"]
    assert table["gene"].iloc[0] == "g0"  # the QC artifact tops the key: why we warn
    labels = [t.get_text() for ax in saved[0].axes for t in ax.get_yticklabels()]
    assert "g0 *" in labels and "flat in the controls" in saved[0]._suptitle.get_text()


def test_exclude_flat_genes_and_min_control_sd(flat, tmp_path, capsys):
    d, model, tx, key = flat
    args = ["attribute", "-m", str(model), "--tx", str(d / "tx.csv"), "--keys", key,
            "--top", "0", "--overwrite", "-o", str(tmp_path / "a.csv")]
    assert main(args + ["--exclude-flat-genes"]) == 0
    table = pd.read_csv(tmp_path / "a.csv")
    assert "g0" not in set(table["gene"]) and len(table) == tx.shape[1] - 3
    assert not table["flat_in_controls"].any()
    # a threshold above every gene's sd flags them all; 0 flags none (the default would g0)
    sd = _control_sd(tx)
    capsys.readouterr()
    assert main(args + ["--min-control-sd", str(sd.max() * 1.01)]) == 0
    assert f"{sd.size} gene(s) are (nearly) constant" in capsys.readouterr().err
    assert main(args + ["--min-control-sd", "0"]) == 0
    assert "constant in the controls" not in capsys.readouterr().err
    assert main(args + ["--min-control-sd", "-1"]) == 2
    assert "--min-control-sd must be >= 0" in capsys.readouterr().err
