"""Gene-level attributions of Semi-Clipped embeddings and of probes fitted on them.

Two views, both returning one score per input gene:

- :func:`gradient_attributions`: gradient x input of a scalar read-out of the
  embedding (a direction in embedding space, or a class score of a linear
  probe fitted after a :class:`~semiclip.SemiClippedTransformer` in a
  Pipeline), back through adapter and frozen encoder to the genes. Batched,
  on any device.
- :func:`decoder_attributions`: the linear-decoder view, the gene profile
  that ``inverse_transform`` associates with a direction (no gradients).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._attributions import Attributions
from ._core import check_finite_rows as _check_finite_rows
from ._core import format_examples as _format_examples
from ._distill import encoder_module as _encoder_module
from ._nn import (
    adapter_from_state as _adapter_from_state,
)
from ._nn import (
    adapter_layer_sizes as _adapter_layer_sizes,
)
from ._nn import (
    float32_overflow_rows as _float32_overflow_rows,
)
from ._nn import (
    float32_range_error as _float32_range_error,
)
from ._nn import (
    resolve_device as _resolve_device,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._distill import SemiClippedTransformer

__all__ = ["Attributions", "decoder_attributions", "gradient_attributions"]


def _split_pipeline(model):
    """(SemiClipped-like step, probe or None), refusing steps it cannot see through."""
    if not isinstance(model, Pipeline):
        return model, None
    steps = [s for _, s in model.steps if s not in (None, "passthrough")]
    for i, step in enumerate(steps):
        if hasattr(step, "adapter_"):
            probe = steps[i + 1] if i + 1 < len(steps) else None
            if i + 2 < len(steps):
                raise ValueError(
                    "Only one (linear) estimator may follow the transformer in the Pipeline."
                )
            return step, probe
    raise ValueError("The Pipeline has no fitted SemiClippedTransformer step.")


def _names(est, n, feature_names=None, columns=None):
    """Gene names: ``feature_names``, else a DataFrame's columns, else the estimator's."""
    fitted = getattr(est, "feature_names_in_", None)
    if columns is not None:
        columns = np.asarray([str(c) for c in columns], dtype=object)
        if fitted is not None and not np.array_equal(columns, np.asarray(fitted, dtype=object)):
            differ = np.flatnonzero(columns != np.asarray(fitted, dtype=object))
            raise ValueError(
                f"X's columns differ from the feature names the estimator was fitted on at "
                f"{differ.size} position(s) (e.g. position {differ[0]}: {columns[differ[0]]!r} "
                f"instead of {fitted[differ[0]]!r}); pass the columns in the order of "
                "feature_names_in_, e.g. X[est.feature_names_in_]."
            )
    if feature_names is not None:
        names = np.asarray(feature_names, dtype=object).ravel()
        if names.shape[0] != n:
            raise ValueError(
                f"feature_names has {names.shape[0]} entries but X has {n} genes (columns); "
                "pass one name per gene, e.g. feature_names=data.feature_names."
            )
        return np.asarray([str(v) for v in names], dtype=object)
    if columns is not None:
        return columns
    if fitted is not None:
        return np.asarray(fitted, dtype=object)
    return np.array([f"x{i}" for i in range(n)], dtype=object)


def _readout(est, probe, direction, target, n_samples=None):
    """The vector ``v`` such that the explained scalar is ``v . embedding``.

    With ``n_samples``, ``direction`` may also hold one row per sample.
    """
    if direction is not None:
        v = np.asarray(direction, dtype=np.float32)
        n_dims = _adapter_layer_sizes(est.adapter_)[-1]
        if v.ndim == 2 and n_samples is not None and v.shape != (1, n_dims):
            if v.shape != (n_samples, n_dims):
                raise ValueError(
                    f"direction has shape {v.shape}; pass one direction of {n_dims} entries, "
                    f"or one per sample, shape ({n_samples}, {n_dims})."
                )
            if not np.isfinite(v).all():
                raise ValueError("direction contains NaN or inf; pass finite directions.")
            return np.ascontiguousarray(v)
        v = v.ravel()
        if v.shape[0] != n_dims:
            raise ValueError(
                f"direction has {v.shape[0]} entries but the embedding has {n_dims} dimensions."
            )
        return v
    if probe is None:
        raise ValueError(
            "Give a direction in embedding space, or a Pipeline ending in a linear probe "
            "(e.g. LogisticRegression) together with target=<class label>."
        )
    coef = getattr(probe, "coef_", None)
    if coef is None:
        raise TypeError(f"The probe {type(probe).__name__} is not linear (it has no coef_).")
    coef = np.atleast_2d(coef)
    if coef.shape[0] == 1:  # binary classifier or single-output regressor
        sign = 1.0
        classes = getattr(probe, "classes_", None)
        if classes is not None and target is not None:
            listed = np.asarray(classes).tolist()
            if target not in listed:
                raise ValueError(
                    f"target={target!r} is not a class of the probe; classes are "
                    f"{listed[:10]}. Pass one of them (or target=None for the score of "
                    f"{listed[-1]!r})."
                )
            if target == classes[0]:
                sign = -1.0
        return (sign * coef[0]).astype(np.float32)
    classes = np.asarray(getattr(probe, "classes_", np.arange(coef.shape[0]))).tolist()
    if target not in classes:
        raise ValueError(
            f"target={target!r} is not a class of the probe; classes are {classes[:10]}."
        )
    return coef[classes.index(target)].astype(np.float32)


def _baseline(baseline, n_genes):
    """The reference profile as float32 of shape ``(n_genes,)`` (zeros by default)."""
    if baseline is None:
        return np.zeros(n_genes, np.float32)
    b = np.asarray(baseline, dtype=np.float32)
    if b.ndim == 2 and b.shape[0] == 1:
        b = b[0]
    if b.ndim != 1 or b.shape[0] != n_genes:
        raise ValueError(
            f"baseline has {b.shape[0] if b.ndim == 1 else b.shape} entries but X has "
            f"{n_genes} genes (columns); pass one reference value per gene, e.g. "
            "baseline=X_controls.mean(axis=0)."
        )
    if not np.isfinite(b).all():
        raise ValueError(
            f"baseline contains NaN or inf at {int((~np.isfinite(b)).sum())} gene(s) "
            f"(positions {_format_examples(np.flatnonzero(~np.isfinite(b)))}); pass a finite "
            "profile."
        )
    return b


def gradient_attributions(model: SemiClippedTransformer | Pipeline, X: ArrayLike, *,
                          direction: ArrayLike | None = None, target: Any = None,
                          baseline: ArrayLike | None = None, batch: ArrayLike | None = None,
                          feature_names: ArrayLike | None = None, batch_size: int = 1024,
                          device: str | torch.device = "auto") -> Attributions:
    """Gradient x input attribution of an embedding read-out to the input genes.

    For every sample ``x``, the attribution of gene ``g`` is
    ``(x_g - b_g) * d s(x) / d x_g``, where ``s(x) = v . f(x)`` is a scalar
    read-out of the embedding ``f(x) = adapter(encoder(x))`` and ``b`` a
    baseline profile (zeros by default; e.g. the mean of the controls).

    Parameters
    ----------
    model : SemiClippedTransformer or Pipeline
        A fitted transformer, or a fitted Pipeline whose last two steps are a
        SemiClippedTransformer and a linear probe (``coef_``). Attributions
        are with respect to the *input of the transformer step*: steps before
        it (e.g. ``StandardScaler``, ``ControlNormalizer`` in the feature
        basis) keep the genes' identity but are not differentiated through.
    X : array-like of shape (n_samples, n_genes)
        Profiles to explain, as the encoder receives them (a DataFrame's
        columns name the genes). For a transformer fitted with an augmenter,
        pass the uncorrected profiles with ``batch=``, or the corrected ones
        ``model.correction_.transform(X, batch=batch)``.
    direction : array-like of shape (n_dims,) or (n_samples, n_dims), default=None
        Read-out direction ``v`` in embedding space; a 2-D array gives every
        sample its own direction (e.g. the mean embedding of its
        perturbation), all in one batched pass.
    target : class label, default=None
        With a probe: explain this class's decision score (``v`` is its row
        of ``coef_``; for a binary probe, ``-coef_`` for ``classes_[0]``).
        Must be one of the probe's ``classes_``.
    baseline : array-like of shape (n_genes,), default=None
        Reference profile ``b`` (finite, one value per gene), as the encoder
        receives it.
    batch : array-like of shape (n_samples,), default=None
        Only for a transformer fitted with an augmenter: the batch (plate)
        of every sample; ``X`` is then corrected with ``model.correction_``
        first (as ``transform(X, batch=batch)`` does). Without it ``X`` must
        already be corrected.
    feature_names : array-like of str, shape (n_genes,), default=None
        Gene names of the columns of ``X`` (e.g. ``data.feature_names`` of a
        table adapter), for an estimator fitted on an array.
    batch_size : int, default=1024
        Rows differentiated at once (a positive integer); the values do not
        depend on it beyond float rounding.
    device : str or torch.device, default="auto"
        Where the gradients are computed: ``"auto"`` picks CUDA, then
        Apple's MPS, then the CPU; or a torch device string (``"cpu"``,
        ``"cuda:1"``).

    Returns
    -------
    Attributions
        ``values`` of shape (n_samples, n_genes).

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip import SemiClippedTransformer
    >>> from semiclip.datasets import make_weakly_paired
    >>> from semiclip.interpret import gradient_attributions
    >>> d = make_weakly_paired(n_perturbations=40, n_genes=30, random_state=0)
    >>> est = SemiClippedTransformer(encoder_dim=8, max_iter=2, control_label="control",
    ...                              random_state=0).fit(d.X, d.y, image_bank=d.image_bank)
    >>> att = gradient_attributions(est, d.X[:5], direction=np.ones(128))
    >>> att.values.shape
    (5, 30)
    """
    est, probe = _split_pipeline(model)
    check_is_fitted(est)
    columns = X.columns if hasattr(X, "columns") and hasattr(X, "iloc") else None
    X = X.to_numpy() if columns is not None else np.asarray(X)
    if X.ndim != 2 or X.shape[1] != est.n_features_in_:
        raise ValueError(f"X must have shape (n_samples, {est.n_features_in_}); got {X.shape}.")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric; got dtype {X.dtype}.")
    _check_finite_rows(X, "X")
    rows = _float32_overflow_rows(X)
    if rows.size:
        raise _float32_range_error("X", rows[:5], count=rows.size)
    names = _names(est, X.shape[1], feature_names, columns)
    X = _corrected(est, np.asarray(X, dtype=np.float32), batch)
    if (isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1):
        raise ValueError(
            f"batch_size must be a positive integer; got {batch_size!r}. It is the number of "
            "rows differentiated at once (e.g. batch_size=1024)."
        )
    v = _readout(est, probe, direction, target, n_samples=X.shape[0])
    b = _baseline(baseline, X.shape[1])
    dev = _resolve_device(device)
    encoder = _encoder_module(est.encoder_).to(dev)
    adapter = _adapter_from_state(_adapter_layer_sizes(est.adapter_), est.adapter_.state_dict())
    adapter.to(dev).eval()
    v_t = torch.as_tensor(v, device=dev)
    out = np.empty_like(X)
    for start in range(0, X.shape[0], batch_size):
        xb = torch.tensor(X[start : start + batch_size], device=dev, requires_grad=True)
        emb = adapter(encoder(xb))
        if v_t.ndim == 2:  # one direction per sample
            score = (emb * v_t[start : start + batch_size]).sum()
        else:
            score = (emb @ v_t).sum()
        (grad,) = torch.autograd.grad(score, xb)
        out[start : start + batch_size] = (
            (xb.detach() - torch.as_tensor(b, device=dev)) * grad
        ).cpu().numpy()
    return Attributions(out, names, "gradient_x_input")


def _corrected(est, X, batch):
    """``X`` through the estimator's canonical correction when ``batch`` is given."""
    if batch is None:
        return X
    correction = getattr(est, "correction_", None)
    if correction is None:
        raise ValueError(
            "batch= applies the canonical batch correction of a transformer fitted with an "
            "augmenter, but this one has none (correction_ is None); drop batch=, X is "
            "explained as given."
        )
    batch = np.asarray(batch)
    if batch.shape != (X.shape[0],):
        raise ValueError(
            f"batch has shape {batch.shape}; pass one batch label per row of X "
            f"({X.shape[0]})."
        )
    return np.asarray(correction.transform(X, batch=batch), dtype=np.float32)


def decoder_attributions(model: SemiClippedTransformer | Pipeline, *,
                         direction: ArrayLike | None = None, target: Any = None,
                         feature_names: ArrayLike | None = None) -> Attributions:
    """Gene profile of a direction through the linear decoder of ``inverse_transform``.

    ``inverse_transform(z0 + v) - inverse_transform(z0)``: the change in
    reconstructed expression per unit move along ``v`` in embedding space.

    Parameters
    ----------
    model : SemiClippedTransformer or Pipeline
        As in :func:`gradient_attributions`.
    direction : array-like of shape (n_dims,), default=None
        Read-out direction ``v`` in embedding space, as in
        :func:`gradient_attributions` (one direction: the decoder is linear,
        so the profile does not depend on the sample).
    target : class label, default=None
        With a probe: explain this class's decision score, as in
        :func:`gradient_attributions`.
    feature_names : array-like of str, shape (n_genes,), default=None
        As in :func:`gradient_attributions`.

    Returns
    -------
    Attributions
        ``values`` of shape (n_genes,).
    """
    est, probe = _split_pipeline(model)
    check_is_fitted(est)
    v = _readout(est, probe, direction, target)
    values = v @ est.decoder_.coef
    return Attributions(
        np.asarray(values, dtype=np.float32), _names(est, values.shape[0], feature_names),
        "decoder"
    )
