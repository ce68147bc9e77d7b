"""Tests of PEAAugmenter: randomness, family members against references, sampler API."""

import re

import numpy as np
import pytest
import sklearn

from semiclip import ControlNormalizer, PEAAugmenter
from semiclip._correction import STEPS

from .._reference import slow_center_scale


@pytest.fixture
def plates():
    rng = np.random.default_rng(0)
    n, d = 360, 5
    names = np.array(["p1", "p2", "p3"])
    batch = names[rng.integers(0, 3, n)]
    y = np.where(rng.random(n) < 0.3, "ctrl", rng.choice(["g1", "g2", "g3"], n))
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    X += 3 * rng.normal(size=(3, d))[np.searchsorted(names, batch)]
    return X, y, batch


def _inv_sqrt(S):
    lam, U = np.linalg.eigh(S)
    return (U * lam**-0.5) @ U.T


def test_same_seed_same_sample_different_seeds_differ(plates):
    X, y, batch = plates
    pea = PEAAugmenter(control_label="ctrl").fit(X, y, batch=batch)
    a = pea.sample(X, y, batch=batch, random_state=3)
    np.testing.assert_array_equal(a, pea.sample(X, y, batch=batch, random_state=3))
    assert not np.allclose(a, pea.sample(X, y, batch=batch, random_state=4))
    # without random_state: the generator seeded in fit advances between calls,
    # and refitting with the same random_state replays the same sequence
    pea = PEAAugmenter(control_label="ctrl", random_state=0).fit(X, y, batch=batch)
    first, second = pea.sample(X, y, batch=batch), pea.sample(X, y, batch=batch)
    assert not np.allclose(first, second)
    pea.fit(X, y, batch=batch)
    np.testing.assert_array_equal(pea.sample(X, y, batch=batch), first)


def test_control_subsample_sizes_fall_in_range(plates):
    X, y, batch = plates
    pea = PEAAugmenter(control_label="ctrl", control_fraction=(0.3, 0.6)).fit(X, y, batch=batch)
    n_ctrl = dict(zip(pea.batches_, pea.n_controls_))
    sizes = {b: set() for b in n_ctrl}
    for seed in range(30):
        _, plan = pea.sample(X, y, batch=batch, random_state=seed, return_plan=True)
        assert [p["batch"] for p in plan] == list(pea.batches_)
        for p in plan:
            sizes[p["batch"]].add(p["n_controls_used"])
    for b, used in sizes.items():
        assert min(used) >= max(2, round(0.3 * n_ctrl[b])) and max(used) <= round(0.6 * n_ctrl[b])
        assert len(used) > 3  # really random


def test_at_least_two_controls_used(plates):
    X, y, batch = plates
    pea = PEAAugmenter(control_label="ctrl", control_fraction=0.001).fit(X, y, batch=batch)
    _, plan = pea.sample(X, y, batch=batch, random_state=0, return_plan=True)
    assert all(p["n_controls_used"] == 2 for p in plan)


def test_tvn_without_randomness_equals_canonical_tvn_exactly(plates):
    X, y, batch = plates
    pea = PEAAugmenter(("tvn",), drop_step_prob=0, control_fraction=1.0, control_label="ctrl")
    out = pea.fit(X, y, batch=batch).sample(X, y, batch=batch, random_state=0)
    canonical = ControlNormalizer("tvn", control_label="ctrl", basis="feature")
    np.testing.assert_array_equal(out, canonical.fit_transform(X, y, batch=batch))
    np.testing.assert_array_equal(out, pea.canonical_correction().transform(X, batch=batch))
    # the same as the default (EFAAR, PCA basis) TVN rotated into the feature basis
    efaar = ControlNormalizer("tvn", control_label="ctrl").fit(X, y, batch=batch)
    np.testing.assert_allclose(out @ efaar.components_.T, efaar.transform(X, batch=batch),
                               atol=1e-10)


@pytest.mark.parametrize("method", ["center", "center_scale"])
def test_center_members_without_randomness_equal_control_normalizer(plates, method):
    X, y, batch = plates
    pea = PEAAugmenter((method,), drop_step_prob=0, control_fraction=1.0, control_label="ctrl")
    out = pea.fit(X, y, batch=batch).sample(X, y, batch=batch, random_state=0)
    ref = slow_center_scale(X, y, batch, "ctrl", scale=method == "center_scale")
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_center_uses_a_subsample_mean_per_batch(plates):
    X, y, batch = plates
    pea = PEAAugmenter(("center",), control_fraction=0.5,
                       control_label="ctrl").fit(X, y, batch=batch)
    out = pea.sample(X, y, batch=batch, random_state=1)
    for b in np.unique(batch):
        rows = batch == b
        shift = X[rows] - out[rows]
        np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-12)
        full_mean = X[rows & (y == "ctrl")].mean(axis=0)
        assert not np.allclose(shift[0], full_mean)  # half the controls, not all


def _member_reference(X, y, batch, b, name, steps):
    """What one batch becomes under a family member fitted on all its controls."""
    ctrl = y == "ctrl"
    rows, c = batch == b, (batch == b) & ctrl
    Z = X.copy()
    if name in ("center", "center_scale"):
        out = X[rows]
        if "center" in steps:
            out = out - X[c].mean(axis=0)
        if "scale" in steps:
            out = out / X[c].std(axis=0)
        return out
    if "center_scale" in steps:
        Z = (X - X[ctrl].mean(axis=0)) / X[ctrl].std(axis=0)
    if "whiten" in steps:  # PCA whitening rotated back: ZCA on all controls (ddof 0)
        Z = (Z - Z[ctrl].mean(axis=0)) @ _inv_sqrt(np.cov(Z[ctrl], rowvar=False, ddof=0))
    if "coral" in steps:
        Z = Z[rows] @ _inv_sqrt(np.cov(Z[c], rowvar=False, ddof=1) + 0.5 * np.eye(X.shape[1]))
        return Z
    return Z[rows]


def test_dropped_steps_match_reference_per_batch(plates):
    X, y, batch = plates
    pea = PEAAugmenter(drop_step_prob=0.6, control_fraction=1.0,
                       control_label="ctrl").fit(X, y, batch=batch)
    seen = set()
    for seed in range(40):
        out, plan = pea.sample(X, y, batch=batch, random_state=seed, return_plan=True)
        for p in plan:
            assert p["steps"] and set(p["steps"]) <= set(STEPS[p["transform"]])
            ref = _member_reference(X, y, batch, p["batch"], p["transform"], p["steps"])
            np.testing.assert_allclose(out[batch == p["batch"]], ref, atol=1e-8)
            seen.add((p["transform"], p["steps"]))
    # 1 + 3 + 7 (non-empty) step subsets of the three members
    assert len(seen) == 11


def test_transform_probs_select_members(plates):
    X, y, batch = plates
    pea = PEAAugmenter(transform_probs=[0, 1, 0], control_label="ctrl").fit(X, y, batch=batch)
    for seed in range(5):
        _, plan = pea.sample(X, y, batch=batch, random_state=seed, return_plan=True)
        assert {p["transform"] for p in plan} == {"center_scale"}


def test_zero_variance_gene_stays_finite(plates):
    X, y, batch = plates
    X = X.copy()
    X[:, 2] = 1.5
    with pytest.warns(UserWarning, match="zero variance"):
        pea = PEAAugmenter(control_label="ctrl", drop_step_prob=0.3).fit(X, y, batch=batch)
    for seed in range(10):
        assert np.isfinite(pea.sample(X, y, batch=batch, random_state=seed)).all()


def test_float32_preserved(plates):
    X, y, batch = plates
    pea = PEAAugmenter(control_label="ctrl", random_state=0).fit(X, y, batch=batch)
    X32 = X.astype(np.float32)
    out = pea.sample(X32, y, batch=batch, random_state=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, pea.sample(X, y, batch=batch, random_state=0), atol=1e-3)


def test_batch_none_is_one_batch(plates):
    X, y, _ = plates
    pea = PEAAugmenter(("center",), control_fraction=1.0, control_label="ctrl").fit(X, y)
    np.testing.assert_allclose(pea.sample(X, y), X - X[y == "ctrl"].mean(axis=0), atol=1e-12)


# ------------------------------------------------------------- fit_resample
def test_fit_resample_appends_copies_with_provenance(plates):
    X, y, batch = plates
    pea = PEAAugmenter(control_label="ctrl", n_augmentations=2, random_state=0)
    X_res, y_res = pea.fit_resample(X, y, batch=batch)
    n = X.shape[0]
    assert X_res.shape == (3 * n, X.shape[1])
    np.testing.assert_array_equal(pea.sample_indices_, np.tile(np.arange(n), 3))
    np.testing.assert_array_equal(y_res, y[pea.sample_indices_])
    np.testing.assert_array_equal(X_res[:n], X)
    assert not np.allclose(X_res[n : 2 * n], X_res[2 * n :])
    # sample_indices_ re-aligns per-sample arrays: with plain per-batch centring on all
    # controls, every copied row is its source row centred on its own batch's controls
    center = PEAAugmenter(("center",), control_fraction=1.0, control_label="ctrl",
                          n_augmentations=2, keep_original=False)
    X_res, _ = center.fit_resample(X, y, batch=batch)
    ref = slow_center_scale(X, y, batch, "ctrl", scale=False)
    np.testing.assert_allclose(X_res, ref[center.sample_indices_], atol=1e-12)


def test_fit_resample_keep_original_canonical_or_dropped(plates):
    X, y, batch = plates
    n = X.shape[0]
    pea = PEAAugmenter(control_label="ctrl", n_augmentations=2, keep_original="canonical",
                       random_state=0)
    X_res, _ = pea.fit_resample(X, y, batch=batch)
    ref = ControlNormalizer("tvn", control_label="ctrl",
                            basis="feature").fit_transform(X, y, batch=batch)
    np.testing.assert_allclose(X_res[:n], ref, atol=1e-10)
    # the copies are the same draws as with the raw originals (same seed)
    raw, _ = PEAAugmenter(control_label="ctrl", n_augmentations=2,
                          random_state=0).fit_resample(X, y, batch=batch)
    np.testing.assert_allclose(X_res[n:], raw[n:], atol=1e-12)
    pea = PEAAugmenter(control_label="ctrl", n_augmentations=2, keep_original=False, random_state=0)
    X_res, y_res = pea.fit_resample(X, y, batch=batch)
    np.testing.assert_allclose(X_res, raw[n:], atol=1e-12)
    np.testing.assert_array_equal(pea.sample_indices_, np.tile(np.arange(n), 2))
    np.testing.assert_array_equal(y_res, np.tile(y, 2))
    with pytest.raises(ValueError, match="keep_original"):
        PEAAugmenter(control_label="ctrl", keep_original="raw").fit_resample(X, y, batch=batch)


def test_fit_resample_keeps_pandas_containers(plates):
    pd = pytest.importorskip("pandas")
    X, y, batch = plates
    df = pd.DataFrame(X, columns=list("abcde"))
    X_res, y_res = PEAAugmenter(control_label="ctrl").fit_resample(df, pd.Series(y, name="gene"),
                                                                   batch=batch)
    assert (list(X_res.columns) == list("abcde") and y_res.name == "gene"
            and len(y_res) == 2 * len(y))


def test_imblearn_pipeline(plates):
    pytest.importorskip("imblearn")
    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression

    X, y, batch = plates
    pipe = make_pipeline(PEAAugmenter(control_label="ctrl", random_state=0), LogisticRegression())
    pipe.fit(X, y, peaaugmenter__batch=batch)
    assert pipe[0].sample_indices_.shape == (2 * X.shape[0],)
    assert pipe.predict(X).shape == (X.shape[0],)  # the sampler is skipped at predict
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(PEAAugmenter(control_label="ctrl", random_state=0),
                             LogisticRegression())
        pipe.fit(X, y, batch=batch)
        assert pipe[0].sample_indices_.shape == (2 * X.shape[0],)


# ---------------------------------------------------------------- bad input
def test_batch_with_fewer_than_two_controls_is_named(plates):
    X, y, batch = plates
    y = y.copy()
    idx = np.flatnonzero((batch == "p3") & (y == "ctrl"))
    y[idx[1:]] = "g1"
    with pytest.raises(ValueError, match=re.escape("'p3' (1 sample(s))")):
        PEAAugmenter(control_label="ctrl").fit(X, y, batch=batch)
    pea = PEAAugmenter(control_label="ctrl").fit(*plates[:2], batch=batch)
    with pytest.raises(ValueError, match=re.escape("'p3' (1 sample(s))")):
        pea.sample(X, y, batch=batch)


def test_missing_control_label_or_controls(plates):
    X, y, batch = plates
    with pytest.raises(ValueError, match="PEAAugmenter needs control_label"):
        PEAAugmenter().fit(X, y, batch=batch)
    with pytest.raises(ValueError, match="No control samples"):
        PEAAugmenter(control_label="DMSO").fit(X, y, batch=batch)


def test_batch_length_mismatch_and_unseen_batch(plates):
    X, y, batch = plates
    with pytest.raises(ValueError, match="batch has 359 entries but X has 360 rows"):
        PEAAugmenter(control_label="ctrl").fit(X, y, batch=batch[1:])
    pea = PEAAugmenter(control_label="ctrl").fit(X, y, batch=batch)
    other = np.where(batch == "p2", "p7", batch)
    with pytest.raises(ValueError, match="never seen in fit: 'p7'"):
        pea.sample(X, y, batch=other)
    with pytest.raises(ValueError, match="batch is required"):
        pea.sample(X, y)


def test_nan_in_X(plates):
    X, y, batch = plates
    pea = PEAAugmenter(control_label="ctrl").fit(X, y, batch=batch)
    X = X.copy()
    X[[4, 9], 0] = np.nan
    with pytest.raises(ValueError,
                       match=r"X contains NaN or inf in 2 row\(s\) \(row indices: 4, 9\)"):
        pea.sample(X, y, batch=batch)
    with pytest.raises(ValueError, match="NaN or inf"):
        PEAAugmenter(control_label="ctrl").fit(X, y, batch=batch)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"transforms": ("tvn", "zca")}, "transforms must be a non-empty sequence"),
        ({"transforms": ()}, "transforms must be a non-empty sequence"),
        ({"transform_probs": [0.5, 0.5]}, "transform_probs must hold 3 non-negative numbers"),
        ({"transform_probs": [0, 0, 0]}, "transform_probs must hold 3"),
        ({"control_fraction": (0.8, 0.2)}, "control_fraction must be a float in \\(0, 1\\]"),
        ({"control_fraction": (0.0, 0.5)}, "control_fraction must be"),
        ({"drop_step_prob": 1.5}, "The 'drop_step_prob' parameter of PEAAugmenter must be"),
    ],
)
def test_invalid_parameters(plates, params, match):
    X, y, batch = plates
    with pytest.raises(ValueError, match=match):
        PEAAugmenter(control_label="ctrl", **params).fit(X, y, batch=batch)


@pytest.mark.parametrize("bad, shown", [(np.inf, "inf"), (np.nan, "nan")])
def test_transform_probs_must_be_finite(plates, bad, shown):
    X, y, batch = plates
    msg = rf"transform_probs must be finite; got {shown} at position 1 \(1 value"
    with pytest.raises(ValueError, match=msg):
        PEAAugmenter(control_label="ctrl", transform_probs=[1, bad, 1]).fit(X, y, batch=batch)


def test_boolean_n_augmentations_is_rejected(plates):
    from semiclip._core.compat import InvalidParameterError

    X, y, batch = plates
    with pytest.raises(InvalidParameterError,
                       match="The 'n_augmentations' parameter of PEAAugmenter must be .*Got True"):
        PEAAugmenter(control_label="ctrl", n_augmentations=True).fit(X, y, batch=batch)


def test_fit_resample_keeps_the_pandas_index(plates):
    pd = pytest.importorskip("pandas")
    X, y, batch = plates
    index = pd.Index(np.arange(1000, 1000 + len(y)) * 3, name="well")
    df = pd.DataFrame(X, columns=list("abcde"), index=index)
    pea = PEAAugmenter(control_label="ctrl", n_augmentations=2, random_state=0)
    X_res, y_res = pea.fit_resample(df, pd.Series(y, name="gene", index=index), batch=batch)
    expected = index[pea.sample_indices_]
    assert X_res.index.equals(expected) and y_res.index.equals(expected)
    assert X_res.index.name == "well"
    # the rows kept as given are the input rows, label by label
    np.testing.assert_array_equal(X_res.loc[index[5]].to_numpy()[0], X[5])
    assert (y_res.loc[index[5]] == y[5]).all()
