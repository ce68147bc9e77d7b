"""Adapters from the tables users already have to ``X, y, batch``.

- :func:`from_dataframe`: a pandas DataFrame in the pycytominer convention
  (``Metadata_`` columns, every other column a numeric feature);
- :func:`from_anndata`: an AnnData object or ``.h5ad`` file (``obs`` columns
  for key, batch and controls; ``X``, a layer or an ``obsm`` entry as
  features). anndata is an optional extra (``pip install semiclip[anndata]``)
  imported only here.

Both return the same Bunch as :func:`semiclip.datasets.make_weakly_paired`:
``X`` (float32), ``y`` (pairing keys), ``batch``, ``is_control``,
``control_label``, ``feature_names``, plus ``metadata``.
"""

import numbers
import os

import numpy as np
from sklearn.utils import Bunch

from .._validation import control_mask, format_examples
from .._keys import make_keys, missing_rows

__all__ = ["from_dataframe", "from_anndata"]


def _columns_message(columns, is_feature=None):
    """``"it has columns a, b, ..."``; metadata-like columns first when features abound."""
    columns = list(columns)
    if is_feature is None or len(columns) <= 30:
        return f"it has columns {format_examples(columns, k=30)}"
    meta = [c for c, f in zip(columns, is_feature) if not f]
    return (
        f"its metadata columns are {format_examples(meta, k=30) or 'none'} "
        f"(and {len(columns) - len(meta)} numeric feature columns)"
    )


def _labels(get, columns, where, *, key, batch, control, control_label, is_feature=None):
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
                f"{_columns_message(columns, is_feature)}."
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


_COMMON_PARAMS = """\
    key : str or list of str
        Column(s) holding the pairing key. Several columns (e.g.
        perturbation and concentration) are joined into one string key
        with :func:`make_keys`.
    batch : str, optional
        Column holding the batch (plate) of every sample.
    control : str or (str, value or list), optional
        How to find control samples when their key alone does not say it:
        a boolean column (True for controls), or ``(column, values)``
        marking the rows whose ``column`` is one of ``values`` (e.g.
        ``("Metadata_pert_type", ["ctl_vector", "ctl_untrt"])``). Their key
        is replaced by ``control_label``, so that ``y == control_label``
        marks exactly them, which is how semiclip's estimators find controls.
    control_label : scalar, optional
        Without ``control``: the key of the control samples (e.g.
        ``"DMSO"``); it must occur. With ``control``: the key given to the
        controls (default ``"control"``)."""

_RETURNS = """\
    data : Bunch
        ``X`` : ndarray of shape (n_samples, n_features), float32 (NaN kept:
        impute or drop them before fitting).
        ``y`` : ndarray of shape (n_samples,), the pairing keys.
        ``batch`` : ndarray of shape (n_samples,) or None.
        ``is_control`` : ndarray of bool.
        ``control_label`` : the key of the controls (None when there are none).
        ``feature_names`` : ndarray of str.
        ``metadata`` : DataFrame of the non-feature columns."""


def from_dataframe(frame, *, key, batch=None, control=None, control_label=None, features=None):
    """Split a pycytominer-style table into ``X``, keys, batch and controls.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per sample (well); metadata columns start with
        ``"Metadata_"``, the others are numeric features.
{common}
    features : list of str, optional
        Feature columns. By default every column that does not start with
        ``"Metadata_"`` and is not the key, batch or control column; they
        must all be numeric.

    Returns
    -------
{returns}

    Examples
    --------
    >>> import pandas as pd
    >>> from semiclip.datasets import from_dataframe
    >>> frame = pd.DataFrame({{
    ...     "Metadata_gene": ["TP53", "TP53", "EMPTY"],
    ...     "Metadata_Plate": ["P1", "P2", "P1"],
    ...     "Metadata_pert_type": ["trt", "trt", "ctl"],
    ...     "g1": [0.5, 0.1, 0.0], "g2": [1.0, 2.0, 0.0]}})
    >>> d = from_dataframe(frame, key="Metadata_gene", batch="Metadata_Plate",
    ...                    control=("Metadata_pert_type", "ctl"))
    >>> d.X.shape, d.y.tolist(), d.is_control.tolist(), d.feature_names.tolist()
    ((3, 2), ['TP53', 'TP53', 'control'], [False, False, True], ['g1', 'g2'])
    """
    if not hasattr(frame, "columns") or not hasattr(frame, "iloc"):
        raise TypeError(
            f"frame must be a pandas DataFrame; got {type(frame).__name__}. Use "
            "semiclip.datasets.from_anndata for AnnData objects."
        )
    columns = list(frame.columns)
    duplicated = frame.columns[frame.columns.duplicated()].unique()
    if len(duplicated):
        raise ValueError(
            f"frame has duplicated column names {format_examples(list(duplicated))}; "
            "rename them so that every column is found by its name."
        )
    is_feature = [
        not str(c).startswith("Metadata_") and frame[c].dtype.kind in "biuf" for c in columns
    ]
    y, batch_values, is_control, control_label, used = _labels(
        lambda c: frame[c].to_numpy(),
        columns,
        "the DataFrame",
        key=key,
        batch=batch,
        control=control,
        control_label=control_label,
        is_feature=is_feature,
    )
    if features is None:
        features = [c for c in columns if not str(c).startswith("Metadata_") and c not in used]
        wrong = [c for c in features if frame[c].dtype.kind not in "biuf"]
        if wrong:
            raise ValueError(
                f"{len(wrong)} column(s) are neither numeric features nor Metadata_ columns: "
                f"{format_examples(wrong)}; add the Metadata_ prefix to metadata columns or "
                "pass features=[...]."
            )
    else:
        features = list(features)
        missing = [c for c in features if c not in set(columns)]
        if missing:
            raise ValueError(
                f"features {format_examples(missing)} not found in the DataFrame; "
                f"{_columns_message(columns, is_feature)}."
            )
        wrong = [c for c in features if frame[c].dtype.kind not in "biuf"]
        if wrong:
            raise ValueError(
                f"features must be numeric columns; {format_examples(wrong)} are not."
            )
    if not features:
        raise ValueError(
            "no feature columns left: every column is a Metadata_ or key/batch/control "
            "column. Pass features=[...]."
        )
    X = frame[features].to_numpy(dtype=np.float32, na_value=np.nan)
    return Bunch(
        X=np.ascontiguousarray(X),
        y=y,
        batch=batch_values,
        is_control=is_control,
        control_label=control_label if is_control.any() else None,
        feature_names=np.asarray([str(c) for c in features], dtype=object),
        metadata=frame.drop(columns=features),
    )


def _dense_float32(matrix, what):
    """Any AnnData matrix (dense, scipy sparse, backed h5py / sparse dataset) -> float32."""
    if hasattr(matrix, "to_memory"):  # anndata backed sparse dataset
        matrix = matrix.to_memory()
    elif type(matrix).__module__.startswith("h5py"):  # backed dense X
        matrix = matrix[()]
    if hasattr(matrix, "to_numpy") and hasattr(matrix, "columns"):  # DataFrame in obsm
        return np.ascontiguousarray(matrix.to_numpy(dtype=np.float32, na_value=np.nan))
    if hasattr(matrix, "toarray"):  # scipy sparse: densified, as the estimators need
        return np.ascontiguousarray(matrix.astype(np.float32).toarray())
    matrix = np.asarray(matrix)
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric; got dtype {matrix.dtype}.")
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_obs, n_features); got shape {matrix.shape}.")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def from_anndata(
    adata,
    *,
    key,
    batch=None,
    control=None,
    control_label=None,
    layer=None,
    obsm=None,
    var_column=None,
):
    """Take ``X``, keys, batch and controls from an AnnData object.

    Parameters
    ----------
    adata : anndata.AnnData or path-like
        The data, or the path of an ``.h5ad`` file (read fully into memory
        with ``anndata.read_h5ad``). A backed object
        (``anndata.read_h5ad(path, backed="r")``) works too: only the
        ``obs`` columns named here are read, but the feature matrix is
        still read whole into memory; subset first
        (``adata[mask].to_memory()``) when it does not fit.
{common}
    layer : str, optional
        Use ``adata.layers[layer]`` instead of ``adata.X``.
    obsm : str, optional
        Use ``adata.obsm[obsm]`` (e.g. an embedding such as ``"X_pca"``)
        instead of ``adata.X``. Feature names are the DataFrame's columns,
        or ``"{{obsm}}_0"``, ``"{{obsm}}_1"``...
    var_column : str, optional
        ``adata.var`` column to use as feature names (e.g. gene symbols when
        ``var_names`` are Ensembl identifiers); default ``var_names``.

    Returns
    -------
{returns}
        ``metadata`` is ``adata.obs``.

    Notes
    -----
    Sparse matrices (scipy CSR/CSC or a backed sparse dataset) are
    converted to a dense float32 array, since the estimators work on dense
    data: that takes ``4 * n_obs * n_features`` bytes. The obs columns may
    be categorical; their values are used as they are.

    Examples
    --------
    >>> import anndata, numpy as np, pandas as pd
    >>> from semiclip.datasets import from_anndata
    >>> adata = anndata.AnnData(
    ...     np.ones((3, 2), dtype=np.float32),
    ...     obs=pd.DataFrame({{"gene": ["TP53", "KRAS", "ctrl"], "plate": ["a", "a", "b"]}},
    ...                      index=["w1", "w2", "w3"]))
    >>> d = from_anndata(adata, key="gene", batch="plate", control_label="ctrl")
    >>> d.X.shape, d.is_control.tolist(), d.batch.tolist()
    ((3, 2), [False, False, True], ['a', 'a', 'b'])
    """
    try:
        import anndata
    except ImportError as exc:  # pragma: no cover - anndata is in the test environment
        raise ImportError(
            "from_anndata needs anndata; install it with `pip install semiclip[anndata]`."
        ) from exc
    if isinstance(adata, (str, os.PathLike)):
        adata = anndata.read_h5ad(adata)
    if not (hasattr(adata, "obs") and hasattr(adata, "var") and hasattr(adata, "obsm")):
        raise TypeError(
            f"adata must be an AnnData object or the path of an .h5ad file; got "
            f"{type(adata).__name__}. Use from_dataframe for a pandas DataFrame."
        )
    if layer is not None and obsm is not None:
        raise ValueError("pass layer= or obsm=, not both: they are two sources of features.")
    obs = adata.obs
    y, batch_values, is_control, control_label, _ = _labels(
        lambda c: obs[c].to_numpy(),
        list(obs.columns),
        "adata.obs",
        key=key,
        batch=batch,
        control=control,
        control_label=control_label,
    )
    if obsm is not None:
        if obsm not in adata.obsm:
            raise ValueError(
                f"obsm={obsm!r} not found; adata.obsm has {format_examples(list(adata.obsm)) or 'no entries'}."
            )
        matrix = adata.obsm[obsm]
        names = (
            [str(c) for c in matrix.columns]
            if hasattr(matrix, "columns")
            else [f"{obsm}_{j}" for j in range(matrix.shape[1])]
        )
        X = _dense_float32(matrix, f"adata.obsm[{obsm!r}]")
    else:
        if layer is not None:
            if layer not in adata.layers:
                raise ValueError(
                    f"layer={layer!r} not found; adata.layers has "
                    f"{format_examples(list(adata.layers)) or 'no layers'}."
                )
            matrix, what = adata.layers[layer], f"adata.layers[{layer!r}]"
        else:
            matrix, what = adata.X, "adata.X"
            if matrix is None:
                raise ValueError("adata.X is empty; pass layer= or obsm= to choose the features.")
        if var_column is None:
            names = [str(v) for v in adata.var_names]
        elif var_column not in adata.var.columns:
            raise ValueError(
                f"var_column={var_column!r} not found in adata.var; it has columns "
                f"{format_examples(list(adata.var.columns)) or 'none'}."
            )
        else:
            names = [str(v) for v in adata.var[var_column].to_numpy()]
        X = _dense_float32(matrix, what)
    return Bunch(
        X=X,
        y=y,
        batch=batch_values,
        is_control=is_control,
        control_label=control_label if is_control.any() else None,
        feature_names=np.asarray(names, dtype=object),
        metadata=obs,
    )


if from_dataframe.__doc__:  # None under python -OO
    from_dataframe.__doc__ = from_dataframe.__doc__.format(common=_COMMON_PARAMS, returns=_RETURNS)
    from_anndata.__doc__ = from_anndata.__doc__.format(common=_COMMON_PARAMS, returns=_RETURNS)
