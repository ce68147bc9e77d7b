"""Whitening and CORAL: the covariance steps of TVN, fitted on control rows.

- **whitening** (:func:`fit_whitening`): PCA of the (centered) controls with
  all ``n_features`` components, then division of every component by its
  standard deviation on the controls. In the PCA basis this is EFAAR's
  "PCA + second center-scale"; in the feature basis the rotation is undone
  (``V.T diag(1/s) V``, an orthogonal change of basis).
- **CORAL** (:func:`fit_coral`): right-multiplication of a batch by
  ``(Cov_ctrl + reg * I)^(-1/2)`` (sample covariance, ``ddof=1``, optionally
  shrunk), computed with :func:`scipy.linalg.eigh` of a symmetric matrix.

Null PCA components of rank-deficient controls are left unscaled (scale 1)
instead of being divided by ~0; the mask is returned so callers can warn.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import linalg

from ._groups import EPS

__all__ = ["Coral", "Whitening", "fit_coral", "fit_whitening"]


@dataclass(frozen=True)
class Whitening:
    """PCA of the controls with every component scaled to unit control variance.

    Attributes: ``mean`` (control mean removed before the rotation),
    ``components`` (``(n_features, n_features)``, rows are orthonormal
    principal axes by decreasing variance, completed by an orthonormal basis
    of the directions the controls do not span), ``scale`` (control standard
    deviation of each component, ``ddof=0``; 1 for null components) and
    ``null`` (mask of components left unscaled).
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    null: np.ndarray

    @cached_property
    def _pca_matrix(self):
        return self.components.T / self.scale

    @cached_property
    def _feature_matrix(self):
        return self._pca_matrix @ self.components

    def matrix(self, basis="pca"):
        """Linear map applied after removing ``mean`` (computed once, cached).

        ``"pca"``: ``V.T / scale`` (EFAAR's basis); ``"feature"``:
        ``V.T diag(1/scale) V`` (the same whitening rotated back).
        """
        return self._feature_matrix if basis == "feature" else self._pca_matrix


def _sign_flip(Vt):
    # scikit-learn's svd_flip(u_based_decision=False): largest |entry| positive.
    idx = np.argmax(np.abs(Vt), axis=1)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    return Vt * signs[:, None]


def fit_whitening(Z):
    """Fit :class:`Whitening` on control rows ``Z`` (all components kept).

    The axes come from an SVD of the centered controls (a covariance
    :func:`scipy.linalg.eigh` when there are at least ten times more
    controls than features, the choice of ``PCA(svd_solver="auto")``).
    With fewer controls than features, the axes are completed to a full
    orthonormal basis; those components and any with rounding-level
    variance are null: kept, but left unscaled.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    mean = Z.mean(axis=0)
    Zc = Z - mean
    if n >= 10 * d:
        lam, V = linalg.eigh(Zc.T @ Zc, driver="evd")
        lam, Vt = lam[::-1], V[:, ::-1].T
        S = np.sqrt(np.clip(lam, 0.0, None))
        # eigenvalues are accurate to ~eps * lam[0]: judge null ones on that scale
        # (their square roots, ~sqrt(eps) * S[0], would pass a test on S)
        null = lam <= lam[0] * max(n, d) * EPS
    else:
        _, S, Vt = linalg.svd(Zc, full_matrices=n < d)
        S = np.concatenate([S, np.zeros(d - S.size)])
        null = S <= S[0] * max(n, d) * EPS
    if not S[0] > 0:
        null = np.ones(d, dtype=bool)
    Vt = _sign_flip(Vt)
    scale = S / np.sqrt(n)
    scale[null] = 1.0
    return Whitening(mean=mean, components=Vt, scale=scale, null=null)


# -------------------------------------------------------------------- CORAL
@dataclass(frozen=True)
class Coral:
    """The matrix ``W = identity * I + U diag(coef) U.T`` (or ``dense``).

    Low-rank form when a batch has fewer controls than features (cheap to
    fit and apply); dense ``W`` otherwise.
    """

    identity: float
    vectors: np.ndarray | None = None
    coef: np.ndarray | None = None
    dense: np.ndarray | None = None

    def apply(self, Z):
        """Return ``Z @ W``."""
        if self.dense is not None:
            return Z @ self.dense.astype(Z.dtype, copy=False)
        U = self.vectors.astype(Z.dtype, copy=False)
        out = (Z @ U) * self.coef.astype(Z.dtype, copy=False)
        out = out @ U.T
        out += self.identity * Z
        return out


def fit_coral(Z, reg=0.5, shrinkage=None):
    """CORAL whitening ``(Cov + reg * I)^(-1/2)`` of control rows ``Z``.

    ``Cov`` is the sample covariance (``ddof=1``). With ``shrinkage``
    (``"ledoit-wolf"`` or a float ``delta`` in [0, 1]), ``Cov`` is instead
    ``(1 - delta) * S + delta * trace(S) / d * I`` with ``S`` the maximum
    likelihood covariance (``ddof=0``), as in :mod:`sklearn.covariance`.
    The inverse square root comes from :func:`scipy.linalg.eigh`: of the
    ``d x d`` covariance, or, with ``n <= d`` controls, of the ``n x n``
    Gram matrix when ``n < d`` (same nonzero eigenvalues; a low-rank form,
    cheaper to fit; the other directions get ``reg_total^(-1/2)``).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    Zc = Z - Z.mean(axis=0)
    if shrinkage is None:
        alpha, extra = 1.0 / (n - 1), float(reg)
    else:
        if isinstance(shrinkage, str):
            from sklearn.covariance import ledoit_wolf_shrinkage

            delta = float(ledoit_wolf_shrinkage(Zc, assume_centered=True))
        else:
            delta = float(shrinkage)
        mu = float(np.einsum("ij,ij->", Zc, Zc)) / (n * d)
        alpha, extra = (1.0 - delta) / n, float(reg) + delta * mu
    if n < d:
        lam, Q = linalg.eigh(alpha * (Zc @ Zc.T), driver="evd")
        keep = lam > max(lam[-1], 0.0) * max(n, d) * EPS
        lam, Q = lam[keep], Q[:, keep]
        U = (Zc.T @ Q) / np.sqrt(lam / alpha)
        base = extra**-0.5
        return Coral(identity=base, vectors=U, coef=(lam + extra) ** -0.5 - base)
    lam, U = linalg.eigh(alpha * (Zc.T @ Zc), driver="evd")
    lam = np.clip(lam, 0.0, None) + extra
    return Coral(identity=0.0, dense=(U * lam**-0.5) @ U.T)
