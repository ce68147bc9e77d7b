"""An ``X`` read from disk (``numpy.memmap``, backed AnnData): its check, the encoder fitted on a
subset of its rows, the streamed student input, and ``transform`` chunk by chunk.
"""

import numpy as np
from sklearn.utils.validation import validate_data

from .._nn import PCA_MAX_ROWS, StreamFeatures, check_source, embed_source, subsample_rows
from ._encoders import encode, fit_encoder, stream_encoders

__all__ = ["check_source_input", "encoded_width", "encoder_from_source", "stream_features",
           "transform_source"]


def check_source_input(estimator, source, reset):
    """Validate an on-disk ``X`` on its first row (``n_features_in_``, dtype) and its layout."""
    first = source.take(np.arange(min(1, source.n_rows)))
    validate_data(
        estimator, first, reset=reset, dtype=[np.float32, np.float64],
        ensure_all_finite=False, ensure_min_samples=1,
    )
    check_source(source)
    return source


def encoder_from_source(encoder, encoder_dim, source, rs):
    """The frozen encoder for an on-disk ``X``: a ``"pca"`` encoder is fitted on a random subset
    of at most ``PCA_MAX_ROWS`` rows; any other is checked on the first row.
    """
    if isinstance(encoder, str):
        rows = subsample_rows(source.n_rows, PCA_MAX_ROWS, rs)
        return fit_encoder(encoder, encoder_dim, source.take_matrix(rows), rs)
    return fit_encoder(encoder, encoder_dim, source.take(np.arange(1)), rs)


def encoded_width(encoder, source):
    """The number of features ``encoder`` gives for the rows of ``source``."""
    return encode(encoder, source.take_matrix(np.arange(1))).shape[1]


def stream_features(encoder, source, rows, device):
    """The loop's feature provider for ``rows`` of ``source``, encoded on the way in."""
    on_device, on_host = stream_encoders(encoder)
    return StreamFeatures(source, rows, device, on_device=on_device, on_host=on_host)


def transform_source(encoder, adapter, source, device, n_dims):
    """``transform`` of an on-disk ``X``: read, encode and embed chunk by chunk (float32)."""
    out = np.empty((source.n_rows, n_dims), dtype=np.float32)
    on_device, on_host = stream_encoders(encoder)
    start = 0
    for raw, emb in embed_source(source, adapter, device, on_device=on_device, on_host=on_host):
        out[start : start + raw.shape[0]] = emb
        start += raw.shape[0]
    return out
