"""What semiclip takes from scikit-learn's private API, pinned on the installed release.

:mod:`semiclip._core.compat` is the one module that imports scikit-learn's
private names; these tests state the behaviour the package relies on, so that
a scikit-learn release inside the declared range that changes one fails here
(``.ci/lower-bounds`` runs this file on the lowest supported release).
"""

import numbers
import re
from pathlib import Path

import numpy as np
import pytest
import sklearn
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from sklearn.base import BaseEstimator

from semiclip._core.compat import (
    HasMethods,
    IntegerInterval,
    Interval,
    InvalidParameterError,
    StrOptions,
    check_feature_names_in,
    fit_context,
    validate_params,
)

ROOT = Path(__file__).resolve().parents[1]


def _declared_sklearn_range():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"scikit-learn([^"]*)"', text.split("dependencies = [", 1)[1])
    return SpecifierSet(match.group(1))


def test_the_declared_range_is_bounded_and_holds_the_installed_release():
    spec = _declared_sklearn_range()
    assert any(s.operator == ">=" for s in spec) and any(s.operator == "<" for s in spec), spec
    assert Version(sklearn.__version__) in spec, (sklearn.__version__, str(spec))


class _Toy(BaseEstimator):
    _parameter_constraints = {
        "n": [IntegerInterval(1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "kind": [StrOptions({"a", "b"})],
        "encoder": [None, HasMethods(["fit", "transform"])],
    }

    def __init__(self, n=1, alpha=0.5, kind="a", encoder=None):
        self.n, self.alpha, self.kind, self.encoder = n, alpha, kind, encoder

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self


@pytest.mark.parametrize("param, value, shown", [
    ("n", True, "Got True instead"),  # a bool is not an integer here
    ("n", 0, "Got 0 instead"),
    ("alpha", 2.0, "Got 2.0 instead"),
    ("kind", "c", "Got 'c' instead"),
    ("encoder", "pca", "Got 'pca' instead"),
])
def test_fit_context_validates_the_constraints(param, value, shown):
    toy = _Toy(**{param: value})
    with pytest.raises(InvalidParameterError,
                       match=rf"The '{param}' parameter of _Toy must be .*{re.escape(shown)}"):
        toy.fit(np.zeros((3, 2)))
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


def test_fit_context_lets_valid_parameters_through():
    assert _Toy(n=3, alpha=1.0, kind="b").fit(np.zeros((3, 2))).n_features_in_ == 2


def test_validate_params_names_the_argument():
    @validate_params({"k": [Interval(numbers.Integral, 1, None, closed="left")]},
                     prefer_skip_nested_validation=True)
    def top(k):
        return k

    assert top(3) == 3
    with pytest.raises(InvalidParameterError, match=r"The 'k' parameter of \S*top must be"):
        top(0)


def test_check_feature_names_in():
    toy = _Toy().fit(np.zeros((3, 2)))
    assert list(check_feature_names_in(toy, None)) == ["x0", "x1"]
    with pytest.raises(ValueError, match="input_features"):
        check_feature_names_in(toy, ["a", "b", "c"])
