"""Behaviours of SemiClippedTransformer that one-line mutants once changed without a failing test.

Each test asserts through the public API against an independent computation:
controls are never paired, the model blob is loaded as tensors only, the
cosine schedule's values, and ``partial_fit``'s one SGD-momentum trajectory.
"""

import copyreg
import io
import math
import pickle

import numpy as np
import pytest
import torch

from semiclip import ImageBank, SemiClippedTransformer
from semiclip.callbacks import Callback

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Records(Callback):
    """Keeps every epoch's record (a user callback)."""

    def __init__(self):
        self.records = []

    def on_epoch_end(self, trainer, record):
        self.records.append(record)


# ------------------------------------------------------------ control samples
@pytest.mark.parametrize("control", ["control", "DMSO"])
def test_controls_are_never_paired_even_when_the_bank_holds_their_key(tiny_data, fast_params,
                                                                     control):
    """Cell Painting banks often hold DMSO wells: the control samples must still not train."""
    y = np.where(tiny_data.y == "control", control, tiny_data.y)
    bank = tiny_data.image_bank
    rng = np.random.default_rng(0)
    with_controls = ImageBank(
        np.vstack([bank.embeddings, rng.standard_normal((4, bank.n_dims)).astype(np.float32)]),
        np.concatenate([bank.keys, [control] * 4]))
    params = {**fast_params, "control_label": control, "batch_size": 16}
    est = SemiClippedTransformer(**params).fit(tiny_data.X, y, image_bank=with_controls)
    perturbed = y != control
    assert est.n_paired_keys_ == np.unique(y[perturbed]).size == 40
    assert est.t_ == params["max_iter"] * perturbed.sum()  # only the perturbed samples trained
    # the same fit as with a bank without the control rows (controls were never drawn)
    plain = SemiClippedTransformer(**params).fit(tiny_data.X, y, image_bank=bank)
    np.testing.assert_allclose(est.loss_curve_, plain.loss_curve_, rtol=1e-6)


# ------------------------------------------------------------------ pickling
CALLS = []


def _record_call(what):
    CALLS.append(what)
    return what


class _RunsCode:
    """Unpickling this object calls a function: what a malicious model blob would do."""

    def __reduce__(self):
        return _record_call, ("code ran",)


class _Estimator:
    """Pickles as a SemiClippedTransformer with the given state (as pickle itself writes one)."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return copyreg._reconstructor, (SemiClippedTransformer, object, None), self.state


def test_a_model_blob_holding_a_non_tensor_object_is_refused(tiny_data, fast_params):
    est = SemiClippedTransformer(**fast_params).fit(tiny_data.X, tiny_data.y,
                                                    image_bank=tiny_data.image_bank)
    state = est.__getstate__()
    good = pickle.loads(pickle.dumps(_Estimator(state)))  # the real state loads
    np.testing.assert_array_equal(good.transform(tiny_data.X), est.transform(tiny_data.X))
    weights = torch.load(io.BytesIO(state["_adapter_state"]), weights_only=True)
    buf = io.BytesIO()
    torch.save({**weights, "extra": _RunsCode()}, buf)
    blob = pickle.dumps(_Estimator({**state, "_adapter_state": buf.getvalue()}))
    CALLS.clear()
    with pytest.raises(pickle.UnpicklingError, match="(?i)weights only"):
        pickle.loads(blob)
    assert CALLS == []  # refused before any code of the blob ran


# ------------------------------------------------------------ the lr schedule
def test_cosine_schedule_goes_from_the_initial_to_the_minimum_learning_rate(tiny_data,
                                                                             fast_params):
    """One step per epoch (the batch holds every sample): the rate of step t of T + 1 steps is
    lo + (hi - lo) (1 + cos(pi t / T)) / 2."""
    hi, lo, epochs = 0.02, 0.005, 7
    records = Records()
    SemiClippedTransformer(**{**fast_params, "max_iter": epochs, "batch_size": 10_000,
                              "solver": "sgd", "learning_rate_init": hi,
                              "min_learning_rate": lo, "callbacks": [records]}).fit(
        tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    got = [r["learning_rate"] for r in records.records]
    T = epochs - 1
    expected = [lo + (hi - lo) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(epochs)]
    assert len(got) == epochs
    for t in (0, 2, T):  # the start, a step in between, the end
        assert got[t] == pytest.approx(expected[t], rel=1e-12)
    assert got == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- partial_fit
def _linear_map(est, n_features):
    """``(W, b)`` of a linear adapter behind the identity encoder, read from ``transform``."""
    b = est.transform(np.zeros((1, n_features), dtype=np.float32))[0].astype(np.float64)
    W = est.transform(np.eye(n_features, dtype=np.float32)).astype(np.float64) - b
    return W, b  # transform(x) = x @ W + b


def test_partial_fit_calls_follow_one_sgd_momentum_trajectory(tiny_data):
    """k calls, one minibatch each, continue one SGD-with-momentum optimizer.

    With ``v`` the momentum buffer: ``v <- mu v + grad``, ``w <- w - lr v``. The
    weights after calls 1 and 2 give ``v`` after call 2 (``(w1 - w2) / lr``); every
    later call is then predicted from the mean squared error's gradient on its chunk,
    computed here in float64 (a fresh optimizer would drop ``mu v``).
    """
    lr, mu = 0.05, 0.9
    perturbed = tiny_data.y != "control"
    X = tiny_data.X[perturbed].astype(np.float64)
    y = tiny_data.y[perturbed]
    bank = tiny_data.image_bank
    centroid = {k: bank.embeddings[bank.keys == k].astype(np.float64).mean(axis=0)
                for k in np.unique(y)}
    target = np.stack([centroid[k] for k in y])
    chunks = np.array_split(np.random.default_rng(0).permutation(y.size), 5)
    est = SemiClippedTransformer(encoder=None, hidden_layer_sizes=(), loss="kd_mse",
                                 target="centroid", solver="sgd", momentum=mu,
                                 learning_rate_init=lr, weight_decay=0.0, batch_size=10_000,
                                 random_state=0)
    weights = []
    for idx in chunks:
        est.partial_fit(X[idx].astype(np.float32), y[idx], image_bank=bank)
        weights.append(_linear_map(est, X.shape[1]))
    (W1, b1), (W2, b2) = weights[:2]
    vW, vb = (W1 - W2) / lr, (b1 - b2) / lr
    W, b = W2, b2
    for k, idx in enumerate(chunks[2:], start=2):
        residual = X[idx] @ W + b - target[idx]
        scale = 2.0 / residual.size  # F.mse_loss: the mean over every coordinate
        vW = mu * vW + scale * X[idx].T @ residual
        vb = mu * vb + scale * residual.sum(axis=0)
        W, b = W - lr * vW, b - lr * vb
        np.testing.assert_allclose(weights[k][0], W, atol=2e-5)
        np.testing.assert_allclose(weights[k][1], b, atol=2e-5)
    assert est.n_iter_ == len(chunks)
