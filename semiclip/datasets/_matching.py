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

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import control_mask, distinct_values, format_examples, missing_rows
from ._doses import near_numbers

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["normalize_gene_symbols", "match_report", "MatchReport"]


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


class MatchReport:
    """How the pairing keys of two sides match; see :func:`match_report`.

    Parameters
    ----------
    **fields : dict
        The attributes below, by name (:func:`match_report` builds it).

    Attributes
    ----------
    matched_keys : ndarray
        Sorted distinct keys present on both sides (controls excluded).
    n_matched : int
        Number of matched keys (``matched_keys.size``).
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
    n_fixable_by_dose : int
        Unmatched transcriptomics keys that equal an image key except for
        numbers that differ by less than 5 % (``cmpd|3.33`` vs
        ``cmpd|3.333333``): doses written with different rounding, which
        :func:`round_to_grid` on both sides makes match.
    dose_examples : list of (tx key, image key)
        A few such pairs.
    types_differ : bool
        One side has string keys, the other numbers (they never match).
    """

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    @property
    def n_matched(self) -> int:
        """Number of matched keys (``matched_keys.size``)."""
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
        if getattr(self, "n_fixable_by_dose", 0):
            pairs = ", ".join(f"{a!r} ~ {b!r}" for a, b in self.dose_examples[:2])
            lines.append(
                f"  hint: {_plural(self.n_fixable_by_dose, 'unmatched key')} differ from an "
                f"image key only in the rounding of a number ({pairs}): snap the doses of both "
                "sides to one grid (semiclip fit: --dose-col COL with --dose-factor F or "
                "--dose-grid D ...; Python: round_to_grid() before make_keys())."
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
    dose_pairs = near_numbers(tx_u[~in_im], im_u[~in_tx])
    return MatchReport(
        n_fixable_by_dose=len(dose_pairs),
        dose_examples=dose_pairs[:5],
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
