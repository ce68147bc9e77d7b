"""No silent wrong result: degenerate settings and inputs of the distillation estimators.

Each test builds an input that used to train (or transform) without a word
and checks the clear error, or the warning, that replaces it.
"""

import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning

from semiclip import ImageBank, RidgeDistiller, SemiClippedTransformer
from semiclip._core.compat import InvalidParameterError

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CONTRASTIVE = ["infonce", "clip", "siglip"]
F32_MAX = float(np.finfo(np.float32).max)


def _fit(data, X=None, y=None, bank=None, **params):
    X = data.X if X is None else X
    y = data.y if y is None else y
    return SemiClippedTransformer(**params).fit(X, y, image_bank=bank or data.image_bank)


# ------------------------------------------------- minibatches of one row
@pytest.mark.parametrize("loss", CONTRASTIVE)
def test_batch_size_one_with_a_contrastive_loss_is_an_error(tiny_data, fast_params, loss):
    msg = (f"batch_size=1 cannot train loss='{loss}'.*at least 2 rows.*"
           "batch_size >= 2")
    with pytest.raises(ValueError, match=msg):
        _fit(tiny_data, **fast_params, loss=loss, batch_size=1)


@pytest.mark.parametrize("loss", ["kd", "kd_mse"])
def test_batch_size_one_trains_a_feature_distillation_loss(tiny_data, fast_params, loss):
    # one optimiser step per sample: the weights move away from their initialisation
    init = SemiClippedTransformer(**{**fast_params, "max_iter": 1, "learning_rate_init": 1e-12})
    init.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    est = _fit(tiny_data, **fast_params, loss=loss, batch_size=1)
    n_paired = int((tiny_data.y != "control").sum())
    assert est.t_ == 3 * n_paired
    w0, w1 = init.adapter_[0].weight.detach(), est.adapter_[0].weight.detach()
    assert not torch.allclose(w0, w1, atol=1e-4)


@pytest.mark.parametrize("loss", CONTRASTIVE)
def test_partial_fit_chunk_of_one_paired_sample_is_an_error(tiny_data, fast_params, loss):
    est = SemiClippedTransformer(**fast_params, loss=loss)
    one = np.flatnonzero(tiny_data.y != "control")[:1]
    msg = (r"needs at least 2 paired samples, but this partial_fit chunk has 1 sample paired "
           r"with image_bank")
    with pytest.raises(ValueError, match=msg):
        est.partial_fit(tiny_data.X[one], tiny_data.y[one], image_bank=tiny_data.image_bank)
    est.partial_fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    with pytest.raises(ValueError, match=msg):
        est.partial_fit(tiny_data.X[one], tiny_data.y[one])


# ------------------------------------------------------ boolean integers
@pytest.mark.parametrize("name", ["batch_size", "max_iter", "encoder_dim", "n_iter_no_change",
                                  "n_threads"])
def test_booleans_are_not_integers(tiny_data, fast_params, name):
    msg = (rf"The '{name}' parameter of SemiClippedTransformer must be .*an int in the range "
           r"\[1, inf\).*Got True instead")
    with pytest.raises(InvalidParameterError, match=msg):
        _fit(tiny_data, **{**fast_params, name: True})


def test_ridge_distiller_rejects_a_boolean_encoder_dim(tiny_data):
    with pytest.raises(InvalidParameterError,
                       match="The 'encoder_dim' parameter of RidgeDistiller must be .*Got True"):
        RidgeDistiller(encoder_dim=True, control_label="control").fit(
            tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)


def test_numpy_integers_are_still_integers(tiny_data, fast_params):
    est = _fit(tiny_data, **{**fast_params, "max_iter": np.int64(2), "batch_size": np.int32(16)})
    assert est.n_iter_ == 2 and est.training_params_["batch_size"] == 16


# --------------------------------------------------------- adapter widths
@pytest.mark.parametrize("sizes, bad", [((2.7,), "2.7 at position 0"),
                                        ((16, 0), "0 at position 1"),
                                        ((-3, 8, True), "-3 at position 0, True at position 2"),
                                        (("16",), "'16' at position 0")])
def test_hidden_layer_sizes_must_be_positive_integers(tiny_data, fast_params, sizes, bad):
    msg = rf"hidden_layer_sizes must hold positive integers.*{re.escape(bad)}"
    with pytest.raises(ValueError, match=msg):
        _fit(tiny_data, **{**fast_params, "hidden_layer_sizes": sizes})


def test_hidden_layer_sizes_accepts_numpy_integers(tiny_data, fast_params):
    est = _fit(tiny_data, **{**fast_params, "hidden_layer_sizes": np.array([5, 3]),
                             "init": "random"})  # the plain MLP (a ridge start: residual)
    assert [m.out_features for m in est.adapter_ if hasattr(m, "out_features")] == [5, 3, 8]


# --------------------------------------------------------- paired keys
def _one_key(data):
    key = data.y[data.y != "control"][0]
    rows = np.flatnonzero((data.y == key) | (data.y == "control"))
    return data.X[rows], data.y[rows]


@pytest.mark.parametrize("loss", CONTRASTIVE)
def test_one_paired_key_is_an_error_for_contrastive_losses(tiny_data, fast_params, loss):
    X, y = _one_key(tiny_data)
    with pytest.raises(ValueError, match=rf"loss='{loss}' needs at least 2 distinct paired keys"
                                         r".*n_paired_keys=1"):
        _fit(tiny_data, X, y, **fast_params, loss=loss)
    est = SemiClippedTransformer(**fast_params, loss=loss)
    with pytest.raises(ValueError, match="n_paired_keys=1"):
        est.partial_fit(X, y, image_bank=tiny_data.image_bank)


def test_one_paired_key_trains_feature_distillation(tiny_data, fast_params):
    X, y = _one_key(tiny_data)
    with pytest.warns(UserWarning, match="ridge_alpha='auto' could not choose alpha: only 1"):
        est = _fit(tiny_data, X, y, **fast_params, loss="kd_mse")
    assert est.n_paired_keys_ == 1


# ------------------------------------------------------------ zero teacher
@pytest.mark.parametrize("loss", ["infonce", "kd", "kd_mse"])
def test_all_zero_teacher_bank_is_an_error(tiny_data, fast_params, loss):
    bank = tiny_data.image_bank
    zero = ImageBank(np.zeros_like(bank.embeddings), bank.keys)
    with pytest.raises(ValueError, match=r"image_bank: every teacher embedding .* is zero"):
        _fit(tiny_data, bank=zero, **fast_params, loss=loss)


def test_all_zero_teacher_bank_is_an_error_for_the_ridge_baseline(tiny_data):
    bank = tiny_data.image_bank
    zero = ImageBank(np.zeros_like(bank.embeddings), bank.keys)
    with pytest.raises(ValueError, match=r"image_bank: every teacher embedding .* is zero"):
        RidgeDistiller(encoder_dim=4, control_label="control").fit(
            tiny_data.X, tiny_data.y, image_bank=zero)


@pytest.mark.parametrize("target", ["sample", "centroid"])
def test_zero_teacher_rows_warn_under_cosine_losses(tiny_data, fast_params, target):
    bank = tiny_data.image_bank
    emb = bank.embeddings.copy()
    dead = bank.unique_keys[bank.unique_keys != "control"][:2]
    emb[np.isin(bank.keys, dead)] = 0.0
    zeroed = ImageBank(emb, bank.keys)
    n_rows = int(np.isin(bank.keys, dead).sum()) if target == "sample" else 2
    what = "teacher rows" if target == "sample" else "key centroids"
    with pytest.warns(UserWarning, match=rf"{n_rows} {what} .* are all zero.*loss='infonce'"):
        _fit(tiny_data, bank=zeroed, **fast_params, target=target)
    with warnings.catch_warnings():  # kd_mse has a target for zero rows: no warning
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        _fit(tiny_data, bank=zeroed, **fast_params, target=target, loss="kd_mse")


# ----------------------------------------------------- partial_fit's record
def test_partial_fit_counts_the_keys_of_every_call(tiny_data, fast_params):
    y = tiny_data.y
    keys = np.unique(y[y != "control"])
    first = np.isin(y, keys[:10]) | (y == "control")
    second = np.isin(y, keys[5:25])
    est = SemiClippedTransformer(**fast_params)
    est.partial_fit(tiny_data.X[first], y[first], image_bank=tiny_data.image_bank)
    assert est.n_paired_keys_ == 10
    est.partial_fit(tiny_data.X[second], y[second])
    assert est.n_paired_keys_ == 25  # keys 0-24: the union, not the last chunk's 20
    est.fit(tiny_data.X[second], y[second], image_bank=tiny_data.image_bank)
    assert est.n_paired_keys_ == 20  # fit starts a new record


# ------------------------------------------------------ float32's range
@pytest.mark.parametrize("where", ["fit", "transform"])
def test_values_beyond_float32_range_are_an_error(tiny_data, fast_params, where):
    X = tiny_data.X.astype(np.float64)
    X[[3, 7], 2] = 1e39
    X[7, 4] = -4e38
    msg = (r"X has values beyond float32's range \(\|x\| > 3.4e\+38\) in 2 row\(s\) \(row "
           r"indices: 3, 7\).*scale X")
    if where == "fit":
        with pytest.raises(ValueError, match=msg):
            _fit(tiny_data, X, **fast_params)
        with pytest.raises(ValueError, match=msg):
            RidgeDistiller(encoder_dim=4, control_label="control").fit(
                X, tiny_data.y, image_bank=tiny_data.image_bank)
    else:
        est = _fit(tiny_data, **fast_params)
        with pytest.raises(ValueError, match=msg):
            est.transform(X)


def test_values_beyond_float32_range_in_a_sparse_matrix_give_the_same_error(tiny_data,
                                                                          fast_params):
    import scipy.sparse as sp

    X = tiny_data.X.astype(np.float64)
    X[[3, 7], 2] = 1e39
    msg = (r"X has values beyond float32's range \(\|x\| > 3.4e\+38\) in 2 row\(s\) \(row "
           r"indices: 3, 7\)")
    with pytest.raises(ValueError, match=msg):
        _fit(tiny_data, sp.csr_matrix(X), **fast_params)


def test_values_beyond_float32_range_on_disk_give_the_same_error(tiny_data, fast_params,
                                                                 tmp_path):
    X = tiny_data.X.astype(np.float64)
    X[[3, 7], 2] = 1e39
    np.save(tmp_path / "X.npy", X)
    disk = np.load(tmp_path / "X.npy", mmap_mode="r")
    msg = (r"X has values beyond float32's range \(\|x\| > 3.4e\+38\) in 2 row\(s\) \(row "
           r"indices: 3, 7\)")
    with pytest.raises(ValueError, match=msg):
        _fit(tiny_data, disk, **fast_params)
    est = _fit(tiny_data, **fast_params)
    with pytest.raises(ValueError, match=msg):
        est.transform(disk)


def test_values_at_the_float32_limit_pass(tiny_data, fast_params):
    est = _fit(tiny_data, **fast_params)
    X = tiny_data.X.astype(np.float64)
    X[0, 0] = F32_MAX  # representable: no error (the result may be extreme, not NaN)
    assert est.transform(X).shape[0] == X.shape[0]


# ----------------------------------------------------------------- encoders
def test_torch_encoder_of_the_wrong_input_size_is_named(tiny_data, fast_params):
    params = {**fast_params, "encoder": torch.nn.Sequential(torch.nn.Linear(5, 4))}
    msg = r"encoder Sequential expects 5 input features \(its first layer .*\) but X has 30"
    with pytest.raises(ValueError, match=msg):
        _fit(tiny_data, **params)


def test_torch_encoder_that_fails_otherwise_raises_its_own_error(tiny_data, fast_params):
    class Picky(torch.nn.Module):  # right width, but a failure of its own
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(30, 4)

        def forward(self, x):
            raise RuntimeError("picky module")

    with pytest.raises(RuntimeError, match="picky module"):
        _fit(tiny_data, **{**fast_params, "encoder": Picky()})


def test_torch_encoder_whose_first_registered_layer_is_not_first_works(tiny_data, fast_params):
    class HeadFirst(torch.nn.Module):  # the expected width cannot be read from modules()
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4, 3)
            self.body = torch.nn.Linear(30, 4)

        def forward(self, x):
            return self.head(self.body(x))

    assert _fit(tiny_data, **{**fast_params, "encoder": HeadFirst()}).n_iter_ == 3


class HalfColumns:
    """A working encoder with ``transform`` only (no scikit-learn base class)."""

    def transform(self, X):
        return np.asarray(X)[:, ::2] * 2.0


class Unfitted(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.scale_ = 2.0
        return self

    def transform(self, X):
        return np.asarray(X) * self.scale_


def test_an_encoder_with_transform_only_is_used_as_is(tiny_data, fast_params):
    est = _fit(tiny_data, **{**fast_params, "encoder": HalfColumns()})
    expected = (tiny_data.X[:, ::2] * 2.0).astype(np.float32)
    W = est.adapter_[0].weight.detach().numpy().astype(np.float64)
    b = est.adapter_[0].bias.detach().numpy()
    np.testing.assert_allclose(est.transform(tiny_data.X), expected @ W.T + b, atol=1e-4)


def test_an_unfitted_scikit_learn_encoder_is_still_reported(tiny_data, fast_params):
    with pytest.raises(ValueError, match="encoder Unfitted is not fitted"):
        _fit(tiny_data, **{**fast_params, "encoder": Unfitted()})
    assert _fit(tiny_data, **{**fast_params, "encoder": Unfitted().fit(tiny_data.X)}).n_iter_ == 3
