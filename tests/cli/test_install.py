"""What the install gives the command line, and the extra named when a package is missing."""

import re
import sys
from pathlib import Path

import pytest

from semiclip.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_the_readme_command_installs_what_the_cli_reads():
    project = _pyproject()
    # CSV needs pandas only, and every install has it
    assert any(re.match(r"pandas\b", d) for d in project["dependencies"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    extras = re.search(r'pip install "\.\[([\w,]+)\]" && semiclip demo', readme).group(1)
    optional = project["optional-dependencies"]

    def expand(names):
        out = set()
        for name in names.split(","):
            for dep in optional[name]:
                inner = re.fullmatch(r"semiclip\[([\w,]+)\]", dep)
                out |= expand(inner.group(1)) if inner else {re.split(r"[<>=\[ ]", dep)[0]}
        return out

    # Parquet, .h5ad, progress bars and figures: everything the command line reads and writes
    assert {"pyarrow", "anndata", "tqdm", "matplotlib"} <= expand(extras)


def test_a_missing_parquet_engine_names_the_extra(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    (tmp_path / "tx.parquet").write_bytes(b"PAR1")
    capsys.readouterr()
    assert main(["fit", "--tx", str(tmp_path / "tx.parquet"), "--images",
                 str(files / "img.csv"), "--key-col", "Metadata_gene",
                 "-o", str(tmp_path / "m.semiclip")]) == 2
    err = capsys.readouterr().err
    assert "Parquet files need pyarrow (pip install 'semiclip[io]'" in err


def test_a_missing_optional_package_names_its_extra(monkeypatch):
    from semiclip.cli._main import install_hint

    for name, extra in [("matplotlib.figure", "plot"), ("anndata", "anndata"),
                        ("tqdm", "progress"), ("pyarrow", "io"), ("dask", "dask"),
                        ("imblearn", "imblearn"), ("mudata", "mudata")]:
        exc = ModuleNotFoundError(f"No module named '{name}'", name=name)
        assert f"pip install 'semiclip[{extra}]'" in install_hint(exc, str(exc))
    plain = ImportError("cannot import name 'x' from 'numpy'")
    assert install_hint(plain, str(plain)) == str(plain)


@pytest.mark.filterwarnings("ignore")
def test_attribute_plot_without_matplotlib_names_the_plot_extra(files, tmp_path, monkeypatch,
                                                                 capsys):
    from ._common import COLS, FIT_PARAMS

    model = tmp_path / "m.semiclip"
    assert main(["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"),
                 *COLS, *FIT_PARAMS, "-o", str(model)]) == 0
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    capsys.readouterr()
    assert main(["attribute", "-m", str(model), "--tx", str(files / "tx.csv"), "--top", "2",
                 "-o", str(tmp_path / "a.csv"), "--plot", str(tmp_path / "a.png")]) == 2
    assert "pip install 'semiclip[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()  # refused before any work
