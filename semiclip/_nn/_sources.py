"""Rows of ``X`` read from disk: ``numpy.memmap``, backed AnnData (h5py) matrices.

``fit`` and ``transform`` accept ``X`` that does not fit in memory. Such an
``X`` is wrapped in a *row source* that reads the rows a minibatch needs,
never the whole matrix:

- :class:`MemmapSource` reads a ``numpy.memmap`` with ``os.preadv`` on its
  file instead of touching the mapping, so the pages read do not count
  towards the process's resident memory (RSS) and the kernel's page cache
  can drop them. Rows that are adjacent on disk are read in one call.
- :class:`H5Source` reads a dense backed AnnData matrix (``h5py.Dataset``)
  and :class:`SparseDatasetSource` a backed sparse one (anndata's CSR/CSC
  dataset), always with sorted row indices as h5py requires.

Every read returns a dense float32 array, in the order of the requested rows.
"""

import mmap
import os

import numpy as np

from .._core import (
    FLOAT32_MAX,
    float32_overflow_rows,
    float32_range_error,
    non_finite_error,
    non_finite_rows,
)
from ._forward import CHUNK_ROWS

__all__ = [
    "FLOAT32_MAX",
    "PCA_MAX_ROWS",
    "H5Source",
    "MemmapSource",
    "SparseDatasetSource",
    "as_row_source",
    "check_source",
    "file_layout",
    "float32_overflow_rows",
    "float32_range_error",
    "subsample_rows",
]

PCA_MAX_ROWS = 65536
"""Rows of an out-of-core ``X`` the ``"pca"`` encoder is fitted on (a random subset)."""


def as_row_source(X):
    """A row source for an on-disk ``X``; ``None`` for anything held in memory."""
    if isinstance(X, np.memmap) and X.ndim == 2:
        return MemmapSource(X)
    module = type(X).__module__ or ""
    if module.startswith("h5py") and hasattr(X, "shape") and len(X.shape) == 2:
        return H5Source(X)
    if module.startswith("anndata") and hasattr(X, "to_memory") and hasattr(X, "shape"):
        return SparseDatasetSource(X)
    return None


class _RowSource:
    """Common helpers; subclasses implement ``_read_sorted(rows)`` and ``_read_range``."""

    shape = (0, 0)
    dtype = np.dtype(np.float32)

    @property
    def n_rows(self):
        return int(self.shape[0])

    @property
    def n_features(self):
        return int(self.shape[1])

    def take(self, rows):
        """Dense float32 rows ``X[rows]`` in the given order (any order, repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.n_features), dtype=np.float32)
        if rows.size > 1 and np.any(rows[1:] <= rows[:-1]):
            uniq, inverse = np.unique(rows, return_inverse=True)
            return self._read_sorted(uniq)[inverse.ravel()]
        return self._read_sorted(rows)

    def take_matrix(self, rows):
        """``X[rows]`` for fitting an encoder: dense here, CSR for sparse sources."""
        return self.take(rows)

    def take_stored(self, rows):
        """Dense rows ``X[rows]`` (sorted ``rows``) in the dtype they are stored in."""
        return self.take(rows)

    def chunks(self, chunk_rows=CHUNK_ROWS, rows=None):
        """Yield ``(start, stop, dense float32 chunk)`` over all rows (or over ``rows``)."""
        if rows is None:
            for start in range(0, self.n_rows, chunk_rows):
                stop = min(start + chunk_rows, self.n_rows)
                yield start, stop, self._read_range(start, stop)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            for start in range(0, rows.size, chunk_rows):
                stop = min(start + chunk_rows, rows.size)
                yield start, stop, self.take(rows[start:stop])

    def close(self):
        pass

    def __getstate__(self):
        raise TypeError(
            f"{type(self).__name__} holds an open file and cannot be pickled; "
            "re-open the on-disk X in the other process."
        )


def file_layout(X):
    """``(path, byte offset of X[0, 0], row stride, row bytes)`` or None.

    Only for memmaps whose rows are contiguous on disk (the usual
    ``np.memmap`` / ``np.load(..., mmap_mode="r")`` arrays and their row
    slices); other layouts are read through the mapping.
    """
    mm = getattr(X, "_mmap", None)
    path = getattr(X, "filename", None)
    if mm is None or path is None or getattr(X, "mode", "r") == "c":
        return None
    if X.strides[1] != X.itemsize or X.strides[0] < X.shape[1] * X.itemsize:
        return None
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    except (ValueError, TypeError, BufferError):  # closed or unusual mapping
        return None
    start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
    pos0 = start + (X.ctypes.data - base)
    if pos0 < 0 or not os.path.isfile(path):
        return None
    return str(path), int(pos0), int(X.strides[0]), int(X.shape[1] * X.itemsize)


def _pread_into(fd, view, offset):
    """Fill ``view`` from ``fd`` at ``offset`` (loops over short reads)."""
    done, total = 0, len(view)
    while done < total:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"unexpected end of file reading {total} bytes at offset {offset}")
        done += got


class MemmapSource(_RowSource):
    """Rows of a 2-D ``numpy.memmap``, read with ``preadv`` (no resident mapping)."""

    def __init__(self, X):
        self.array = X
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = X.dtype
        self._layout = file_layout(X) if hasattr(os, "preadv") else None
        self._fd = None
        if self._layout is not None:
            self._fd = os.open(self._layout[0], os.O_RDONLY)

    @property
    def uses_pread(self):
        return self._fd is not None

    def _as_float32(self, raw):
        if raw.dtype == np.float32:
            return raw
        with np.errstate(over="ignore"):  # values beyond float32's range: check_source names them
            return raw.astype(np.float32)

    def _read_sorted(self, rows):
        if self._fd is None:
            return self._as_float32(np.asarray(self.array[rows]))
        _, pos0, stride, row_bytes = self._layout
        out = np.empty((rows.size, self.shape[1]), dtype=self.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        if stride == row_bytes:  # coalesce runs of adjacent rows into one read
            breaks = np.flatnonzero(np.diff(rows) != 1) + 1
            starts = np.concatenate([[0], breaks]).tolist()
            stops = np.concatenate([breaks, [rows.size]]).tolist()
            first = rows[starts].tolist()
            for a, b, r in zip(starts, stops, first):
                _pread_into(self._fd, buf[a * row_bytes : b * row_bytes], pos0 + r * stride)
        else:
            for i, r in enumerate(rows.tolist()):
                _pread_into(self._fd, buf[i * row_bytes : (i + 1) * row_bytes], pos0 + r * stride)
        return self._as_float32(out)

    def _read_range(self, start, stop):
        return self._read_sorted(np.arange(start, stop, dtype=np.int64))

    def take_stored(self, rows):
        return np.asarray(self.array[np.asarray(rows, dtype=np.int64)])

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class H5Source(_RowSource):
    """Rows of a dense 2-D ``h5py.Dataset`` (AnnData opened with ``backed="r"``)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = tuple(int(s) for s in dataset.shape)
        self.dtype = np.dtype(dataset.dtype)

    def _read_sorted(self, rows):
        return np.asarray(self.dataset[rows], dtype=np.float32)

    def _read_range(self, start, stop):
        return np.asarray(self.dataset[start:stop], dtype=np.float32)

    def take_stored(self, rows):
        return np.asarray(self.dataset[np.asarray(rows, dtype=np.int64)])


class SparseDatasetSource(_RowSource):
    """Rows of a backed sparse AnnData matrix (densified per read)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = tuple(int(s) for s in dataset.shape)
        self.dtype = np.dtype(getattr(dataset, "dtype", np.float32))

    def _dense(self, block):
        block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        return np.asarray(block, dtype=np.float32)

    def _read_sorted(self, rows):
        return self._dense(self.dataset[rows])

    def take_stored(self, rows):
        block = self.dataset[np.asarray(rows, dtype=np.int64)]
        return block.toarray() if hasattr(block, "toarray") else np.asarray(block)

    def take_matrix(self, rows):
        import scipy.sparse as sp

        rows = np.unique(np.asarray(rows, dtype=np.int64))
        return sp.csr_matrix(self.dataset[rows], dtype=np.float32)

    def _read_range(self, start, stop):
        return self._dense(self.dataset[start:stop])


def check_source(source, name="X"):
    """Numeric dtype and finite values, checked chunk by chunk (the error of
    ``check_finite_rows``).
    """
    if source.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be numeric; the on-disk matrix has dtype {source.dtype}. "
            "Store the expression values as float32."
        )
    if source.dtype.kind not in "fc":
        return
    found = {"non-finite": [[], 0], "float32": [[], 0]}  # [first rows, count]
    for start, _, chunk in source.chunks():
        bad = non_finite_rows(chunk)
        if bad.size and source.dtype.itemsize > 4:  # finite values may overflow the cast
            stored = source.take_stored(bad + start)
            overflow = np.isfinite(stored.reshape(bad.size, -1)).all(axis=1)
            _tally(found["float32"], bad[overflow] + start)
            bad = bad[~overflow]
        _tally(found["non-finite"], bad + start)
    examples, count = found["non-finite"]
    if count:
        raise non_finite_error(name, examples, "drop or impute them first", count=count)
    examples, count = found["float32"]
    if count:
        raise float32_range_error(name, examples, count=count)


def _tally(record, rows):
    """Add ``rows`` to ``record`` = [first 5 rows, count]."""
    record[0].extend(rows[: max(0, 5 - len(record[0]))].tolist())
    record[1] += rows.size


def subsample_rows(n_rows, max_rows, rs):
    """Sorted random subset of ``max_rows`` row indices (all rows when fewer)."""
    if n_rows <= max_rows:
        return np.arange(n_rows, dtype=np.int64)
    seed = rs.randint(2**31 - 1)
    chosen = np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False)
    return np.sort(chosen).astype(np.int64)
