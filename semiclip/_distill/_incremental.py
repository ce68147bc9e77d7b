"""Fitting in pieces and from disk, and the DDP set-up, of
:class:`~semiclip.SemiClippedTransformer`.

``partial_fit``, ``X`` read from disk (``numpy.memmap``, backed AnnData)
for ``fit`` and ``transform``, and the DDP set-up of ``strategy="ddp"``.
Kept apart from the estimator's file so that it stays about the method;
:class:`IncrementalMixin` only uses the estimator's own helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from .._core.compat import fit_context as _fit_context
from .._nn import (
    PCA_MAX_ROWS,
    StreamFeatures,
    as_row_source,
    check_source,
    ddp_context,
    embed_source,
    subsample_rows,
    thread_budget,
)
from ._encoders import stream_encoders
from ._params import fill_doc

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._core import ImageBank
    from ._transformer import SemiClippedTransformer

__all__ = ["IncrementalMixin"]


@fill_doc
class IncrementalMixin:
    """``partial_fit``, out-of-core ``X``, DDP set-up; mixed into the transformer."""

    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X: ArrayLike, y: ArrayLike | None = None, *,
                    image_bank: ImageBank | None = None, keys: ArrayLike | None = None,
                    batch: ArrayLike | None = None) -> SemiClippedTransformer:
        """Train one epoch on a chunk of samples (streaming, ``dask_ml.wrappers.Incremental``).

        The first call initialises the estimator from its chunk exactly as
        ``fit`` would (encoder, ``"auto"`` hyper-parameters, adapter) and
        needs ``image_bank``; later calls continue training the same adapter
        with the same optimizer (momentum kept) and may omit ``image_bank``
        (the bank of the first call is reused; it is never pickled, so pass it
        again after loading a saved model). Differences from ``fit``: one
        epoch per call, a constant learning rate (``learning_rate_init``; a
        schedule needs the total length), no early stopping, no
        ``ConvergenceWarning``; the decoder of ``inverse_transform`` is refitted
        on each chunk.

        With ``encoder="pca"`` the PCA is fitted on the first chunk and then
        frozen: an encoder that moved with every chunk would pull the
        adapter's input from under it. To base the PCA on all the data, make
        a first pass with :class:`sklearn.decomposition.IncrementalPCA`
        (``partial_fit`` on every chunk) and pass
        ``encoder=FrozenEstimator(ipca)``.

        Parameters
        ----------
        X : array-like, sparse matrix or numpy.memmap of shape (n_samples, n_features)
            A chunk of transcriptomics profiles, prepared as for ``fit``.
        y : array-like of shape (n_samples,), default=None
            Pairing key of every sample of the chunk; ``y == control_label``
            marks controls. Ignored when ``keys`` is given.
        image_bank : ImageBank, default=None
            Required on the first call (or set as a parameter).
        [[fit_keys]]
        [[fit_batch]]

        Returns
        -------
        self : SemiClippedTransformer
            The estimator, trained one more epoch.
        """
        if getattr(self, "train_encoder", False):
            raise ValueError(
                "partial_fit does not support train_encoder=True; use fit, or a frozen encoder."
            )
        with thread_budget(self.n_threads) as threads:
            labels, name = (y, "y") if keys is None else (keys, "keys")
            self._fit(
                X, labels, image_bank=image_bank, batch=batch, key_name=name,
                incremental=True, threads=threads,
            )
        return self

    # ------------------------------------------------------------ input
    def _check_fit_input(self, X, reset):
        """``(X, source)``: validated in-memory ``X`` and None, or the on-disk source."""
        source = as_row_source(X)
        if source is None:
            return self._check_X(X, reset=reset), None
        first = source.take(np.arange(min(1, source.n_rows)))
        validate_data(
            self, first, reset=reset, dtype=[np.float32, np.float64],
            ensure_all_finite=False, ensure_min_samples=1,
        )
        check_source(source)
        return source, source

    def _encoder_from_source(self, source, rs):
        """The frozen encoder for an on-disk ``X`` (PCA on a random subset of rows)."""
        if getattr(self, "warm_start", False) and hasattr(self, "encoder_"):
            return self.encoder_
        if isinstance(self.encoder, str):
            rows = subsample_rows(source.n_rows, PCA_MAX_ROWS, rs)
            return self._fit_encoder(source.take_matrix(rows), rs)
        return self._fit_encoder(source.take(np.arange(1)), rs)

    def _encoded_width(self, source):
        return self._encode(source.take_matrix(np.arange(1))).shape[1]

    def _stream(self, source, rows, device):
        on_device, on_host = stream_encoders(self.encoder_)
        return StreamFeatures(source, rows, device, on_device=on_device, on_host=on_host)

    # ---------------------------------------------------------- DDP
    def _random_state_and_context(self):
        """``(RandomState, DDPContext or None)``; DDP ranks share a seed."""
        if getattr(self, "strategy", "single") != "ddp":
            return check_random_state(self.random_state), None
        ctx = ddp_context(self.device)
        random_state = self.random_state
        if random_state is None:  # every rank must draw the same numbers
            random_state = ctx.broadcast_int(np.random.default_rng().integers(2**31 - 1))
        return check_random_state(random_state), ctx

    @staticmethod
    def _check_ranks_agree(ctx, **values):
        table = ctx.gather_ints(list(values.values()))
        differ = [k for i, k in enumerate(values) if np.unique(table[:, i]).size > 1]
        if differ:
            per_rank = {k: table[:, list(values).index(k)].tolist() for k in differ}
            raise ValueError(
                f"strategy='ddp': the ranks disagree on {per_rank} (one value per rank). Every "
                "rank must call fit with the same data and the same integer random_state."
            )

    # ------------------------------------------------------- transform
    def _transform_source(self, source, device):
        """``transform`` of an on-disk ``X``: read, encode and embed chunk by chunk."""
        if getattr(self, "correction_", None) is not None:
            raise ValueError(
                "This model was fitted with an augmenter, whose batch correction needs X in "
                "memory; load X (e.g. np.asarray(X)) before transform."
            )
        out = np.empty((source.n_rows, self._n_features_out), dtype=np.float32)
        on_device, on_host = stream_encoders(self.encoder_)
        start = 0
        for raw, emb in embed_source(source, self.adapter_, device, on_device=on_device,
                                     on_host=on_host):
            out[start : start + raw.shape[0]] = emb
            start += raw.shape[0]
        return out
