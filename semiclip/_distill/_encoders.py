"""Frozen encoders, the estimator side: fit the ``"pca"`` encoder, apply any encoder, its torch
forms.

The encoder is frozen: a fixed feature map applied to ``X``. A PCA (or
IncrementalPCA) is a linear map, read once from the fitted object by
:func:`linear_encoder_map` and applied in torch through
:class:`semiclip._nn.AffineMap`; any other scikit-learn transformer is
applied with its own ``transform``; a torch module through
:class:`semiclip._nn.ModuleEncoder`.
"""

import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._nn import AffineMap, Identity, Module, ModuleEncoder, freeze_module

__all__ = [
    "encode",
    "encoder_module",
    "fit_encoder",
    "linear_encoder_map",
    "stream_encoders",
]


def _unwrap(encoder):
    """The estimator inside a ``sklearn.frozen.FrozenEstimator``, else the encoder itself."""
    inner = getattr(encoder, "estimator", None)
    if inner is not None and type(encoder).__name__ == "FrozenEstimator":
        return inner
    return encoder


def linear_encoder_map(encoder):
    """``(P, mu)`` (float64) with ``encoder.transform(v) == (v - mu) @ P``, or None.

    For a fitted :class:`~sklearn.decomposition.PCA` or
    :class:`~sklearn.decomposition.IncrementalPCA` (whitened or not), also
    inside a ``FrozenEstimator``; None for any other encoder.
    """
    encoder = _unwrap(encoder)
    if not isinstance(encoder, (PCA, IncrementalPCA)) or getattr(encoder, "mean_", None) is None:
        return None
    P = np.asarray(encoder.components_, dtype=np.float64).T
    if getattr(encoder, "whiten", False):
        P = P / np.sqrt(np.asarray(encoder.explained_variance_, dtype=np.float64))
    return P, np.asarray(encoder.mean_, dtype=np.float64)


def fit_encoder(encoder, encoder_dim, X, rs):
    """Return the frozen encoder for ``X``: fit ``"pca"``, check a given one is usable.

    A torch module is run on the first row of ``X`` (a clear error when its
    first layer expects another number of features). An object with a
    ``fit`` method is a scikit-learn estimator and must be fitted (its
    ``transform`` is used, never ``fit``); an object with ``transform`` only
    is used as it is.
    """
    if isinstance(encoder, str):  # "pca"
        seed = rs.randint(2**31 - 1)
        n_comp = int(min(encoder_dim, X.shape[0], X.shape[1]))
        if hasattr(X, "toarray"):  # sparse: arpack needs n_components < min(shape)
            n_comp = max(1, min(n_comp, min(X.shape) - 1))
            return PCA(n_components=n_comp, svd_solver="arpack", random_state=seed).fit(X)
        return PCA(n_components=n_comp, random_state=seed).fit(X)
    if encoder is None:
        return None
    if isinstance(encoder, Module):
        frozen = ModuleEncoder(freeze_module(encoder))
        frozen.check_input(X)
        return frozen
    if not callable(getattr(encoder, "fit", None)):  # transform only: nothing to be fitted
        return encoder
    try:
        check_is_fitted(encoder)
    except NotFittedError as exc:
        raise ValueError(
            f"encoder {type(encoder).__name__} is not fitted. A custom encoder is frozen and "
            "never refitted: fit it first (scikit-learn sees an estimator as fitted when it "
            "has attributes ending in '_' or a __sklearn_is_fitted__ method; an object with "
            "transform and no fit method is used as it is). If it was fitted but went "
            "through clone() (GridSearchCV, cross_validate), wrap it in "
            "sklearn.frozen.FrozenEstimator so that cloning keeps it fitted; or use "
            "encoder='pca'."
        ) from exc
    return encoder


def encode(encoder, X, device=None):
    """Apply a frozen encoder (from :func:`fit_encoder`); float32, one row per sample."""
    sparse = hasattr(X, "toarray")
    linear = None if sparse else linear_encoder_map(encoder)
    if encoder is None:
        Z = X.toarray() if sparse else X
    elif linear is not None:  # in torch, on the CPU, chunk by chunk
        Z = ModuleEncoder(AffineMap(*linear)).transform(X)
    elif isinstance(encoder, ModuleEncoder):
        Z = encoder.transform(X.toarray() if sparse else X, device)
    else:
        Z = encoder.transform(X)
    Z = np.asarray(Z, dtype=np.float32)
    if Z.ndim != 2 or Z.shape[0] != X.shape[0]:
        raise ValueError(
            f"The encoder returned an array of shape {Z.shape} for {X.shape[0]} samples; "
            "it must return one row per sample."
        )
    if Z.shape[1] == 0:
        raise ValueError(
            f"The encoder returned 0 columns for {X.shape[0]} samples (shape {Z.shape}); the "
            "adapter needs at least one feature per sample. Use an encoder with at least one "
            "output column (e.g. PCA(n_components=1) or more), or encoder='pca'."
        )
    return np.ascontiguousarray(Z)


def encoder_module(encoder):
    """A differentiable torch module equal to a frozen encoder's ``transform``.

    Supports ``None`` (identity), PCA and IncrementalPCA (whitened or not,
    also in a ``FrozenEstimator``) and torch modules. Other transformers
    raise ``TypeError``: gradients cannot pass through them; use the
    linear-decoder attribution instead.
    """
    if encoder is None:
        return Identity()
    if isinstance(encoder, Module):
        return encoder
    if isinstance(encoder, ModuleEncoder):
        return encoder.module
    linear = linear_encoder_map(encoder)
    if linear is not None:
        return AffineMap(*linear)
    raise TypeError(
        f"Cannot differentiate through an encoder of type {type(encoder).__name__}: "
        "gradient attributions support encoder='pca', None, PCA/IncrementalPCA "
        "and torch modules. Use the linear-decoder attribution (inverse_transform) instead."
    )


def stream_encoders(encoder):
    """``(on_device, on_host)`` for rows read from disk: a module run on the device, or a function.

    Linear encoders and torch modules run on the training device (cheap next
    to the adapter, and on a GPU much faster than on the host); any other
    scikit-learn transformer runs on the host in the reading thread.
    """
    if encoder is None:
        return None, None
    linear = linear_encoder_map(encoder)
    if linear is not None:
        return AffineMap(*linear), None
    if isinstance(encoder, ModuleEncoder):
        return encoder.module, None
    return None, lambda x: encode(encoder, x)
