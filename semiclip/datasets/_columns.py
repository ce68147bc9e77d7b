"""Keys, batch and controls from named table columns: the core both table adapters share."""

import numbers
import warnings

import numpy as np

from .._core import (
    check_no_missing,
    check_one_type,
    control_mask,
    format_examples,
    make_keys,
    missing_rows,
    to_float32,
    type_name,
    value_types,
)

__all__ = ["columns_message", "labels_from_columns", "stack_vectors"]


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


def labels_from_columns(get, columns, where, *, key, batch, control, control_label, is_feature=None,
                        n_rows=None):
    """Keys, batch and control mask from named columns (shared by both adapters).

    ``get(name)`` returns a column as a 1-D numpy array; ``columns`` lists
    the names that exist; ``n_rows`` is their length (needed without key).
    Returns ``(y, batch, is_control, control_label, used_columns)``; ``y`` is
    None when ``key`` is None (a table for inference only).
    """
    key_cols = [] if key is None else [key] if isinstance(key, str) else list(key)
    if key is not None and not key_cols:
        raise ValueError("key must name at least one column.")
    if key is None and control is None and control_label is not None:
        raise ValueError(
            f"control_label={control_label!r} needs the key column (key=...) to find the "
            "controls; pass key=, or control= to mark them from another column."
        )
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
        if arg == "key":
            continue  # checked below, on the rows that are not controls
        check_no_missing(arrays[name], f"{arg} column {name!r}")
        if arrays[name].dtype.kind == "O":
            check_one_type(arrays[name], f"{arg} column {name!r}")
    key_name = key_cols[0] if len(key_cols) == 1 else key_cols
    if n_rows is None:
        n_rows = len(arrays[wanted[0][1]]) if wanted else 0

    # controls found before the keys are built: their key parts are never checked or used
    # (LINCS writes the dose of DMSO wells as -666, other screens leave it empty)
    early = None
    if control_col is not None:
        early = _controls_from_column(arrays[control_col], control_col, control_values)
        if control_label is None:
            control_label = "control"
    elif len(key_cols) > 1 and isinstance(control_label, str):
        early = _first_part_is(arrays[key_cols[0]], control_label)
    if not key_cols:
        y = None
    else:
        keep = slice(None) if early is None else ~early
        parts = [arrays[c][keep] for c in key_cols]
        for c, part in zip(key_cols, parts):
            if early is None:
                check_no_missing(part, f"key column {c!r}")
            else:  # rows counted in the whole table, controls left out
                missing = missing_rows(arrays[c]) & ~early
                if missing.any():
                    rows = np.flatnonzero(missing)
                    raise ValueError(
                        f"key column {c!r} has {rows.size} missing value(s) (None/NaN) at "
                        f"rows {format_examples(rows)} (not controls); drop or fill those "
                        "rows first."
                    )
            if part.dtype.kind == "O":
                check_one_type(part, f"key column {c!r}")
        y = parts[0] if len(parts) == 1 else make_keys(*parts)
        if y.dtype.kind in "US":
            y = y.astype(object)
        if early is not None:
            y = _spread(y, early, control_label)
            if control_col is None:  # string keys (make_keys) and a string label
                y[early] = control_label

    if control_col is None:
        if control_label is None:
            is_control = np.zeros(n_rows if y is None else y.shape[0], dtype=bool)
        else:
            is_control = control_mask(y, control_label)
            if early is not None:
                is_control |= early
            if not is_control.any():
                names = (f"the keys of {key_name!r}" if early is None else
                         f"the keys of {key_name!r} nor the values of {key_cols[0]!r}")
                raise ValueError(
                    f"control_label={control_label!r} matches none of {names}; "
                    f"keys look like {format_examples(np.unique(y.astype(str)))}. Pass the key of "
                    "the control samples, or control=(column, values) to mark them from "
                    "another column."
                )
    else:
        is_control = early
        if y is None:  # no keys to relabel
            used = [c for c in (batch, control_col) if c is not None]
            return None, arrays[batch] if batch is not None else None, is_control, \
                control_label, used
        clash = ~is_control & control_mask(y, control_label)
        if clash.any():
            raise ValueError(
                f"control_label={control_label!r} is already the key of {int(clash.sum())} "
                f"non-control row(s) (rows {format_examples(np.flatnonzero(clash))}); pass "
                "another control_label."
            )
        y = relabel_controls(y, is_control, control_label, key_name)
    used = key_cols + [c for c in (batch, control_col) if c is not None]
    batch_values = arrays[batch] if batch is not None else None
    return y, batch_values, is_control, control_label, used


def _controls_from_column(column, name, values):
    """The control mask of a boolean column, or of the rows holding one of ``values``."""
    if values is None:
        if column.dtype.kind != "b":
            raise ValueError(
                f"control column {name!r} must be boolean (True for controls); it "
                f"has dtype {column.dtype}. Pass control=({name!r}, value) to mark "
                "the rows holding value as controls."
            )
        return column.astype(bool)
    wanted = np.atleast_1d(np.asarray(values, dtype=object))
    is_control = np.isin(column.astype(object), wanted)
    if not is_control.any():
        raise ValueError(
            f"control=({name!r}, {values!r}) matches no row; "
            f"{name!r} holds {format_examples(np.unique(column.astype(str)))}."
        )
    return is_control


def _first_part_is(column, label):
    """Rows whose first key column, written as in a key (:func:`make_keys`), is ``label``."""
    out = np.zeros(column.shape[0], dtype=bool)
    present = ~missing_rows(column)
    if present.any():
        try:
            out[present] = make_keys(column[present]) == label
        except (TypeError, ValueError):  # mixed types or separators: reported with the keys
            return out
    return out


def _spread(y_rest, is_control, label):
    """Keys of every row from those of the non-control rows; the controls get ``label``.

    The controls' entries take a value of the other keys' type (the first one,
    or ``label`` when every row is a control) so that
    :func:`relabel_controls` sees one key type; it writes the label last.
    """
    n = is_control.shape[0]
    if y_rest.size == 0:
        return np.full(n, label, dtype=object)
    y = np.empty(n, dtype=y_rest.dtype)
    y[~is_control] = y_rest
    y[is_control] = y_rest[0]
    return y


def stack_vectors(cells, name):
    """The rows of a list column (one vector per cell, e.g. from Parquet) as a float32 matrix."""
    cells = np.asarray(cells, dtype=object)
    what = f"embedding column {name!r}"
    check_no_missing(cells, what)
    if cells.size and isinstance(cells[0], (str, bytes)):
        raise ValueError(
            f"{what} holds text such as {str(cells[0])[:40]!r}, not vectors: a list column "
            "written to CSV comes back as text. Store the table as Parquet (which keeps lists), "
            "or spread the vector into one numeric column per dimension."
        )
    try:
        matrix = np.stack(cells) if cells.size else None  # lists or arrays, one per row
    except (ValueError, TypeError):
        matrix = None
    if matrix is None or matrix.ndim != 2:
        lengths = np.array([np.size(c) if np.ndim(c) == 1 else -1 for c in cells])
        bad = np.flatnonzero(lengths != lengths[0]) if lengths.size else np.array([], int)
        if lengths.size == 0:
            raise ValueError(f"{what} is empty: no rows.")
        if lengths[0] < 0 or (lengths < 0).any():
            rows = np.flatnonzero(lengths < 0)
            raise ValueError(
                f"{what} must hold one 1-D vector per row; {rows.size} row(s) (rows "
                f"{format_examples(rows)}) do not, e.g. {str(cells[rows[0]])[:40]!r}."
            )
        raise ValueError(
            f"{what} holds vectors of different lengths: {bad.size} row(s) (rows "
            f"{format_examples(bad)}) differ from the {lengths[0]} entries of row 0 (lengths "
            f"{format_examples(np.unique(lengths))}); every row needs the same dimensions."
        )
    if matrix.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} must hold numbers; its vectors have dtype {matrix.dtype} (e.g. "
            f"{str(cells[0])[:40]!r})."
        )
    return to_float32(matrix, what)


_KIND_NAMES = {"b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex", "U": "str",
               "S": "bytes"}


def _groups(names):
    return {"number" if n in ("int", "float", "complex") else n for n in names}


def relabel_controls(y, is_control, label, key_name):
    """``y`` with the controls' key replaced by ``label``, kept exactly.

    Numeric keys take a dtype that holds both them and a numeric ``label``
    exactly (``-0.5`` turns integer keys into floats, ``-1`` turns ``uint8``
    keys into ``int16``; object when no numeric dtype does); a ``label`` of
    another type than the keys is written as text when it is a string (the
    keys then go through :func:`make_keys`) and is an error otherwise.
    """
    if isinstance(label, np.bool_):
        label = bool(label)
    if missing_rows(np.array([label], dtype=object)).any():
        raise ValueError(
            f"control_label={label!r} is a missing value; pass the key the control samples "
            "should carry, e.g. control_label='control'."
        )
    rest = y[~is_control]
    if y.dtype.kind == "O":
        names = list(value_types(rest))
    else:
        names = [_KIND_NAMES.get(y.dtype.kind, str(y.dtype))] if rest.size else []
    label_name = type_name(type(label))
    key_groups, label_group = _groups(names), _groups([label_name]).pop()
    as_text = isinstance(label, str) and (
        y.dtype.kind != "O" or key_groups <= {"str", "number", "bool"}
    )
    if key_groups and label_group not in key_groups and not as_text:
        wanted = "number" if key_groups == {"number"} else "str"
        wanted = "bytes" if key_groups == {"bytes"} else wanted
        example = {"number": "-1", "str": "'control'", "bytes": "b'control'"}[wanted]
        raise ValueError(
            f"control_label={label!r} is a {'number' if label_group == 'number' else label_name}"
            f" but the keys of {key_name!r} are {' and '.join(names)} (e.g. "
            f"{format_examples(np.unique(rest.astype(str)))}); pass a {wanted} control_label "
            f"(e.g. control_label={example}) so that the keys stay one type."
        )
    if as_text and (y.dtype.kind != "O" or key_groups - {"str"}):
        y = make_keys(y)  # numbers (or booleans) written as text, as the label is
    if y.dtype.kind == "O" or (isinstance(label, bool) and y.dtype.kind != "b"):
        y = y.astype(object)
    elif isinstance(label, numbers.Number) and not isinstance(label, bool):
        y = y.astype(_holding_dtype(y, label))
    else:
        y = y.copy()
    y[is_control] = label
    return y


def _holding_dtype(y, label):
    """The first of ``y.dtype``, its promotion with ``label``, object, that holds both exactly."""
    value = np.asarray(label)
    if value.dtype.kind not in "iuf":
        return np.dtype(object)
    for dtype in (y.dtype, np.result_type(y.dtype, value.dtype)):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                holds_label = bool(value.astype(dtype).astype(value.dtype) == value)
                holds_keys = dtype == y.dtype or np.array_equal(
                    y.astype(dtype).astype(y.dtype), y
                )
            except (OverflowError, TypeError, ValueError):
                continue
        if holds_label and holds_keys:
            return dtype
    return np.dtype(object)
