"""Reading and writing the files of the ``semiclip fit / transform / evaluate`` commands.

Tables are CSV/TSV (optionally gzip-compressed), Parquet or ``.h5ad``
(AnnData). Samples come out as the Bunch of
:func:`semiclip.datasets.from_dataframe` / :func:`~semiclip.datasets.from_anndata`;
every error names the file, the problem and, for missing columns, the
columns that exist.
"""

import os
import re
from pathlib import Path

import numpy as np

from .._core import format_examples
from ..persistence import atomic_write

__all__ = [
    "check_columns",
    "cli_wording",
    "coerce_like",
    "load_samples",
    "read_input",
    "read_samples",
    "table_format",
    "write_embedding",
    "write_table",
]

#: suffix -> format; ``.gz`` may follow the text formats
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".h5ad": "h5ad",
    ".h5mu": "h5mu",
}
SUPPORTED = ".csv, .tsv, .txt (optionally .gz), .parquet, .h5ad, .h5mu"
WRITABLE = ".csv, .csv.gz, .tsv, .parquet, .h5ad, .h5mu"
#: the flag naming the MuData modality read for each input flag
MOD_FLAGS = {"--tx": "--tx-mod", "--images": "--image-mod"}


def table_format(path, what):
    """``"csv"``, ``"tsv"``, ``"parquet"`` or ``"h5ad"`` from the file name."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and _FORMATS.get(suffixes[-1]) in ("csv", "tsv"):
            return _FORMATS[suffixes[-1]]
    elif suffixes and suffixes[-1] in _FORMATS:
        return _FORMATS[suffixes[-1]]
    raise ValueError(
        f"{what}: cannot tell the format of {str(path)!r} from its name; use one of "
        f"{SUPPORTED}."
    )


def read_input(path, what, mod=None):
    """Read a table (pandas DataFrame), an ``.h5ad`` file or a modality ``mod`` of an ``.h5mu``."""
    fmt = table_format(path, what)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what}: no file at {str(path)!r}.")
    if fmt == "h5mu":
        return _read_modality(path, what, mod)
    try:
        if fmt == "h5ad":
            try:
                import anndata
            except ImportError as exc:
                raise ImportError(
                    f"{what}: reading .h5ad files needs anndata "
                    "(pip install 'semiclip[anndata]')."
                ) from exc
            return anndata.read_h5ad(path)
        import pandas as pd

        if fmt == "parquet":
            _require_parquet(what)
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="," if fmt == "csv" else "\t")
    except ImportError:
        raise
    except Exception as exc:  # the reader's own error says what was wrong
        raise ValueError(
            f"{what}: cannot read {str(path)!r} as {fmt} ({type(exc).__name__}: "
            f"{str(exc).strip() or 'no detail'}). Check that the file is complete and in "
            f"that format."
        ) from None


def _read_modality(path, what, mod):
    from ..datasets import mudata_modality

    flag = MOD_FLAGS.get(what, "--mod")
    try:
        return mudata_modality(path, mod, flag)
    except ImportError as exc:
        raise ImportError(f"{what}: reading .h5mu files needs mudata "
                          "(pip install 'semiclip[mudata]').") from exc
    except (ValueError, TypeError):
        raise
    except Exception as exc:
        raise ValueError(f"{what}: cannot read {str(path)!r} as .h5mu ({type(exc).__name__}: "
                         f"{str(exc).strip() or 'no detail'}).") from None


def _require_parquet(what):
    import importlib.util

    if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        raise ImportError(f"{what}: Parquet files need pyarrow (pip install 'semiclip[io]', "
                          "or 'semiclip[cli]' for everything the command line reads).")


def is_anndata(table):
    return hasattr(table, "obs") and hasattr(table, "var")


def columns_of(table):
    """Metadata columns of a DataFrame, or ``obs`` columns of an AnnData."""
    return list(table.obs.columns if is_anndata(table) else table.columns)


def check_columns(table, names, what, path, arg):
    """Raise a ValueError naming the missing columns and listing those that exist."""
    names = [n for n in names if n is not None]
    existing = columns_of(table)
    missing = [n for n in names if n not in set(existing)]
    if missing:
        where = "obs columns" if is_anndata(table) else "columns"
        shown = [c for c in existing if not _looks_numeric_feature(table, c)]
        n_hidden = len(existing) - len(shown)
        listing = format_examples(shown, k=30) or "none"
        if n_hidden:
            listing += f" (and {n_hidden} numeric feature columns)"
        raise ValueError(
            f"{what} ({path}): {arg} column(s) {format_examples(missing)} not found; its "
            f"{where} are {listing}."
        )


def _looks_numeric_feature(table, column):
    """Hide the (many) feature columns of a wide table from a column listing."""
    if is_anndata(table):
        return False
    name = str(column)
    return not name.startswith("Metadata_") and table[column].dtype.kind in "biuf"


def frame_of(table):
    return table.obs if is_anndata(table) else table


def coerce_like(value, table, column):
    """Parse a command-line string as a number when ``column`` is numeric."""
    if value is None or column is None:
        return value
    kind = frame_of(table)[column].dtype.kind
    if kind in "iu":
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "f":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "b":
        return str(value).lower() in ("1", "true", "yes")
    return value


def load_samples(table, path, what, *, key, batch=None, control=None, control_label=None,
                 layer=None, obsm=None, features=None, exclude=(), embedding=None,
                 exclude_flag="--exclude-cols"):
    """``X``, keys, batch and controls of a DataFrame or AnnData (adapter Bunch).

    ``key`` may be None (a table that is only embedded); ``embedding`` names
    a list column holding one vector per row; ``exclude_flag`` is the option
    that lists this file's non-feature columns (named in the hints).
    """
    from ..datasets import from_anndata, from_dataframe

    key = None if key is None else list(key)
    control_col = control[0] if isinstance(control, tuple) else control
    check_columns(table, (key or []) + [batch, control_col], what, path, "key/batch/control")
    one_key = None if key is None else key if len(key) > 1 else key[0]
    try:
        if is_anndata(table):
            if exclude:
                raise ValueError(f"{exclude_flag} applies to tables, not to .h5ad files.")
            if embedding is not None:
                raise ValueError("the embedding-column option applies to tables; for .h5ad "
                                 "files name the obsm entry instead.")
            data = from_anndata(table, key=one_key, batch=batch, control=control,
                                control_label=control_label, layer=layer, obsm=obsm)
            if features is not None:
                data = _select_features(data, features, what, path)
            return data
        if layer is not None or obsm is not None:
            raise ValueError("--layer/--obsm apply to .h5ad files, not to tables.")
        unknown = [c for c in exclude if c not in table.columns]
        if unknown:
            check_columns(table, unknown, what, path, exclude_flag)
        frame = table.drop(columns=list(exclude))
        if embedding is not None:
            check_columns(frame, [embedding], what, path, "embedding")
        elif features is None:
            _check_text_columns(frame, (key or []) + [batch, control_col], exclude_flag)
        if features is not None:
            check_columns(frame, features, what, path, "feature")
        return from_dataframe(frame, key=one_key, batch=batch, control=control,
                              control_label=control_label, features=features,
                              embedding=embedding)
    except ValueError as exc:
        message = str(exc)
        if message.startswith(what):
            raise
        message = re.sub(r"[Pp]ass features=\[\.\.\.\]\.?",
                         f"list the non-feature columns with {exclude_flag}.", message)
        raise ValueError(f"{what} ({path}): {cli_wording(message)}") from None


#: the Python wording of the adapters' messages, and the flags meant on the command line
_FLAGS = (
    (r"control=\((?P<col>'[^']*'), value\)", r"--control-col \g<col> --control-values VALUE"),
    (r"control=\(column, values\)", "--control-col COL --control-values VALUE ..."),
    (r"control=\((?P<col>'[^']*'), \[?(?P<v>[^)\]]*)\]?\)",
     r"--control-col \g<col> --control-values \g<v>"),
    (r"control_label=(?P<v>\S+)", r"--control-label \g<v>"),
    (r"\(key=\.\.\.\)", "(--key-col)"),
    (r"pass key=, or control= to", "pass --key-col, or --control-col to"),
)


def cli_wording(message):
    """An adapter's message with the command-line flags in place of Python arguments."""
    for pattern, flag in _FLAGS:
        message = re.sub(pattern, flag, message)
    return message


def _check_text_columns(frame, used, exclude_flag):
    """Refuse non-numeric columns that would be features, naming the flag that drops them."""
    used = {c for c in used if c is not None}
    wrong = [c for c in frame.columns if not str(c).startswith("Metadata_") and c not in used
             and frame[c].dtype.kind not in "biuf"]
    if wrong:
        raise ValueError(
            f"{len(wrong)} column(s) are neither numeric features nor Metadata_ columns: "
            f"{format_examples(wrong)}. Give metadata columns the Metadata_ prefix, or pass "
            f"{exclude_flag} {' '.join(str(c) for c in wrong[:5])}"
            f"{' ...' if len(wrong) > 5 else ''}."
        )


def _select_features(data, features, what, path):
    """Reorder an AnnData Bunch's features to the names seen at fit time."""
    names = [str(f) for f in features]
    index = {str(n): i for i, n in enumerate(data.feature_names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(
            f"{what} ({path}): {len(missing)} feature(s) of the model are missing: "
            f"{format_examples(missing)}; the file has {len(index)} features such as "
            f"{format_examples(list(index))}."
        )
    cols = np.array([index[n] for n in names], dtype=np.int64)
    data.X = np.ascontiguousarray(data.X[:, cols])
    data.feature_names = np.asarray(names, dtype=object)
    return data


def read_samples(path, what, *, key, batch=None, control=None, control_label=None, **kwargs):
    """Read a file and return its samples; see :func:`load_samples`."""
    table = read_input(path, what)
    return load_samples(table, path, what, key=key, batch=batch, control=control,
                        control_label=control_label, **kwargs)


def write_table(frame, path, what="output"):
    """Write a DataFrame as CSV/TSV/Parquet, whole or not at all (see :func:`atomic_write`)."""
    fmt = table_format(path, what)
    if fmt == "h5ad":
        raise ValueError(f"{what}: write .h5ad with write_embedding.")
    _check_directory(path, what)
    keep_index = not _is_range_index(frame.index)
    with atomic_write(path) as tmp:  # the temporary name ends like path: same compression
        if fmt == "parquet":
            _require_parquet(what)
            frame.to_parquet(tmp, index=keep_index)
        else:
            frame.to_csv(tmp, sep="," if fmt == "csv" else "\t", index=keep_index)
    return path


def write_embedding(meta, Z, columns, path, *, adata=None, X=None, feature_names=None,
                    uns=None, mudata=None):
    """Save the embedding in the format of ``path``'s suffix.

    A table gets the metadata plus one column per embedding dimension. An
    ``.h5ad`` file follows the scanpy / scvi-tools convention: the input
    AnnData (``adata``; else one built from the table's features ``X`` with
    ``feature_names`` as ``var_names`` and ``meta`` as ``obs``) with the
    embedding in ``obsm["X_semiclip"]`` and ``uns["semiclip"]`` (the model's
    parameters and provenance). An ``.h5mu`` file is the input MuData
    (``mudata=(input path, modality)``) with the same two entries added to
    that modality.
    """
    import pandas as pd

    fmt = table_format(path, "--output")
    if fmt == "h5mu":
        return _write_mudata(Z, path, mudata, uns)
    if fmt == "h5ad":
        import anndata

        if adata is not None:
            out = adata.copy()
        else:
            obs = meta.copy()
            obs.index = obs.index.astype(str)
            for c in obs.columns:  # h5ad stores strings or numbers
                if obs[c].dtype.kind == "O":
                    obs[c] = obs[c].astype(str)
            out = anndata.AnnData(np.asarray(X, dtype=np.float32), obs=obs,
                                  var=pd.DataFrame(index=[str(f) for f in feature_names]))
        out.obsm["X_semiclip"] = np.asarray(Z, dtype=np.float32)
        out.uns["semiclip"] = dict(uns or {})
        _check_directory(path, "--output")
        with atomic_write(path) as tmp:
            out.write_h5ad(tmp)
        return path
    emb = pd.DataFrame(np.asarray(Z), columns=list(columns), index=meta.index)
    return write_table(pd.concat([meta, emb], axis=1), path, "--output")


def _write_mudata(Z, path, source, uns):
    if source is None or table_format(source[0], "--tx") != "h5mu":
        raise ValueError("--output: an .h5mu output adds the embedding to the --tx MuData; "
                         "give an .h5mu --tx with --tx-mod, or write .h5ad/.parquet/.csv.")
    import warnings

    import mudata

    _check_directory(path, "--output")
    with warnings.catch_warnings():  # mudata's notice of a future default, not about the data
        warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
        mdata = mudata.read_h5mu(source[0])
        mod = mdata.mod[source[1]]
        mod.obsm["X_semiclip"] = np.asarray(Z, dtype=np.float32)
        mod.uns["semiclip"] = dict(uns or {})
        with atomic_write(path) as tmp:
            mdata.write_h5mu(tmp)
    return path


def _check_directory(path, what):
    parent = Path(os.fspath(path)).resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what}: the directory {str(parent)!r} does not exist.")


def _is_range_index(index):
    import pandas as pd

    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
