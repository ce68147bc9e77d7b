"""Tests of ControlNormalizer: references, real data, bad input, sklearn integration."""

import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline

from semiclip import ControlNormalizer

from .._reference import slow_center_scale


def _inv_sqrt(S):
    lam, U = np.linalg.eigh(S)
    return (U * lam**-0.5) @ U.T


def _efaar_tvn(X, ctrl, batch, reg=0.5):
    """Independent TVN following EFAAR's definition (tvn_on_controls), plain numpy."""
    Z = (X - X[ctrl].mean(axis=0)) / X[ctrl].std(axis=0)
    pm = Z[ctrl].mean(axis=0)
    _, _, Vt = np.linalg.svd(Z[ctrl] - pm, full_matrices=False)
    P = (Z - pm) @ Vt.T
    P = (P - P[ctrl].mean(axis=0)) / P[ctrl].std(axis=0)
    out = np.empty_like(P)
    for b in np.unique(batch):
        rows = batch == b
        cov = np.cov(P[rows & ctrl], rowvar=False, ddof=1) + reg * np.eye(P.shape[1])
        out[rows] = P[rows] @ _inv_sqrt(cov)
    return out


@pytest.fixture
def plates():
    rng = np.random.default_rng(0)
    n, d = 240, 6
    batch = np.repeat(np.array(["p1", "p2", "p3"]), n // 3)
    y = np.tile(np.array(["ctrl", "ctrl", "g1", "g2", "g3", "ctrl"]), n // 6)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    X += 3 * rng.normal(size=(3, d))[np.searchsorted(["p1", "p2", "p3"], batch)]
    return X, y, batch


@pytest.mark.parametrize("method", ["center", "center_scale"])
def test_center_methods_match_loop_reference(plates, method):
    X, y, batch = plates
    out = ControlNormalizer(method, control_label="ctrl").fit_transform(X, y, batch=batch)
    ref = slow_center_scale(X, y, batch, "ctrl", scale=method == "center_scale")
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_tvn_matches_efaar_definition_up_to_component_signs(plates):
    X, y, batch = plates
    out = ControlNormalizer(control_label="ctrl").fit_transform(X, y, batch=batch)
    ref = _efaar_tvn(X, y == "ctrl", batch)
    out = out * np.sign(np.sum(out * ref, axis=0))
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_tvn_feature_basis_is_an_orthogonal_rotation_of_pca_basis(plates):
    X, y, batch = plates
    pca_basis = ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)
    feat = ControlNormalizer(control_label="ctrl", basis="feature")
    out_f = feat.fit_transform(X, y, batch=batch)
    np.testing.assert_allclose(out_f, pca_basis.transform(X, batch=batch) @ pca_basis.components_,
                               atol=1e-10)
    # cosine geometry unchanged
    out_p = pca_basis.transform(X, batch=batch)
    np.testing.assert_allclose(out_f @ out_f.T, out_p @ out_p.T, atol=1e-8)


def test_transform_new_rows_uses_fitted_statistics(plates):
    X, y, batch = plates
    norm = ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)
    full = norm.transform(X, batch=batch)
    idx = np.array([5, 200, 3, 100])
    np.testing.assert_allclose(norm.transform(X[idx], batch=batch[idx]), full[idx], atol=1e-12)


def test_shrinkage_changes_tvn_and_stays_finite(plates):
    X, y, batch = plates
    plain = ControlNormalizer(control_label="ctrl").fit_transform(X, y, batch=batch)
    lw = ControlNormalizer(control_label="ctrl",
                           shrinkage="ledoit-wolf").fit_transform(X, y, batch=batch)
    none = ControlNormalizer(control_label="ctrl", shrinkage=0.0).fit_transform(X, y, batch=batch)
    assert np.isfinite(lw).all() and not np.allclose(lw, plain)
    # shrinkage=0 is the ML covariance (ddof=0): close to, not equal to, the default (ddof=1)
    assert 0 < np.abs(none - plain).max() < 0.1


def test_per_batch_scaling_centers_each_batch_controls(plates):
    X, y, batch = plates
    out = ControlNormalizer(control_label="ctrl",
                            per_batch_scaling=True).fit_transform(X, y, batch=batch)
    for b in np.unique(batch):
        np.testing.assert_allclose(out[(batch == b) & (y == "ctrl")].mean(axis=0), 0, atol=1e-10)
    glob = ControlNormalizer(control_label="ctrl").fit_transform(X, y, batch=batch)
    assert np.abs(glob[(batch == "p1") & (y == "ctrl")].mean(axis=0)).max() > 1e-3


def test_batch_none_is_one_batch(plates):
    X, y, _ = plates
    out = ControlNormalizer("center", control_label="ctrl").fit_transform(X, y)
    np.testing.assert_allclose(out, X - X[y == "ctrl"].mean(axis=0), atol=1e-12)


# --------------------------------------------------------------- bad input
def test_batch_with_fewer_than_two_controls_is_named(plates):
    X, y, batch = plates
    y = y.copy()
    y[(batch == "p2") & (y == "ctrl")] = "g1"
    y[np.flatnonzero(batch == "p2")[0]] = "ctrl"
    with pytest.raises(ValueError, match=re.escape("'p2' (1 sample(s))")):
        ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)


def test_control_label_none_is_an_error(plates):
    X, y, batch = plates
    with pytest.raises(ValueError, match="needs control_label"):
        ControlNormalizer().fit(X, y, batch=batch)


def test_no_controls_is_an_error(plates):
    X, y, batch = plates
    with pytest.raises(ValueError,
                       match="No control samples: no entry of y equals control_label='DMSO'"):
        ControlNormalizer(control_label="DMSO").fit(X, y, batch=batch)


def test_y_none_is_an_error(plates):
    X, _, batch = plates
    with pytest.raises(ValueError, match="requires y to be passed"):
        ControlNormalizer(control_label="ctrl").fit(X, None, batch=batch)


def test_batch_length_mismatch(plates):
    X, y, batch = plates
    with pytest.raises(ValueError, match="batch has 239 entries but X has 240 rows"):
        ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch[:-1])
    norm = ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)
    with pytest.raises(ValueError, match="batch has 240 entries but X has 10 rows"):
        norm.transform(X[:10], batch=batch)


def test_unseen_batch_at_transform(plates):
    X, y, batch = plates
    norm = ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)
    new = batch.copy()
    new[:3] = "p9"
    with pytest.raises(ValueError, match=r"1 value\(s\) never seen in fit: 'p9'"):
        norm.transform(X, batch=new)


def test_batch_required_iff_fitted_with_batch(plates):
    X, y, batch = plates
    with pytest.raises(ValueError, match="batch is required"):
        ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch).transform(X)
    with pytest.raises(ValueError, match="fitted without batch"):
        ControlNormalizer(control_label="ctrl").fit(X, y).transform(X, batch=batch)


def test_nan_in_X(plates):
    X, y, batch = plates
    X = X.copy()
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or inf in 1 row\(s\) \(row indices: 7\)"):
        ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)


@pytest.mark.parametrize("method", ["center_scale", "tvn"])
def test_zero_variance_genes_stay_finite_with_warning(plates, method):
    X, y, batch = plates
    X = X.copy()
    X[:, 1] = 4.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ControlNormalizer(method, control_label="ctrl").fit_transform(X, y, batch=batch)
    messages = [str(w.message) for w in caught]
    assert any("1 of 6 features have (near) zero variance" in m for m in messages)
    if method == "tvn":  # the constant gene is also a null direction of the controls' PCA
        assert any("1 of 6 PCA components" in m for m in messages)
    assert np.isfinite(out).all() and np.abs(out).max() < 1e3


def test_rank_deficient_controls_warn_and_stay_bounded():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 30))
    y = np.where(np.arange(120) % 12 == 0, "c", "t")  # 10 controls, 30 features
    batch = np.repeat(["a", "b"], 60)
    with pytest.warns(UserWarning, match="21 of 30 PCA components"):
        out = ControlNormalizer(control_label="c").fit_transform(X, y, batch=batch)
    assert np.isfinite(out).all() and np.abs(out).max() < 1e3


def test_invalid_parameter_message():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="The 'method' parameter of ControlNormalizer must be"):
        ControlNormalizer("zscore", control_label=0).fit(X, [0, 0, 1, 1])


# ----------------------------------------------------- sklearn integration
def test_pipeline_without_and_with_metadata_routing(plates):
    X, y, batch = plates
    expected = PCA(2).fit_transform(
        ControlNormalizer(control_label="ctrl").fit_transform(X, y, batch=batch))
    pipe = make_pipeline(ControlNormalizer(control_label="ctrl"), PCA(2))
    np.testing.assert_allclose(pipe.fit_transform(X, y, controlnormalizer__batch=batch), expected)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(ControlNormalizer(control_label="ctrl"), PCA(2))
        np.testing.assert_allclose(pipe.fit(X, y, batch=batch).transform(X, batch=batch), expected)


def test_feature_names_and_pandas_output(plates):
    pd = pytest.importorskip("pandas")
    X, y, batch = plates
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(6)])
    out = ControlNormalizer("center_scale", control_label="ctrl").set_output(transform="pandas")
    assert list(out.fit_transform(df, y, batch=batch).columns) == list(df.columns)
    tvn = ControlNormalizer(control_label="ctrl").set_output(transform="pandas")
    assert list(tvn.fit_transform(df, y, batch=batch).columns) == [f"pc{i}" for i in range(6)]
    feat = ControlNormalizer(control_label="ctrl", basis="feature").fit(df, y, batch=batch)
    assert list(feat.get_feature_names_out()) == list(df.columns)


def test_float32_preserved_and_pickle_roundtrip(plates):
    X, y, batch = plates
    norm = ControlNormalizer(control_label="ctrl").fit(X, y, batch=batch)
    assert norm.transform(X.astype(np.float32), batch=batch).dtype == np.float32
    clone = pickle.loads(pickle.dumps(norm))
    np.testing.assert_array_equal(clone.transform(X, batch=batch), norm.transform(X, batch=batch))


# ---------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def ta_orf(ta_orf_frame):
    df = ta_orf_frame
    genes = [c for c in df.columns if not c.startswith("Metadata_")]
    y = np.where(df["Metadata_pert_type"].str.startswith("ctl"), "ctl", "trt")
    return df[genes].to_numpy(np.float64), y, df["Metadata_Plate"].to_numpy()


def test_ta_orf_first_100_genes_matches_efaar_definition(ta_orf):
    X, y, batch = ta_orf
    X = X[:, :100]  # 158 controls > 100 genes: well-conditioned
    out = ControlNormalizer(control_label="ctl").fit_transform(X, y, batch=batch)
    ref = _efaar_tvn(X, y == "ctl", batch)
    out = out * np.sign(np.sum(out * ref, axis=0))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-11)


def test_ta_orf_all_genes_rank_deficient_stays_bounded(ta_orf):
    X, y, batch = ta_orf  # 158 controls, 978 genes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        norm = ControlNormalizer(control_label="ctl").fit(X, y, batch=batch)
    assert any("PCA components" in str(w.message) for w in caught)
    assert norm.null_components_.sum() == 978 - 157
    out = norm.transform(X, batch=batch)
    assert out.shape == (1092, 978) and np.isfinite(out).all() and np.abs(out).max() < 1e3


# ------------------------------------------------------ values near float64's limit
@pytest.mark.parametrize("factor", [1e200, 1e300])
@pytest.mark.parametrize("with_batch", [True, False])
def test_center_scale_of_huge_values_does_not_overflow(plates, factor, with_batch):
    # center-scale is invariant to multiplying X by a constant: the output on X * factor
    # must equal the loop reference on X, and the scale must be factor times its scale
    X, y, batch = plates
    batch = batch if with_batch else None
    b = batch if with_batch else np.zeros(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no "zero variance" warning
        norm = ControlNormalizer("center_scale", control_label="ctrl")
        out = norm.fit_transform(X * factor, y, batch=batch)
    np.testing.assert_allclose(out, slow_center_scale(X, y, b, "ctrl", scale=True),
                               rtol=1e-10, atol=1e-10)
    ref = ControlNormalizer("center_scale", control_label="ctrl").fit(X, y, batch=batch)
    np.testing.assert_allclose(norm.scale_, ref.scale_ * factor, rtol=1e-12)
    np.testing.assert_allclose(norm.mean_, ref.mean_ * factor, rtol=1e-12)


def test_huge_constant_feature_is_still_degenerate(plates):
    X, y, batch = plates
    X = X * 1e200
    X[:, 2] = 3e307  # constant, and its square overflows
    with pytest.warns(UserWarning, match="1 of 6 features have \\(near\\) zero variance"):
        norm = ControlNormalizer("center_scale", control_label="ctrl").fit(X, y, batch=batch)
    assert (norm.scale_[:, 2] == 1.0).all() and np.isfinite(norm.scale_).all()
