"""Key columns as the model reads them, and metadata as the user wrote it.

:func:`edit_key_columns` normalises a table's key columns (gene symbols,
dose grid) on a copy, leaving the controls' key parts alone;
:func:`read_text_columns` reads metadata columns back as the text of the
file, so that ``semiclip transform`` writes them unchanged.
"""

import numpy as np

from .._core import format_examples
from ._tables import frame_of, is_anndata, table_format

__all__ = ["edit_key_columns", "read_text_columns"]


def edit_key_columns(table, columns, *, normalize_symbols=False, dose=None,
                     control=None, control_label=None):
    """The table with its key columns normalised: gene symbols of the first column, doses.

    Returns ``(edited, anchor)``: ``edited`` shares everything with ``table``
    but the edited key columns (``table`` itself is never changed, so the
    output keeps every value as read); ``anchor`` is the one used for a
    geometric grid (so the other side can reuse it). ``dose`` is ``(column,
    kwargs for round_to_grid)``. The control rows (``control``: a column or
    ``(column, values)``; else ``control_label`` in the first key column)
    keep their values: their key is replaced by the label, so a placeholder
    dose such as LINCS ``-666`` is never checked.
    """
    from ..datasets import normalize_gene_symbols, round_to_grid

    if not normalize_symbols and dose is None:
        return table, None
    frame = frame_of(table).copy(deep=False)  # new columns replace, never write into, old
    is_control = _control_rows(frame, columns, control, control_label)
    if normalize_symbols:
        first = columns[0]
        values = frame[first].to_numpy()
        if values.dtype.kind in "OUS" or str(frame[first].dtype) == "category":
            values = values.astype(object)
            present = ~is_control & ~_missing(values)
            out = values.copy()
            if present.any():
                out[present] = normalize_gene_symbols(values[present])
            frame[first] = out
    anchor = None
    if dose is not None:
        column, kwargs = dose
        values = frame[column].to_numpy()
        treated = ~is_control
        try:
            numbers = values[treated].astype(np.float64)
        except (TypeError, ValueError):
            shown = format_examples(np.unique(values[treated].astype(str)))
            raise ValueError(
                f"--dose-col {column!r} must hold numbers (for the samples that are not "
                f"controls); it holds e.g. {shown}."
            ) from None
        kwargs = dict(kwargs)
        if kwargs.get("factor") is not None and kwargs.get("anchor") is None:
            positive = numbers[np.isfinite(numbers) & (numbers > 0)]
            kwargs["anchor"] = float(positive.max()) if positive.size else 1.0
        anchor = kwargs.get("anchor")
        try:
            snapped = round_to_grid(numbers, **kwargs)
        except ValueError as exc:
            raise ValueError(f"--dose-col {column!r}: {exc}") from None
        try:
            out = values.astype(np.float64)  # a copy: the read column stays as it was
        except (TypeError, ValueError):  # controls holding text (e.g. "-") keep it
            out = values.astype(object)
        out[treated] = snapped
        frame[column] = out
    if is_anndata(table):
        import anndata

        table = anndata.AnnData(table.X, obs=frame, var=table.var, layers=dict(table.layers),
                                obsm=dict(table.obsm), uns=table.uns)
        return table, anchor
    return frame, anchor


def _missing(values):
    from .._core import missing_mask

    return missing_mask(values)


def _control_rows(frame, columns, control, control_label):
    """Rows that are controls by the command-line spec (before any key is built)."""
    n = len(frame)
    col, values = control if isinstance(control, tuple) else (control, None)
    if col is not None and col in frame.columns:
        column = frame[col].to_numpy()
        if values is None:
            return column.astype(bool) if column.dtype.kind == "b" else np.zeros(n, bool)
        return np.isin(column.astype(object), np.asarray(values, dtype=object))
    if control_label is None or not columns:
        return np.zeros(n, dtype=bool)
    first = frame[columns[0]].to_numpy()
    mask = np.zeros(n, dtype=bool)
    present = ~_missing(first)
    try:
        mask[present] = np.asarray(first[present] == control_label, dtype=bool)
    except (TypeError, ValueError):  # pragma: no cover - exotic comparisons
        return mask
    if isinstance(control_label, str) and not mask.any() and first.dtype.kind != "O":
        from ..datasets import make_keys

        mask[present] = make_keys(first[present]) == control_label
    return mask


def read_text_columns(path, meta, what):
    """``meta``'s columns read again from the text file ``path``, as the strings written there.

    Nothing is parsed (no number formatting, no missing-value markers), so
    writing them back to CSV/TSV gives the values of the file unchanged.
    Falls back on ``meta`` when the file cannot be re-read the same way.
    """
    import pandas as pd

    columns = list(meta.columns)
    if not columns:
        return meta
    fmt = table_format(path, what)
    try:
        text = pd.read_csv(path, sep="," if fmt == "csv" else "\t", usecols=columns, dtype=str,
                           keep_default_na=False, na_filter=False)
    except (ValueError, TypeError, OSError):  # pragma: no cover - re-read as first read
        return meta
    if len(text) != len(meta):  # pragma: no cover - the file changed meanwhile
        return meta
    text = text[columns]
    text.index = meta.index
    return text
