"""Issue 19: the ridge start, the anchor, held-out selection, refit, groups and the verdict."""

import hashlib
import pickle
import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from semiclip import ImageBank, RidgeDistiller, SemiClippedTransformer
from semiclip.datasets import (
    load_lincs_cellpainting,
    make_keys,
    make_weakly_paired,
    round_to_grid,
)
from semiclip.exceptions import GeneralizationWarning
from semiclip.persistence import load_model, save_model


@pytest.fixture(scope="module")
def data():
    return make_weakly_paired(n_perturbations=60, n_genes=80, samples_per_perturbation=3,
                              n_batches=2, random_state=0)


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kwargs)


def _scale_matched_ridge(Z, targets, codes, alpha):
    """Independent reference: sklearn Ridge, then per-key outputs rescaled to the centroids'
    spread about the mean prediction."""
    ridge = Ridge(alpha=alpha).fit(Z, targets)
    pred = ridge.predict(Z)
    keys = np.unique(codes)
    means = np.array([pred[codes == k].mean(axis=0) for k in keys])
    cents = np.array([targets[codes == k][0] for k in keys])
    have = np.mean(np.sum((means - means.mean(0)) ** 2, axis=1))
    want = np.mean(np.sum((cents - cents.mean(0)) ** 2, axis=1))
    f = np.sqrt(want / have)
    mean = pred.mean(axis=0)
    return lambda Znew: mean + f * (ridge.predict(Znew) - mean)


def _paired(data):
    keep = ~data.is_control
    cent = {k: data.image_bank.embeddings[data.image_bank.keys == k].mean(axis=0)
            for k in np.unique(data.y[keep])}
    targets = np.array([cent[k] for k in data.y[keep]], dtype=np.float64)
    return keep, targets


@pytest.mark.parametrize("hidden", [(), (8, 4)])
def test_ridge_start_is_the_scale_matched_ridge_map(data, hidden):
    """With a learning rate of ~0 and no selection, the output is the ridge start; with hidden
    layers too (the residual adapter: its MLP's last layer starts at zero)."""
    est = SemiClippedTransformer(encoder_dim=16, init="ridge", ridge_alpha=3.0,
                                 hidden_layer_sizes=hidden, early_stopping=False, max_iter=1,
                                 learning_rate_init=1e-12, control_label=data.control_label,
                                 random_state=0)
    Z = _quiet_fit(est, data.X, data.y, image_bank=data.image_bank).transform(data.X)
    keep, targets = _paired(data)
    F = est.encoder_.transform(data.X)
    ref = _scale_matched_ridge(F[keep], targets, data.y[keep], 3.0)
    np.testing.assert_allclose(Z, ref(F), rtol=1e-3, atol=1e-3)
    assert est.training_params_["init"] == "ridge"
    assert est.training_params_["ridge_alpha"] == 3.0


def test_ridge_distiller_auto_is_the_scale_matched_map_at_its_alpha(data):
    est = RidgeDistiller(encoder_dim=16, control_label=data.control_label, random_state=0)
    Z = est.fit(data.X, data.y, image_bank=data.image_bank).transform(data.X)
    keep, targets = _paired(data)
    F = est.encoder_.transform(data.X)
    ref = _scale_matched_ridge(F[keep], targets, data.y[keep], est.alpha_)
    np.testing.assert_allclose(Z, ref(F), rtol=1e-4, atol=1e-4)
    search = est.alpha_search_["search"]
    assert len(search) == 6 and est.alpha_search_["n_folds"] == 5
    # the choice is the candidate of the highest mean held-out MRR + RSA
    best = max(search, key=lambda c: c["mrr"] + c["rsa"])
    assert est.alpha_ == pytest.approx(best["alpha"])
    # a float alpha is the plain ridge of before
    plain = RidgeDistiller(encoder_dim=16, alpha=1.0, control_label=data.control_label,
                           random_state=0).fit(data.X, data.y, image_bank=data.image_bank)
    ref = Ridge(alpha=1.0).fit(F[keep], targets)
    np.testing.assert_allclose(plain.transform(data.X), ref.predict(F), rtol=1e-4, atol=1e-4)


def test_ridge_alpha_auto_warns_when_it_cannot_choose():
    d = make_weakly_paired(n_perturbations=8, n_genes=40, samples_per_perturbation=3,
                           n_batches=2, random_state=1)
    with pytest.warns(UserWarning, match="could not choose alpha: only 8 perturbation"):
        est = RidgeDistiller(encoder_dim=8, control_label=d.control_label).fit(
            d.X, d.y, image_bank=d.image_bank)
    assert "could not choose" in est.alpha_search_["reason"]


def test_selection_keeps_the_ridge_start_when_training_only_hurts():
    """Epoch 0 (the ridge start) is a candidate: on a teacher linear in the profiles the
    start is as good as it gets, and a learning rate that wrecks the adapter leaves it."""
    rng = np.random.default_rng(0)
    keys = np.repeat(np.array([f"k{i:03d}" for i in range(100)], dtype=object), 3)
    means = rng.standard_normal((100, 20))
    X = np.repeat(means, 3, axis=0) + 0.05 * rng.standard_normal((300, 20))
    bank = ImageBank((means @ rng.standard_normal((20, 12))).astype(np.float32),
                     keys[::3])
    common = dict(encoder=None, random_state=0, ridge_alpha=1e-3, refit=False)
    start = _quiet_fit(SemiClippedTransformer(init="ridge", max_iter=1,  # the same split
                                              learning_rate_init=1e-12, **common),
                       X, keys, image_bank=bank)
    wild = _quiet_fit(SemiClippedTransformer(learning_rate_init=100.0, max_iter=4,
                                             solver="adam", anchor_weight=0.0, **common),
                      X, keys, image_bank=bank)
    assert wild.training_params_["selected_epoch"] == 0
    np.testing.assert_allclose(wild.transform(X), start.transform(X), atol=1e-3)


def test_refit_trains_the_chosen_epochs_on_every_key(data):
    est = _quiet_fit(SemiClippedTransformer(encoder_dim=16, max_iter=6,
                                            control_label=data.control_label, random_state=0,
                                            refit=True),
                     data.X, data.y, image_bank=data.image_bank)
    tp = est.training_params_
    assert tp["refit"] is True
    assert est.n_iter_ == tp["selected_epoch"]  # the refit's own epochs
    assert est.n_paired_keys_ == 60
    # the report still describes the held-out split
    assert est.validation_report_["n_keys"] == 6
    assert {"init", "ridge_alpha", "epochs", "refit"} <= set(tp["choices"])


def test_anchor_keeps_the_fine_tune_near_the_start(data):
    common = dict(encoder_dim=16, control_label=data.control_label, random_state=0,
                  ridge_alpha=3.0, early_stopping=False, max_iter=20, init="ridge")
    start = _quiet_fit(SemiClippedTransformer(**{**common, "max_iter": 1},
                                              learning_rate_init=1e-12),
                       data.X, data.y, image_bank=data.image_bank).transform(data.X)
    far = [np.linalg.norm(_quiet_fit(SemiClippedTransformer(anchor_weight=w, **common),
                                     data.X, data.y, image_bank=data.image_bank)
                          .transform(data.X) - start) for w in (0.0, 1000.0)]
    assert far[1] < 0.2 * far[0]


def test_legacy_settings_reproduce_the_fit_before_issue_19():
    """Fingerprint of this fit computed on main at 9b77354, before the ridge start."""
    d = make_weakly_paired(n_perturbations=40, n_genes=60, samples_per_perturbation=3,
                           n_batches=2, random_state=3)
    est = SemiClippedTransformer(encoder_dim=16, max_iter=15, control_label=d.control_label,
                                 random_state=0, n_threads=1, init="random", anchor_weight=0.0,
                                 refit=False)
    Z = _quiet_fit(est, d.X, d.y, image_bank=d.image_bank).transform(d.X)
    assert hashlib.sha256(np.ascontiguousarray(Z).tobytes()).hexdigest() == (
        "705d4e895ac57f3f693361773f10ed860a564b2acb191abbccacc538302c4dce")


# ------------------------------------------------------------------- groups and the verdict
def _dose_keyed(data, n_doses=3):
    """Every perturbation of ``data`` at ``n_doses`` doses: keys ``"gene|dose"``."""
    rng = np.random.default_rng(0)
    dose = rng.integers(0, n_doses, size=data.y.size)
    keys = np.where(data.is_control, data.control_label,
                    make_keys(data.y, dose).astype(object))
    bank_keys = np.array([f"{k}|{d}" for k in data.image_bank.keys for d in range(n_doses)],
                         dtype=object)
    emb = np.repeat(data.image_bank.embeddings, n_doses, axis=0)
    return keys, ImageBank(emb, bank_keys)


def test_held_out_sets_never_share_a_perturbation_with_training(data):
    keys, bank = _dose_keyed(data)
    est = _quiet_fit(SemiClippedTransformer(encoder_dim=16, max_iter=3, validation_fraction=0.2,
                                            control_label=data.control_label, random_state=0,
                                            refit=False),
                     data.X, keys, image_bank=bank)
    report = est.validation_report_
    held = {k.split("|")[0] for k in report["keys"]}
    trained = {k.split("|")[0] for k in np.unique(keys[~data.is_control])} - held
    assert len(held) == report["n_groups"] == 12
    assert report["n_keys"] > report["n_groups"]
    assert not held & trained
    # an explicit grouping wins: every key its own group
    est = _quiet_fit(SemiClippedTransformer(encoder_dim=16, max_iter=3, validation_fraction=0.2,
                                            control_label=data.control_label, random_state=0,
                                            refit=False),
                     data.X, keys, image_bank=bank, groups=keys)
    assert est.validation_report_["n_groups"] == est.validation_report_["n_keys"]


def test_groups_of_the_wrong_length_are_refused(data):
    with pytest.raises(ValueError, match="groups"):
        SemiClippedTransformer(encoder_dim=8, max_iter=1, control_label=data.control_label).fit(
            data.X, data.y, image_bank=data.image_bank, groups=data.y[:-3])


def test_hidden_layers_start_at_the_ridge_map_and_train_from_there(data, tmp_path):
    """A ridge start with hidden layers: the residual adapter trains (its hidden layers move
    off zero) and its epochs are chosen like a linear adapter's; a random start keeps the plain
    MLP of before."""
    common = dict(encoder_dim=8, hidden_layer_sizes=(16,), max_iter=3, refit=False,
                  control_label=data.control_label, random_state=0)
    ridge = _quiet_fit(SemiClippedTransformer(early_stopping=False, **common),
                       data.X, data.y, image_bank=data.image_bank)
    assert ridge.training_params_["init"] == "ridge"
    assert "residual" in ridge.training_params_["choices"]["init"]
    before = _quiet_fit(SemiClippedTransformer(early_stopping=False, learning_rate_init=1e-12,
                                               **common), data.X, data.y,
                        image_bank=data.image_bank)
    assert np.abs(ridge.transform(data.X) - before.transform(data.X)).max() > 1e-3
    # the residual adapter survives a model file and a pickle
    save_model(tmp_path / "m.semiclip", ridge)
    np.testing.assert_allclose(load_model(tmp_path / "m.semiclip").estimator.transform(data.X),
                               ridge.transform(data.X), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ridge)).transform(data.X),
                                  ridge.transform(data.X))
    random = _quiet_fit(SemiClippedTransformer(init="random", **common),
                        data.X, data.y, image_bank=data.image_bank)
    assert [m.out_features for m in random.adapter_ if hasattr(m, "out_features")] == [
        16, data.image_bank.n_dims]
    # recipe="paper" keeps the paper's random start (and its plain MLP)
    paper = _quiet_fit(SemiClippedTransformer(recipe="paper", encoder_dim=8, max_iter=1,
                                              control_label=data.control_label, random_state=0),
                       data.X, data.y, image_bank=data.image_bank)
    assert paper.training_params_["init"] == "random"
    assert "recipe='paper'" in paper.training_params_["choices"]["init"]


@pytest.mark.parametrize(("fraction", "n_groups", "judged"), [(0.1, 10, True), (0.09, 9, False)])
def test_ten_held_out_perturbations_get_a_verdict_nine_do_not(fraction, n_groups, judged):
    d = make_weakly_paired(n_perturbations=100, n_genes=40, samples_per_perturbation=2,
                           n_batches=2, random_state=2)
    est = _quiet_fit(SemiClippedTransformer(encoder_dim=8, max_iter=2, refit=False,
                                            validation_fraction=fraction,
                                            control_label=d.control_label, random_state=0),
                     d.X, d.y, image_bank=d.image_bank)
    report = est.validation_report_
    assert report["n_groups"] == n_groups
    too_few = report["verdict"] == "too few held-out perturbations to judge"
    assert too_few is not judged
    if not judged:
        assert report["generalises"] is False
    assert report["verdict"] in report["summary"]
    assert f"held-out perturbations {n_groups}" in report["summary"]


# --------------------------------------- the compound + dose case on shipped data (issue 19)
@pytest.fixture(scope="module")
def lincs():
    cp = load_lincs_cellpainting()
    dose = round_to_grid(cp.dose, factor=3, anchor=10)
    keys = np.where(cp.is_control, "DMSO", make_keys(cp.pert_id, dose).astype(object))
    X = np.asarray(cp.X, dtype=np.float64)
    X = (X - X[cp.is_control].mean(0)) / (X[cp.is_control].std(0) + 1e-6)
    return X, keys, cp.is_control


def _verdict(X, keys, bank):
    est = SemiClippedTransformer(encoder_dim=32, max_iter=30, validation_fraction=0.2,
                                 control_label="DMSO", random_state=0, refit=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GeneralizationWarning)
        est.fit(X, keys, image_bank=bank)
    warned = any(issubclass(w.category, GeneralizationWarning) for w in caught)
    return est.validation_report_, warned


def test_random_teacher_per_compound_is_never_judged_to_generalise(lincs):
    """One random teacher vector per compound, shared by its doses: nothing to learn about a
    new compound. Holding out keys would leave its other doses in training."""
    X, keys, ctl = lincs
    rng = np.random.default_rng(0)
    treated = np.unique(keys[~ctl])
    compounds = np.unique([k.split("|")[0] for k in treated])
    vec = dict(zip(compounds, rng.standard_normal((compounds.size, 32))))
    emb = np.array([vec[k.split("|")[0]] + 0.1 * rng.standard_normal(32) for k in treated])
    report, warned = _verdict(X, keys, ImageBank(emb.astype(np.float32), treated))
    assert report["verdict"] in ("at chance", "below the floor",
                                 "too few held-out perturbations to judge")
    assert not report["generalises"]
    assert warned or report["verdict"] == "too few held-out perturbations to judge"


def test_teacher_linear_in_the_profiles_raises_no_false_alarm(lincs):
    X, keys, ctl = lincs
    rng = np.random.default_rng(1)
    treated = np.unique(keys[~ctl])
    W = rng.standard_normal((X.shape[1], 32)) / np.sqrt(X.shape[1])
    emb = np.array([X[keys == k].mean(0) @ W for k in treated])
    report, warned = _verdict(X, keys, ImageBank(emb.astype(np.float32), treated))
    assert report["n_groups"] >= 10
    assert report["verdict"] == "generalises" and not warned
