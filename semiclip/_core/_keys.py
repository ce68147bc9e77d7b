"""Pairing keys from metadata columns, and the missing-value and mixed-type checks behind them.

The core of :func:`semiclip.datasets.make_keys`, kept below every layer:
:meth:`semiclip.ImageBank.from_dataframe` and the table adapters build their
keys with it. Everything works on distinct values (``numpy.unique``), never
row by row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._inputs import check_one_type, format_examples, missing_mask

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["check_no_missing", "distinct_values", "make_keys", "missing_rows"]

def missing_rows(values):
    """Boolean mask of the missing entries of a 1-D array (vectorised, no row loop).

    None, NaN, ``pandas.NA`` and NaT, as :func:`semiclip._core.missing_mask`.
    """
    return missing_mask(values)


def check_no_missing(values, what, fix="drop or fill those rows first"):
    """A ValueError naming the rows of ``values`` that are missing (None/NaN), and ``fix``."""
    missing = missing_rows(values)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"{what} has {rows.size} missing value(s) (None/NaN) at rows "
            f"{format_examples(rows)}; {fix}."
        )


def _float_text(v):
    # + 0.0 turns -0.0 into 0.0: np.unique holds them equal, so they must read the same
    return np.format_float_positional(v + 0.0, unique=True, trim="-")


def _format_distinct(values):
    """String form of distinct values: floats shortest round-trip, ``10.0 -> "10"``."""
    if values.dtype.kind == "f":
        return np.array([_float_text(v) for v in values], dtype=object)
    if values.dtype.kind == "O":
        return np.array(
            [_float_text(v) if isinstance(v, (float, np.floating)) else str(v) for v in values],
            dtype=object,
        )
    return values.astype(str).astype(object)


def distinct_values(column, name):
    """``(uniques, inverse)`` of a 1-D column, with a clear error for mixed types."""
    if column.dtype.kind == "O":
        check_one_type(column, name)
    try:
        uniq, inverse = np.unique(column, return_inverse=True)
    except TypeError:  # pragma: no cover - types check_one_type lets through
        check_one_type(column, name)
        raise TypeError(
            f"{name} holds values that cannot be compared; convert it to one type first "
            "(e.g. .astype(str))."
        ) from None
    return uniq, inverse.ravel()


def make_keys(*columns: ArrayLike, sep: str = "|") -> np.ndarray:
    """Join several metadata columns into one string key per row.

    Use it to key samples by perturbation *and* concentration (or time
    point, cell line...), identically on the transcriptomics and image
    sides. :meth:`semiclip.ImageBank.from_dataframe` calls it for
    multi-column keys.

    Parameters
    ----------
    *columns : array-like of shape (n_samples,)
        One or more columns of equal length (strings, integers, floats or
        booleans). Floats are written in their shortest round-trip form
        with integral floats written without ``".0"`` (``10.0 -> "10"``,
        ``0.1 -> "0.1"``), so an integer column and a float column of the
        same doses give the same keys. Snap concentrations with
        :func:`round_to_grid` first so that ``3.3333`` and ``3.33`` agree.
    sep : str, default="|"
        Separator between the parts. It must not occur inside any value.

    Returns
    -------
    keys : ndarray of shape (n_samples,), dtype object
        One string key per row.

    Raises
    ------
    ValueError
        When the columns differ in length, a value is missing (None/NaN) or
        a value contains ``sep``.

    Examples
    --------
    >>> from semiclip.datasets import make_keys
    >>> make_keys(["BRAF", "BRAF", "DMSO"], [10.0, 3.3333, 0])
    array(['BRAF|10', 'BRAF|3.3333', 'DMSO|0'], dtype=object)
    """
    if not columns:
        raise TypeError("make_keys needs at least one column.")
    if not isinstance(sep, str) or not sep:
        raise ValueError(f"sep must be a non-empty string; got {sep!r}.")
    arrays = [np.asarray(c) for c in columns]
    for i, a in enumerate(arrays):
        if a.ndim != 1:
            raise ValueError(
                f"make_keys column {i} must be 1-D (one value per sample); got shape {a.shape}."
            )
    lengths = {a.shape[0] for a in arrays}
    if len(lengths) > 1:
        raise ValueError(
            f"make_keys columns differ in length: {[a.shape[0] for a in arrays]}; "
            "pass one value per sample in every column."
        )
    keys = None
    for i, a in enumerate(arrays):
        check_no_missing(a, f"make_keys column {i}", "fill or drop those rows first")
        uniq, inverse = distinct_values(a, f"make_keys column {i}")
        text = _format_distinct(uniq)
        bad = np.array([sep in t for t in text], dtype=bool)
        if bad.any():
            raise ValueError(
                f"make_keys column {i} has {int(bad.sum())} value(s) containing the separator "
                f"{sep!r} ({format_examples(text[bad])}); pass another sep= so that keys "
                "cannot collide."
            )
        part = text[inverse]
        keys = part if keys is None else keys + sep + part
    return keys
