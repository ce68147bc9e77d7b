"""scikit-learn's private helpers, reached through this one module.

semiclip builds on names scikit-learn does not promise to keep
(``sklearn.utils._param_validation``, ``sklearn.base._fit_context``,
``sklearn.utils.validation._check_feature_names_in``). Every module of the
package imports them from here (``tests/test_layout.py`` checks it), so a
scikit-learn release that moves one is fixed in one place. The supported
range is declared in ``pyproject.toml`` (``scikit-learn>=1.6,<1.10``) and the
lower bound is tested by ``.ci/lower-bounds``.

Also holds the parameter constraints scikit-learn lacks (:class:`IntegerInterval`).
"""

import numbers

import numpy as np
from sklearn.base import _fit_context as fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import _check_feature_names_in as check_feature_names_in

# the two below only for the tests that pin how the bank passes scikit-learn's CV helpers
from sklearn.utils.validation import _check_method_params as check_method_params
from sklearn.utils.validation import _num_samples as num_samples

__all__ = [
    "HasMethods",
    "IntegerInterval",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "check_feature_names_in",
    "check_method_params",
    "fit_context",
    "has_param",
    "num_samples",
    "validate_estimator_params",
    "validate_params",
]


class IntegerInterval(Interval):
    """``Interval(numbers.Integral, left, right, closed=...)`` that refuses booleans.

    scikit-learn's integer intervals accept ``True`` and ``False`` (``bool``
    is an ``int`` subclass), so ``max_iter=True`` would run one epoch. This
    constraint rejects them with scikit-learn's own ``InvalidParameterError``
    message (``"The 'max_iter' parameter of ... must be ... Got True instead."``).
    """

    def __init__(self, left, right, *, closed):
        super().__init__(numbers.Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def _constraints(estimator):
    """scikit-learn's developer API: the ``_parameter_constraints`` an estimator class declares."""
    return getattr(type(estimator), "_parameter_constraints", None)


def has_param(estimator, name):
    """Whether ``estimator`` declares a constraint for the parameter ``name``."""
    return name in (_constraints(estimator) or {})


def validate_estimator_params(estimator):
    """Check ``estimator.get_params(deep=False)`` against its class's constraints (what
    scikit-learn does at ``fit``); a class without constraints passes."""
    constraints = _constraints(estimator)
    if constraints is not None:
        validate_parameter_constraints(constraints, estimator.get_params(deep=False),
                                       caller_name=type(estimator).__name__)
