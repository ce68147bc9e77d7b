"""CI runs the fast suite (the README's command), then the slow checks; both must collect tests.

``pyproject.toml`` deselects the tests marked ``slow`` by default, so that
``python -m pytest`` stays fast; ``.ci/run`` runs them in a second step
(``python -m pytest -m slow``) so that CI keeps their coverage. Under
``set -e`` a pytest exit code 5 (no tests collected) fails either step.
"""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _addopts():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return shlex.split(re.search(r'^addopts = "(.*)"$', text, re.M).group(1))


def test_slow_tests_are_deselected_by_default():
    opts = _addopts()
    assert opts[opts.index("-m") + 1] == "not slow"


def test_ci_runs_the_fast_suite_then_the_slow_checks():
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    assert "set -euo pipefail" in lines  # a failing step (exit 5 included) fails CI
    fast = lines.index('python -m pip install -e ".[test]" && python -m pytest')
    slow = lines.index("python -m pytest -m slow")
    lower = lines.index("bash .ci/lower-bounds")  # the lowest supported scikit-learn
    assert fast < slow < lower


def test_some_tests_are_marked_slow():
    """The slow step must collect tests (pytest's exit code 5 would fail CI)."""
    marked = [p for p in (ROOT / "tests").rglob("test_*.py")
              if re.search(r"pytest\.mark\.slow", p.read_text(encoding="utf-8"))]
    assert len(marked) >= 5, marked
