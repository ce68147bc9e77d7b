"""The documentation builds offline with warnings as errors (``sphinx-build -W``)."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs need sphinx (the test extra)")
    pytest.importorskip("myst_parser", reason="the docs need myst-parser (the test extra)")
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    api = (out / "api.html").read_text(encoding="utf-8")
    # the reference is generated from the docstrings, not just the page titles
    for name in ("semiclip.SemiClippedTransformer.fit", "semiclip.PEAAugmenter.fit_resample",
                 "semiclip.metrics.known_relationship_recall",
                 "semiclip.datasets.match_report"):
        assert f'id="{name}"' in api, name
    assert "set_fit_request" not in api
    # the user guide defines the labels the docstrings link to
    for page, anchor in (("guide/concepts.html", 'id="semiclipped"'),
                         ("guide/pea.html", 'id="pea"'),
                         ("guide/batch_correction.html", 'id="batch-correction"')):
        assert anchor in (out / page).read_text(encoding="utf-8"), page
    bench = (out / "benchmark.html").read_text(encoding="utf-8")
    assert "Semi-Clipped + PEA" in bench and "raw transcriptomics" in bench
    if (DOCS / "scaling.md").is_file():
        assert (out / "scaling.html").is_file()
