"""SemiClippedTransformer.

Training behaviour, reproducibility, persistence, integration, bad input.
"""

import io
import pickle
import re
import warnings
from unittest import mock

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from semiclip import GeneralizationWarning, ImageBank, SemiClippedTransformer
from semiclip._distill import PAPER
from semiclip.callbacks import Callback

from .._helpers import RaiseAfter

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fit(data, **params):
    return SemiClippedTransformer(**params).fit(data.X, data.y, image_bank=data.image_bank)


# ----------------------------------------------------------------- basics
def test_fit_transform_shapes_and_attributes(tiny_data, fast_params):
    est = fit(tiny_data, **fast_params)
    Z = est.transform(tiny_data.X)
    assert Z.shape == (tiny_data.X.shape[0], tiny_data.image_bank.n_dims)
    assert Z.dtype == np.float32
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert est.n_features_in_ == tiny_data.X.shape[1]
    assert est.encoder_.n_components_ == 8
    assert all(p.device.type == "cpu" for p in est.adapter_.parameters())
    names = est.get_feature_names_out()
    assert list(names[:2]) == ["semiclippedtransformer0", "semiclippedtransformer1"]
    assert len(names) == tiny_data.image_bank.n_dims


def test_transform_is_encoder_then_adapter(tiny_data, fast_params):
    est = fit(tiny_data, **fast_params)
    Z_pca = est.encoder_.transform(tiny_data.X)
    W = est.adapter_[0].weight.detach().numpy().astype(np.float64)
    b = est.adapter_[0].bias.detach().numpy()
    np.testing.assert_allclose(est.transform(tiny_data.X), Z_pca @ W.T + b, atol=1e-4)


def test_training_reduces_the_loss(tiny_data, fast_params):
    est = fit(tiny_data, **{**fast_params, "max_iter": 40, "learning_rate_init": 1e-2,
                            "init": "random"})  # from a random start (the ridge one is lower)
    assert est.loss_curve_[-1] < 0.8 * est.loss_curve_[0]


def test_same_seed_bit_identical_and_different_seed_differs(tiny_data, fast_params):
    params = {**fast_params, "hidden_layer_sizes": (16,)}
    a = fit(tiny_data, **params).transform(tiny_data.X)
    b = fit(tiny_data, **params).transform(tiny_data.X)
    c = fit(tiny_data, **{**params, "random_state": 1}).transform(tiny_data.X)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_fitting_does_not_touch_global_rngs(tiny_data, fast_params):
    torch.manual_seed(123)
    # the legacy global numpy RNG is the point of this test, so NPY002 is silenced below
    np.random.seed(123)  # noqa: NPY002
    expected_t, expected_np = torch.rand(1), np.random.rand()  # noqa: NPY002
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    fit(tiny_data, **fast_params)
    assert torch.rand(1) == expected_t and np.random.rand() == expected_np  # noqa: NPY002


def test_paper_recipe_resolves_to_the_paper_values(tiny_data):
    est = fit(tiny_data, recipe="paper", max_iter=1, encoder_dim=8, control_label="control")
    for name, value in PAPER.items():
        if name != "max_iter":
            assert est.training_params_[name] == value, name
    assert est.training_params_["max_iter"] == 1  # explicit values win
    assert isinstance(est.adapter_[2], torch.nn.Linear) and est.adapter_[2].in_features == 1024
    assert est.validation_scores_ == []


def test_auto_recipe_small_data(tiny_data):
    # refit=False: the held-out run's own history (a refit on every key has no held-out loss)
    est = fit(tiny_data, encoder_dim=8, max_iter=2, control_label="control", random_state=0,
              refit=False)
    p = est.training_params_
    assert p["hidden_layer_sizes"] == () and p["solver"] == "adam"
    n_paired = int((~tiny_data.is_control).sum())
    # at least 8 steps per epoch on small data
    assert p["batch_size"] <= max(32, n_paired // 8)
    # the held-out loss of every epoch the run trained (the epochs the folds chose)
    assert p["early_stopping"] is True
    assert len(est.validation_scores_) == est.n_iter_ == p["selected_epoch"] <= 2


@pytest.mark.parametrize("loss", ["infonce", "clip", "siglip", "kd", "kd_mse"])
@pytest.mark.parametrize("target", ["sample", "centroid"])
def test_every_loss_and_target_trains(tiny_data, fast_params, loss, target):
    est = fit(tiny_data, **{**fast_params, "loss": loss, "target": target, "max_iter": 15,
                            "learning_rate_init": 1e-2})
    assert np.all(np.isfinite(est.loss_curve_))
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_early_stopping_restores_best_weights(tiny_data):
    with pytest.warns(GeneralizationWarning):  # toy data: the held-out judgement says so
        est = fit(tiny_data, encoder_dim=8, hidden_layer_sizes=(64,), max_iter=60, init="random",
                  learning_rate_init=5e-2, early_stopping=True, validation_fraction=0.3,
                  n_iter_no_change=3, control_label="control", random_state=0)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ < 60  # stopped early
    assert est.best_validation_score_ == max(scores)
    assert np.argmax(scores) < len(scores) - 1  # the best epoch is not the last one


def test_validation_split_is_by_key(tiny_data):
    class SeeData:
        def on_train_begin(self, trainer):
            self.train = set(trainer.data.codes.tolist())
            self.val = set(trainer.data.val_codes.tolist())

    seen = SeeData()
    with pytest.warns(GeneralizationWarning):  # one epoch on toy data: the judgement says so
        fit(tiny_data, encoder_dim=8, max_iter=1, early_stopping=True, validation_fraction=0.25,
            control_label="control", random_state=0, callbacks=[seen])
    assert seen.train and seen.val and not (seen.train & seen.val)
    assert len(seen.val) == round(0.25 * 40)


def test_warm_start_continues(tiny_data, fast_params):
    est = SemiClippedTransformer(**{**fast_params, "warm_start": True})
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    first = [p.detach().clone() for p in est.adapter_.parameters()]
    enc = est.encoder_
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    assert est.n_iter_ == 6 and len(est.loss_curve_) == 6
    assert est.encoder_ is enc
    assert any(not torch.equal(a, b) for a, b in zip(first, est.adapter_.parameters()))


def test_inverse_transform_reconstructs_training_profiles(tiny_data):
    est = fit(tiny_data, encoder=None, hidden_layer_sizes=(), max_iter=2, control_label="control",
              random_state=0, decoder_alpha=1e-3, early_stopping=False)
    X = tiny_data.X
    rec = est.inverse_transform(est.transform(X))
    # independent least-squares reconstruction from the same embedding
    Z = est.transform(X).astype(np.float64)
    Zc = np.c_[Z, np.ones(len(Z))]
    coef, *_ = np.linalg.lstsq(Zc, X, rcond=None)
    np.testing.assert_allclose(rec, Zc @ coef, atol=2e-3)
    with pytest.raises(ValueError, match="expects embeddings of shape"):
        est.inverse_transform(np.zeros((2, 3)))


# --------------------------------------------------------------- encoders
def test_identity_encoder(tiny_data, fast_params):
    est = fit(tiny_data, **{**fast_params, "encoder": None})
    assert est.encoder_ is None and est.adapter_[0].in_features == tiny_data.X.shape[1]


def test_fitted_sklearn_encoder_is_never_refitted(tiny_data, fast_params):
    pca = PCA(5, random_state=0).fit(tiny_data.X[:50])
    comps = pca.components_.copy()
    est = fit(tiny_data, **{**fast_params, "encoder": FrozenEstimator(pca)})
    np.testing.assert_array_equal(pca.components_, comps)
    assert est.adapter_[0].in_features == 5
    cloned = clone(est).fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    assert cloned.adapter_[0].in_features == 5  # FrozenEstimator survives clone


def test_unfitted_encoder_error_names_frozen_estimator(tiny_data, fast_params):
    with pytest.raises(ValueError, match="FrozenEstimator"):
        fit(tiny_data, **{**fast_params, "encoder": PCA(3)})


def test_torch_module_encoder_is_frozen(tiny_data, fast_params):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(30, 6), torch.nn.Tanh())
    before = [p.detach().clone() for p in module.parameters()]
    est = fit(tiny_data, **{**fast_params, "encoder": module})
    assert est.adapter_[0].in_features == 6
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
    assert not any(p.requires_grad for p in module.parameters())


def test_sparse_input_matches_dense(tiny_data, fast_params):
    X = tiny_data.X.copy()
    X[np.abs(X) < 1.0] = 0
    params = {**fast_params, "encoder": None}
    dense = SemiClippedTransformer(**params).fit(X, tiny_data.y, image_bank=tiny_data.image_bank)
    sparse = SemiClippedTransformer(**params).fit(
        sp.csr_matrix(X), tiny_data.y, image_bank=tiny_data.image_bank
    )
    np.testing.assert_allclose(dense.transform(X), sparse.transform(sp.csr_matrix(X)), atol=1e-5)


# ------------------------------------------------------------ persistence
def test_pickle_and_joblib_give_identical_transforms(tiny_data, fast_params):
    est = fit(tiny_data, **{**fast_params, "hidden_layer_sizes": (16,)})
    Z = est.transform(tiny_data.X)
    assert np.array_equal(pickle.loads(pickle.dumps(est)).transform(tiny_data.X), Z)
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    restored = joblib.load(buf)
    assert np.array_equal(restored.transform(tiny_data.X), Z)
    assert restored.loss_curve_ == est.loss_curve_


def test_gpu_fitted_model_loads_on_cpu_only_machine(tiny_data, fast_params):
    est = fit(tiny_data, **fast_params)
    Z = est.transform(tiny_data.X)
    est.device = "cuda"  # as if fitted on a GPU node, whose tensors torch tags with their device
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        blob = pickle.dumps(est)
        weights = est.__getstate__()["_adapter_state"]
    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.raises(RuntimeError, match="deserialize object on a CUDA device"):
            torch.load(io.BytesIO(weights), weights_only=True)  # really tagged CUDA
        restored = pickle.loads(blob)  # semiclip maps the tensors to the CPU
        with pytest.warns(UserWarning, match="CUDA is not available; using the CPU"):
            Z2 = restored.transform(tiny_data.X)
    assert np.array_equal(Z, Z2)


# ------------------------------------------------------------ integration
def test_clone_shares_the_bank_and_keeps_params(tiny_data):
    est = SemiClippedTransformer(image_bank=tiny_data.image_bank, temperature=0.2)
    cloned = clone(est)
    assert cloned.image_bank is tiny_data.image_bank and cloned.temperature == 0.2
    assert est.set_params(temperature=0.3).get_params()["temperature"] == 0.3


def test_set_output_pandas(tiny_data, fast_params):
    pd = pytest.importorskip("pandas")
    est = fit(tiny_data, **fast_params).set_output(transform="pandas")
    frame = est.transform(tiny_data.X)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(est.get_feature_names_out())


def test_pipeline_with_probe_and_keys(tiny_data, fast_params):
    groups = dict(zip(tiny_data.perturbations, tiny_data.groups))
    target = np.array([groups.get(k, -1) for k in tiny_data.y])  # probe target: the group
    pipe = make_pipeline(StandardScaler(), SemiClippedTransformer(**fast_params),
                         LogisticRegression(max_iter=200))
    pipe.fit(tiny_data.X, target, semiclippedtransformer__image_bank=tiny_data.image_bank,
             semiclippedtransformer__keys=tiny_data.y)
    assert pipe.score(tiny_data.X, target) > 1.0 / len(np.unique(target))
    with pytest.raises(ValueError, match="no row in image_bank"):
        pipe.fit(tiny_data.X, target, semiclippedtransformer__image_bank=tiny_data.image_bank)


@pytest.mark.parametrize("routing", [False, True])
def test_grid_search_group_kfold_n_jobs_2(tiny_data, routing):
    groups = dict(zip(tiny_data.perturbations, tiny_data.groups))
    target = np.array([groups.get(k, -1) for k in tiny_data.y])
    pipe = make_pipeline(
        StandardScaler(),
        SemiClippedTransformer(encoder_dim=8, max_iter=2, early_stopping=False,
                               control_label="control", random_state=0),
        LogisticRegression(max_iter=100),
    )
    grid = {"semiclippedtransformer__temperature": [0.1, 0.5],
            "semiclippedtransformer__hidden_layer_sizes": [(), (8,)]}
    search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=2), n_jobs=2)
    with config_context(enable_metadata_routing=routing):
        if routing:
            search.fit(tiny_data.X, target, groups=tiny_data.y, image_bank=tiny_data.image_bank,
                       keys=tiny_data.y)
        else:
            search.fit(tiny_data.X, target, groups=tiny_data.y,
                       semiclippedtransformer__image_bank=tiny_data.image_bank,
                       semiclippedtransformer__keys=tiny_data.y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_[1]
    assert best.image_bank is None and best.adapter_ is not None


# -------------------------------------------------------------- bad input
@pytest.fixture
def est(fast_params):
    return SemiClippedTransformer(**fast_params)


def test_nan_and_inf_in_X_name_the_rows(tiny_data, est):
    X = tiny_data.X.copy()
    X[3, 1] = np.nan
    X[7, 0] = np.inf
    with pytest.raises(ValueError,
                       match=re.escape("X contains NaN or inf in 2 row(s) (row indices: 3, 7)")):
        est.fit(X, tiny_data.y, image_bank=tiny_data.image_bank)
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    with pytest.raises(ValueError, match="NaN or inf"):
        est.transform(X)


def test_nan_in_bank(tiny_data):
    emb = tiny_data.image_bank.embeddings.copy()
    emb[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"ImageBank embeddings contains NaN or inf in 1 row\(s\) "
                                         r"\(row indices: 5\)"):
        ImageBank(emb, tiny_data.image_bank.keys)


def test_zero_rows_and_wrong_feature_count(tiny_data, est):
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(tiny_data.X[:0], tiny_data.y[:0], image_bank=tiny_data.image_bank)
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    with pytest.raises(ValueError,
                       match="X has 29 features, but SemiClippedTransformer is expecting 30"):
        est.transform(tiny_data.X[:, :-1])


def test_y_length_mismatch(tiny_data, est):
    with pytest.raises(ValueError, match=f"y has {len(tiny_data.y) - 1} entries "
                                         f"but X has {len(tiny_data.y)} rows"):
        est.fit(tiny_data.X, tiny_data.y[:-1], image_bank=tiny_data.image_bank)


def test_missing_bank(tiny_data, est):
    with pytest.raises(ValueError, match="fit needs the teacher embeddings: pass image_bank"):
        est.fit(tiny_data.X, tiny_data.y)
    with pytest.raises(TypeError, match="image_bank must be an ImageBank"):
        est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank.embeddings)


def test_unpaired_keys_raise_with_count_and_examples_or_drop(tiny_data, fast_params):
    y = tiny_data.y.astype(object)
    y[:5] = "NOT_IN_BANK"
    with pytest.raises(ValueError, match=r"5 training samples \(1 distinct keys, "
                                         r"e.g. 'NOT_IN_BANK'\) have no row"):
        SemiClippedTransformer(**fast_params).fit(tiny_data.X, y, image_bank=tiny_data.image_bank)
    est = SemiClippedTransformer(**{**fast_params, "unpaired": "drop"})
    est.fit(tiny_data.X, y, image_bank=tiny_data.image_bank)
    paired = int(((y != "control") & (y != "NOT_IN_BANK")).sum())
    assert est.t_ == 3 * paired  # 3 epochs over the paired samples only


def test_controls_are_never_paired(tiny_data, fast_params):
    # the bank has no "control" key, yet fit works: controls are not paired
    assert "control" not in set(tiny_data.image_bank.unique_keys)
    est = SemiClippedTransformer(**fast_params).fit(tiny_data.X, tiny_data.y,
                                                    image_bank=tiny_data.image_bank)
    assert est.t_ == 3 * int((~tiny_data.is_control).sum())


def test_all_controls(tiny_data, est):
    y = np.full(len(tiny_data.y), "control")
    with pytest.raises(ValueError, match="All .* samples are controls"):
        est.fit(tiny_data.X, y, image_bank=tiny_data.image_bank)


def test_bank_dim_mismatch_on_warm_start(tiny_data, fast_params):
    est = SemiClippedTransformer(**{**fast_params, "warm_start": True})
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    other = ImageBank(np.ones((3, 5)), tiny_data.perturbations[:3])
    with pytest.raises(ValueError, match="outputs 8 dimensions but image_bank has 5"):
        est.fit(tiny_data.X, tiny_data.y, image_bank=other)


def test_batch_size_larger_than_data_is_clamped(tiny_data, fast_params):
    est = fit(tiny_data, **{**fast_params, "batch_size": 10**6})
    assert est.n_iter_ == 3 and np.all(np.isfinite(est.loss_curve_))


def test_non_numeric_X(tiny_data, est):
    X = tiny_data.X.astype(str).astype(object)
    X[0, 0] = "abc"
    with pytest.raises(ValueError, match="could not convert string to float"):
        est.fit(X, tiny_data.y, image_bank=tiny_data.image_bank)


def test_invalid_parameter_message(tiny_data):
    with pytest.raises(ValueError, match="The 'loss' parameter of SemiClippedTransformer must be"):
        SemiClippedTransformer(loss="mse").fit(tiny_data.X, tiny_data.y,
                                               image_bank=tiny_data.image_bank)


def test_explicit_early_stopping_with_too_few_keys(tiny_data):
    keep = np.isin(tiny_data.y, tiny_data.perturbations[:3]) | tiny_data.is_control
    with pytest.raises(ValueError, match="early_stopping needs at least 2 validation keys"):
        SemiClippedTransformer(early_stopping=True, encoder_dim=4, control_label="control").fit(
            tiny_data.X[keep], tiny_data.y[keep], image_bank=tiny_data.image_bank
        )


def test_non_finite_loss_fails_loudly(tiny_data, fast_params):
    with pytest.raises(FloatingPointError, match="loss became"):
        fit(tiny_data, **{**fast_params, "loss": "kd_mse", "solver": "sgd",
                          "learning_rate_init": 1e6, "max_iter": 20})


def test_convergence_warning_at_max_iter_only(tiny_data, fast_params):
    msg = "SemiClippedTransformer stopped at max_iter=3 epochs before the loss stopped improving"
    with pytest.warns(ConvergenceWarning, match=re.escape(msg)):
        fit(tiny_data, **fast_params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # converged: after the first epoch the loss never improves by tol=1e3, so training
        # stops once 2 epochs in a row did not improve
        est = fit(tiny_data, **{**fast_params, "max_iter": 50, "tol": 1e3, "n_iter_no_change": 2})
        assert est.n_iter_ == 3
        # partial_fit trains one epoch per call by design
        SemiClippedTransformer(**fast_params).partial_fit(tiny_data.X, tiny_data.y,
                                                          image_bank=tiny_data.image_bank)
        # an interrupted fit says so, not that it did not converge
        with pytest.warns(UserWarning, match="interrupted"):
            fit(tiny_data, **{**fast_params, "callbacks": [RaiseAfter(2)]})


def test_user_callbacks_see_every_epoch_and_bad_ones_are_named(tiny_data, fast_params):
    class Log:
        def __init__(self):
            self.losses = []

        def on_epoch_end(self, trainer, record):
            self.losses.append(record["loss"])

    log = Log()
    est = fit(tiny_data, **{**fast_params, "callbacks": [log]})
    assert log.losses == est.loss_curve_ and len(log.losses) == 3
    cloned = clone(est)  # a parameter like any other: copied, not shared
    assert cloned.callbacks[0] is not log and isinstance(cloned.callbacks[0], Log)
    with pytest.raises(TypeError,
                       match=r"callbacks must be objects with training hooks .* got 'oops'"):
        fit(tiny_data, **{**fast_params, "callbacks": ["oops"]})


def test_keyboard_interrupt_keeps_a_usable_model(tiny_data, fast_params):
    with pytest.warns(UserWarning, match="interrupted"):
        est = fit(tiny_data, **{**fast_params, "max_iter": 50, "callbacks": [RaiseAfter(5)]})
    assert est.n_iter_ < 50
    assert est.transform(tiny_data.X).shape[0] == tiny_data.X.shape[0]


# ------------------------------------------------------------ the method
@pytest.mark.slow
def test_distillation_beats_raw_on_held_out_keys(small_data):
    from semiclip import RidgeDistiller
    from semiclip.datasets import split_by_key

    from .._reference import center_plates_on_controls, slow_recall

    d = small_data
    X = center_plates_on_controls(d.X, d.batch, d.is_control).astype(np.float32)
    train, test = split_by_key(d.y, control_label="control", random_state=0)
    test &= ~d.is_control
    est = SemiClippedTransformer(control_label="control", random_state=0)
    est.fit(X[train], d.y[train], image_bank=d.image_bank)
    ridge = RidgeDistiller(control_label="control", random_state=0)
    ridge.fit(X[train], d.y[train], image_bank=d.image_bank)
    raw = slow_recall(X[test], d.y[test], d.relationships)
    ours = slow_recall(est.transform(X[test]), d.y[test], d.relationships)
    base = slow_recall(ridge.transform(X[test]), d.y[test], d.relationships)
    assert ours > 1.8 * raw
    assert ours > 0.8 * base


def test_train_encoder_fine_tunes_a_pca_initialised_layer(tiny_data, fast_params):
    est = fit(tiny_data, **{**fast_params, "train_encoder": True, "max_iter": 5,
                            "learning_rate_init": 1e-2})
    pca = PCA(8, random_state=0).fit(tiny_data.X)  # what the frozen encoder would be
    layer = est.encoder_.module
    assert isinstance(layer, torch.nn.Linear) and layer.out_features == 8
    assert not any(p.requires_grad for p in layer.parameters())  # frozen after fit
    moved = np.abs(layer.weight.detach().numpy() - pca.components_).max()
    assert moved > 1e-3  # trained away from the PCA initialisation
    Z = est.transform(tiny_data.X)
    expected = est.adapter_(layer(torch.as_tensor(tiny_data.X))).detach().numpy()
    np.testing.assert_allclose(Z, expected, atol=1e-4)


def test_train_encoder_rejects_non_differentiable_encoders(tiny_data, fast_params):
    from sklearn.preprocessing import FunctionTransformer

    enc = FunctionTransformer(np.tanh).fit(tiny_data.X)
    with pytest.raises(ValueError, match="train_encoder=True needs a differentiable encoder"):
        fit(tiny_data, **{**fast_params, "encoder": enc, "train_encoder": True})


def test_sparse_fit_then_dense_transform(tiny_data, fast_params):
    # arpack PCA (sparse fit) has negative-stride components_
    est = SemiClippedTransformer(**fast_params).fit(
        sp.csr_matrix(tiny_data.X), tiny_data.y, image_bank=tiny_data.image_bank)
    dense = est.transform(tiny_data.X)
    np.testing.assert_allclose(dense, est.transform(sp.csr_matrix(tiny_data.X)), atol=1e-4)


def test_a_callback_that_stops_training_raises_no_convergence_warning(tiny_data):
    """The warning says max_iter was used up: not so when a user's callback stopped the run."""

    class StopAt(Callback):
        def on_epoch_end(self, trainer, record):
            trainer.stop_training = record["epoch"] >= 3

    params = dict(encoder_dim=8, max_iter=20, early_stopping=False, init="random",
                  control_label="control", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = fit(tiny_data, **params, callbacks=[StopAt()])
    assert est.n_iter_ == 3
    with pytest.warns(ConvergenceWarning, match="stopped at max_iter=4"):
        fit(tiny_data, **dict(params, max_iter=4, n_iter_no_change=50))
