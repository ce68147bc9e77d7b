"""Closed-form multi-output ridge decoder from embeddings back to gene space."""

import numpy as np
from scipy import linalg, sparse


class LinearDecoder:
    """``X ~ (Z - z_mean) @ coef + x_mean``, fitted by ridge in closed form.

    Works with a sparse ``X`` (only ``Z.T @ X`` and the column means of ``X``
    are needed), and costs one ``d x d`` solve for any number of genes.
    """

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, Z, X):
        Z = np.asarray(Z, dtype=np.float64)
        self.z_mean = Z.mean(axis=0)
        Zc = Z - self.z_mean
        if sparse.issparse(X):
            self.x_mean = np.asarray(X.mean(axis=0)).ravel()
            cross = np.asarray(X.T @ Zc).T  # (d, genes); Zc is centred so x_mean drops out
        else:
            X = np.asarray(X, dtype=np.float64)
            self.x_mean = X.mean(axis=0)
            cross = Zc.T @ (X - self.x_mean)
        gram = Zc.T @ Zc
        gram[np.diag_indices_from(gram)] += self.alpha
        self.coef = linalg.solve(gram, cross, assume_a="pos").astype(np.float32)
        self.z_mean = self.z_mean.astype(np.float32)
        self.x_mean = self.x_mean.astype(np.float32)
        return self

    def predict(self, Z):
        return (np.asarray(Z, dtype=np.float32) - self.z_mean) @ self.coef + self.x_mean
