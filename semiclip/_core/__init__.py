"""The basement below every layer: input checks, pairing keys, the teacher bank, statistics.

numpy only (no torch, no scikit-learn): :mod:`semiclip._nn` and
:mod:`semiclip._correction` both stand on it. scikit-learn's private names
are reached through :mod:`semiclip._core.compat` only.
"""

from ._bank import ImageBank, PairSampler
from ._docstrings import fill_doc
from ._inputs import (
    FLOAT32_MAX,
    FLOAT32_POLICY,
    check_finite_rows,
    check_labels,
    check_one_type,
    control_mask,
    count_and_examples,
    float32_overflow_rows,
    float32_range_error,
    float32_underflow_rows,
    format_examples,
    missing_mask,
    non_finite_error,
    non_finite_rows,
    to_float32,
    type_name,
    value_types,
)
from ._keys import check_no_missing, distinct_values, make_keys, missing_rows
from ._stats import t_interval

__all__ = [
    "FLOAT32_MAX", "FLOAT32_POLICY", "float32_overflow_rows", "float32_range_error",
    "float32_underflow_rows", "to_float32", "ImageBank", "PairSampler", "check_finite_rows",
    "check_labels", "check_no_missing",
    "check_one_type", "control_mask", "count_and_examples", "distinct_values", "fill_doc",
    "format_examples", "make_keys", "missing_mask", "missing_rows", "non_finite_error",
    "non_finite_rows", "t_interval", "type_name", "value_types",
]
