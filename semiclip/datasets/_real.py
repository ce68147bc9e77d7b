"""Loaders for the real profiles shipped with the package (no network access).

The files under ``semiclip/datasets/data/`` are the public tables exactly as
published (gzip CSV, pycytominer convention: ``Metadata_`` columns, then
numeric features), with their licences; see ``data/README.md`` there. They
are parsed with the standard library and numpy, so pandas is only needed for
``as_frame=True``.
"""

from __future__ import annotations

import csv
import gzip
import io
from importlib.resources import files
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import Bunch

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_ta_orf_l1000", "load_lincs_cellpainting"]

_TA_ORF = ("ta_orf_l1000", "TA_OE005_U2OS_72H_L1000_level4.csv.gz")
_LINCS = ("lincs_cellpainting", "SQ00015054_normalized_feature_select.csv.gz")

_TA_ORF_DESCR = """\
TA-ORF L1000 transcriptomics (U2OS, 72 h)
-----------------------------------------
L1000 level-4 profiles (978 landmark genes, z-scored per plate) of the TA-ORF
over-expression screen (Rohban et al., eLife 2017): 1,092 wells on 3 plates.
Treatments (``pert_type == "trt_oe"``) over-express one of 222 constructs
(``genes``): 189 genes, some also as alleles (``"BRAF"`` and
``"BRAF_V600E"``; ``normalize_gene_symbols(genes, strip_variant=True)`` maps
an allele to its gene). Controls are empty-vector
(``"ctl_vector"``: Luciferase, LacZ, eGFP) and untreated (``"ctl_untrt"``:
EMPTY) wells, whose key ``y`` is ``control_label`` ("control").

Known-relationship recall on these profiles after control-based TVN is close
to chance (about 0.07-0.13 on the five EFAAR databases, chance about 0.10):
a realistic smoke test, not a place to expect large gains. Replicate
retrieval (same gene, other plate) does carry signal.

Licence: BSD-3-Clause (``data/ta_orf_l1000/LICENSE``).
"""

_LINCS_DESCR = """\
LINCS Cell Painting plate SQ00015054 (A549)
-------------------------------------------
Cell Painting morphology profiles (CellProfiler features, normalized and
feature-selected with pycytominer) of one LINCS compound plate: 384 wells x
454 features. 56 compounds at 6 doses each (``dose``), 2 more compounds in
12 wells at one dose (20 and 19.999), 24 DMSO wells
(``y == "DMSO"``, the controls), one plate (``batch``). ``moa`` and
``target_genes`` hold the annotated mechanism(s) of action and target
gene(s), ``"|"``-separated, ``""`` where not annotated.

``dose`` is ``Metadata_mmoles_per_liter`` as published. Its values follow the
usual LINCS 3-fold series 0.04-10 (µM in other LINCS tables): check the unit
before matching doses with another experiment, and snap them with
:func:`semiclip.datasets.round_to_grid`.

Licence: BSD-3-Clause, Broad Institute (``data/lincs_cellpainting/LICENSE.md``).
"""


def _require_pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is in the test environment
        raise ImportError(
            "as_frame=True needs pandas; install it with `pip install semiclip[pandas]` "
            "or load the arrays with as_frame=False."
        ) from exc
    return pd


def _read_table(folder, filename):
    """Parse a shipped gzip CSV into (metadata dict of str arrays, X float32, feature names).

    numpy's C parser reads the features straight to float32 and the
    metadata columns as strings (empty cells as ``""``).
    """
    resource = files("semiclip.datasets").joinpath("data", folder, filename)
    with resource.open("rb") as raw:
        text = gzip.decompress(raw.read()).decode("utf-8")
    header = np.array(next(csv.reader(io.StringIO(text[: text.index("\n")]))), dtype=object)
    is_meta = np.char.startswith(header.astype(str), "Metadata_")
    options = dict(delimiter=",", skiprows=1, quotechar='"', comments=None, ndmin=2)
    X = np.loadtxt(io.StringIO(text), usecols=np.flatnonzero(~is_meta), dtype=np.float32, **options)
    meta = np.loadtxt(io.StringIO(text), usecols=np.flatnonzero(is_meta), dtype=object, **options)
    metadata = {name: meta[:, j].copy() for j, name in enumerate(header[is_meta])}
    return metadata, np.ascontiguousarray(X), header[~is_meta]


def _metadata_frame(metadata, pd):
    """Metadata columns as pandas would read them: numbers numeric, empty cells NaN."""
    columns = {}
    for name, values in metadata.items():
        column = pd.Series(values, dtype=object).mask(values == "")
        try:
            column = pd.to_numeric(column)
        except (ValueError, TypeError):
            pass
        columns[name] = column
    return pd.DataFrame(columns)


def _finish(bunch, metadata, as_frame, return_X_y):
    """Add ``data``/``frame``/``metadata`` per ``as_frame``; honour ``return_X_y``."""
    if as_frame:
        pd = _require_pandas()
        meta = _metadata_frame(metadata, pd)
        data = pd.DataFrame(bunch.X, columns=list(bunch.feature_names), copy=False)
        bunch.update(data=data, metadata=meta, frame=pd.concat([meta, data], axis=1))
    else:
        bunch.update(data=bunch.X, metadata=None, frame=None)
    if return_X_y:
        return bunch.data, bunch.y
    return bunch


def load_ta_orf_l1000(*, as_frame: bool = False, return_X_y: bool = False
) -> Bunch | tuple[np.ndarray | pd.DataFrame, np.ndarray]:
    """Load the TA-ORF L1000 transcriptomics profiles (3 plates, with controls).

    1,092 wells x 978 landmark genes; see ``DESCR`` for the study. Read from
    the copy shipped with the package, without network access.

    Parameters
    ----------
    as_frame : bool, default=False
        Also return pandas DataFrames: ``data`` (features), ``metadata``
        (every ``Metadata_`` column, as published) and ``frame`` (both).
        Needs pandas (``pip install semiclip[pandas]``).
    return_X_y : bool, default=False
        Return ``(data, y)`` instead of the Bunch.

    Returns
    -------
    data : Bunch
        ``X`` : ndarray of shape (1092, 978), float32, the profiles.
        ``data`` : ``X``, or a DataFrame when ``as_frame=True``.
        ``y`` : ndarray of str, pairing key: the over-expressed gene or
        allele (``"BRAF_V600E"``), ``control_label`` for control wells.
        ``control_label`` : ``"control"``.
        ``is_control`` : ndarray of bool (empty-vector and untreated wells).
        ``batch`` : ndarray of str, plate of every well (3 plates).
        ``genes`` : ndarray of str, ``Metadata_gene`` as published (control
        wells: ``"EMPTY"``, ``"LacZ"``, ``"Luciferase"``, ``"eGFP"``).
        ``pert_type`` : ``"trt_oe"``, ``"ctl_vector"`` or ``"ctl_untrt"``.
        ``pert_id`` : ORF construct identifier. ``well`` : well name.
        ``feature_names`` : ndarray of the 978 gene symbols.
        ``metadata``, ``frame`` : DataFrames, or None when ``as_frame=False``.
        ``DESCR`` : description of the data set.
    (data, y) : tuple if ``return_X_y=True``
        The profiles ``X`` and the pairing keys ``y``, instead of the Bunch.

    Examples
    --------
    >>> from semiclip.datasets import load_ta_orf_l1000
    >>> tx = load_ta_orf_l1000()
    >>> tx.X.shape, tx.X.dtype.name, len(set(tx.batch))
    ((1092, 978), 'float32', 3)
    >>> int(tx.is_control.sum()), tx.control_label
    (158, 'control')
    """
    metadata, X, feature_names = _read_table(*_TA_ORF)
    pert_type = metadata["Metadata_pert_type"]
    genes = metadata["Metadata_gene"]
    is_control = pert_type != "trt_oe"
    control_label = "control"
    y = np.where(is_control, control_label, genes).astype(object)
    bunch = Bunch(
        X=X,
        y=y,
        control_label=control_label,
        is_control=is_control,
        batch=metadata["Metadata_Plate"],
        genes=genes,
        pert_type=pert_type,
        pert_id=metadata["Metadata_pert_id"],
        well=metadata["Metadata_Well"],
        feature_names=feature_names,
        DESCR=_TA_ORF_DESCR,
    )
    return _finish(bunch, metadata, as_frame, return_X_y)


def load_lincs_cellpainting(*, as_frame: bool = False, return_X_y: bool = False
) -> Bunch | tuple[np.ndarray | pd.DataFrame, np.ndarray]:
    """Load one LINCS Cell Painting compound plate (A549, with DMSO controls).

    384 wells x 454 CellProfiler features; see ``DESCR``. Read from the copy
    shipped with the package, without network access.

    Parameters
    ----------
    as_frame : bool, default=False
        Also return pandas DataFrames: ``data`` (features), ``metadata``
        (every ``Metadata_`` column, as published) and ``frame`` (both).
        Needs pandas (``pip install semiclip[pandas]``).
    return_X_y : bool, default=False
        Return ``(data, y)`` instead of the Bunch.

    Returns
    -------
    data : Bunch
        ``X`` : ndarray of shape (384, 454), float32, the profiles.
        ``data`` : ``X``, or a DataFrame when ``as_frame=True``.
        ``y`` : ndarray of str, pairing key: ``broad_sample``, ``"DMSO"``
        for controls. To key by compound and dose use
        ``make_keys(y, round_to_grid(dose, factor=3, anchor=10))``.
        ``control_label`` : ``"DMSO"``.
        ``is_control`` : ndarray of bool.
        ``batch`` : ndarray of str, plate (one plate here).
        ``broad_sample`` : Broad sample identifier. ``pert_id`` : compound
        identifier (``""`` for DMSO).
        ``dose`` : ndarray of float64, ``Metadata_mmoles_per_liter`` as
        published (0 for DMSO); see the unit note in ``DESCR``.
        ``moa`` : mechanism(s) of action; ``target_genes`` : annotated target
        gene symbol(s) (``Metadata_target``), ``"|"``-separated, ``""`` when
        not annotated. (Named ``target_genes`` so it is not mistaken for a
        scikit-learn ``target``.)
        ``well`` : well name. ``feature_names`` : ndarray of feature names.
        ``metadata``, ``frame`` : DataFrames, or None when ``as_frame=False``.
        ``DESCR`` : description of the data set.
    (data, y) : tuple if ``return_X_y=True``
        The profiles ``X`` and the pairing keys ``y``, instead of the Bunch.

    Examples
    --------
    >>> from semiclip.datasets import load_lincs_cellpainting
    >>> cp = load_lincs_cellpainting()
    >>> cp.X.shape, int(cp.is_control.sum()), cp.control_label
    ((384, 454), 24, 'DMSO')
    >>> len(set(cp.y[~cp.is_control])), float(cp.dose.max())
    (58, 20.0)
    """
    metadata, X, feature_names = _read_table(*_LINCS)
    broad_sample = metadata["Metadata_broad_sample"]
    control_label = "DMSO"
    bunch = Bunch(
        X=X,
        y=broad_sample.copy(),
        control_label=control_label,
        is_control=broad_sample == control_label,
        batch=metadata["Metadata_Plate"],
        broad_sample=broad_sample,
        pert_id=metadata["Metadata_pert_id"],
        dose=metadata["Metadata_mmoles_per_liter"].astype(np.float64),
        moa=metadata["Metadata_moa"],
        target_genes=metadata["Metadata_target"],
        well=metadata["Metadata_Well"],
        feature_names=feature_names,
        DESCR=_LINCS_DESCR,
    )
    return _finish(bunch, metadata, as_frame, return_X_y)
