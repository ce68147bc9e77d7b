"""Adapters from the tables users already have to ``X, y, batch``.

- :func:`from_dataframe`: a pandas DataFrame in the pycytominer convention
  (``Metadata_`` columns, every other column a numeric feature);
- :func:`from_anndata`: an AnnData object or ``.h5ad`` file (``obs`` columns
  for key, batch and controls; ``X``, a layer or an ``obsm`` entry as
  features). anndata is an optional extra (``pip install semiclip[anndata]``)
  imported only here.

Both return the same Bunch as :func:`semiclip.datasets.make_weakly_paired`:
``X`` (float32), ``y`` (pairing keys), ``batch``, ``is_control``,
``control_label``, ``feature_names``, plus ``metadata`` and ``data`` (``X``,
or with ``as_frame=True`` a DataFrame whose columns are the feature names:
fit on it and the gene names follow through to ``feature_names_in_`` and the
attributions of :mod:`semiclip.interpret`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils import Bunch

from .._core import format_examples, to_float32
from ._columns import columns_message, labels_from_columns, stack_vectors

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from anndata import AnnData

__all__ = ["from_dataframe", "from_anndata"]


_COMMON_PARAMS = """\
    key : str or list of str, optional
        Column(s) holding the pairing key. Several columns (e.g.
        perturbation and concentration) are joined into one string key
        with :func:`make_keys`. None for a table that is only embedded
        (``transform`` needs no key): ``y`` is then None.
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
        ``"DMSO"``); it must occur. With several ``key`` columns, a string
        label also marks the rows whose first key column holds it; their key
        becomes the label, so their other key parts (a placeholder dose such
        as LINCS ``-666``) are never checked or used. With ``control``: the key given to the
        controls (default ``"control"``), kept exactly: a string turns
        numeric keys into text (:func:`make_keys`), a number keeps them
        numeric in a dtype that holds both (``-0.5`` makes integer keys
        floats); a number with string keys is an error."""

_AS_FRAME = """\
    as_frame : bool, default=False
        Also return the features as a pandas DataFrame, ``data``, with the
        feature names as columns and the table's index (scikit-learn's
        ``as_frame``). An estimator fitted on ``data`` records the names in
        ``feature_names_in_``, so attributions and plots name the genes."""

_RETURNS = """\
    data : Bunch
        ``X`` : ndarray of shape (n_samples, n_features), float32 (NaN kept:
        impute or drop them before fitting).
        ``data`` : ``X``, or a DataFrame of it when ``as_frame=True``.
        ``y`` : ndarray of shape (n_samples,), the pairing keys (None
        without ``key``).
        ``batch`` : ndarray of shape (n_samples,) or None.
        ``is_control`` : ndarray of bool.
        ``control_label`` : the key of the controls (None when there are none).
        ``feature_names`` : ndarray of str.
        ``metadata`` : DataFrame of the non-feature columns."""


def from_dataframe(frame: pd.DataFrame, *, key: str | Sequence[str] | None = None,
                   batch: str | None = None, control: str | tuple[str, Any] | None = None,
                   control_label: Any = None, features: Sequence[str] | None = None,
                   embedding: str | None = None, as_frame: bool = False) -> Bunch:
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
    embedding : str, optional
        Instead of feature columns, a column holding one vector per row (a
        Parquet list column, e.g. ``"pheno_embedding"``); the features are
        named ``"{{embedding}}_0"``, ``"{{embedding}}_1"``...
{as_frame}

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
    >>> from_dataframe(frame, key="Metadata_gene", as_frame=True).data.columns.tolist()
    ['g1', 'g2']
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
    y, batch_values, is_control, control_label, used = labels_from_columns(
        lambda c: frame[c].to_numpy(),
        columns,
        "the DataFrame",
        key=key,
        batch=batch,
        control=control,
        control_label=control_label,
        is_feature=is_feature,
        n_rows=len(frame),
    )
    if embedding is not None:
        if features is not None:
            raise ValueError("pass features= or embedding=, not both: they are two sources of "
                             "features.")
        if embedding not in set(columns):
            raise ValueError(
                f"embedding column {embedding!r} not found in the DataFrame; "
                f"{columns_message(columns, is_feature)}."
            )
        X = stack_vectors(frame[embedding].to_numpy(), embedding)
        names = [f"{embedding}_{j}" for j in range(X.shape[1])]
        return _bunch(X, names, frame.index, as_frame, y=y, batch=batch_values,
                      is_control=is_control, control_label=control_label,
                      metadata=frame.drop(columns=[embedding]))
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
                f"{columns_message(columns, is_feature)}."
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
    X = _frame_float32(frame[features], "the DataFrame's features")
    return _bunch(X, [str(c) for c in features], frame.index, as_frame,
                  y=y, batch=batch_values, is_control=is_control, control_label=control_label,
                  metadata=frame.drop(columns=features))


def _bunch(X, names, index, as_frame, *, y, batch, is_control, control_label, metadata):
    """The adapters' Bunch; ``data`` is ``X`` or, with ``as_frame``, a DataFrame of it."""
    names = np.asarray(names, dtype=object)
    data = X
    if as_frame:
        import pandas as pd

        data = pd.DataFrame(X, columns=pd.Index(names, dtype=object), index=index, copy=False)
    return Bunch(X=X, data=data, y=y, batch=batch, is_control=is_control,
                 control_label=control_label if is_control.any() else None,
                 feature_names=names, metadata=metadata)


def _check_unique_names(names, what):
    """Features are found by name (``transform`` reads a model's features by name): refuse
    duplicates, which would all read one column."""
    seen, duplicated = set(), []
    for name in names:
        if name in seen and name not in duplicated:
            duplicated.append(name)
        seen.add(name)
    if duplicated:
        raise ValueError(
            f"{what} has duplicated feature names {format_examples(duplicated)}; every feature "
            "is found by its name, so duplicates would all read one column. Make them unique "
            "(e.g. adata.var_names_make_unique(), or sum the duplicated genes), or pass "
            "var_column= naming a column of unique names."
        )


def _dense_float32(matrix, what):
    """Any AnnData matrix (dense, scipy sparse, backed h5py / sparse dataset) -> float32."""
    if hasattr(matrix, "to_memory"):  # anndata backed sparse dataset
        matrix = matrix.to_memory()
    elif type(matrix).__module__.startswith("h5py"):  # backed dense X
        matrix = matrix[()]
    if hasattr(matrix, "to_numpy") and hasattr(matrix, "columns"):  # DataFrame in obsm
        return _frame_float32(matrix, what)
    if hasattr(matrix, "toarray"):  # scipy sparse: densified, as the estimators need
        return to_float32(matrix.toarray(), what)
    matrix = np.asarray(matrix)
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric; got dtype {matrix.dtype}.")
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_obs, n_features); got shape {matrix.shape}.")
    return to_float32(matrix, what)


def _frame_float32(frame, what):
    """A numeric DataFrame as float32 under the float32-range policy (one copy when all its
    columns are float32 already)."""
    exact = all(dtype == np.float32 for dtype in frame.dtypes)
    return to_float32(frame.to_numpy(dtype=np.float32 if exact else np.float64,
                                     na_value=np.nan), what)


def from_anndata(adata: AnnData | str | os.PathLike[str], *, key: str | Sequence[str] | None = None,
                 batch: str | None = None, control: str | tuple[str, Any] | None = None,
                 control_label: Any = None, layer: str | None = None, obsm: str | None = None,
                 var_column: str | None = None, as_frame: bool = False) -> Bunch:
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
{as_frame}

    Returns
    -------
{returns}
        ``metadata`` is ``adata.obs``; ``data`` (``as_frame=True``) has the
        feature names (``var_names``) as columns and ``obs_names`` as index.

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
    y, batch_values, is_control, control_label, _ = labels_from_columns(
        lambda c: obs[c].to_numpy(),
        list(obs.columns),
        "adata.obs",
        key=key,
        batch=batch,
        control=control,
        control_label=control_label,
        n_rows=adata.n_obs,
    )
    if obsm is not None:
        if obsm not in adata.obsm:
            raise ValueError(
                f"obsm={obsm!r} not found; adata.obsm has "
                f"{format_examples(list(adata.obsm)) or 'no entries'}."
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
    _check_unique_names(names, "adata.var_names" if obsm is None and var_column is None
                        else f"adata.var[{var_column!r}]" if obsm is None
                        else f"the columns of adata.obsm[{obsm!r}]")
    return _bunch(X, names, obs.index, as_frame, y=y, batch=batch_values,
                  is_control=is_control, control_label=control_label, metadata=obs)


if from_dataframe.__doc__:  # None under python -OO
    _PARTS = {"common": _COMMON_PARAMS, "as_frame": _AS_FRAME, "returns": _RETURNS}
    from_dataframe.__doc__ = from_dataframe.__doc__.format(**_PARTS)
    from_anndata.__doc__ = from_anndata.__doc__.format(**_PARTS)
