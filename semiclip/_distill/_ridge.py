"""RidgeDistiller: closed-form ridge regression onto each key's teacher centroid."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.linear_model import Ridge
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._core import check_labels, control_mask
from .._core.compat import Interval, StrOptions
from .._core.compat import fit_context as _fit_context
from ._degenerate import check_teacher
from ._encoders import encode, fit_encoder
from ._groups import sample_groups
from ._params import SHARED_CONSTRAINTS, fill_doc
from ._ridge_start import fit_ridge_map, select_alpha
from ._weak_pairing import check_X, distiller_tags, pair_with_bank, resolve_bank

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._core import ImageBank

__all__ = ["RidgeDistiller"]


@fill_doc
class RidgeDistiller(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Ridge regression from frozen-encoder features onto each key's mean teacher embedding.

    The strong, cheap baseline for cross-modal distillation on small data:
    the same inputs and weak pairing as :class:`SemiClippedTransformer`, but a
    linear map fitted in closed form to the teacher centroid of every
    sample's key.

    Parameters
    ----------
    encoder : "pca", None or fitted transformer, default="pca"
        Frozen encoder, as in :class:`SemiClippedTransformer`.
    [[encoder_dim]]
    alpha : "auto" or float, default="auto"
        Ridge penalty. ``"auto"``: chosen by K-fold (5) over the
        perturbation groups (see ``fit``'s ``groups``) on the held-out keys'
        cross-modal MRR + RSA, among 0.001-100 times the mean eigenvalue of
        the features' centred Gram matrix, and the map's outputs are then
        rescaled about their mean to the spread of the teacher centroids
        (the same map as the ridge start of
        :class:`SemiClippedTransformer`); a float: that penalty, no
        rescaling (the behaviour before ``"auto"``).
    [[unpaired]]
    [[control_label]]
    [[image_bank]]
    random_state : int, RandomState instance or None, default=None
        Seeds the PCA encoder and the folds of ``alpha="auto"`` (None: the
        same folds every time, so that the fit is deterministic).

    Attributes
    ----------
    encoder_ : object
        The frozen encoder.
    ridge_ : sklearn.linear_model.Ridge
        The fitted regression (with ``alpha="auto"``, its ``coef_`` and
        ``intercept_`` are the scale-matched map's).
    alpha_ : float
        The penalty used.
    alpha_search_ : dict or None
        With ``alpha="auto"``: the chosen alpha, why, and every candidate's
        mean held-out scores (``search``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    See Also
    --------
    SemiClippedTransformer : Contrastive distillation with a trainable adapter.

    Examples
    --------
    >>> from semiclip import RidgeDistiller
    >>> from semiclip.datasets import make_weakly_paired
    >>> data = make_weakly_paired(n_perturbations=60, n_genes=100, random_state=0)
    >>> est = RidgeDistiller(encoder_dim=32, control_label="control")
    >>> est.fit_transform(data.X, data.y, image_bank=data.image_bank).shape[1]
    128
    """

    _parameter_constraints = {
        **SHARED_CONSTRAINTS,
        "alpha": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
    }
    __metadata_request__fit = {"image_bank": True, "keys": True, "groups": True}

    def __init__(self, *, encoder: Any = "pca", encoder_dim: int = 256,
                 alpha: float | str = "auto",
                 unpaired: str = "raise", control_label: Any = None,
                 image_bank: ImageBank | None = None,
                 random_state: int | np.random.RandomState | None = None) -> None:
        self.encoder = encoder
        self.encoder_dim = encoder_dim
        self.alpha = alpha
        self.unpaired = unpaired
        self.control_label = control_label
        self.image_bank = image_bank
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None, *, image_bank: ImageBank | None = None,
            keys: ArrayLike | None = None, groups: ArrayLike | None = None) -> RidgeDistiller:
        """Fit the encoder and the ridge map onto teacher centroids.

        Parameters
        ----------
        [[ridge_fit_X]]
        [[fit_y]]
        [[fit_image_bank]]
        [[fit_keys]]
        [[fit_groups]]

        Returns
        -------
        self : RidgeDistiller
            The fitted estimator.
        """
        X = check_X(self, X, reset=True)
        labels, name = (y, "y") if keys is None else (keys, "keys")
        y = check_labels(labels, X.shape[0], name=name)
        bank = resolve_bank(image_bank, self.image_bank)
        codes = pair_with_bank(y, control_mask(y, self.control_label), bank,
                               unpaired=self.unpaired, control_label=self.control_label)
        # a bank of zeros leaves nothing to regress onto (zero centroids of some keys are fine)
        check_teacher(bank, np.unique(codes[codes >= 0]), "kd_mse", "centroid")
        rs = check_random_state(self.random_state)
        self.encoder_ = fit_encoder(self.encoder, self.encoder_dim, X, rs)
        Z = encode(self.encoder_, X)
        paired = codes >= 0
        targets = bank.centroids()
        self.alpha_search_ = None
        if isinstance(self.alpha, str):  # "auto": held-out choice and scale matching
            groups = sample_groups(groups, y, X.shape[0])[paired]
            self.alpha_, self.alpha_search_ = select_alpha(
                Z[paired], codes[paired], targets, groups,
                random_state=np.random.default_rng(  # None: fixed folds, a deterministic fit
                    0 if self.random_state is None else rs.randint(2**31 - 1)),
                what="RidgeDistiller(alpha='auto')")
            ridge_map = fit_ridge_map(Z[paired], codes[paired], targets, self.alpha_)
            self.ridge_ = Ridge(alpha=self.alpha_)  # holding the scale-matched map
            self.ridge_.coef_ = np.ascontiguousarray(ridge_map.weight)
            self.ridge_.intercept_ = ridge_map.bias.copy()
            self.ridge_.n_features_in_ = Z.shape[1]
            return self
        self.alpha_ = float(self.alpha)
        self.ridge_ = Ridge(alpha=self.alpha).fit(Z[paired], targets[codes[paired]])
        return self

    def __sklearn_tags__(self):
        return distiller_tags(super().__sklearn_tags__())

    @property
    def _n_features_out(self):  # scikit-learn's feature-names mixin reads it
        return self.ridge_.coef_.shape[0]

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Predict the teacher embedding of every sample.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Transcriptomics profiles, prepared as for ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_dims), float32
            The predicted embedding of every sample, in the teacher space.
        """
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        return self.ridge_.predict(encode(self.encoder_, X)).astype(np.float32)

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None, *,
                      image_bank: ImageBank | None = None, keys: ArrayLike | None = None,
                      groups: ArrayLike | None = None) -> np.ndarray:
        """Fit, then transform ``X`` (same as ``fit(...).transform(X)``).

        Parameters
        ----------
        [[ridge_fit_X]]
        [[fit_y]]
        [[fit_image_bank]]
        [[fit_keys]]
        [[fit_groups]]

        Returns
        -------
        Z : ndarray of shape (n_samples, n_dims), float32
            The predicted embedding of every training sample.
        """
        return self.fit(X, y, image_bank=image_bank, keys=keys, groups=groups).transform(X)
