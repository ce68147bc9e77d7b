"""Input checks shared by every estimator and metric.

Each check raises an error that names the argument, the offending values (a
count and a few examples) and how to fix the problem.
"""

import numbers
import sys

import numpy as np

__all__ = [
    "FLOAT32_MAX",
    "FLOAT32_POLICY",
    "check_finite_rows",
    "check_labels",
    "check_one_type",
    "control_mask",
    "float32_overflow_rows",
    "float32_range_error",
    "float32_underflow_rows",
    "format_examples",
    "missing_mask",
    "non_finite_error",
    "non_finite_rows",
    "to_float32",
    "type_name",
    "value_types",
]

FLOAT32_POLICY = ("semiclip computes in float32: every finite value must lie within "
                  "float32's range, and a row that is not all zero must stay so in float32;")
"""The one float32-range policy of every entry point (estimators, tables, banks, metrics)."""

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest float32 (3.4e38): finite float64 values beyond it become inf in float32."""


def float32_overflow_rows(X):
    """Rows of a finite 2-D float array (dense or CSR) with a value beyond float32's range.

    Empty for float32 input, and after two cheap passes (``max``, ``min``)
    when no value is out of range.
    """
    data = X.data if hasattr(X, "indptr") else X
    if data.dtype.kind != "f" or data.dtype.itemsize <= 4 or data.size == 0:
        return np.zeros(0, dtype=np.intp)
    if data.max() <= FLOAT32_MAX and data.min() >= -FLOAT32_MAX:
        return np.zeros(0, dtype=np.intp)
    big = np.abs(data) > FLOAT32_MAX
    if hasattr(X, "indptr"):  # CSR: the row of every stored value
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        return np.unique(rows[big])
    return np.flatnonzero(big.reshape(X.shape[0], -1).any(axis=1))


def float32_range_error(name, rows, count=None):
    """The ValueError naming the rows of ``name`` with values beyond float32's range.

    ``count`` is the total number of such rows when ``rows`` holds only the
    first few.
    """
    count, shown = count_and_examples(rows, count)
    return ValueError(
        f"{name} has values beyond float32's range (|x| > {FLOAT32_MAX:.2g}) in {count} "
        f"row(s) (row indices: {shown}). {FLOAT32_POLICY} these values would become inf; "
        f"scale {name} first (e.g. divide it by a constant, take a log, or use "
        "sklearn.preprocessing.StandardScaler)."
    )


def float32_underflow_rows(X):
    """Rows of a 2-D float array that are not all zero but become all zero in float32."""
    if X.dtype.kind != "f" or X.dtype.itemsize <= 4 or X.size == 0:
        return np.zeros(0, dtype=np.intp)
    tiny = float(np.finfo(np.float32).smallest_subnormal)  # in float64: tiny / 2 is not 0
    with np.errstate(invalid="ignore"):
        small = np.abs(X) < tiny / 2  # these round to zero (NaN compares False)
    if not small.any():
        return np.zeros(0, dtype=np.intp)
    flat = X.reshape(X.shape[0], -1)
    lost = small.reshape(X.shape[0], -1).all(axis=1) & (flat != 0).any(axis=1)
    return np.flatnonzero(lost)


def to_float32(X, name):
    """A 2-D numeric array as float32 under :data:`FLOAT32_POLICY`.

    Finite values beyond float32's range (they would become inf) and rows
    that would become all zero (values below float32's smallest subnormal)
    raise a ValueError naming the rows and the fix; NaN and inf pass (the
    callers name them).
    """
    X = np.asarray(X)
    if X.dtype.kind == "f" and X.dtype.itemsize > 4:
        with np.errstate(invalid="ignore"):
            finite = np.where(np.isfinite(X), X, 0.0)
        rows = float32_overflow_rows(finite)
        if rows.size:
            raise float32_range_error(name, rows[:5], count=rows.size)
        rows = float32_underflow_rows(X)
        if rows.size:
            count, shown = count_and_examples(rows[:5], rows.size)
            raise ValueError(
                f"{name} has {count} row(s) (row indices: {shown}) whose values are all "
                f"below float32's smallest value ({np.finfo(np.float32).smallest_subnormal:.2g})"
                f" though not zero. {FLOAT32_POLICY} these rows would become all zero; scale "
                f"{name} first (e.g. multiply it by a constant, or standardise its rows)."
            )
    return np.ascontiguousarray(X, dtype=np.float32)


# pandas.api.types.infer_dtype answers that need no closer look: one type group
_ONE_GROUP = frozenset(
    {"string", "bytes", "integer", "floating", "mixed-integer-float", "decimal", "complex",
     "boolean", "empty"}
)
_NUMBER_NAMES = frozenset({"int", "float", "complex"})


def format_examples(values, k=5):
    """Return ``"a, b, c, ... (N in total)"`` for error messages.

    Repeated values are shown once with their count (``"-666.0 (x26)"``), in
    order of first appearance; the total still counts every value.
    """
    values = list(values)
    texts = [repr(v.item() if hasattr(v, "item") else v) for v in values]
    counts = {}
    for t in texts:  # dicts keep insertion order: first appearance
        counts[t] = counts.get(t, 0) + 1
    if len(counts) == len(texts):
        shown = ", ".join(texts[:k])
        if len(texts) > k:
            shown += f", ... ({len(texts)} in total)"
        return shown
    items = list(counts.items())
    shown = ", ".join(t if n == 1 else f"{t} (x{n})" for t, n in items[:k])
    if len(items) > k:
        shown += f", ... ({len(items)} distinct, {len(texts)} in total)"
    return shown


def non_finite_rows(X):
    """Indices of the rows of a 2-D float array holding NaN or inf (empty when none).

    A cheap whole-array sum is tried first: it is finite whenever every
    entry is (an overflow to inf falls back to the element-wise test). An
    object array is checked as float64 when it converts.
    """
    if X.dtype.kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError):
            return np.zeros(0, dtype=np.intp)
    if X.dtype.kind not in "fc":
        return np.zeros(0, dtype=np.intp)
    with np.errstate(over="ignore", invalid="ignore"):  # huge finite values may overflow the sum
        total = np.sum(X)
    if np.isfinite(total):
        return np.zeros(0, dtype=np.intp)
    bad = ~np.isfinite(X)
    return np.flatnonzero(bad.reshape(X.shape[0], -1).any(axis=1))


def non_finite_error(name, rows, fix, count=None):
    """The ValueError naming the rows of ``name`` that hold NaN or inf.

    The message always contains the words "NaN" and "inf" so scikit-learn's
    common checks recognise it. ``count`` is the total number of bad rows
    when ``rows`` holds only the first few.
    """
    count, shown = count_and_examples(rows, count)
    return ValueError(
        f"{name} contains NaN or inf in {count} row(s) (row indices: {shown}); {fix}."
    )


def count_and_examples(rows, count=None):
    """``(count, "a, b, ... (N in total)")`` of row indices; ``count`` when ``rows`` is a prefix."""
    count = len(rows) if count is None else count
    shown = format_examples(rows)
    if count > len(rows):
        shown += f", ... ({count} in total)"
    return count, shown


def check_finite_rows(X, name="X", fix="drop or impute them first"):
    """Raise a ValueError naming the rows of a 2-D array holding NaN or inf."""
    rows = non_finite_rows(X)
    if rows.size:
        raise non_finite_error(name, rows, fix)


def missing_mask(values):
    """Boolean mask of the missing entries of an array, vectorised.

    Missing means None, a float NaN (any float type), ``pandas.NA``,
    ``pandas.NaT`` or a NumPy ``NaT``. Object arrays go through
    :func:`pandas.isna` when pandas is loaded; when it is not, no pandas
    missing value can exist and NaN is the only value unequal to itself.
    """
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind in "fc":
        return np.isnan(values)
    if kind in "mM":
        return np.isnat(values)
    if kind != "O":
        return np.zeros(values.shape, dtype=bool)
    pd = sys.modules.get("pandas")
    if pd is not None and hasattr(pd, "isna"):
        return np.asarray(pd.isna(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray((values != values) | np.equal(values, None), dtype=bool)


def type_name(t):
    """Short name of a label's type: bool, bytes, str, int, float, complex, else its name."""
    if issubclass(t, (bool, np.bool_)):
        return "bool"
    if issubclass(t, str):
        return "str"
    if issubclass(t, bytes):
        return "bytes"
    if issubclass(t, numbers.Integral):
        return "int"
    if issubclass(t, numbers.Real):
        return "float"
    if issubclass(t, numbers.Complex):
        return "complex"
    return t.__name__


def _group(name):
    return "number" if name in _NUMBER_NAMES else name


def value_types(values, k=3):
    """``{type name: (count, first k distinct values)}`` of a 1-D object array, names sorted."""
    flat = np.asarray(values, dtype=object).ravel()
    types = list(map(type, flat))
    names = sorted({type_name(t) for t in set(types)})
    code = {t: names.index(type_name(t)) for t in set(types)}
    codes = np.fromiter(map(code.__getitem__, types), dtype=np.intp, count=len(types))
    out = {}
    for i, name in enumerate(names):
        picked = flat[codes == i]
        try:
            examples = list(dict.fromkeys(picked[: 100 * k].tolist()))[:k]
        except TypeError:  # unhashable values
            examples = picked[:k].tolist()
        out[name] = (int(picked.size), examples)
    return out


def check_one_type(values, name):
    """Raise a TypeError when an object array mixes value types that cannot be compared.

    Strings, bytes, booleans and numbers are four groups (ints and floats
    are one group: ``1 == 1.0``); one array must hold one group. Booleans
    and numbers are kept apart since ``True == 1`` would merge two keys.
    """
    flat = np.asarray(values, dtype=object).ravel()
    pd = sys.modules.get("pandas")
    if pd is not None and hasattr(pd, "api"):
        if pd.api.types.infer_dtype(flat, skipna=True) in _ONE_GROUP:
            return
    elif len({_group(type_name(t)) for t in set(map(type, flat))}) <= 1:
        return
    types = value_types(flat)
    if len({_group(n) for n in types}) <= 1:
        return
    shown = "; ".join(
        f"{n}: {count} value{'' if count == 1 else 's'}, e.g. {format_examples(examples)}"
        for n, (count, examples) in types.items()
    )
    target = name if name.isidentifier() else ""
    raise TypeError(
        f"{name} mixes value types ({shown}), which cannot be compared; convert it to "
        f"one type first (e.g. {target}.astype(str))."
    )


def check_labels(y, n_samples, name="y", allow_none=False, *, rows="X", item="label", hint=""):
    """Return ``y`` as a 1-D numpy array of length ``n_samples``.

    Missing labels (None, NaN, ``pandas.NA``, NaT), NaN or inf float labels
    and an array mixing value types (e.g. ``[1, "a"]``, which numpy would
    otherwise compare wrongly or turn into strings) are errors. ``rows``,
    ``item`` and ``hint`` word the messages: one ``item`` per row of ``rows``.
    """
    per_row = "sample" if rows == "X" else "row"
    if y is None:
        if allow_none:
            return None
        if name == "y":
            raise ValueError(
                "This estimator requires y to be passed, but the target y is None: pass "
                f"the pairing key of every sample (a 1-D array of length {n_samples})."
            )
        raise ValueError(
            f"{name} is required: pass one {item} per {per_row} of {rows} "
            f"(a 1-D array of length {n_samples})."
        )
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        per = "sample" if rows == "X" else f"row of {rows}"
        raise ValueError(
            f"{name} must be 1-D with one {item} per {per}; got an array of "
            f"shape {arr.shape}.{hint}"
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but {rows} has {n_samples} rows; "
            f"pass exactly one {item} per row of {rows}."
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{name} contains NaN or inf labels ({int(bad.sum())} missing or infinite, at "
                f"rows {format_examples(np.flatnonzero(bad))}); remove those rows."
            )
        return arr
    if arr.dtype.kind in "OmM":
        missing = missing_mask(arr)
        if missing.any():
            raise ValueError(
                f"{name} has {int(missing.sum())} missing labels (None/NaN) at rows "
                f"{format_examples(np.flatnonzero(missing))}; remove those rows."
            )
    if arr.dtype.kind == "O":
        check_one_type(arr, name)
    elif arr.dtype.kind in "US" and isinstance(y, (list, tuple)):
        # np.asarray([1, "a"]) is ['1', 'a']: look at what the list held
        check_one_type(np.asarray(y, dtype=object), name)
    return arr


def control_mask(y, control_label):
    """Boolean mask of controls, ``y == control_label`` (all False when None).

    An integer label that the integer dtype of ``y`` cannot hold (``-1``
    for ``uint8`` keys) matches no row; integer labels are compared exactly
    (never through float64).
    """
    if control_label is None:
        return np.zeros(len(y), dtype=bool)
    if (
        isinstance(y, np.ndarray)
        and y.dtype.kind in "iu"
        and isinstance(control_label, numbers.Integral)
        and not isinstance(control_label, bool)
    ):
        info, value = np.iinfo(y.dtype), int(control_label)
        if not info.min <= value <= info.max:
            return np.zeros(len(y), dtype=bool)
        mask = np.asarray(y == y.dtype.type(value), dtype=bool)
    else:
        try:
            mask = np.asarray(y == control_label, dtype=bool)
        except Exception:  # pragma: no cover - exotic label types
            mask = np.array([v == control_label for v in y], dtype=bool)
    if mask.shape != (len(y),):
        mask = np.array([v == control_label for v in y], dtype=bool)
    return mask
