"""The documentation builds offline with warnings as errors (``sphinx-build -W``)."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
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


def test_shared_parameter_docs_are_filled_in():
    """``[[name]]`` lines of docstrings are replaced by the shared entry, indented."""
    import importlib
    import inspect
    import re

    from semiclip._docstrings import fill_doc

    placeholder = re.compile(r"^\s*\[\[\w+\]\]\s*$", re.M)
    seen = 0
    for name in ("semiclip", "semiclip.metrics", "semiclip.datasets", "semiclip.plotting",
                 "semiclip.callbacks", "semiclip.interpret"):
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            docs = [obj.__doc__] + [m.__doc__ for _, m in inspect.getmembers(obj, callable)
                                    if inspect.isclass(obj)]
            for doc in filter(None, docs):
                assert not placeholder.search(doc), f"{name}.{attr}"
                seen += 1
    assert seen > 50
    from semiclip import SemiClippedTransformer

    entry = SemiClippedTransformer.fit.__doc__.split("keys : ")[1].splitlines()
    assert entry[1].startswith(" " * 12 + "Pairing keys")  # a method's indentation

    def f():
        """Summary.

        [[nope]]
        """

    with pytest.raises(RuntimeError, match="no shared docstring entry 'nope'"):
        fill_doc({"x": "x : int"})(f)
