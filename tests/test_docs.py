"""The documentation builds offline with warnings as errors (``sphinx-build -W``)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _sources(tmp_path):
    """A copy of the sources the docs read, so that the generated pages
    (``generated/``, ``auto_examples/``) never land in the checkout."""
    src = tmp_path / "src"
    shutil.copytree(DOCS, src / "docs", ignore=shutil.ignore_patterns(
        "_build", "generated", "auto_examples"))
    shutil.copytree(ROOT / "examples", src / "examples")
    for name in ("CHANGELOG.md", "README.md", "CITATION.cff"):
        shutil.copy(ROOT / name, src / name)
    return src / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "myst_parser", "pydata_sphinx_theme", "numpydoc", "sphinx_gallery"):
        pytest.importorskip(module, reason="the docs need the docs extra (also in the test extra)")
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(_sources(tmp_path)), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    # one page per public object, generated from the docstrings (not just the titles)
    for page, name in (("semiclip.SemiClippedTransformer", "semiclip.SemiClippedTransformer.fit"),
                       ("semiclip.PEAAugmenter", "semiclip.PEAAugmenter.fit_resample"),
                       ("semiclip.metrics.known_relationship_recall",
                        "semiclip.metrics.known_relationship_recall"),
                       ("semiclip.datasets.match_report", "semiclip.datasets.match_report")):
        html = (out / "generated" / f"{page}.html").read_text(encoding="utf-8")
        assert f'id="{name}"' in html, name
        assert "set_fit_request" not in html
    api = (out / "api.html").read_text(encoding="utf-8")
    assert 'href="generated/semiclip.ControlNormalizer.html' in api
    assert "pydata-sphinx-theme" in (out / "index.html").read_text(encoding="utf-8")
    # the gallery: a page per example script, with its code
    gallery = (out / "auto_examples" / "index.html").read_text(encoding="utf-8")
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f"{script.stem}.html" in gallery, script.name
    grid = (out / "auto_examples" / "gridsearch_map.html").read_text(encoding="utf-8")
    assert "make_recall_scorer" in grid
    # the newcomer's pages
    for page, text in (("install.html", "download.pytorch.org/whl/cpu"),
                       ("faq.html", "allow-pickle"),
                       ("changelog.html", "Layout (issue 11)"),
                       ("citing.html", "2505.21317"),
                       ("tutorial.html", "BRAF_V600E,1,GLRX")):
        assert text in (out / page).read_text(encoding="utf-8"), page
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

    from semiclip._core import fill_doc

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


def _bash_blocks(text):
    import re

    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_readme_first_contact():
    """Two commands to copy: CPU torch, install and demo; then the tests, as CI runs them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = _bash_blocks(readme)
    assert len(blocks) == 2, blocks  # the two-command promise
    demo, tests = blocks
    assert "\n" not in demo and "\n" not in tests  # one command each
    # the CPU-only build of torch comes first, in the same command, before the package
    cpu = "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert demo.startswith(cpu + " && "), demo
    assert demo.index(cpu) < demo.index('".[cli]"') < demo.index("semiclip demo")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci, "the README's test command is what .ci/run runs verbatim"
    # what to do on a GPU machine, and that it is installed from the source
    assert "GPU" in readme and "not on PyPI" in readme
    # the quick start scores held-out perturbations, and says what the number means
    quick = readme.split("## Quick start", 1)[1]
    assert "split_by_key" in quick and "data.X[test]" in quick
    assert "pipe.score(data.X, " not in quick  # no in-sample score
    assert "held-out accuracy" in quick and "chance" in quick


def test_project_urls_and_citation_point_at_real_pages():
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11")

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    urls = meta["urls"]
    assert {"Homepage", "Documentation", "Issues", "Changelog"} <= set(urls)
    for name, url in urls.items():
        assert url.startswith("https://"), name
        assert not url.endswith((".rst", ".txt")) and "/raw/" not in url, (name, url)
    assert urls["Paper"] == "https://arxiv.org/abs/2505.21317"
    docs = meta["optional-dependencies"]["docs"]
    for package in ("sphinx", "myst-parser", "pydata-sphinx-theme", "numpydoc", "sphinx-gallery"):
        assert any(d.startswith(package) for d in docs), package
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert cff.startswith("cff-version: 1.2.0")
    assert "A Cross Modal Knowledge Distillation & Data Augmentation Recipe" in cff
    for family in ("Bendidi", "El Mesbahi", "Denton", "Suri", "Kenyon-Dean", "Genovesio",
                   "Noutahi"):
        assert f"family-names: {family}" in cff, family
    assert "arXiv:2505.21317" in cff and "year: 2025" in cff
