"""Pairing keys across two sides: clean gene symbols, snap doses, report the match.

Weak pairing only works when the transcriptomics keys and the image-bank keys
are written the same way. These helpers clean gene symbols
(:func:`normalize_gene_symbols`), snap concentrations to a common grid
(:func:`round_to_grid`) and report how many keys matched on each side
(:func:`match_report`); :func:`~semiclip.datasets.make_keys` builds one key
from several columns.

Everything works on distinct values (``numpy.unique``), never row by row.
"""

from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import control_mask, distinct_values, format_examples, missing_rows

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["normalize_gene_symbols", "round_to_grid", "match_report", "MatchReport"]


def _plural(count, word):
    return f"{count} {word}" + ("" if count == 1 else "s")


_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*[GTP]\d{6,})\.\d+$")
_ORF = re.compile(r"^(C(?:\d+|X|Y))ORF(\d+)$")


def normalize_gene_symbols(symbols: ArrayLike, *, strip_variant: bool = False) -> np.ndarray:
    """Clean gene symbols so that two sources write each gene the same way.

    The rules, applied to each distinct value:

    1. surrounding whitespace is removed;
    2. the symbol is upper-cased, except the HGNC ``orf`` infix of open
       reading frames (``c9ORF72 -> C9orf72``), so that the result follows
       HGNC case, as the shipped relationship tables do;
    3. an Ensembl version suffix is removed (``ENSG00000141510.16 ->
       ENSG00000141510``);
    4. with ``strip_variant=True``, everything from the first ``"_"`` is
       removed (``BRAF_V600E -> BRAF``, ``PRKCA_del1-325 -> PRKCA``). HGNC
       symbols never contain ``"_"``, so what follows is an allele or
       construct name (as in the TA-ORF over-expression screen). This maps
       a mutant to its gene: use it to look genes up in relationship
       databases, not to build pairing keys where the variant matters.

    Missing values (None, NaN) are returned unchanged. Synonyms and
    renamed genes (``SEPT9 -> SEPTIN9``) are not translated, and mouse
    symbols become upper-case (``Trp53 -> TRP53``), which is not the human
    ortholog's symbol in general. Apply the same function to both sides
    (and to relationship tables) before matching.

    Parameters
    ----------
    symbols : array-like of str
        Gene symbols, any shape.
    strip_variant : bool, default=False
        Also remove an allele or construct suffix after ``"_"``.

    Returns
    -------
    normalized : ndarray, dtype object
        Same shape as ``symbols``.

    Examples
    --------
    >>> from semiclip.datasets import normalize_gene_symbols
    >>> normalize_gene_symbols([" tp53", "c9orf72", "ENSG00000141510.16", "BRAF_V600E"])
    array(['TP53', 'C9orf72', 'ENSG00000141510', 'BRAF_V600E'], dtype=object)
    >>> normalize_gene_symbols(["BRAF_V600E", "akt1_E17K"], strip_variant=True)
    array(['BRAF', 'AKT1'], dtype=object)
    """
    arr = np.asarray(symbols, dtype=object)
    flat = arr.ravel()
    present = ~missing_rows(flat)
    uniq, inverse = distinct_values(flat[present], "symbols")
    not_str = np.array([not isinstance(v, str) for v in uniq.tolist()], dtype=bool)
    if not_str.any():
        raise TypeError(
            f"symbols must be strings (or None/NaN for missing); got {int(not_str.sum())} "
            f"other value(s): {format_examples(uniq[not_str])}. Convert them with "
            ".astype(str) first."
        )
    cleaned = []
    for s in uniq.tolist():
        s = s.strip().upper()
        s = _ORF.sub(r"\1orf\2", s)
        s = _ENSEMBL_VERSION.sub(r"\1", s)
        if strip_variant:
            s = s.split("_", 1)[0]
        cleaned.append(s)
    out = flat.copy()
    out[present] = np.array(cleaned, dtype=object)[inverse]
    return out.reshape(arr.shape)


def round_to_grid(doses: ArrayLike, grid: ArrayLike | None = None, *, factor: float | None = None,
                  anchor: float | None = None, decimals: int | None = None,
                  tolerance: float | None = None) -> np.ndarray:
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

    A dose of exactly 0 (vehicle) stays 0 in every mode.

    Parameters
    ----------
    doses : array-like of float
        Concentrations, any shape, in one unit. Must be finite and >= 0.
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

    Returns
    -------
    snapped : ndarray of float64
        Same shape as ``doses``.

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
    d = np.asarray(doses, dtype=np.float64)
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        raise ValueError(
            f"doses must be finite and >= 0; got {int(bad.sum())} other value(s): "
            f"{format_examples(d[bad])}. Drop those rows or fill the vehicle dose with 0."
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


class MatchReport:
    """How the pairing keys of two sides match; see :func:`match_report`.

    Attributes
    ----------
    matched_keys : ndarray
        Sorted distinct keys present on both sides (controls excluded).
    unmatched_tx_keys, unmatched_image_keys : ndarray
        Sorted distinct keys present on one side only.
    n_tx_keys, n_image_keys : int
        Distinct keys on each side (controls excluded).
    n_tx_rows, n_image_rows : int
        Rows on each side (controls excluded).
    n_tx_rows_matched, n_image_rows_matched : int
        Rows whose key is on the other side too.
    n_tx_controls : int
        Transcriptomics rows whose key is ``control_label``.
    n_fixable_by_case : int
        Unmatched transcriptomics keys that would match once both sides go
        through :func:`normalize_gene_symbols` (case and whitespace).
    types_differ : bool
        One side has string keys, the other numbers (they never match).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def n_matched(self):
        return int(self.matched_keys.size)

    def __repr__(self):
        def side(name, n_keys, n_rows, n_rows_matched, unmatched):
            frac = self.n_matched / n_keys if n_keys else 0.0
            line = (
                f"  {name}: {_plural(n_keys, 'key')} ({_plural(n_rows, 'row')}), "
                f"{self.n_matched} matched ({frac:.0%}), {_plural(n_rows_matched, 'row')} usable"
            )
            if unmatched.size:
                line += f"\n    unmatched: {format_examples(unmatched)}"
            return line

        lines = [
            f"MatchReport: {_plural(self.n_matched, 'key')} on both sides",
            side("transcriptomics", self.n_tx_keys, self.n_tx_rows, self.n_tx_rows_matched,
                 self.unmatched_tx_keys),
            side("images", self.n_image_keys, self.n_image_rows, self.n_image_rows_matched,
                 self.unmatched_image_keys),
        ]
        if self.n_tx_controls:
            lines.append(
                f"  transcriptomics controls ({self.control_label!r}): "
                f"{_plural(self.n_tx_controls, 'row')}"
            )
        if self.types_differ:
            lines.append(
                "  hint: one side has string keys and the other numbers, which never match; "
                "build both with make_keys()."
            )
        if self.n_fixable_by_case:
            lines.append(
                f"  hint: {_plural(self.n_fixable_by_case, 'unmatched key')} would match after "
                "normalize_gene_symbols() on both sides."
            )
        return "\n".join(lines)


def _side_keys(keys, name, control_label):
    arr = np.asarray(keys)
    if arr.ndim != 1:
        arr = arr.ravel()
    missing = missing_rows(arr)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"{name} has {rows.size} missing key(s) (None/NaN) at rows {format_examples(rows)}; "
            "drop those rows first."
        )
    uniq, inverse = distinct_values(arr, name)
    counts = np.bincount(inverse, minlength=uniq.size)
    is_ctl = control_mask(uniq, control_label)
    return uniq[~is_ctl], counts[~is_ctl], int(counts[is_ctl].sum())


def match_report(tx_keys: ArrayLike, image_keys: ArrayLike, *, control_label: Any = None
) -> MatchReport:
    """Report how many pairing keys the two sides share.

    Run it before fitting: a transcriptomics sample is only paired when its
    key is in the image bank, so unmatched keys are silently unused data.

    Parameters
    ----------
    tx_keys : array-like of shape (n_tx_samples,)
        Key of every transcriptomics sample (``y``).
    image_keys : array-like of shape (n_images,)
        Key of every image-bank row (e.g. ``ImageBank.keys``).
    control_label : scalar, optional
        Key of control samples; left out of the counts (controls are never
        paired) and reported separately.

    Returns
    -------
    report : MatchReport
        Counts and the matched / unmatched keys; its repr is a short
        readable summary with examples of unmatched keys.

    Examples
    --------
    >>> from semiclip.datasets import match_report
    >>> report = match_report(["TP53", "tp53", "BRAF", "ctl"], ["TP53", "KRAS"],
    ...                       control_label="ctl")
    >>> report.n_matched, report.n_tx_rows_matched
    (1, 1)
    >>> report
    MatchReport: 1 key on both sides
      transcriptomics: 3 keys (3 rows), 1 matched (33%), 1 row usable
        unmatched: 'BRAF', 'tp53'
      images: 2 keys (2 rows), 1 matched (50%), 1 row usable
        unmatched: 'KRAS'
      transcriptomics controls ('ctl'): 1 row
      hint: 1 unmatched key would match after normalize_gene_symbols() on both sides.
    """
    tx_u, tx_c, tx_ctl = _side_keys(tx_keys, "tx_keys", control_label)
    im_u, im_c, _ = _side_keys(image_keys, "image_keys", control_label)
    try:
        in_im = np.isin(tx_u, im_u)
        in_tx = np.isin(im_u, tx_u)
    except TypeError:
        raise TypeError(
            f"tx_keys ({tx_u.dtype}) and image_keys ({im_u.dtype}) hold keys of types that "
            "cannot be compared; build both with make_keys() so they are strings."
        ) from None
    fixable = 0
    if tx_u.dtype.kind in "OU" and im_u.dtype.kind in "OU" and (~in_im).any():
        left = tx_u[~in_im]
        left = left[np.array([isinstance(v, str) for v in left], dtype=bool)]
        im_str = im_u[np.array([isinstance(v, str) for v in im_u], dtype=bool)]
        if left.size and im_str.size:
            fixable = int(
                np.isin(normalize_gene_symbols(left), normalize_gene_symbols(im_str)).sum()
            )
    return MatchReport(
        matched_keys=tx_u[in_im],
        unmatched_tx_keys=tx_u[~in_im],
        unmatched_image_keys=im_u[~in_tx],
        n_tx_keys=int(tx_u.size),
        n_image_keys=int(im_u.size),
        n_tx_rows=int(tx_c.sum()),
        n_image_rows=int(im_c.sum()),
        n_tx_rows_matched=int(tx_c[in_im].sum()),
        n_image_rows_matched=int(im_c[in_tx].sum()),
        n_tx_controls=tx_ctl,
        n_fixable_by_case=fixable,
        types_differ=(tx_u.dtype.kind in "OUS") != (im_u.dtype.kind in "OUS"),
        control_label=control_label,
    )
