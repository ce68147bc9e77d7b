"""The closed-form ridge start: alpha chosen on held-out perturbations, outputs scale-matched.

RSA with the teacher is maximised by the conditional mean ``E[teacher | x]``,
which a ridge map of the frozen features onto each key's teacher centroid
estimates. :class:`~semiclip.SemiClippedTransformer` (``init="ridge"``)
starts its adapter at that map and fine-tunes it with the contrastive loss
(held near it by ``anchor_weight``); :class:`~semiclip.RidgeDistiller`
(``alpha="auto"``) is that map.

- **alpha** (``"auto"``): K-fold over *groups* (perturbations: the compound
  of keys ``"compound|dose"``, see :mod:`._groups`), scored on the
  held-out groups' keys by cross-modal MRR + RSA, the two scores users
  measure. Choosing by squared error instead shrinks every output to the
  intercept when the signal is weak (the error of the mean is hard to beat),
  which is the worst map for retrieval. The grid is relative to the
  features' scale (:data:`ALPHA_GRID` times the mean eigenvalue of the
  centred Gram matrix), so that it means the same on any encoder.
- **scale matching**: the fitted map's per-key outputs are rescaled about
  their mean to the spread of the teacher centroids, ``E||c - mean c||^2``
  (ridge shrinks them; cosine scores do not care but the anchor and the
  contrastive fine-tune start from the teacher's units).
"""

import warnings

import numpy as np

__all__ = [
    "ALPHA_GRID",
    "N_FOLDS",
    "RidgeMap",
    "centroid_spread",
    "fit_ridge_map",
    "group_folds",
    "select_alpha",
]

#: ``ridge_alpha="auto"`` tries these multiples of the mean eigenvalue of the features' Gram
ALPHA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
#: folds over perturbation groups of ``ridge_alpha="auto"`` (fewer when there are fewer groups)
N_FOLDS = 5
#: fewer groups than this: too few held-out perturbations per fold to choose alpha
MIN_GROUPS = 10
#: the relative alpha used when ``"auto"`` cannot choose
FALLBACK_RELATIVE_ALPHA = 1.0


def centroid_spread(centroids):
    """``E||c - mean c||^2`` over the rows (1.0 when they have no spread)."""
    c = np.asarray(centroids, dtype=np.float64)
    spread = float(np.mean(np.sum((c - c.mean(axis=0)) ** 2, axis=1))) if c.shape[0] else 0.0
    return spread if spread > 0 and np.isfinite(spread) else 1.0


class RidgeMap:
    """``out = (Z - z_mean) @ coef + y_mean``, as float64 arrays (``coef``: (d_in, d_out))."""

    def __init__(self, coef, z_mean, y_mean, alpha):
        self.coef, self.z_mean, self.y_mean, self.alpha = coef, z_mean, y_mean, float(alpha)

    @property
    def weight(self):
        """The ``(d_out, d_in)`` weight of an equivalent ``torch.nn.Linear``."""
        return self.coef.T

    @property
    def bias(self):
        return self.y_mean - self.z_mean @ self.coef

    def predict(self, Z):
        return (np.ascontiguousarray(Z, dtype=np.float64) - self.z_mean) @ self.coef + self.y_mean


class _Solver:
    """Ridge solutions of one training set for many alphas from one SVD."""

    def __init__(self, Z, Y):
        # C order: LAPACK's result must not depend on the caller's memory layout
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        self.z_mean, self.y_mean = Z.mean(axis=0), Y.mean(axis=0)
        U, self.s, Vt = np.linalg.svd(Z - self.z_mean, full_matrices=False)
        self.V = Vt.T
        self.UtY = U.T @ (Y - self.y_mean)

    def coef(self, alpha):
        return self.V @ ((self.s / (self.s ** 2 + alpha))[:, None] * self.UtY)


def _scale_matched(solver, alpha, Z, codes, centroids):
    """The ridge map of ``alpha`` with its per-key outputs rescaled to the centroids' spread."""
    coef = solver.coef(alpha)
    pred = (np.ascontiguousarray(Z, dtype=np.float64) - solver.z_mean) @ coef
    keys, inverse = np.unique(codes, return_inverse=True)
    means = np.zeros((keys.size, pred.shape[1]))
    np.add.at(means, inverse, pred)
    means /= np.bincount(inverse)[:, None]
    have = float(np.mean(np.sum((means - means.mean(axis=0)) ** 2, axis=1)))
    want = centroid_spread(centroids[keys])
    factor = np.sqrt(want / have) if have > 0 and np.isfinite(have) else 1.0
    return RidgeMap(coef * factor, solver.z_mean, solver.y_mean, alpha)


def _relative_unit(Z):
    """The mean eigenvalue of the centred Gram matrix (the scale of the alpha grid)."""
    Z = np.asarray(Z, dtype=np.float64)
    unit = float(np.sum((Z - Z.mean(axis=0)) ** 2)) / max(Z.shape[1], 1)
    return unit if unit > 0 and np.isfinite(unit) else 1.0


def group_folds(groups, n_folds, rng):
    """``n_folds`` disjoint sets of groups (shuffled by ``rng``)."""
    unique = np.unique(groups)
    order = rng.permutation(unique.size)
    return [unique[order[i::n_folds]] for i in range(n_folds)]


def select_alpha(Z, codes, centroids, groups, *, random_state, grid=ALPHA_GRID, n_folds=N_FOLDS,
                 what="ridge_alpha='auto'"):
    """``(alpha, record)``: the alpha of the best mean held-out ``MRR + RSA`` over K folds.

    Parameters
    ----------
    Z : ndarray (n, d_in)
        Frozen features of the training samples.
    codes : ndarray (n,)
        Key code of every sample (rows of ``centroids``).
    centroids : ndarray (n_keys, d_out)
    groups : ndarray (n,)
        Perturbation of every sample: a fold holds out whole groups.
    random_state : numpy.random.Generator
    grid : sequence of float
        Relative alphas (times the mean eigenvalue of the centred Gram).

    Returns
    -------
    alpha : float
        Absolute alpha.
    record : dict
        ``{"chosen", "relative", "n_folds", "n_groups", "search": [...], "reason"}``.
        When it cannot choose (fewer than :data:`MIN_GROUPS` groups) it
        warns and falls back to :data:`FALLBACK_RELATIVE_ALPHA`.
    """
    from ._selection import held_out_scores

    unit = _relative_unit(Z)
    n_groups = int(np.unique(groups).size)
    record = {"n_groups": n_groups, "grid": [float(g) for g in grid]}
    if n_groups < MIN_GROUPS:
        alpha = FALLBACK_RELATIVE_ALPHA * unit
        record.update(chosen=alpha, relative=FALLBACK_RELATIVE_ALPHA, n_folds=0, search=[],
                      reason=f"could not choose: {n_groups} perturbation group(s), fewer than "
                             f"{MIN_GROUPS}; used {FALLBACK_RELATIVE_ALPHA:g} x the features' "
                             "mean eigenvalue")
        warnings.warn(f"{what} could not choose alpha: only {n_groups} perturbation group(s) "
                      f"(needs {MIN_GROUPS} for held-out folds); using alpha={alpha:.4g}. Set "
                      "ridge_alpha to a number, or add perturbations.", UserWarning, stacklevel=2)
        return alpha, record
    k = int(min(n_folds, n_groups // 2))
    totals = np.zeros((k, len(grid), 2))
    for f, held in enumerate(group_folds(groups, k, random_state)):
        test = np.isin(groups, held)
        solver = _Solver(Z[~test], centroids[codes[~test]])
        for j, g in enumerate(grid):
            ridge = _scale_matched(solver, g * unit, Z[~test], codes[~test], centroids)
            scores, _ = held_out_scores(ridge.predict(Z[test]), codes[test], centroids)
            rsa = scores["rsa"] if np.isfinite(scores["rsa"]) else -1.0
            totals[f, j] = scores["mrr"], rsa
    mean = totals.mean(axis=0)
    best = int(np.argmax(mean.sum(axis=1)))
    alpha = float(grid[best] * unit)
    record.update(
        chosen=alpha, relative=float(grid[best]), n_folds=k,
        search=[{"relative_alpha": float(g), "alpha": float(g * unit), "mrr": float(m[0]),
                 "rsa": float(m[1])} for g, m in zip(grid, mean)],
        reason=f"highest mean held-out MRR + RSA over {k} folds of {n_groups} perturbation "
               "groups")
    return alpha, record


def fit_ridge_map(Z, codes, centroids, alpha):
    """The scale-matched ridge map of ``Z`` onto ``centroids[codes]`` with ``alpha``."""
    solver = _Solver(Z, centroids[codes])
    return _scale_matched(solver, alpha, Z, codes, centroids)
