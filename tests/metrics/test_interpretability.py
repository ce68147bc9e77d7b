"""Tests for semiclip.metrics.interpretability_score."""

import re
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr

from semiclip.metrics import InterpretabilityResult, interpretability_score


def _data(n=300, genes=12, batches=3, controls_per_batch=10, seed=0):
    """Expression with per-batch offsets and a few control wells per batch."""
    rng = np.random.default_rng(seed)
    batch = np.repeat(np.arange(batches), n // batches)
    X = rng.normal(size=(n, genes)) + 2.0 * rng.normal(size=(batches, genes))[batch]
    is_control = np.zeros(n, dtype=bool)
    for b in range(batches):
        is_control[np.flatnonzero(batch == b)[:controls_per_batch]] = True
    return X, batch, is_control


def test_raw_expression_scores_about_one():
    X, batch, is_control = _data()
    res = interpretability_score(X, X, batch=batch, is_control=is_control, random_state=0)
    assert isinstance(res, InterpretabilityResult)
    assert res.spearman > 0.999 and res.structural_integrity > 0.99 and res.score > 0.99
    assert float(res) == res.score == pytest.approx((res.spearman + res.structural_integrity) / 2)
    assert res.n_splits == 5 and res.alphas.shape == (5,)
    assert np.isnan(res.sample_spearman[is_control]).all()


def test_random_low_dim_projection_scores_much_lower():
    X, batch, is_control = _data()
    rng = np.random.default_rng(1)
    Z = X @ rng.normal(size=(X.shape[1], 2))
    raw = interpretability_score(X, X, batch=batch, is_control=is_control, random_state=0)
    low = interpretability_score(Z, X, batch=batch, is_control=is_control, random_state=0)
    assert low.score < raw.score - 0.3
    assert low.structural_integrity < 0.5


def test_cross_fitting_never_scores_training_rows():
    # an embedding unrelated to X: an in-sample decoder would look good (it has
    # as many free parameters as rows), the cross-fitted one must not
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 8))
    Z = rng.normal(size=(60, 55))
    res = interpretability_score(Z, X, alpha=1e-6, random_state=0)
    assert abs(res.spearman) < 0.2 and res.structural_integrity < 0.1
    from sklearn.linear_model import Ridge

    in_sample = Ridge(alpha=1e-6).fit(Z, X).predict(Z)
    rho = np.mean([spearmanr(a, b)[0] for a, b in zip(in_sample, X)])
    assert rho > 0.9  # what scoring on the training rows would have reported


def test_components_match_a_reference_computation():
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, batch, is_control = _data(seed=3)
    rng = np.random.default_rng(3)
    Z = X @ rng.normal(size=(X.shape[1], 5)) + 0.5 * rng.normal(size=(X.shape[0], 5))
    alphas = (0.1, 1.0, 10.0)
    cv = KFold(4, shuffle=True, random_state=7)
    res = interpretability_score(Z, X, batch=batch, is_control=is_control, alpha=alphas, cv=cv)
    R = cross_val_predict(make_pipeline(StandardScaler(), RidgeCV(alphas=alphas)), Z, X, cv=cv)
    treated = ~is_control
    rho = [spearmanr(r, x)[0] for r, x in zip(R[treated], X[treated])]
    assert res.spearman == pytest.approx(np.mean(rho), abs=1e-12)
    np.testing.assert_allclose(res.sample_spearman[treated], rho, atol=1e-12)
    integrity = []
    for b in np.unique(batch):
        rows, ctrl = (batch == b) & treated, (batch == b) & is_control
        A = X[rows] - X[ctrl].mean(axis=0)
        E = (R[rows] - R[ctrl].mean(axis=0)) - A
        integrity.append(1 - min(1.0, np.sqrt((E**2).sum()) / np.sqrt((A**2).sum())))
    np.testing.assert_allclose(res.batch_integrity, integrity, atol=1e-12)
    assert res.structural_integrity == pytest.approx(np.mean(integrity), abs=1e-12)
    assert res.score == pytest.approx((np.mean(rho) + np.mean(integrity)) / 2, abs=1e-12)


def test_control_label_with_y_and_no_controls():
    X, batch, is_control = _data(seed=4)
    y = np.where(is_control, "DMSO", "drug")
    by_label = interpretability_score(X, X, batch=batch, control_label="DMSO", y=y, random_state=0)
    by_mask = interpretability_score(X, X, batch=batch, is_control=is_control, random_state=0)
    assert by_label.score == by_mask.score
    # without controls every sample is evaluated and batches centre on their mean
    plain = interpretability_score(X, X, batch=batch, random_state=0)
    assert np.isfinite(plain.sample_spearman).all() and plain.score > 0.99


def test_real_profiles_raw_vs_projection():
    from semiclip.datasets import load_ta_orf_l1000

    data = load_ta_orf_l1000()
    X = np.asarray(data.X, dtype=np.float64)[:, :120]
    rng = np.random.default_rng(0)
    Z = X @ rng.normal(size=(X.shape[1], 4))
    kw = dict(batch=data.batch, is_control=data.is_control, alpha=(1e-2, 1.0, 100.0), cv=3,
              random_state=0)
    raw = interpretability_score(X, X, **kw)
    low = interpretability_score(Z, X, **kw)
    assert raw.score > 0.95 and low.score < raw.score - 0.3


# ----------------------------------------------------------------- bad input
def test_bad_input():
    X, batch, is_control = _data()
    with pytest.raises(ValueError, match="Z has 299 rows but X has 300"):
        interpretability_score(X[:-1], X)
    Z = X.copy()
    Z[[4, 8]] = np.nan
    with pytest.raises(ValueError,
                       match=re.escape("Z contains NaN or inf in 2 row(s) (row indices: 4, 8)")):
        interpretability_score(Z, X)
    with pytest.raises(ValueError, match="control_label='DMSO' needs y"):
        interpretability_score(X, X, control_label="DMSO")
    with pytest.raises(ValueError, match="control_label='DMSO' matches no entry of y"):
        interpretability_score(X, X, control_label="DMSO", y=np.zeros(300))
    with pytest.raises(ValueError, match="either is_control or control_label"):
        interpretability_score(X, X, is_control=is_control, control_label=1, y=np.zeros(300))
    lonely = is_control & (batch != 2)
    with pytest.raises(ValueError,
                       match=r"1 batch\(es\) have no control sample to centre on \(2\)"):
        interpretability_score(X, X, batch=batch, is_control=lonely)
    with pytest.raises(ValueError, match="alpha must be positive"):
        interpretability_score(X, X, alpha=0.0)
    with pytest.raises(ValueError, match="alpha must hold positive finite values"):
        interpretability_score(X, X, alpha=[1.0, -1.0])
    with pytest.raises(ValueError, match="cv must be between 2 and n_samples=300; got 1"):
        interpretability_score(X, X, cv=1)
    with pytest.raises(ValueError, match="batch has 2 entries"):
        interpretability_score(X, X, batch=[0, 1])


# ------------------------------------------------------- undefined parts warn
def test_constant_expression_warns_which_part_is_undefined():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 3))
    X = np.full((60, 6), 2.5)  # every profile constant across genes, and all identical
    with pytest.warns(UserWarning) as record:
        res = interpretability_score(Z, X, random_state=0)
    messages = " | ".join(str(w.message) for w in record)
    assert re.search(r"spearman is undefined for 60 of 60 evaluated sample\(s\).*constant "
                     r"across genes.*spearman is NaN", messages)
    assert re.search(r"structural_integrity is undefined for 1 of 1 batch\(es\).*all "
                     r"zero", messages)
    assert np.isnan(res.spearman) and np.isnan(res.structural_integrity)
    assert np.isnan(res.score)


def test_identical_profiles_do_not_score_rounding_noise():
    # every sample of batch 1 has one profile: its centred profiles are exactly 0, the
    # batch mean only rounds to it, and 1 - ||error|| / ||rounding|| means nothing
    rng = np.random.default_rng(1)
    batch = np.repeat([0, 1], 30)
    X = rng.normal(size=(60, 5))
    X[batch == 1] = rng.normal(size=5) * np.pi
    Z = X @ rng.normal(size=(5, 3))
    with pytest.warns(UserWarning, match=r"structural_integrity is undefined for 1 of 2 "
                                         r"batch\(es\) \(1\)"):
        res = interpretability_score(Z, X, batch=batch, random_state=0)
    assert np.isnan(res.batch_integrity[1]) and np.isfinite(res.batch_integrity[0])
    assert res.structural_integrity == res.batch_integrity[0]


def test_some_constant_profiles_are_counted():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 6))
    X[[3, 8, 9]] = 1.0
    with pytest.warns(UserWarning, match=r"spearman is undefined for 3 of 50 evaluated "
                                         r"sample\(s\) \(row indices: 3, 8, 9\)"):
        res = interpretability_score(X, X, random_state=0)
    assert np.isfinite(res.spearman)
    assert res.spearman == pytest.approx(np.nanmean(res.sample_spearman))


def test_batch_of_controls_only_warns():
    X, batch, is_control = _data()
    is_control = is_control | (batch == 2)
    with pytest.warns(UserWarning, match=r"1 of 3 batch\(es\) \(2\) have no evaluated"):
        res = interpretability_score(X, X, batch=batch, is_control=is_control, random_state=0)
    assert np.isnan(res.batch_integrity[2]) and res.structural_integrity > 0.99


def test_single_gene_is_a_clear_error():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match=r"X has 1 gene \(column\).*at least 2"):
        interpretability_score(rng.normal(size=(40, 3)), rng.normal(size=(40, 1)))


def test_normal_input_does_not_warn():
    X, batch, is_control = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interpretability_score(X[:, :4], X, batch=batch, is_control=is_control, random_state=0)
