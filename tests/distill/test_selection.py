"""Held-out-key model selection: ``validation_report_``, its warning, ``structure_weight="auto"``.

The report is recomputed here by a slow reference (per-key means, cosine
ranks, scipy's Spearman, scikit-learn's Ridge on the training keys), and
the warning is checked on a teacher the transcriptomics predict linearly
(no warning) and on one unrelated to it (a warning).
"""

import copy
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge

from semiclip import GeneralizationWarning, ImageBank, SemiClippedTransformer
from semiclip.persistence import load_model, save_model

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_KEYS, REPS, GENES, DIMS = 60, 3, 20, 6


def world(related, seed=0):
    """Profiles with a mean per key; a teacher linear in those means, or unrelated to them."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((N_KEYS, GENES))
    X = np.repeat(means, REPS, axis=0) + 0.05 * rng.standard_normal((N_KEYS * REPS, GENES))
    names = np.array([f"g{i:02d}" for i in range(N_KEYS)])
    y = np.repeat(names, REPS)
    T = means @ rng.standard_normal((GENES, DIMS)) if related else rng.standard_normal(
        (N_KEYS, DIMS))
    rows = np.repeat(np.arange(N_KEYS), 2)
    bank = ImageBank(T[rows] + 0.01 * rng.standard_normal((rows.size, DIMS)), names[rows])
    return X.astype(np.float32), y, bank


def estimator(**params):
    # the adapter of before the ridge start (issue 19): the report is what is tested here
    params = {"encoder": None, "hidden_layer_sizes": (), "max_iter": 60,
              "validation_fraction": 0.25, "random_state": 0, "init": "random",
              "anchor_weight": 0.0, "refit": False, **params}
    return SemiClippedTransformer(**params)


def fit(related, **params):
    X, y, bank = world(related)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = estimator(**params).fit(X, y, image_bank=bank)
    warned = [w for w in caught if issubclass(w.category, GeneralizationWarning)]
    return est, (X, y, bank), warned


@pytest.fixture(scope="module")
def related():
    return fit(related=True)


@pytest.fixture(scope="module")
def unrelated():
    return fit(related=False)


@pytest.fixture(scope="module")
def auto():
    return fit(related=True, structure_weight="auto")


def key_means(Z, y, keys):
    return np.stack([Z[y == k].mean(axis=0) for k in keys])


def cosine(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return A @ B.T


def reference_scores(Z, y, keys, teacher):
    """Slow MRR (mid-rank ties) and RSA of embeddings ``Z`` on ``keys``."""
    S = key_means(Z, y, keys)
    sim = cosine(S, teacher)
    rr = []
    for i in range(len(keys)):
        above = np.sum(sim[i] > sim[i, i])
        tied = np.sum(sim[i] == sim[i, i]) - 1
        rr.append(np.mean([1.0 / (above + 1 + t) for t in range(tied + 1)]))
    iu = np.triu_indices(len(keys), 1)
    rsa = spearmanr(cosine(S, S)[iu], cosine(teacher, teacher)[iu])[0]
    return float(np.mean(rr)), float(rsa)


def test_report_matches_a_slow_reference(related):
    est, (X, y, bank), _ = related
    r = est.validation_report_
    keys = np.array(r["keys"])
    assert r["n_keys"] == keys.size == 15  # round(0.25 * 60)
    assert r["n_samples"] == 15 * REPS
    teacher = np.stack([bank.embeddings[bank.keys == k].mean(axis=0) for k in keys])
    mrr, rsa = reference_scores(est.transform(X), y, keys, teacher)
    assert r["mrr"] == pytest.approx(mrr, abs=1e-6)
    assert r["rsa"] == pytest.approx(rsa, abs=1e-6)
    assert r["mrr_chance"] == pytest.approx(np.mean(1 / np.arange(1, 16)))
    # the floor: ridge (alpha 1) from the frozen encoder (the identity here) on the other keys
    train = ~np.isin(y, keys)
    centroid = {k: bank.embeddings[bank.keys == k].mean(axis=0) for k in np.unique(y)}
    ridge = Ridge(alpha=1.0).fit(X[train], np.stack([centroid[k] for k in y[train]]))
    floor_mrr, floor_rsa = reference_scores(ridge.predict(X), y, keys, teacher)
    assert r["floor_mrr"] == pytest.approx(floor_mrr, abs=1e-6)
    assert r["floor_rsa"] == pytest.approx(floor_rsa, abs=1e-6)
    assert r["mrr_ci_low"] <= r["mrr"] <= r["mrr_ci_high"]


def test_no_warning_when_the_adapter_matches_the_floor():
    # a linear teacher: ridge recovers it, and so does a well-trained linear adapter
    est, _, warned = fit(related=True, learning_rate_init=0.05, max_iter=300)
    r = est.validation_report_
    assert r["floor_mrr"] > 0.9 and r["floor_rsa"] > 0.9
    assert r["mrr"] > 0.9
    assert r["above_chance"] and not r["below_floor"] and r["generalises"]
    assert not warned


def test_the_warning_points_at_the_callers_line():
    X, y, bank = world(related=False)
    with pytest.warns(GeneralizationWarning) as caught:
        estimator().fit(X, y, image_bank=bank)
    assert caught[0].filename == __file__


def test_warning_when_below_the_floor(related):
    est, _, warned = related  # 60 epochs at lr 1e-3: far from the ridge map
    r = est.validation_report_
    assert r["mrr"] < r["floor_mrr"] - 0.2 and r["rsa"] < r["floor_rsa"]
    assert r["below_floor"] and not r["generalises"]
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "does not generalise beyond the frozen encoder" in message
    assert "falls below the frozen encoder's ridge floor on both scores" in message
    assert f"on {r['n_groups']} held-out perturbations" in message
    assert "RidgeDistiller) is better" in message
    assert f"MRR {r['mrr']:.3f}" in message and f"ridge floor {r['floor_mrr']:.3f}" in message


def test_warning_when_nothing_generalises(unrelated):
    est, _, warned = unrelated  # a teacher unrelated to the profiles
    r = est.validation_report_
    assert not r["above_chance"] and not r["generalises"]
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "does not generalise to new perturbations" in message and "not above chance" in message
    assert "RidgeDistiller" not in message and "teacher relates to the transcriptomics" in message


def test_no_report_without_held_out_keys(tiny_data, fast_params):
    est = SemiClippedTransformer(**fast_params).fit(tiny_data.X, tiny_data.y,
                                                    image_bank=tiny_data.image_bank)
    assert est.validation_report_ is None


def test_auto_keeps_the_best_candidate_and_equals_a_fixed_weight_fit(auto):
    est, (X, y, bank), _ = auto
    search = est.validation_report_["structure_weight_search"]
    assert [c["structure_weight"] for c in search] == [0.0, 1.0, 10.0]
    score = [c["mrr"] + c["rsa"] for c in search]
    chosen = est.training_params_["structure_weight"]
    assert chosen == search[int(np.argmax(score))]["structure_weight"]
    with pytest.warns(GeneralizationWarning):  # as the auto fit did: the same model
        fixed = estimator(structure_weight=chosen).fit(X, y, image_bank=bank)
    np.testing.assert_array_equal(est.transform(X), fixed.transform(X))
    assert est.validation_report_["mrr"] == fixed.validation_report_["mrr"]


def test_auto_is_zero_without_held_out_keys_and_says_so(tiny_data, fast_params):
    with pytest.warns(UserWarning, match="structure_weight='auto' could not choose .no held-out"):
        est = SemiClippedTransformer(structure_weight="auto", **fast_params).fit(
            tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    assert est.training_params_["structure_weight"] == 0.0
    assert "could not choose" in est.training_params_["choices"]["structure_weight"]
    plain = SemiClippedTransformer(**fast_params).fit(tiny_data.X, tiny_data.y,
                                                      image_bank=tiny_data.image_bank)
    np.testing.assert_array_equal(est.transform(tiny_data.X), plain.transform(tiny_data.X))


def test_structure_weight_changes_the_fit_and_is_recorded(tiny_data, fast_params):
    plain = SemiClippedTransformer(**fast_params).fit(tiny_data.X, tiny_data.y,
                                                      image_bank=tiny_data.image_bank)
    for name in ("structure_weight", "preservation_weight"):
        est = SemiClippedTransformer(**{name: 5.0}, **fast_params).fit(
            tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
        assert not np.array_equal(est.transform(tiny_data.X), plain.transform(tiny_data.X))
    assert est.training_params_["structure_weight"] == 0.0


@pytest.mark.parametrize("name, value", [("structure_weight", -1.0),
                                         ("structure_weight", "best"),
                                         ("preservation_weight", -0.5),
                                         ("preservation_weight", "auto")])
def test_bad_weights_name_the_parameter(tiny_data, fast_params, name, value):
    est = SemiClippedTransformer(**{name: value}, **fast_params)
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)


def test_report_survives_a_model_file(unrelated, tmp_path):
    est, _, _ = unrelated
    save_model(tmp_path / "m.semiclip", est)
    loaded = load_model(tmp_path / "m.semiclip")
    assert loaded.estimator.validation_report_ == est.validation_report_


def test_warm_start_keeps_the_chosen_weight(auto):
    est, (X, y, bank), _ = auto
    est = copy.deepcopy(est)
    chosen = est.training_params_["structure_weight"]
    with warnings.catch_warnings(), pytest.warns(GeneralizationWarning):
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(warm_start=True, max_iter=2).fit(X, y, image_bank=bank)
    assert est.training_params_["structure_weight"] == chosen
    assert "structure_weight_search" not in est.validation_report_


def test_two_held_out_keys_give_a_report_without_rsa():
    X, y, bank = world(related=True)
    keep = np.isin(y, np.unique(y)[:20])  # 20 keys: validation_fraction 0.1 holds out 2
    est = estimator(validation_fraction=0.1, max_iter=3).fit(X[keep], y[keep], image_bank=bank)
    r = est.validation_report_
    assert r["n_keys"] == 2 and np.isnan(r["rsa"]) and np.isnan(r["floor_rsa"])
    assert r["mrr_chance"] == pytest.approx(0.75)


def test_too_few_held_out_keys_give_no_warning():
    X, y, bank = world(related=False)
    keep = np.isin(y, np.unique(y)[:36])  # 36 keys x 0.25: 9 held out, below the 10 needed
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneralizationWarning)
        est = estimator().fit(X[keep], y[keep], image_bank=bank)
    assert est.validation_report_["n_keys"] == 9 and not est.validation_report_["generalises"]
