"""Frozen encoders: fitting the ``"pca"`` encoder, applying any encoder, torch views.

The encoder is frozen: it is applied to ``X`` as a fixed feature map (in
numpy for scikit-learn transformers, in torch for ``nn.Module`` encoders).
:func:`encoder_to_torch` exposes the same map as a differentiable torch
module so gene attributions can flow gradients back to the input genes.
"""

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.decomposition._base import _BasePCA
from sklearn.utils.validation import check_is_fitted
from torch import nn


class TorchModuleEncoder:
    """Apply a frozen ``torch.nn.Module`` to numpy arrays in chunks."""

    def __init__(self, module, device, batch_size=4096):
        self.module = module
        self.device = device
        self.batch_size = batch_size

    def transform(self, X):
        module = self.module.to(self.device).eval()
        outs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], self.batch_size):
                xb = torch.as_tensor(
                    np.ascontiguousarray(X[start : start + self.batch_size], dtype=np.float32),
                    device=self.device,
                )
                outs.append(module(xb).float().cpu().numpy())
        if not outs:
            with torch.no_grad():
                probe = module(torch.zeros(1, X.shape[1], device=self.device))
            return np.zeros((0, probe.shape[1]), dtype=np.float32)
        return np.concatenate(outs, axis=0)


def freeze_module(module):
    """Put a torch module in eval mode with gradients off (in place)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def encoder_to_torch(encoder):
    """A differentiable torch module equal to a frozen encoder's ``transform``.

    Supports ``None`` (identity), PCA-like transformers with ``components_``
    and ``mean_`` (including ``IncrementalPCA`` and whitening), a
    ``FrozenEstimator`` wrapping one of those, and torch modules. Other
    transformers raise ``TypeError``: gradients cannot pass through them;
    use the linear-decoder attribution instead.
    """
    if encoder is None:
        return nn.Identity()
    if isinstance(encoder, nn.Module):
        return encoder
    if isinstance(encoder, TorchModuleEncoder):
        return encoder.module
    inner = getattr(encoder, "estimator", None)  # sklearn.frozen.FrozenEstimator
    if inner is not None and not hasattr(encoder, "components_"):
        return encoder_to_torch(inner)
    if hasattr(encoder, "components_") and hasattr(encoder, "mean_"):
        comps = np.asarray(encoder.components_, dtype=np.float64)
        mean = encoder.mean_ if encoder.mean_ is not None else np.zeros(comps.shape[1])
        mean = np.asarray(mean, dtype=np.float64)
        if getattr(encoder, "whiten", False):
            comps = comps / np.sqrt(encoder.explained_variance_)[:, None]
        lin = nn.Linear(comps.shape[1], comps.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(comps, dtype=torch.float32))
            lin.bias.copy_(torch.as_tensor(-comps @ mean, dtype=torch.float32))
        return freeze_module(lin)
    raise TypeError(
        f"Cannot differentiate through an encoder of type {type(encoder).__name__}: "
        "gradient attributions support encoder='pca', None, PCA-like transformers "
        "and torch modules. Use the linear-decoder attribution (inverse_transform) instead."
    )


def fit_encoder(encoder, encoder_dim, X, rs):
    """Return the frozen encoder for ``X``: fit ``"pca"``, check a given one is fitted."""
    if isinstance(encoder, str):  # "pca"
        seed = rs.randint(2**31 - 1)
        n_comp = int(min(encoder_dim, X.shape[0], X.shape[1]))
        if hasattr(X, "toarray"):  # sparse: arpack needs n_components < min(shape)
            n_comp = max(1, min(n_comp, min(X.shape) - 1))
            return PCA(n_components=n_comp, svd_solver="arpack", random_state=seed).fit(X)
        return PCA(n_components=n_comp, random_state=seed).fit(X)
    if encoder is None:
        return None
    if isinstance(encoder, nn.Module):
        return TorchModuleEncoder(freeze_module(encoder), torch.device("cpu"))
    try:
        check_is_fitted(encoder)
    except Exception as exc:
        raise ValueError(
            f"encoder {type(encoder).__name__} is not fitted. A custom encoder is frozen and "
            "never refitted: fit it first. If it was fitted but went through clone() "
            "(GridSearchCV, cross_validate), wrap it in sklearn.frozen.FrozenEstimator "
            "so that cloning keeps it fitted; or use encoder='pca'."
        ) from exc
    return encoder


def encode(encoder, X, device=None):
    """Apply a frozen encoder (from :func:`fit_encoder`); float32, one row per sample."""
    if encoder is None:
        Z = X.toarray() if hasattr(X, "toarray") else X
    elif isinstance(encoder, _BasePCA) and not hasattr(X, "toarray"):
        Z = _pca_transform(encoder, X)
    elif isinstance(encoder, TorchModuleEncoder):
        encoder.device = device or torch.device("cpu")
        Z = encoder.transform(X.toarray() if hasattr(X, "toarray") else X)
    else:
        Z = encoder.transform(X)
    Z = np.asarray(Z, dtype=np.float32)
    if Z.ndim != 2 or Z.shape[0] != X.shape[0]:
        raise ValueError(
            f"The encoder returned an array of shape {Z.shape} for {X.shape[0]} samples; "
            "it must return one row per sample."
        )
    return np.ascontiguousarray(Z)


def _pca_transform(pca, X, chunk=16384):
    """``pca.transform(X)`` computed in torch on freshly allocated (aligned) copies.

    BLAS results depend on the memory alignment of the operands; numpy arrays
    restored by pickle can be aligned differently from the originals, which
    makes ``pca.transform`` differ in the last bits after ``joblib.load``.
    Copying into torch-allocated memory makes the encoding bit-identical
    before and after pickling.
    """
    def aligned(a):  # contiguous copy (arpack's components_ have negative strides)
        return torch.tensor(np.ascontiguousarray(a, dtype=np.float32))

    comps = aligned(pca.components_)
    if getattr(pca, "whiten", False):
        comps = comps / torch.sqrt(aligned(pca.explained_variance_))[:, None]
    mean = aligned(pca.mean_)
    out = np.empty((X.shape[0], comps.shape[0]), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk):
            xb = torch.tensor(np.asarray(X[start : start + chunk], dtype=np.float32))
            out[start : start + chunk] = ((xb - mean) @ comps.T).numpy()
    return out
