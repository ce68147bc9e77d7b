"""Keys, batch and controls from named table columns: the core both table adapters share."""

import numbers

import numpy as np

from .._keys import make_keys, missing_rows
from .._validation import control_mask, format_examples

__all__ = ["columns_message", "labels_from_columns"]


def columns_message(columns, is_feature=None):
    """``"it has columns a, b, ..."``; metadata-like columns first when features abound."""
    columns = list(columns)
    if is_feature is None or len(columns) <= 30:
        return f"it has columns {format_examples(columns, k=30)}"
    meta = [c for c, f in zip(columns, is_feature) if not f]
    return (
        f"its metadata columns are {format_examples(meta, k=30) or 'none'} "
        f"(and {len(columns) - len(meta)} numeric feature columns)"
    )


def labels_from_columns(get, columns, where, *, key, batch, control, control_label, is_feature=None
):
    """Keys, batch and control mask from named columns (shared by both adapters).

    ``get(name)`` returns a column as a 1-D numpy array; ``columns`` lists
    the names that exist. Returns ``(y, batch, is_control, control_label,
    used_columns)``.
    """
    key_cols = [key] if isinstance(key, str) else list(key)
    if not key_cols:
        raise ValueError("key must name at least one column.")
    if isinstance(control, tuple):
        if len(control) != 2:
            raise ValueError(
                f"control must be a column name or a (column, values) pair; got {control!r}."
            )
        control_col, control_values = control
    else:
        control_col, control_values = control, None
    wanted = [("key", c) for c in key_cols]
    if batch is not None:
        wanted.append(("batch", batch))
    if control_col is not None:
        wanted.append(("control", control_col))
    available = set(columns)
    for arg, name in wanted:
        if name not in available:
            raise ValueError(
                f"{arg} column {name!r} not found in {where}; "
                f"{columns_message(columns, is_feature)}."
            )
    arrays = {name: np.asarray(get(name)) for _, name in wanted}
    for arg, name in wanted:
        missing = missing_rows(arrays[name])
        if missing.any():
            rows = np.flatnonzero(missing)
            raise ValueError(
                f"{arg} column {name!r} has {rows.size} missing value(s) (None/NaN) at rows "
                f"{format_examples(rows)}; drop or fill those rows first."
            )
    if len(key_cols) == 1:
        y = arrays[key_cols[0]]
        if y.dtype.kind in "US":
            y = y.astype(object)
    else:
        y = make_keys(*(arrays[c] for c in key_cols))
    key_name = key_cols[0] if len(key_cols) == 1 else key_cols

    if control_col is None:
        if control_label is None:
            is_control = np.zeros(y.shape[0], dtype=bool)
        else:
            is_control = control_mask(y, control_label)
            if not is_control.any():
                raise ValueError(
                    f"control_label={control_label!r} matches none of the keys of {key_name!r}; "
                    f"keys look like {format_examples(np.unique(y.astype(str)))}. Pass the key of "
                    "the control samples, or control=(column, values) to mark them from "
                    "another column."
                )
    else:
        column = arrays[control_col]
        if control_values is None:
            if column.dtype.kind != "b":
                raise ValueError(
                    f"control column {control_col!r} must be boolean (True for controls); it "
                    f"has dtype {column.dtype}. Pass control=({control_col!r}, value) to mark "
                    "the rows holding value as controls."
                )
            is_control = column.astype(bool)
        else:
            values = np.atleast_1d(np.asarray(control_values, dtype=object))
            is_control = np.isin(column.astype(object), values)
            if not is_control.any():
                raise ValueError(
                    f"control=({control_col!r}, {control_values!r}) matches no row; "
                    f"{control_col!r} holds {format_examples(np.unique(column.astype(str)))}."
                )
        if control_label is None:
            control_label = "control"
        clash = ~is_control & control_mask(y, control_label)
        if clash.any():
            raise ValueError(
                f"control_label={control_label!r} is already the key of {int(clash.sum())} "
                f"non-control row(s) (rows {format_examples(np.flatnonzero(clash))}); pass "
                "another control_label."
            )
        if y.dtype.kind != "O" and not isinstance(control_label, numbers.Number):
            y = make_keys(y)
        y = y.astype(object) if y.dtype.kind == "O" else y.copy()
        y[is_control] = control_label
    used = key_cols + [c for c in (batch, control_col) if c is not None]
    batch_values = arrays[batch] if batch is not None else None
    return y, batch_values, is_control, control_label, used
