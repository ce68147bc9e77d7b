"""ControlNormalizer: deterministic control-based batch correction (center, center-scale, TVN)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._core.compat import Interval, StrOptions
from .._core.compat import check_feature_names_in as _check_feature_names_in
from .._core.compat import fit_context as _fit_context
from ._center_scale import apply_center_scale_by_group, fit_center_scale
from ._checks import (
    SHRINKAGE,
    check_batch_consistency,
    check_controls,
    check_controls_per_batch,
    check_X,
    constant_features_note,
    encode_batches,
    fill_doc,
    warn_degenerate_controls,
)
from ._groups import group_rows
from ._tvn import apply_tvn, fit_tvn

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["ControlNormalizer", "fit_statistics"]


def fit_statistics(norm, X, y=None, *, batch=None, keys=None):
    """Fit the control statistics of ``norm`` (a ControlNormalizer) and set its attributes.

    :meth:`ControlNormalizer.fit` without its warning, for the estimators of
    this package that fit a normalizer of their own choice
    (:class:`~semiclip.PEAAugmenter`'s canonical TVN) and say themselves what
    the user should know. Returns ``norm``.
    """
    X = check_X(norm, X, reset=True)
    _, controls = check_controls(norm, y, X.shape[0], keys)
    norm.batches_, codes = encode_batches(batch, X.shape[0])
    ctrl = check_controls_per_batch(controls, codes, norm.batches_)
    norm.n_controls_ = ctrl.counts
    if norm.method == "tvn":
        stats = fit_tvn(
            X,
            ctrl,
            codes,
            reg=norm.reg_covar,
            shrinkage=norm.shrinkage,
            per_batch=norm.per_batch_scaling,
            basis=norm.basis,
        )
        cs, w = stats.center_scale, stats.whitening
        norm.components_ = w.components
        norm.component_scale_ = w.scale
        norm.null_components_ = w.null
    else:
        cs = fit_center_scale(X, ctrl, with_scale=norm.method == "center_scale")
        stats = cs
        norm.components_ = norm.component_scale_ = norm.null_components_ = None
    norm.mean_, norm.scale_ = cs.mean, cs.scale
    norm.statistics_ = stats
    return norm


@fill_doc
class ControlNormalizer(TransformerMixin, BaseEstimator):
    """Batch correction on control samples: center, center-scale or TVN.

    Every statistic is estimated on the control samples (``y ==
    control_label``) and applied to every sample of the same batch (plate).

    - ``"center"``: subtract the mean of the batch's controls.
    - ``"center_scale"``: also divide by the standard deviation (``ddof=0``)
      of the batch's controls.
    - ``"tvn"``: typical variation normalisation, as EFAAR's
      ``tvn_on_controls``. With ``mu, s`` the mean and standard deviation of
      all controls, ``V`` the principal axes of the centered-scaled
      controls (all ``n_features`` components, no whitening inside the PCA),
      ``t`` the standard deviation of each component on the controls and
      ``C_b`` the sample covariance (``ddof=1``) of batch ``b``'s controls
      after these steps::

          z = ((x - mu) / s - m) @ V.T / t             (PCA basis)
          tvn(x) = z @ (C_b + reg_covar * I)^(-1/2)    (CORAL, per batch)

      ``m`` is the control mean after the first step (~0). The inverse
      square root uses :func:`scipy.linalg.eigh`. With ``basis="feature"``
      the result is rotated back, ``tvn(x) @ V`` (an orthogonal map: cosine
      geometry is unchanged).

    Read more in the :ref:`User Guide <batch_correction>`.

    Parameters
    ----------
    method : {"tvn", "center", "center_scale"}, default="tvn"
        The correction.
    control_label : object, default=None
        Label of the control samples in ``y``. Required: ``fit`` raises a
        ValueError when it is None.
    [[reg_covar]]
    [[shrinkage]]
    per_batch_scaling : bool, default=False
        TVN only: center-scale each batch on its own controls before the PCA
        (instead of on all controls, EFAAR's definition). Then each batch's
        controls have mean zero after the correction.
    basis : {"pca", "feature"}, default="pca"
        TVN only: output in the control-PCA basis (EFAAR; features named
        ``pc0, pc1, ...``) or rotated back into the input feature basis
        (features keep their names; the input that
        :class:`~semiclip.PEAAugmenter` and the canonical correction of
        :class:`~semiclip.SemiClippedTransformer` use).

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    batches_ : ndarray of shape (n_batches,) or None
        Sorted batch labels seen in fit; None when fitted without ``batch``
        (all samples form one batch).
    n_controls_ : ndarray of shape (n_batches,)
        Number of controls per batch.
    mean_ : ndarray of shape (n_batches, n_features_in_) or (1, n_features_in_)
        Control mean per batch (``center``/``center_scale``, and TVN with
        ``per_batch_scaling``) or of all controls (TVN).
    scale_ : ndarray of the shape of ``mean_`` or None
        Control standard deviation (1 where it is ~0); None for ``center``.
    components_ : ndarray of shape (n_features_in_, n_features_in_) or None
        TVN: principal axes of the controls (rows, by decreasing variance,
        completed to a full basis when there are fewer controls than
        features); None otherwise.
    component_scale_ : ndarray of shape (n_features_in_,) or None
        TVN: control standard deviation of each component (1 for null
        components).
    null_components_ : ndarray of shape (n_features_in_,) or None
        TVN: mask of the components with ~zero control variance.
    statistics_ : CenterScale or TVNStats
        Everything :meth:`transform` applies (frozen dataclasses: the
        per-batch or global center-scale, the whitening and one CORAL per
        batch), shared with :class:`~semiclip.PEAAugmenter`.

    See Also
    --------
    PEAAugmenter : Random relaxations of these corrections for training.

    Notes
    -----
    Zero-variance features (in a batch's controls, or in all controls) are
    guarded with an epsilon test: a standard deviation indistinguishable
    from zero (scikit-learn's ``StandardScaler`` rule, or below
    ``max(n, d) * eps`` times the largest one) is replaced by 1, so outputs
    stay finite; one warning per ``fit`` names them and what to do.

    Rank-deficient controls (fewer controls than features, e.g. 158 controls
    and 978 L1000 genes) give PCA components with no control variance. EFAAR
    divides them by their rounding-noise standard deviation (~1e-15), which
    turns treated samples into noise of size ~1e13 along them; here they are
    kept and left unscaled, and ``fit`` emits one UserWarning that says how
    many, what it means and what to do (``method="center_scale"``,
    ``shrinkage="ledoit-wolf"`` or more controls); silence it with
    ``warnings.filterwarnings("ignore", message=".*zero variance in the
    controls")``. Dropping them would delete every treated-sample direction
    the controls do not span.

    When TVN helps: with many controls per batch (tens to hundreds per
    plate and not many more features than controls) CORAL removes
    batch-specific covariance. With few controls per batch and
    high-dimensional features the per-batch covariances are noisy and the
    whitening amplifies that noise; prefer ``shrinkage="ledoit-wolf"`` or
    the safer ``method="center_scale"`` there.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip import ControlNormalizer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)) + np.repeat([[0.0], [5.0]], 20, axis=0)
    >>> y = np.tile(["ctrl", "ctrl", "geneA", "geneB"], 10)
    >>> plate = np.repeat(["p1", "p2"], 20)
    >>> norm = ControlNormalizer(method="center", control_label="ctrl")
    >>> Xt = norm.fit_transform(X, y, batch=plate)
    >>> bool(np.allclose(Xt[(y == "ctrl") & (plate == "p2")].mean(axis=0), 0))
    True
    >>> ControlNormalizer(control_label="ctrl").fit_transform(X, y, batch=plate).shape
    (40, 3)
    """

    _parameter_constraints = {
        "method": [StrOptions({"tvn", "center", "center_scale"})],
        "control_label": "no_validation",
        "reg_covar": [Interval(numbers.Real, 0, None, closed="neither")],
        "shrinkage": SHRINKAGE,
        "per_batch_scaling": ["boolean"],
        "basis": [StrOptions({"pca", "feature"})],
    }
    __metadata_request__fit = {"batch": True, "keys": True}
    __metadata_request__transform = {"batch": True}

    def __init__(self, method: str = "tvn", *, control_label: Any = None, reg_covar: float = 0.5,
                 shrinkage: float | str | None = None, per_batch_scaling: bool = False,
                 basis: str = "pca") -> None:
        self.method = method
        self.control_label = control_label
        self.reg_covar = reg_covar
        self.shrinkage = shrinkage
        self.per_batch_scaling = per_batch_scaling
        self.basis = basis

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None, *, batch: ArrayLike | None = None,
            keys: ArrayLike | None = None) -> ControlNormalizer:
        """Estimate the control statistics of every batch.

        Parameters
        ----------
        [[X_fit]]
        y : array-like of shape (n_samples,), default=None
            Sample labels; controls are ``y == control_label``. Ignored when
            ``keys`` is given.
        [[batch_fit]]
        [[keys]]

        Returns
        -------
        self : ControlNormalizer
            Fitted estimator.
        """
        fit_statistics(self, X, y, batch=batch, keys=keys)
        if self.method == "tvn" and not self.per_batch_scaling:
            batches = None  # one center-scale on all controls
        else:
            batches = self.batches_
        cs = self.statistics_ if self.method != "tvn" else self.statistics_.center_scale
        constant = constant_features_note(cs.degenerate, getattr(self, "feature_names_in_", None),
                                          batches)
        warn_degenerate_controls(f"{type(self).__name__}(method={self.method!r})", constant,
                                 self.null_components_, int(self.n_controls_.sum()))
        return self

    def transform(self, X: ArrayLike, *, batch: ArrayLike | None = None) -> np.ndarray:
        """Correct ``X`` with the control statistics of each sample's batch.

        Parameters
        ----------
        [[X_seen]]
        [[batch_seen]]

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Corrected profiles (same dtype as ``X``, float32 or float64).
        """
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        check_batch_consistency(self, batch)
        _, codes = encode_batches(batch, X.shape[0], self.batches_)
        n_batches = 1 if self.batches_ is None else self.batches_.size
        groups = group_rows(codes, n_batches)
        if self.method != "tvn":
            return apply_center_scale_by_group(X, self.statistics_, groups)
        return apply_tvn(X, self.statistics_, codes, groups)

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None, *,
                      batch: ArrayLike | None = None, keys: ArrayLike | None = None) -> np.ndarray:
        """Fit on ``X`` and return it corrected (see :meth:`fit`, :meth:`transform`).

        Parameters
        ----------
        [[X_fit]]
        y : array-like of shape (n_samples,), default=None
            Sample labels; controls are ``y == control_label``.
        [[batch_fit]]
        [[keys]]

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Corrected profiles.
        """
        return self.fit(X, y, batch=batch, keys=keys).transform(X, batch=batch)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Output feature names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names (checked against those seen in fit).

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input names, or ``pc0, pc1, ...`` for TVN in the PCA basis.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if self.method == "tvn" and self.basis == "pca":
            return np.asarray([f"pc{i}" for i in range(self.n_features_in_)], dtype=object)
        return names

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
