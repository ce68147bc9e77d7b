"""The basement below every layer: input checks, pairing keys, the teacher bank, statistics.

numpy only (no torch, no scikit-learn): :mod:`semiclip._nn` and
:mod:`semiclip._correction` both stand on it. scikit-learn's private names
are reached through :mod:`semiclip._core.compat` only.
"""

from ._bank import ImageBank, PairSampler
from ._docstrings import fill_doc
from ._inputs import (
    check_finite_rows,
    check_labels,
    check_one_type,
    control_mask,
    count_and_examples,
    format_examples,
    missing_mask,
    non_finite_error,
    non_finite_rows,
    type_name,
    value_types,
)
from ._keys import check_no_missing, distinct_values, make_keys, missing_rows
from ._stats import t_interval

__all__ = [
    "ImageBank", "PairSampler", "check_finite_rows", "check_labels", "check_no_missing",
    "check_one_type", "control_mask", "count_and_examples", "distinct_values", "fill_doc",
    "format_examples", "make_keys", "missing_mask", "missing_rows", "non_finite_error",
    "non_finite_rows", "t_interval", "type_name", "value_types",
]
