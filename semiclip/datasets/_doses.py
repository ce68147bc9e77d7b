"""Concentrations on a common grid (:func:`round_to_grid`), and keys that differ only by one.

Two experiments rarely write a dose the same way (``3.3333`` vs ``3.33``);
:func:`round_to_grid` snaps both sides to one series, and
:func:`near_numbers` finds keys that would match once snapped (the hint of
:func:`~semiclip.datasets.match_report`).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np

from .._core import format_examples

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["near_numbers", "round_to_grid"]


def round_to_grid(doses: ArrayLike, grid: ArrayLike | None = None, *, factor: float | None = None,
                  anchor: float | None = None, decimals: int | None = None,
                  tolerance: float | None = None, where: ArrayLike | None = None) -> np.ndarray:
    """Snap concentrations to a common grid so that dose keys match.

    Two experiments rarely write a dose the same way (``3.3333`` vs
    ``3.33``, ``19.999`` vs ``20``). Exactly one of three grids is used:

    - ``grid``: an explicit list of concentrations; every dose goes to the
      nearest grid point on a log scale (doses are dilution series);
    - ``factor`` (and optionally ``anchor``): the geometric series
      ``anchor * factor**k`` for every integer ``k`` (e.g. ``factor=3``
      for a 3-fold dilution series); ``anchor`` defaults to the largest
      dose. Nearest point on a log scale;
    - ``decimals``: plain rounding, ``numpy.round(doses, decimals)``. Simple,
      but small doses can collapse (``0.004 -> 0.0`` with ``decimals=2``);
      prefer a log grid for dilution series.

    A dose of exactly 0 (vehicle) stays 0 in every mode. Controls often
    carry a placeholder dose (LINCS writes ``-666``): pass ``where=~is_control``
    so that their values are neither checked nor changed.

    Parameters
    ----------
    doses : array-like of float
        Concentrations, any shape, in one unit. Must be finite and >= 0
        where ``where`` is True.
    grid : array-like of float, optional
        Allowed concentrations (> 0; a 0 in the grid is ignored since 0
        always maps to 0).
    factor : float > 1, optional
        Dilution factor of a geometric grid.
    anchor : float > 0, optional
        One concentration of the geometric grid; default: ``max(doses)``.
        Pass it explicitly when snapping two experiments, so both use the
        same series.
    decimals : int, optional
        Decimal places for plain rounding.
    tolerance : float, optional
        With ``grid`` or ``factor``: largest allowed relative distance
        ``|dose - snapped| / snapped``; doses farther from every grid point
        raise a ValueError (they probably belong to another series).
    where : array-like of bool, optional
        Same shape as ``doses``: snap only these entries; the others (e.g.
        the controls) are returned unchanged, whatever they hold. The
        default anchor is then the largest dose among them.

    Returns
    -------
    snapped : ndarray of float64
        Same shape as ``doses`` (dtype object when entries left alone by
        ``where`` are not numbers).

    Examples
    --------
    >>> from semiclip.datasets import round_to_grid
    >>> round_to_grid([3.3333, 3.33, 0.041152, 0.0], grid=[0.04, 0.12, 0.37, 1.1, 3.3, 10])
    array([3.3 , 3.3 , 0.04, 0.  ])
    >>> snapped = round_to_grid([10.0, 3.3333, 3.33, 1.1111, 0.041152], factor=3, anchor=10)
    >>> snapped.round(4)
    array([10.    ,  3.3333,  3.3333,  1.1111,  0.0412])
    >>> bool(snapped[1] == snapped[2])
    True
    >>> round_to_grid([3.33, -666.0], factor=3, anchor=10, where=[True, False]).round(4)
    array([   3.3333, -666.    ])
    """
    modes = [
        name
        for name, v in (("grid", grid), ("factor", factor), ("decimals", decimals))
        if v is not None
    ]
    if len(modes) != 1:
        raise ValueError(
            "round_to_grid needs exactly one of grid=, factor= or decimals=; got "
            f"{modes or 'none'}."
        )
    try:
        d = np.asarray(doses, dtype=np.float64)
    except (TypeError, ValueError):
        d = None
    if where is not None:
        mask = np.asarray(where)
        if mask.dtype.kind != "b" or (d is not None and mask.shape != d.shape):
            raise ValueError(
                "where must be a boolean array of the shape of doses (True = snap this "
                f"dose); got dtype {mask.dtype}, shape {mask.shape}."
            )
        raw = np.asarray(doses, dtype=object)
        out = raw.copy() if d is None else d.copy()
        if mask.any():
            out[mask] = round_to_grid(raw[mask], grid, factor=factor, anchor=anchor,
                                      decimals=decimals, tolerance=tolerance)
        return out if d is None else out.astype(np.float64)
    if d is None:
        values = np.asarray(doses, dtype=object).ravel()
        raise ValueError(
            f"doses must be numbers; got {format_examples(values[:50])}. Convert the dose "
            "column to numbers, or pass where= to leave the rows that are not doses alone."
        )
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        raise ValueError(
            f"doses must be finite and >= 0; got {int(bad.sum())} other value(s): "
            f"{format_examples(d[bad])}. Drop those rows or fill the vehicle dose with 0; "
            "placeholder doses of controls (e.g. LINCS -666) are left alone with "
            "where=~is_control."
        )
    if decimals is not None:
        if not isinstance(decimals, numbers.Integral) or isinstance(decimals, (bool, np.bool_)):
            raise TypeError(
                f"decimals must be an integer (the number of decimal places); got "
                f"{decimals!r}. Pass a Python or NumPy int, e.g. decimals=2."
            )
        if tolerance is not None:
            raise ValueError("tolerance= applies to grid= or factor=, not to decimals=.")
        return np.round(d, int(decimals))
    if tolerance is not None:
        ok = isinstance(tolerance, numbers.Real) and not isinstance(tolerance, (bool, np.bool_))
        if not (ok and np.isfinite(tolerance) and tolerance >= 0):
            raise (ValueError if ok else TypeError)(
                f"tolerance must be a finite number >= 0 (the largest relative distance to "
                f"the grid, e.g. 0.1); got {tolerance!r}."
            )
    positive = d > 0
    out = np.zeros_like(d)
    if grid is not None:
        g = np.unique(np.asarray(grid, dtype=np.float64).ravel())
        if g.size == 0 or not np.all(np.isfinite(g)) or g.min() < 0:
            raise ValueError(
                f"grid must hold finite concentrations >= 0; got {format_examples(g)}."
            )
        g = g[g > 0]
        if g.size == 0:
            raise ValueError("grid must hold at least one concentration > 0.")
        logd, logg = np.log(d[positive]), np.log(g)
        right = np.clip(np.searchsorted(logg, logd), 1, max(g.size - 1, 1))
        left = right - 1
        if g.size == 1:
            idx = np.zeros(logd.shape, dtype=np.int64)
        else:
            idx = np.where(logd - logg[left] <= logg[right] - logd, left, right)
        out[positive] = g[idx]
    else:
        factor = float(factor)
        if not (np.isfinite(factor) and factor > 1):
            raise ValueError(f"factor must be > 1 and finite (the dilution factor, e.g. 3 "
                             f"for a 3-fold series); got {factor}.")
        if anchor is None:
            anchor = d.max() if positive.any() else 1.0
        anchor = float(anchor)
        if not (np.isfinite(anchor) and anchor > 0):
            raise ValueError(f"anchor must be a finite concentration > 0; got {anchor}.")
        k = np.round(np.log(d[positive] / anchor) / np.log(factor))
        out[positive] = anchor * factor**k
    if tolerance is not None:
        rel = np.abs(d[positive] - out[positive]) / out[positive]
        far = rel > tolerance
        if far.any():
            raise ValueError(
                f"{int(far.sum())} dose(s) lie more than tolerance={tolerance} (relative) from "
                f"every grid point: {format_examples(d[positive][far])}; extend the grid or "
                "check the unit."
            )
    return out



def _split_numbers(key, sep="|"):
    """``(text parts, numbers)`` of a key; None when no part is a number."""
    if isinstance(key, (numbers.Real, np.floating, np.integer)) and not isinstance(key, bool):
        return (), (float(key),)
    if not isinstance(key, str):
        return None
    text, nums = [], []
    for part in key.split(sep):
        try:
            nums.append(float(part))
            text.append(None)
        except ValueError:
            text.append(part)
    return (tuple(text), tuple(nums)) if nums else None


def near_numbers(tx_left, im_left, rtol=0.05):
    """Pairs (tx key, image key) equal but for numbers within ``rtol`` (rounded doses)."""
    by_text = {}
    for key in im_left.tolist():
        split = _split_numbers(key)
        if split is not None:
            by_text.setdefault(split[0], []).append((np.array(split[1]), key))
    pairs = []
    for key in tx_left.tolist():
        split = _split_numbers(key)
        if split is None:
            continue
        mine = np.array(split[1])
        for theirs, other in by_text.get(split[0], ()):
            if np.allclose(mine, theirs, rtol=rtol, atol=0) and np.all(np.isfinite(mine)):
                pairs.append((key, other))
                break
    return pairs
