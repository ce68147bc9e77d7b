"""Interpretability preservation: how well gene expression is decodable."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import check_finite_rows, check_labels, control_mask, format_examples

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

_DEFAULT_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
# Centred profiles with a norm below this many rounding errors are taken as zero.
_CENTRED_ZERO = 64


@dataclass(frozen=True, repr=False)
class InterpretabilityResult:
    """Interpretability preservation of an embedding.

    Attributes
    ----------
    score : float
        Mean of ``spearman`` and ``structural_integrity``.
    spearman : float
        Mean over evaluated samples of the Spearman correlation, across genes,
        between the reconstructed and the actual profile.
    structural_integrity : float
        Mean over batches of ``1 - min(1, ||R_b - A_b||_F / ||A_b||_F)`` (see
        :func:`interpretability_score`).
    sample_spearman : ndarray of shape (n_samples,)
        Per-sample Spearman correlation; NaN for controls and constant rows.
    batches : ndarray
        The batches, in the order of ``batch_integrity``.
    batch_integrity : ndarray of shape (n_batches,)
        Structural integrity of each batch.
    alphas : ndarray of shape (n_splits,)
        Ridge penalty used in each cross-fitting split.
    n_splits : int
        Number of cross-fitting splits.
    """

    score: float
    spearman: float
    structural_integrity: float
    sample_spearman: np.ndarray = field(compare=False)
    batches: np.ndarray = field(compare=False)
    batch_integrity: np.ndarray = field(compare=False)
    alphas: np.ndarray = field(compare=False)
    n_splits: int = 0

    def __float__(self):
        return float(self.score)

    def __repr__(self):
        return (
            f"InterpretabilityResult(score={self.score:.4f}, spearman={self.spearman:.4f}, "
            f"structural_integrity={self.structural_integrity:.4f}, "
            f"n_batches={len(self.batches)}, n_splits={self.n_splits})"
        )


def interpretability_score(Z: ArrayLike, X: ArrayLike, *, batch: ArrayLike | None = None,
                           is_control: ArrayLike | None = None, control_label: Any = None,
                           y: ArrayLike | None = None, alpha: float | ArrayLike = _DEFAULT_ALPHAS,
                           cv: Any = 5, random_state: int | np.random.RandomState | None = None
) -> InterpretabilityResult:
    """Interpretability preservation: decode gene expression from an embedding.

    A ridge decoder ``Z -> X`` (``Z`` standardised) is cross-fitted: each
    sample is reconstructed by a decoder trained on the other folds, never on
    itself. On the reconstructions ``R`` (the evaluated samples are the
    non-controls, or all samples without controls):

    (a) ``spearman``: mean over samples of the Spearman correlation between
        ``R[i]`` and ``X[i]`` across genes;
    (b) ``structural_integrity``: for each batch ``b``, with ``A_b`` the
        actual and ``R_b`` the reconstructed profiles of its evaluated samples,
        both centred on the mean of the batch's controls (their own mean of
        ``X`` and of ``R`` respectively; the batch mean when no controls are
        given), ``1 - min(1, ||R_b - A_b||_F / ||A_b||_F)``, averaged over
        batches. It is 1 for a perfect reconstruction and 0 when the error
        is as large as the control-centred profiles themselves (or larger);

    and ``score`` is their mean. Raw expression (``Z = X``) scores about 1.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        The embedding.
    X : array-like of shape (n_samples, n_genes)
        The gene expression the embedding was computed from.
    batch : array-like of shape (n_samples,), default=None
        Batch (plate) of each sample; ``None`` is one batch.
    is_control : array-like of bool, shape (n_samples,), default=None
        Marks the control samples. Give this or ``control_label`` with ``y``.
    control_label : object, default=None
        Value of ``y`` marking the controls.
    y : array-like of shape (n_samples,), default=None
        Perturbation labels, used with ``control_label``.
    alpha : float or array-like of float, default=(1e-3, ..., 1e3)
        Ridge penalty; several values are chosen among by efficient
        leave-one-out inside each training fold (:class:`~sklearn.linear_model.RidgeCV`).
    cv : int, cross-validation generator or iterable, default=5
        Cross-fitting splits. An int gives a shuffled
        :class:`~sklearn.model_selection.KFold`.
    random_state : int, RandomState instance or None, default=None
        Shuffling of the folds when ``cv`` is an int.

    Returns
    -------
    result : InterpretabilityResult
        The cross-fitted scores (overall, per sample, per batch) and the
        ridge penalties used (see the class).

    Raises
    ------
    ValueError
        Mismatched rows, NaN/inf entries (the rows are named), fewer than 2
        genes, missing controls or bad ``alpha``/``cv``.

    Warns
    -----
    UserWarning
        When a part is undefined and left out of its mean (NaN if nothing is
        left): the Spearman correlation of a sample whose profile or
        reconstruction is constant across genes; the integrity of a batch
        without evaluated samples, or whose centred profiles are all zero.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.metrics import interpretability_score
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 10))
    >>> round(interpretability_score(X, X, random_state=0).score, 3)
    1.0
    """
    from scipy.stats import rankdata

    Z = _as_matrix(Z, "Z")
    X = _as_matrix(X, "X")
    n = X.shape[0]
    if X.shape[1] < 2:
        raise ValueError(
            f"X has {X.shape[1]} gene (column){'s' if X.shape[1] != 1 else ''}; the Spearman "
            "correlation across genes needs at least 2: pass the expression of every gene."
        )
    if Z.shape[0] != n:
        raise ValueError(
            f"Z has {Z.shape[0]} rows but X has {n}; pass the embedding of exactly the "
            "samples of X, in the same order."
        )
    batch = check_labels(batch, n, "batch", allow_none=True)
    controls = _controls(is_control, control_label, y, n)
    R, alphas, n_splits = _cross_fit(Z, X, alpha, cv, random_state)

    evaluated = ~controls if controls.any() else np.ones(n, dtype=bool)
    rho = np.full(n, np.nan)
    ra = rankdata(R[evaluated], axis=1)
    xa = rankdata(X[evaluated], axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    xa -= xa.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho[evaluated] = np.einsum("ij,ij->i", ra, xa) / np.sqrt(
            np.einsum("ij,ij->i", ra, ra) * np.einsum("ij,ij->i", xa, xa)
        )
    batches, integrity, undefined = _structural_integrity(R, X, batch, controls, evaluated)
    spearman = float(np.nanmean(rho[evaluated])) if np.isfinite(rho).any() else float("nan")
    si = float(np.nanmean(integrity)) if np.isfinite(integrity).any() else float("nan")
    _warn_undefined(rho, evaluated, ra, xa, spearman, batches, undefined, si, controls.any())
    return InterpretabilityResult(
        score=(spearman + si) / 2.0,
        spearman=spearman,
        structural_integrity=si,
        sample_spearman=rho,
        batches=batches,
        batch_integrity=integrity,
        alphas=alphas,
        n_splits=n_splits,
    )


def _as_matrix(A, name):
    A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {A.shape}.")
    if A.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric; got dtype {A.dtype}.")
    A = A.astype(np.float64, copy=False)
    check_finite_rows(A, name, fix="drop or impute those rows first")
    return A


def _controls(is_control, control_label, y, n):
    if is_control is not None and control_label is not None:
        raise ValueError(
            "Pass either is_control or control_label (with y), not both."
        )
    if is_control is not None:
        mask = check_labels(is_control, n, "is_control")
        if mask.dtype != bool:
            raise TypeError(f"is_control must be a boolean mask; got dtype {mask.dtype}.")
        return mask
    if control_label is not None:
        if y is None:
            raise ValueError(
                f"control_label={control_label!r} needs y, the labels it is looked up in; "
                "pass y=... or is_control=... instead."
            )
        y = check_labels(y, n, "y")
        mask = control_mask(y, control_label)
        if not mask.any():
            raise ValueError(
                f"control_label={control_label!r} matches no entry of y (examples: "
                f"{format_examples(np.unique(y))}); pass the label of the controls."
            )
        return mask
    return np.zeros(n, dtype=bool)


def _decoder(alpha):
    from sklearn.linear_model import Ridge, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        if alpha <= 0:
            raise ValueError(f"alpha must be positive; got {alpha!r}.")
        return make_pipeline(StandardScaler(), Ridge(alpha=float(alpha)))
    alphas = np.asarray(alpha, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(alphas <= 0) or not np.all(np.isfinite(alphas)):
        raise ValueError(f"alpha must hold positive finite values; got {alpha!r}.")
    return make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))


def _cross_fit(Z, X, alpha, cv, random_state):
    """Out-of-fold reconstructions of X from Z and the penalty of each split."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, check_cv

    n = X.shape[0]
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if not 2 <= cv <= n:
            raise ValueError(f"cv must be between 2 and n_samples={n}; got {cv}.")
        splitter = KFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv)
    template = _decoder(alpha)
    R = np.full_like(X, np.nan)
    alphas = []
    for train, test in splitter.split(Z):
        model = clone(template).fit(Z[train], X[train])
        R[test] = model.predict(Z[test])
        last = model[-1]
        alphas.append(getattr(last, "alpha_", getattr(last, "alpha", np.nan)))
    missing = np.flatnonzero(np.isnan(R).any(axis=1))
    if missing.size:
        raise ValueError(
            f"cv left {missing.size} sample(s) out of every test fold (rows "
            f"{format_examples(missing)}); use splits whose test folds cover all samples."
        )
    return R, np.asarray(alphas, dtype=np.float64), len(alphas)


def _structural_integrity(R, X, batch, controls, evaluated):
    """Integrity of each batch, and why it is undefined (``"empty"``, ``"flat"`` or ``""``)."""
    if batch is None:
        batch = np.zeros(X.shape[0], dtype=np.int64)
    batches, codes = np.unique(batch, return_inverse=True)
    has_controls = controls.any()
    missing = [b for i, b in enumerate(batches) if has_controls and not controls[codes == i].any()]
    if missing:
        raise ValueError(
            f"{len(missing)} batch(es) have no control sample to centre on "
            f"({format_examples(missing)}); every batch needs controls, or pass no "
            "controls to centre each batch on its mean."
        )
    integrity = np.full(batches.size, np.nan)
    undefined = np.full(batches.size, "", dtype=object)
    for i in range(batches.size):  # one vectorised step per batch
        in_batch = codes == i
        ref = in_batch & controls if has_controls else in_batch
        rows = in_batch & evaluated
        if not rows.any():
            undefined[i] = "empty"
            continue
        A = X[rows] - X[ref].mean(axis=0)
        D = (R[rows] - R[ref].mean(axis=0)) - A
        norm = np.linalg.norm(A)
        # identical profiles centre to 0 exactly; their mean only rounds to them
        scale = max(np.abs(X[rows]).max(), np.abs(X[ref]).max())
        if norm > _CENTRED_ZERO * np.finfo(np.float64).eps * np.sqrt(A.size) * scale:
            integrity[i] = 1.0 - min(1.0, np.linalg.norm(D) / norm)
        else:
            undefined[i] = "flat"
    return batches, integrity, undefined


def _warn_undefined(rho, evaluated, ra, xa, spearman, batches, undefined, si, has_controls):
    """Warn, naming the part and the reason, where a correlation or an integrity is NaN."""
    bad = np.flatnonzero(evaluated & np.isnan(rho))
    if bad.size:
        parts = [part for part, flat in (("the expression profile X[i]", xa),
                                         ("its reconstruction", ra))
                 if (~np.any(flat != 0, axis=1)).any()]
        warnings.warn(
            f"spearman is undefined for {bad.size} of {int(evaluated.sum())} evaluated "
            f"sample(s) (row indices: {format_examples(bad)}): {' or '.join(parts)} is "
            "constant across genes, so its ranks have no variance; "
            + ("spearman is NaN." if np.isnan(spearman) else "they are left out of the mean."),
            UserWarning,
            stacklevel=3,
        )
    tail = ("structural_integrity is NaN." if np.isnan(si)
            else "those batches are left out of the mean.")
    empty = np.flatnonzero(undefined == "empty")
    if empty.size:
        warnings.warn(
            f"{empty.size} of {batches.size} batch(es) ({format_examples(batches[empty])}) "
            "have no evaluated (non-control) sample, so their structural_integrity is "
            f"undefined; {tail}",
            UserWarning,
            stacklevel=3,
        )
    flat = np.flatnonzero(undefined == "flat")
    if flat.size:
        centre = "the mean of its controls" if has_controls else "the batch mean"
        warnings.warn(
            f"structural_integrity is undefined for {flat.size} of {batches.size} batch(es) "
            f"({format_examples(batches[flat])}): their centred expression profiles are all "
            f"zero (every evaluated sample equals {centre}), so the reconstruction error has "
            f"nothing to be relative to; {tail}",
            UserWarning,
            stacklevel=3,
        )
