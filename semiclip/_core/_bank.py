"""The frozen teacher table (:class:`ImageBank`) and the weak-pair sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._inputs import (
    check_finite_rows,
    check_labels,
    check_one_type,
    format_examples,
    to_float32,
)
from ._keys import make_keys

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["ImageBank", "PairSampler"]


class ImageBank:
    """Frozen image-teacher embeddings, one pairing key per row.

    The bank is the teacher side of weak pairing: a table of image embeddings
    (e.g. Cell Painting or phenomics embeddings per well) and, for every row,
    the key it shares with the transcriptomics samples (perturbation, or
    perturbation and concentration). It is validated once, here, and is
    deliberately *not* array-like (no ``__len__``, ``shape`` or ``__array__``)
    so that cross-validation passes it whole to every fold instead of slicing
    it like ``X``.

    Parameters
    ----------
    embeddings : array-like of shape (n_embeddings, n_dims)
        Teacher embeddings. Stored as float32; must be finite.
    keys : array-like of shape (n_embeddings,)
        Pairing key of every row (strings, integers or any hashable scalar).

    Attributes
    ----------
    embeddings : ndarray of shape (n_embeddings, n_dims), float32
        The validated embeddings (read-only).
    keys : ndarray of shape (n_embeddings,)
        The pairing keys.
    unique_keys : ndarray of shape (n_keys,)
        Sorted distinct keys.
    n_embeddings, n_dims, n_keys : int
        Table sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip import ImageBank
    >>> bank = ImageBank(np.eye(3), ["a", "a", "b"])
    >>> bank
    ImageBank(n_embeddings=3, n_dims=3, n_keys=2)
    >>> bank.codes(["b", "c", "a"])
    array([ 1, -1,  0])
    """

    def __init__(self, embeddings: ArrayLike, keys: ArrayLike) -> None:
        emb = np.asarray(embeddings)
        if emb.dtype.kind not in "biuf":
            raise TypeError(
                f"ImageBank embeddings must be numeric; got dtype {emb.dtype}. "
                "Pass the embedding columns only (no key or metadata columns)."
            )
        if emb.ndim != 2:
            raise ValueError(
                f"ImageBank embeddings must be 2-D (n_embeddings, n_dims); got "
                f"shape {emb.shape}. Reshape a single embedding with "
                "embeddings.reshape(1, -1)."
            )
        if emb.shape[0] < 1 or emb.shape[1] < 1:
            raise ValueError(
                f"ImageBank needs at least one row and one column; got shape {emb.shape}."
            )
        emb = np.array(to_float32(emb, "ImageBank embeddings"), order="C", copy=True)
        check_finite_rows(emb, "ImageBank embeddings", "drop those rows from the bank")
        keys = np.array(_check_keys(keys, emb.shape[0]), copy=True)
        self.unique_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        order = np.argsort(inverse.ravel(), kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for arr in (emb, keys, self.unique_keys, order, starts, counts):
            arr.setflags(write=False)
        self.embeddings = emb
        self.keys = keys
        self._grouped = (order, starts, counts)
        self._lookup = {k: i for i, k in enumerate(self.unique_keys.tolist())}

    # -- sizes ------------------------------------------------------------
    @property
    def n_embeddings(self) -> int:
        return self.embeddings.shape[0]

    @property
    def n_dims(self) -> int:
        return self.embeddings.shape[1]

    @property
    def n_keys(self) -> int:
        return self.unique_keys.shape[0]

    def __repr__(self):
        return (
            f"ImageBank(n_embeddings={self.n_embeddings}, n_dims={self.n_dims}, "
            f"n_keys={self.n_keys})"
        )

    def __deepcopy__(self, memo):
        # Immutable (read-only arrays): clone() and deepcopy share it, never
        # copy a possibly large teacher table.
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lookup")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lookup = {k: i for i, k in enumerate(self.unique_keys.tolist())}

    # -- lookups ----------------------------------------------------------
    def codes(self, keys: ArrayLike) -> np.ndarray:
        """Index into :attr:`unique_keys` of every key, -1 where the bank lacks it.

        Vectorised over distinct keys: a dictionary lookup per distinct key,
        never per sample.

        Parameters
        ----------
        keys : array-like of shape (n_samples,)
            Pairing keys, of the bank's key type; a 2-d array is flattened.

        Returns
        -------
        codes : ndarray of shape (n_samples,), int64
            ``codes[i]`` is the position of ``keys[i]`` in :attr:`unique_keys`,
            or -1 when the bank has no row with that key.
        """
        keys = np.asarray(keys)
        if keys.ndim != 1:
            keys = keys.ravel()
        if keys.size == 0:
            return np.zeros(0, dtype=np.int64)
        if keys.dtype == object:
            check_one_type(keys, "keys")  # np.unique cannot sort mixed int/str keys
        uniq, inverse = np.unique(keys, return_inverse=True)
        mapped = np.array([self._lookup.get(k, -1) for k in uniq.tolist()], dtype=np.int64)
        return mapped[inverse.ravel()]

    def grouped_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bank rows sorted by key: ``(order, starts, counts)``, read-only int arrays.

        The rows of key ``unique_keys[k]`` are
        ``order[starts[k] : starts[k] + counts[k]]``, in their original order.

        Returns
        -------
        order : ndarray of shape (n_embeddings,)
            Row indices sorted by key (stable within a key).
        starts : ndarray of shape (n_keys,)
            Position in ``order`` of the first row of each key.
        counts : ndarray of shape (n_keys,)
            Number of rows of each key.
        """
        return self._grouped

    def centroids(self) -> np.ndarray:
        """Mean embedding of every key.

        Returns
        -------
        centroids : ndarray of shape (n_keys, n_dims), float32
            Row ``k`` is the mean of the embeddings of key ``unique_keys[k]``
            (summed in float64).
        """
        order, starts, counts = self._grouped
        sums = np.add.reduceat(self.embeddings[order].astype(np.float64), starts, axis=0)
        return (sums / counts[:, None]).astype(np.float32)

    @classmethod
    def from_dataframe(cls, frame: pd.DataFrame, key: str | Sequence[str],
                       features: Sequence[str] | None = None) -> ImageBank:
        """Build a bank from a table of embeddings, e.g. one row per well.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per image embedding.
        key : str or list of str
            Column(s) holding the pairing key. Several columns (e.g.
            perturbation and concentration) are joined into one string key
            with ``"|"``, the same way :func:`semiclip.datasets.make_keys` does.
        features : list of str, optional
            Embedding columns. By default every numeric column that is not a
            key column and does not start with ``"Metadata_"``.

        Returns
        -------
        ImageBank
        """
        cols = [key] if isinstance(key, str) else list(key)
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(
                f"key column(s) {missing} not found; the table has columns "
                f"{format_examples(frame.columns, k=10)}."
            )
        if features is None:
            features = [
                c
                for c in frame.columns
                if c not in cols
                and not str(c).startswith("Metadata_")
                and frame[c].dtype.kind in "biuf"
            ]
        if len(cols) == 1:
            keys = frame[cols[0]].to_numpy()
        else:
            keys = make_keys(*(frame[c].to_numpy() for c in cols))
        return cls(frame[list(features)].to_numpy(dtype=np.float32), keys)


def _check_keys(keys, n_rows):
    """The bank's keys, one per row of ``embeddings`` (messages name keys and embeddings)."""
    return check_labels(keys, n_rows, name="ImageBank keys", rows="embeddings", item="key",
                        hint=" Join several key columns into one with "
                             "semiclip.datasets.make_keys.")


class PairSampler:
    """Draw, for each training sample, a teacher row sharing its key.

    The bank rows are sorted once by key (a CSR-style layout: ``order`` and
    ``offsets``); a draw is then one uniform number per sample, fully
    vectorised.

    Parameters
    ----------
    bank : ImageBank
    codes : ndarray of int
        Bank key code of every training sample (all >= 0).
    target : {"sample", "centroid"}
        ``"sample"`` draws a random bank row of the key every time (the
        paper); ``"centroid"`` always returns the key's mean embedding.
    """

    def __init__(self, bank, codes, target="sample"):
        self.codes = np.asarray(codes, dtype=np.int64)
        if self.codes.size and self.codes.min() < 0:
            raise ValueError("PairSampler got unpaired samples (code -1).")
        self.target = target
        if target == "centroid":
            self.table = bank.centroids()
        else:
            self.table = bank.embeddings
            order, starts, counts = bank.grouped_rows()
            self._order, self._offsets = order, starts
            self._counts = counts.astype(np.int64)

    def draw(self, sample_index, rng):
        """Teacher-table row for each sample in ``sample_index`` (fresh draw)."""
        codes = self.codes[sample_index]
        if self.target == "centroid":
            return codes
        u = rng.random(codes.shape[0])
        within = np.minimum((u * self._counts[codes]).astype(np.int64), self._counts[codes] - 1)
        return self._order[self._offsets[codes] + within]
