"""Known gene-gene relationship databases (the EFAAR benchmark sources).

Reactome (CC0 1.0), HuMAP and StringDB (CC-BY 4.0) ship with the package as
gzip files under ``semiclip/datasets/data/annotations`` (see the ``LICENSE``
file there for the attribution). CORUM and SIGNOR are CC-BY-NC 4.0: they are
not redistributed and load from a path given by the user.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._core import format_examples, missing_mask
from ._text_checks import has_control, not_utf8, refuse_control_bytes, strip

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["KNOWN_SOURCES", "SHIPPED_SOURCES", "load_relationships", "relationship_index"]

_DATA_DIR = Path(__file__).resolve().parent / "data" / "annotations"
SHIPPED_SOURCES = ("HuMAP", "Reactome", "StringDB")
NON_COMMERCIAL_SOURCES = ("CORUM", "SIGNOR")
KNOWN_SOURCES = ("CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB")
_SUFFIXES = (".txt", ".txt.gz", ".csv", ".csv.gz", ".tsv", ".tsv.gz")


def load_relationships(name_or_path: str | os.PathLike[str], *, genes: ArrayLike | None = None,
                       data_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Load a database of known gene-gene relationships as undirected pairs.

    The pairs are cleaned exactly as the EFAAR benchmark does
    (``efaar_benchmarking.benchmarking.filter_relationships``): each pair is
    sorted (``entity1 <= entity2`` in code-point order), self pairs are
    dropped and duplicates (including ``A-B`` listed again as ``B-A``) are
    removed.

    Parameters
    ----------
    name_or_path : str or path-like
        One of the EFAAR sources ``"CORUM"``, ``"HuMAP"``, ``"Reactome"``,
        ``"SIGNOR"``, ``"StringDB"`` (case-insensitive), or the path of a
        CSV/TSV file (optionally gzip-compressed) with a header row naming
        the columns ``entity1`` and ``entity2`` (any two-column header is
        also accepted). ``"HuMAP"``, ``"Reactome"`` and ``"StringDB"`` load
        the copies shipped with semiclip. ``"CORUM"`` and ``"SIGNOR"`` are
        licensed CC-BY-NC 4.0 and are not shipped: pass their file path, or
        their name together with ``data_dir``.
    genes : array-like of str, default=None
        If given, keep only the pairs whose two genes are both in ``genes``.
    data_dir : str or path-like, default=None
        A directory holding the database files named as in EFAAR
        (``CORUM.txt``, ``HuMAP.txt``, ...; ``.txt.gz``/``.csv`` also
        accepted). When given, a source name is looked up there first, so
        your own copy takes precedence over the shipped one.

    Returns
    -------
    pairs : ndarray of str, shape (n_pairs, 2)
        The relationships, one undirected pair per row with
        ``pairs[:, 0] < pairs[:, 1]``, rows sorted lexicographically.

    Raises
    ------
    FileNotFoundError
        If a non-commercial source is requested without a path, or a path does
        not exist.
    ValueError
        If the file does not have two columns.

    Notes
    -----
    The shipped files are the EFAAR benchmark files already reduced to this
    canonical form (sorted, deduplicated undirected pairs without self
    pairs); the package's ``data/annotations/LICENSE`` gives the sources and
    licences.

    Examples
    --------
    >>> from semiclip.datasets import load_relationships
    >>> pairs = load_relationships("Reactome")
    >>> pairs.shape[1]
    2
    >>> bool((pairs[:, 0] < pairs[:, 1]).all())
    True
    >>> load_relationships("Reactome", genes=["SEC13", "GORASP1"]).tolist()
    [['GORASP1', 'SEC13']]
    """
    names, a, b = canonical_source(name_or_path, data_dir=data_dir)
    pairs = np.stack([names[a], names[b]], axis=1)
    if genes is not None:
        keep = np.isin(names, np.asarray(genes).astype(str))
        pairs = pairs[keep[a] & keep[b]]
    return pairs


def relationship_index(source: str | os.PathLike[str] | ArrayLike | pd.DataFrame, *,
                       data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A relationship source as integer pairs into its sorted gene list: ``(genes, first, second)``.

    The form the recall metric works with: ``genes[first[i]] <
    genes[second[i]]`` is the ``i``-th pair, cleaned as in
    :func:`load_relationships`. Files are read once and cached (per path,
    size and modification time).

    Parameters
    ----------
    source : str, path-like, array-like of shape (n_pairs, 2) or DataFrame
        A source name or file path as in :func:`load_relationships`, gene
        pairs, or a DataFrame with ``entity1`` and ``entity2`` columns (the
        EFAAR layout).
    data_dir : str or path-like, default=None
        As in :func:`load_relationships`.

    Returns
    -------
    genes : ndarray of str
        Sorted genes that occur in a kept pair.
    first, second : ndarray of int64
        The pairs, as indices into ``genes`` (``first < second``).

    Examples
    --------
    >>> from semiclip.datasets import relationship_index
    >>> genes, a, b = relationship_index([["TP53", "MDM2"], ["MDM2", "TP53"], ["A", "A"]])
    >>> genes.tolist(), a.tolist(), b.tolist()
    (['MDM2', 'TP53'], [0], [1])
    """
    if isinstance(source, (str, os.PathLike)):
        return canonical_source(source, data_dir=data_dir)
    if hasattr(source, "columns") and {"entity1", "entity2"} <= set(source.columns):
        source = source[["entity1", "entity2"]]
    pairs = clean_pairs(source, name="relationships")
    return canonical_codes(pairs[:, 0], pairs[:, 1])


def canonical_source(name_or_path, *, data_dir=None):
    """Canonical pairs of a source as codes: ``(names, a, b)``, ``names[a] < names[b]``.

    ``names`` holds the sorted unique genes of the source. Results are cached
    per file (path, size and modification time), so evaluating many
    embeddings against the same database reads it once. The arrays are
    read-only.
    """
    path = _resolve(name_or_path, data_dir).resolve()
    stat = path.stat()
    return _canonical_file(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _canonical_file(path, size, mtime_ns):
    first, second = _read_columns(path)
    result = canonical_codes(first, second)
    for arr in result:
        arr.setflags(write=False)
    return result


def canonical_codes(first, second):
    """Codes of the sorted, deduplicated, self-pair-free pairs (EFAAR rules).

    Returns ``names`` (sorted unique genes that occur in a kept pair) and two
    int64 arrays ``a < b`` indexing it, rows sorted lexicographically.
    """
    flat = np.concatenate([np.asarray(first), np.asarray(second)])
    n = flat.size // 2
    names, codes = _factorize(flat)
    lo = np.minimum(codes[:n], codes[n:])
    hi = np.maximum(codes[:n], codes[n:])
    keys = np.unique(lo[lo != hi] * np.int64(names.size) + hi[lo != hi])
    a, b = keys // names.size, keys % names.size
    used, remap = np.unique(np.concatenate([a, b]), return_inverse=True)
    return names[used], remap[: a.size].astype(np.int64), remap[a.size :].astype(np.int64)


def clean_pairs(pairs, name="relationships"):
    """Sort each pair, drop self pairs and duplicates, sort the rows (EFAAR rules)."""
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(
            f"{name} must be an array of gene pairs with shape (n_pairs, 2); got an "
            f"array of shape {pairs.shape}. Pass e.g. [['TP53', 'MDM2'], ...], a "
            "source name such as 'Reactome', or a file path."
        )
    if pairs.dtype.kind in "Of":
        missing = missing_mask(pairs).any(axis=1)
        if missing.any():
            rows = np.flatnonzero(missing)
            raise ValueError(
                f"{name} has missing gene names (None/NaN) in {rows.size} pair(s) "
                f"(rows {format_examples(rows)}); remove those pairs."
            )
    names, a, b = canonical_codes(pairs[:, 0].astype(str), pairs[:, 1].astype(str))
    return np.stack([names[a], names[b]], axis=1)


def _factorize(values):
    """Sorted unique strings and the code of each value (pandas' hashing if present)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        names, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
        return names, codes.astype(np.int64)
    codes, uniques = pd.factorize(values, sort=True)
    names = np.asarray(uniques, dtype=object).astype(str)
    # pandas sorts objects with Python's str order, which is code-point order too
    return names, codes.astype(np.int64)


def _resolve(name_or_path, data_dir):
    """Map a source name or a path to an existing file, or explain what to do."""
    text = str(name_or_path)
    canonical = {s.lower(): s for s in KNOWN_SOURCES}.get(text.lower())
    if canonical is not None:
        if data_dir is not None:
            for suffix in _SUFFIXES:
                candidate = Path(data_dir) / f"{canonical}{suffix}"
                if candidate.is_file():
                    return candidate
            if canonical not in SHIPPED_SOURCES:
                raise FileNotFoundError(
                    f"data_dir={str(data_dir)!r} holds no {canonical}.txt (nor "
                    f"{canonical}.txt.gz/.csv); pass the directory that holds the EFAAR "
                    f"annotation files, or the file path itself."
                )
        if canonical in SHIPPED_SOURCES:
            return _DATA_DIR / f"{canonical}.txt.gz"
        raise FileNotFoundError(
            f"{canonical} is licensed CC-BY-NC 4.0 (non-commercial), so semiclip does "
            f"not ship it. Get the EFAAR benchmark file {canonical}.txt (e.g. from the "
            "efaar_benchmarking package's benchmark_annotations folder) and pass its "
            f"path: load_relationships('path/to/{canonical}.txt'), or "
            f"load_relationships('{canonical}', data_dir='path/to/annotations'). "
            f"Shipped sources: {', '.join(SHIPPED_SOURCES)}."
        )
    path = Path(name_or_path)
    if path.is_dir():
        raise ValueError(
            f"{text!r} is a directory; pass a source name with data_dir={text!r} "
            f"(e.g. load_relationships('CORUM', data_dir={text!r})) or a file path."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"No relationship file at {text!r}, and it is not a known source name "
            f"({', '.join(KNOWN_SOURCES)}). Pass one of those names or the path of a "
            "CSV file with the header 'entity1,entity2'."
        )
    return path


def _read_columns(path):
    """The entity1 and entity2 columns of a CSV/TSV file (optionally gzip)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            first_line = handle.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    header = [h.strip().strip('"') for h in next(csv.reader([first_line], delimiter=delimiter), [])]
    lower = [h.lower() for h in header]
    if "entity1" in lower and "entity2" in lower:
        cols = [lower.index("entity1"), lower.index("entity2")]
    elif len(header) == 2:
        cols = [0, 1]
    else:
        raise ValueError(
            f"{str(path)!r} must be a CSV with a header row naming the columns "
            f"'entity1' and 'entity2' (or exactly two columns); its header is "
            f"{header!r}."
        )
    refuse_control_bytes(path)
    try:
        table = _parse(path, delimiter, cols)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except ValueError as exc:
        raise ValueError(
            f"Could not read the gene pairs of {str(path)!r}: {exc}. Every line must "
            f"hold the {len(header)} fields of the header {header!r}."
        ) from exc
    first, second = (np.asarray(strip(col), dtype=object) for col in table)
    control = np.flatnonzero(has_control(first) | has_control(second))
    if control.size:
        shown = [f"{first[i]!r}, {second[i]!r}" for i in control[:3]]
        raise ValueError(
            f"{str(path)!r} has {control.size} line(s) whose gene names hold control "
            f"characters such as NUL (data lines {format_examples(control + 1)}, header "
            f"excluded: {'; '.join(shown)}); a gene name is printable text. Fix or remove "
            "those lines."
        )
    empty = np.flatnonzero((first == "") | (second == ""))
    if empty.size:
        raise ValueError(
            f"{str(path)!r} has {empty.size} line(s) with an empty gene name (data "
            f"lines {format_examples(empty + 1)}, header excluded); fix or remove them."
        )
    return first, second


def _parse(path, delimiter, cols):
    """Both columns as arrays of str (pandas' C reader when available)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
        pairs = np.loadtxt(
            io.StringIO(text),
            dtype=str,
            delimiter=delimiter,
            skiprows=1,
            usecols=cols,
            quotechar='"',
            ndmin=2,
            comments=None,
        ).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            encoding="utf-8",
            compression="gzip" if path.suffix == ".gz" else None,
            usecols=cols,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            header=0,
        )
    except pd.errors.ParserError as exc:
        raise ValueError(str(exc).strip()) from None
    frame = frame.iloc[:, np.argsort(np.argsort(cols))]  # usecols ignores their order
    return frame.iloc[:, 0].to_numpy(), frame.iloc[:, 1].to_numpy()
