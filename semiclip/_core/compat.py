"""Parameter constraints scikit-learn lacks, shared by the estimators of every layer."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

__all__ = ["IntegerInterval", "has_param", "validate_params"]


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


def validate_params(estimator):
    """Check ``estimator.get_params(deep=False)`` against its class's constraints (what
    scikit-learn does at ``fit``); a class without constraints passes."""
    constraints = _constraints(estimator)
    if constraints is not None:
        validate_parameter_constraints(constraints, estimator.get_params(deep=False),
                                       caller_name=type(estimator).__name__)
