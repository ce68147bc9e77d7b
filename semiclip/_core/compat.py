"""Parameter constraints scikit-learn lacks, shared by the estimators of every layer."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

__all__ = ["IntegerInterval"]


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
