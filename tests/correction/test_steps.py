"""Tests of the batch-correction core (semiclip._correction) against slow references."""

import numpy as np
import pytest
from scipy import linalg

from semiclip import _correction as C


def _data(rng, n=300, d=8, n_batches=3, ctrl_frac=0.4):
    A = rng.normal(size=(d, d))
    X = rng.normal(size=(n, d)) @ A + 3.0 * rng.normal(size=d)
    batch = rng.integers(0, n_batches, n)
    X += 2.0 * rng.normal(size=(n_batches, d))[batch]
    ctrl = rng.random(n) < ctrl_frac
    return X, ctrl, batch


def _inv_sqrt_ref(S):
    lam, U = np.linalg.eigh(S)
    return U @ np.diag(lam**-0.5) @ U.T


def test_group_rows_lists_rows_of_each_group_in_order():
    codes = np.array([2, 0, 1, 0, 2, 2])
    mask = np.array([True, True, False, True, True, False])
    g = C.group_rows(codes, 4, mask)
    assert [g.rows(k).tolist() for k in range(4)] == [[1, 3], [], [0, 4], []]
    np.testing.assert_array_equal(g.counts, [2, 0, 2, 0])


@pytest.mark.parametrize("with_scale", [False, True])
def test_center_scale_matches_loop_over_batches(with_scale):
    rng = np.random.default_rng(0)
    X, ctrl, batch = _data(rng)
    g = C.group_rows(batch, 3, ctrl)
    cs = C.fit_center_scale(X, g, with_scale=with_scale)
    out = C.apply_center_scale(X, cs, batch)
    ref = np.empty_like(X)
    for b in range(3):
        rows = batch == b
        c = X[rows & ctrl]
        ref[rows] = X[rows] - c.mean(axis=0)
        if with_scale:
            ref[rows] /= c.std(axis=0)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)


def test_zero_variance_feature_left_unscaled_and_finite():
    rng = np.random.default_rng(1)
    X, ctrl, batch = _data(rng)
    X[:, 2] = 7.0  # constant everywhere
    X[batch == 1, 5] = -1.0  # constant inside one batch only
    g = C.group_rows(batch, 3, ctrl)
    cs = C.fit_center_scale(X, g)
    assert cs.degenerate[:, 2].all() and cs.degenerate[1, 5] and not cs.degenerate[0, 5]
    out = C.apply_center_scale(X, cs, batch)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[batch == 1, 5], 0.0, atol=1e-12)


def test_degenerate_scale_flags_rounding_level_variance():
    var = np.array([1.0, 4.0, 1e-30, 0.0])
    mask = C.degenerate_scale(var, np.zeros(4), 50)
    np.testing.assert_array_equal(mask[0], [False, False, True, True])


def test_whitening_is_pca_with_unit_component_variance():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5))
    w = C.fit_whitening(Z)
    np.testing.assert_allclose(w.components @ w.components.T, np.eye(5), atol=1e-12)
    P = (Z - Z.mean(axis=0)) @ w.matrix("pca")
    np.testing.assert_allclose(np.cov(P, rowvar=False, ddof=0), np.eye(5), atol=1e-10)
    # eigen-decomposition reference: same axes up to sign, decreasing variance
    lam, V = np.linalg.eigh(np.cov(Z, rowvar=False, ddof=0))
    np.testing.assert_allclose(np.abs(w.components @ V[:, ::-1]), np.eye(5), atol=1e-8)
    np.testing.assert_allclose(w.scale**2, lam[::-1], rtol=1e-10)
    # feature basis: the same map rotated back, a symmetric (ZCA) whitening
    M = w.matrix("feature")
    np.testing.assert_allclose(M, M.T, atol=1e-12)
    np.testing.assert_allclose(M, _inv_sqrt_ref(np.cov(Z, rowvar=False, ddof=0)), atol=1e-8)


def test_whitening_rank_deficient_keeps_full_basis_with_null_components():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(6, 10))
    w = C.fit_whitening(Z)
    assert w.components.shape == (10, 10)
    np.testing.assert_allclose(w.components @ w.components.T, np.eye(10), atol=1e-12)
    # 6 centered rows span 5 dimensions: 5 null components, left unscaled
    np.testing.assert_array_equal(w.null, [False] * 5 + [True] * 5)
    np.testing.assert_array_equal(w.scale[5:], 1.0)


@pytest.mark.parametrize("n", [5, 40])  # low-rank path (2n <= d) and dense path
def test_coral_is_regularised_inverse_square_root(n):
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(n, 12)) * rng.uniform(0.5, 3, 12)
    coral = C.fit_coral(Z, reg=0.5)
    W = coral.apply(np.eye(12))
    ref = _inv_sqrt_ref(np.cov(Z, rowvar=False, ddof=1) + 0.5 * np.eye(12))
    np.testing.assert_allclose(W, ref, atol=1e-10)


@pytest.mark.parametrize("n", [5, 40])
def test_coral_ledoit_wolf_and_fixed_shrinkage(n):
    from sklearn.covariance import LedoitWolf, ShrunkCovariance

    rng = np.random.default_rng(5)
    Z = rng.normal(size=(n, 12)) * rng.uniform(0.5, 3, 12)
    W = C.fit_coral(Z, reg=0.3, shrinkage="ledoit-wolf").apply(np.eye(12))
    ref = _inv_sqrt_ref(LedoitWolf().fit(Z).covariance_ + 0.3 * np.eye(12))
    np.testing.assert_allclose(W, ref, atol=1e-10)
    W = C.fit_coral(Z, reg=0.3, shrinkage=0.2).apply(np.eye(12))
    ref = _inv_sqrt_ref(ShrunkCovariance(shrinkage=0.2).fit(Z).covariance_ + 0.3 * np.eye(12))
    np.testing.assert_allclose(W, ref, atol=1e-10)


def _tvn_reference(X, ctrl, batch, reg=0.5, per_batch=False):
    """EFAAR's TVN written plainly: loops over batches, numpy eigh."""
    Z = np.empty_like(X)
    if per_batch:
        for b in np.unique(batch):
            rows = batch == b
            c = X[rows & ctrl]
            Z[rows] = (X[rows] - c.mean(axis=0)) / c.std(axis=0)
    else:
        Z = (X - X[ctrl].mean(axis=0)) / X[ctrl].std(axis=0)
    pm = Z[ctrl].mean(axis=0)
    lam, V = np.linalg.eigh(np.cov(Z[ctrl], rowvar=False, ddof=0))
    V = V[:, ::-1]
    P = (Z - pm) @ V
    P = (P - P[ctrl].mean(axis=0)) / P[ctrl].std(axis=0)
    out = np.empty_like(P)
    covs = {}
    for b in np.unique(batch):
        rows = batch == b
        covs[b] = np.cov(P[rows & ctrl], rowvar=False, ddof=1)
        out[rows] = P[rows] @ _inv_sqrt_ref(covs[b] + reg * np.eye(X.shape[1]))
    return out, V, covs


def _align_signs(out, ref):
    return out * np.sign(np.sum(out * ref, axis=0))


@pytest.mark.parametrize("per_batch", [False, True])
def test_tvn_matches_loop_reference(per_batch):
    rng = np.random.default_rng(6)
    X, ctrl, batch = _data(rng, n=400, d=8, n_batches=4)
    ctrl_groups = C.group_rows(batch, 4, ctrl)
    stats = C.fit_tvn(X, ctrl_groups, batch, reg=0.5, per_batch=per_batch)
    out = C.apply_tvn(X, stats, batch, C.group_rows(batch, 4))
    ref, V, _ = _tvn_reference(X, ctrl, batch, per_batch=per_batch)
    np.testing.assert_allclose(_align_signs(out, ref), ref, atol=1e-6)
    # feature basis = PCA-basis output rotated back
    stats_f = C.fit_tvn(X, ctrl_groups, batch, per_batch=per_batch, basis="feature")
    out_f = C.apply_tvn(X, stats_f, batch, C.group_rows(batch, 4))
    np.testing.assert_allclose(out_f, ref @ V.T, atol=1e-6)


@pytest.mark.parametrize("layout", ["sorted", "mixed_sizes"])
def test_tvn_composed_and_stepwise_paths_match_reference(layout):
    # apply_tvn composes the steps into one affine map for batches with at
    # least d rows (sliced when the rows are contiguous) and applies them one
    # by one for smaller batches: both must give the reference output
    rng = np.random.default_rng(16)
    d = 30
    sizes = [120, 90, 60] if layout == "sorted" else [150, 20, 45]
    batch = np.repeat(np.arange(3), sizes)
    if layout == "mixed_sizes":
        batch = rng.permutation(batch)
    A = rng.normal(size=(d, d))
    X = rng.normal(size=(batch.size, d)) @ A + 2.0 * rng.normal(size=(3, d))[batch]
    ctrl = np.zeros(batch.size, dtype=bool)
    for b in range(3):  # 12 controls per batch: CORAL is low-rank
        ctrl[rng.choice(np.flatnonzero(batch == b), 12, replace=False)] = True
    # enough controls overall for a full-rank whitening
    ctrl[rng.choice(np.flatnonzero(~ctrl), 40, replace=False)] = True
    stats = C.fit_tvn(X, C.group_rows(batch, 3, ctrl), batch, reg=0.5)
    out = C.apply_tvn(X, stats, batch, C.group_rows(batch, 3))
    ref, _, _ = _tvn_reference(X, ctrl, batch)
    np.testing.assert_allclose(_align_signs(out, ref), ref, atol=1e-6)
    # restricted to some batches, written into a given array
    part = np.full_like(X, np.nan)
    C.apply_tvn(X, stats, batch, C.group_rows(batch, 3), batches=[0, 1], out=part)
    np.testing.assert_allclose(part[batch < 2], out[batch < 2], atol=1e-9)
    assert np.isnan(part[batch == 2]).all()


def test_tvn_controls_have_expected_covariance_per_batch():
    rng = np.random.default_rng(7)
    X, ctrl, batch = _data(rng, n=600, d=6, n_batches=3, ctrl_frac=0.5)
    stats = C.fit_tvn(X, C.group_rows(batch, 3, ctrl), batch, reg=0.5)
    out = C.apply_tvn(X, stats, batch, C.group_rows(batch, 3))
    ref, _, covs = _tvn_reference(X, ctrl, batch)
    sign = np.sign(np.sum(out * ref, axis=0))  # PCA axes are defined up to sign
    for b in range(3):
        got = np.cov(out[(batch == b) & ctrl], rowvar=False, ddof=1)
        # cov(P W) = W C W = C (C + 0.5 I)^-1, as W = (C + 0.5 I)^-1/2 commutes with C
        expected = covs[b] @ np.linalg.inv(covs[b] + 0.5 * np.eye(6))
        np.testing.assert_allclose(got, sign[:, None] * expected * sign, atol=1e-8)
        # all eigenvalues of the CORAL-ed control covariance are lambda / (lambda + 0.5) < 1
        assert np.linalg.eigvalsh(got).max() < 1


def test_tvn_per_batch_controls_have_zero_mean_and_identity_covariance_when_reg_small():
    rng = np.random.default_rng(8)
    X, ctrl, batch = _data(rng, n=900, d=5, n_batches=3, ctrl_frac=0.5)
    stats = C.fit_tvn(X, C.group_rows(batch, 3, ctrl), batch, reg=1e-10, per_batch=True)
    out = C.apply_tvn(X, stats, batch, C.group_rows(batch, 3))
    for b in range(3):
        c = out[(batch == b) & ctrl]
        np.testing.assert_allclose(c.mean(axis=0), 0.0, atol=1e-10)
        np.testing.assert_allclose(np.cov(c, rowvar=False, ddof=1), np.eye(5), atol=1e-6)


def test_tvn_rank_deficient_controls_finite_bounded_null_space_unscaled():
    rng = np.random.default_rng(9)
    d, n_ctrl = 40, 12  # fewer controls than features: 29 null directions
    X = rng.normal(size=(100, d)) * rng.uniform(0.5, 2, d)
    ctrl = np.zeros(100, dtype=bool)
    ctrl[:n_ctrl] = True
    batch = np.repeat([0, 1], 50)
    ctrl[50:56] = True
    stats = C.fit_tvn(X, C.group_rows(batch, 2, ctrl), batch, basis="feature")
    out = C.apply_tvn(X, stats, batch, C.group_rows(batch, 2))
    assert np.isfinite(out).all() and np.abs(out).max() < 1e3
    assert stats.whitening.null.sum() == d - (ctrl.sum() - 1)
    # Directions the (center-scaled) controls do not span are only CORAL-scaled
    # by 1/sqrt(reg): no division by rounding noise there.
    Z = (X - X[ctrl].mean(axis=0)) / X[ctrl].std(axis=0)
    N = linalg.null_space(Z[ctrl] - Z[ctrl].mean(axis=0))
    np.testing.assert_allclose(out @ N, (Z - Z[ctrl].mean(axis=0)) @ N / np.sqrt(0.5), atol=1e-8)


def test_float32_input_gives_float32_output_close_to_float64():
    rng = np.random.default_rng(10)
    X, ctrl, batch = _data(rng)
    stats = C.fit_tvn(X, C.group_rows(batch, 3, ctrl), batch)
    groups = C.group_rows(batch, 3)
    out64 = C.apply_tvn(X, stats, batch, groups)
    out32 = C.apply_tvn(X.astype(np.float32), stats, batch, groups)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, atol=1e-3)
