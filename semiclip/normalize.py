"""ControlNormalizer: deterministic control-based batch correction (center, center-scale, TVN)."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from . import _correction as C
from ._validation import check_finite_rows as _check_finite_rows_slow
from ._validation import check_labels, control_mask, format_examples

_SHRINKAGE = [None, StrOptions({"ledoit-wolf"}), Interval(numbers.Real, 0, 1, closed="both")]


# ------------------------------------------------------- shared input checks
def check_finite_rows(X):
    """``_validation.check_finite_rows`` after a cheap whole-array test."""
    if X.dtype.kind == "f" and np.isfinite(np.sum(X)):
        return  # a NaN or inf anywhere would make the sum non-finite
    _check_finite_rows_slow(X)


def _check_y(est, y, n_samples, keys=None):
    """Labels that identify the controls: ``keys`` when given, else ``y``."""
    name = type(est).__name__
    label_name = "y"
    if keys is not None:
        y, label_name = keys, "keys"
    if est.control_label is None:
        raise ValueError(
            f"{name} needs control_label to find the control samples (y == "
            f"control_label); got control_label=None. Set it to the label your "
            f"controls carry in y, e.g. {name}(control_label='DMSO')."
        )
    if y is None:
        raise ValueError(
            f"{name} requires y to be passed, but the target y is None; pass "
            "the sample labels (controls are the samples with y == control_label)."
        )
    y = check_labels(y, n_samples, name=label_name)
    controls = control_mask(y, est.control_label)
    if not controls.any():
        raise ValueError(
            f"No control samples: no entry of {label_name} equals control_label="
            f"{est.control_label!r} among the {n_samples} sample(s) (labels in y: "
            f"{format_examples(np.unique(y))}). "
            "Set control_label to the label of your control samples."
        )
    return y, controls


def _encode_batches(batch, n_samples, classes=None):
    """Integer code per row; ``classes`` are the batches seen in fit.

    Returns ``(classes, codes)``. ``batch=None`` means one batch; an unseen
    batch (when ``classes`` is given) is a ValueError listing the unseen values.
    """
    if batch is None:
        return None, np.zeros(n_samples, dtype=np.intp)
    batch = check_labels(batch, n_samples, name="batch")
    if classes is None:
        classes, codes = np.unique(batch, return_inverse=True)
        return classes, codes.ravel().astype(np.intp)
    try:
        codes = np.searchsorted(classes, batch).astype(np.intp)
        np.clip(codes, 0, classes.size - 1, out=codes)
        unseen = np.asarray(classes[codes] != batch, dtype=bool)
    except TypeError:
        raise ValueError(
            f"batch labels of dtype {batch.dtype} cannot be compared with the batches "
            f"seen in fit ({format_examples(classes)}, dtype {classes.dtype}); pass the "
            "same kind of labels as in fit."
        ) from None
    if unseen.any():
        raise ValueError(
            f"batch contains {np.unique(batch[unseen]).size} value(s) never seen in fit: "
            f"{format_examples(np.unique(batch[unseen]))} (batches seen in fit: "
            f"{format_examples(classes)}). Control statistics exist only for the "
            "batches of the training data; fit on data that includes controls of "
            "these batches."
        )
    return classes, codes


def _check_batch_consistency(est, batch):
    fitted_with_batch = est.batches_ is not None
    if fitted_with_batch and batch is None:
        raise ValueError(
            f"batch is required: this {type(est).__name__} was fitted with batch, "
            "so pass the batch of every row (e.g. transform(X, batch=plates))."
        )
    if not fitted_with_batch and batch is not None:
        raise ValueError(
            f"This {type(est).__name__} was fitted without batch (all rows as one "
            "batch); call it with batch=None, or refit with batch."
        )


def _label(value):
    return value.item() if hasattr(value, "item") else value


def _check_controls_per_batch(controls, codes, classes, minimum=2):
    """Raise if a batch has fewer than ``minimum`` controls; return the control groups."""
    n_groups = 1 if classes is None else classes.size
    groups = C.group_rows(codes, n_groups, controls)
    few = np.flatnonzero(groups.counts < minimum)
    if few.size:
        if classes is None:
            raise ValueError(
                f"Control statistics need at least {minimum} control samples; got "
                f"{groups.counts[0]} sample(s) with y == control_label. Add controls."
            )
        raise ValueError(
            f"{few.size} batch(es) have fewer than {minimum} control samples: "
            + ", ".join(f"{_label(classes[g])!r} ({groups.counts[g]} sample(s))" for g in few[:5])
            + (f", ... ({few.size} in total)" if few.size > 5 else "")
            + f". Every batch needs at least {minimum} controls (y == control_label) "
            "to estimate its statistics; drop these batches or merge them with another."
        )
    return groups


def _warn_degenerate(where, n_degenerate, n_total, what):
    if n_degenerate:
        warnings.warn(
            f"{n_degenerate} of {n_total} {what} have (near) zero variance in the "
            f"controls{where}; they are kept but left unscaled (scale 1) instead of "
            "being divided by ~0.",
            UserWarning,
            stacklevel=4,
        )


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
    reg_covar : float, default=0.5
        Added to the diagonal of every batch's control covariance before the
        CORAL inverse square root (EFAAR uses 0.5). TVN only.
    shrinkage : None, "ledoit-wolf" or float in [0, 1], default=None
        Shrink each batch's control covariance towards a scaled identity
        before CORAL: ``(1 - delta) S + delta tr(S)/d I`` with ``S`` the
        maximum likelihood covariance and ``delta`` given or estimated by
        :func:`sklearn.covariance.ledoit_wolf_shrinkage`. None uses the plain
        sample covariance (EFAAR). TVN only.
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

    See Also
    --------
    PEAAugmenter : Random relaxations of these corrections for training.

    Notes
    -----
    Zero-variance features (in a batch's controls, or in all controls) are
    guarded with an epsilon test: a standard deviation indistinguishable
    from zero (scikit-learn's ``StandardScaler`` rule, or below
    ``max(n, d) * eps`` times the largest one) is replaced by 1, so outputs
    stay finite; a warning says how many.

    Rank-deficient controls (fewer controls than features, e.g. 158 controls
    and 978 L1000 genes) give PCA components with no control variance. EFAAR
    divides them by their rounding-noise standard deviation (~1e-15), which
    turns treated samples into noise of size ~1e13 along them; here they are
    kept, left unscaled and a warning is emitted. Dropping them would
    delete every treated-sample direction the controls do not span.

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
        "shrinkage": _SHRINKAGE,
        "per_batch_scaling": ["boolean"],
        "basis": [StrOptions({"pca", "feature"})],
    }
    __metadata_request__fit = {"batch": True, "keys": True}
    __metadata_request__transform = {"batch": True}

    def __init__(
        self,
        method="tvn",
        *,
        control_label=None,
        reg_covar=0.5,
        shrinkage=None,
        per_batch_scaling=False,
        basis="pca",
    ):
        self.method = method
        self.control_label = control_label
        self.reg_covar = reg_covar
        self.shrinkage = shrinkage
        self.per_batch_scaling = per_batch_scaling
        self.basis = basis

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, batch=None, keys=None):
        """Estimate the control statistics of every batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Profiles to correct (uncorrected), finite.
        y : array-like of shape (n_samples,), default=None
            Sample labels; controls are ``y == control_label``. Ignored when
            ``keys`` is given.
        batch : array-like of shape (n_samples,), default=None
            Batch (plate) of every sample. None: all samples are one batch.
        keys : array-like of shape (n_samples,), default=None
            Sample labels used instead of ``y`` to find the controls, for
            pipelines whose ``y`` is a probe's target.

        Returns
        -------
        self : ControlNormalizer
            Fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite=False)
        check_finite_rows(X)
        _, controls = _check_y(self, y, X.shape[0], keys)
        self.batches_, codes = _encode_batches(batch, X.shape[0])
        ctrl = _check_controls_per_batch(controls, codes, self.batches_)
        self.n_controls_ = ctrl.counts
        where = "" if self.batches_ is None else " of some batches"
        if self.method == "tvn":
            stats = C.fit_tvn(
                X,
                ctrl,
                codes,
                reg=self.reg_covar,
                shrinkage=self.shrinkage,
                per_batch=self.per_batch_scaling,
                basis=self.basis,
            )
            cs, w = stats.center_scale, stats.whitening
            self.components_ = w.components
            self.component_scale_ = w.scale
            self.null_components_ = w.null
            _warn_degenerate(where if self.per_batch_scaling else "", cs.degenerate.any(axis=0).sum(), X.shape[1], "features")
            _warn_degenerate(
                f" (rank-deficient: the {ctrl.order.size} controls span "
                f"{X.shape[1] - w.null.sum()} of {X.shape[1]} dimensions)",
                w.null.sum(),
                X.shape[1],
                "PCA components",
            )
        else:
            cs = C.fit_center_scale(X, ctrl, with_scale=self.method == "center_scale")
            stats = cs
            self.components_ = self.component_scale_ = self.null_components_ = None
            if cs.degenerate is not None:
                _warn_degenerate(where, cs.degenerate.any(axis=0).sum(), X.shape[1], "features")
        self.mean_, self.scale_ = cs.mean, cs.scale
        self._stats = stats
        return self

    def transform(self, X, *, batch=None):
        """Correct ``X`` with the control statistics of each sample's batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Profiles of batches seen in fit, finite.
        batch : array-like of shape (n_samples,), default=None
            Batch of every sample; required when fit had ``batch``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Corrected profiles (same dtype as ``X``, float32 or float64).
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_all_finite=False, reset=False
        )
        check_finite_rows(X)
        _check_batch_consistency(self, batch)
        _, codes = _encode_batches(batch, X.shape[0], self.batches_)
        n_batches = 1 if self.batches_ is None else self.batches_.size
        groups = C.group_rows(codes, n_batches)
        if self.method != "tvn":
            return C.apply_center_scale_by_group(X, self._stats, groups)
        return C.apply_tvn(X, self._stats, codes, groups)

    def fit_transform(self, X, y=None, *, batch=None, keys=None):
        """Fit on ``X`` and return it corrected (see :meth:`fit`, :meth:`transform`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Profiles.
        y : array-like of shape (n_samples,), default=None
            Sample labels; controls are ``y == control_label``.
        batch : array-like of shape (n_samples,), default=None
            Batch of every sample.
        keys : array-like of shape (n_samples,), default=None
            Labels used instead of ``y`` to find the controls.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Corrected profiles.
        """
        return self.fit(X, y, batch=batch, keys=keys).transform(X, batch=batch)

    def get_feature_names_out(self, input_features=None):
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
