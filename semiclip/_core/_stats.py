"""Summary statistics shared by the experiments and the figures."""

import numpy as np

__all__ = ["t_interval"]


def t_interval(values, level=0.95):
    """Mean and Student-t half-width of a ``level`` interval of the mean.

    ``mean +/- t_{(1 + level) / 2, n - 1} * sd / sqrt(n)`` with ``sd`` the
    sample standard deviation (``ddof=1``). The half-width is NaN for fewer
    than two values.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan")
    from scipy.stats import t

    half = t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(half)
