"""The training loop and its callbacks, on small torch modules (no estimator involved)."""

import numpy as np
import pytest
import torch

from semiclip import ImageBank
from semiclip._bank import PairSampler
from semiclip.nn import (
    Callback,
    TrainConfig,
    TrainData,
    default_callbacks,
    fit_loop,
    init_adapter,
    make_adapter,
)
from semiclip.nn.training import validation_loss


def _problem(seed=0, n_keys=30, per_key=4, d_in=6, d_out=5):
    """Student features that are a noisy linear view of the teacher of their key."""
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(n_keys, d_out)).astype(np.float32)
    bank = ImageBank(teacher, np.arange(n_keys))
    codes = np.repeat(np.arange(n_keys), per_key)
    mix = rng.normal(size=(d_out, d_in))
    X = (teacher[codes] @ mix + 0.5 * rng.normal(size=(codes.size, d_in))).astype(np.float32)
    return X, codes, bank


def _data(X, codes, bank, val_keys=()):
    val = np.isin(codes, val_keys)
    tr = ~val
    kwargs = {}
    if val.any():
        kwargs = dict(val_features=X[val], val_codes=codes[val], val_table=bank.centroids())
    return TrainData(codes=codes[tr], sampler=PairSampler(bank, codes[tr]), features=X[tr],
                     **kwargs)


def _module(d_in=6, d_out=5, hidden=(8,), seed=0):
    return init_adapter(make_adapter(d_in, hidden, d_out), seed)


class Recorder(Callback):
    """Every hook call, every epoch record and the weights after every epoch."""

    def __init__(self):
        self.calls, self.records, self.states = [], [], []

    def on_train_begin(self, trainer):
        self.calls.append("train_begin")

    def on_epoch_begin(self, trainer):
        self.calls.append("epoch_begin")

    def on_batch_end(self, trainer, loss):
        self.calls.append("batch_end")

    def on_epoch_end(self, trainer, record):
        self.calls.append("epoch_end")
        self.records.append(dict(record))
        self.states.append({k: v.detach().clone() for k, v in trainer.module.state_dict().items()})

    def on_train_end(self, trainer):
        self.calls.append("train_end")


def _config(**kw):
    base = dict(batch_size=16, max_epochs=5, solver="adam", learning_rate=1e-2,
                early_stopping=False)
    return TrainConfig(**{**base, **kw})


def test_hooks_run_in_order_with_plain_number_records():
    X, codes, bank = _problem()
    rec = Recorder()
    config = _config(max_epochs=3)
    data = _data(X, codes, bank)
    history = fit_loop(_module(), data, config, rng=np.random.default_rng(0),
                       device=torch.device("cpu"),
                       callbacks=[*default_callbacks(data, config), rec])
    steps = -(-data.n // 16)  # every minibatch has at least 2 rows here
    epoch = ["epoch_begin"] + ["batch_end"] * steps + ["epoch_end"]
    assert rec.calls == ["train_begin", *epoch * 3, "train_end"]
    assert [r["epoch"] for r in rec.records] == [1, 2, 3]
    assert [r["loss"] for r in rec.records] == history.loss_curve
    assert all(r["validation_loss"] is None and r["samples"] == data.n for r in rec.records)
    # the cosine schedule: the last step's rate, decreasing
    lrs = [r["learning_rate"] for r in rec.records]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < config.learning_rate


def test_a_callback_with_only_some_hooks_and_stop_training():
    class StopAtTwo:
        def on_epoch_end(self, trainer, record):
            trainer.stop_training = record["epoch"] == 2

    X, codes, bank = _problem()
    history = fit_loop(_module(), _data(X, codes, bank), _config(max_epochs=9),
                       rng=np.random.default_rng(0), device=torch.device("cpu"),
                       callbacks=[StopAtTwo()])
    assert history.n_iter == 2


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    X, codes, bank = _problem(seed=1)
    data = _data(X, codes, bank, val_keys=np.arange(8))
    # a wide adapter and a large learning rate: the held-out loss turns back up
    config = _config(max_epochs=40, learning_rate=0.05, early_stopping=True,
                     n_iter_no_change=4, tol=0.0)
    rec = Recorder()
    module = _module(hidden=(64,))
    history = fit_loop(module, data, config, rng=np.random.default_rng(0),
                       device=torch.device("cpu"),
                       callbacks=[*default_callbacks(data, config), rec])
    scores = history.validation_scores
    best = int(np.argmax(scores))
    assert history.stopped_early and best < len(scores) - 1  # the best epoch is not the last
    for name, value in module.state_dict().items():  # the best epoch's weights are back
        assert torch.equal(value, rec.states[best][name]), name
    # and they give the best held-out loss, recomputed
    again = validation_loss(module, torch.as_tensor(X[np.isin(codes, np.arange(8))]),
                            torch.as_tensor(codes[np.isin(codes, np.arange(8))]),
                            torch.as_tensor(bank.centroids()), config, torch.device("cpu"))
    assert again == pytest.approx(-max(scores), rel=1e-6)


def test_keyboard_interrupt_keeps_the_best_weights_and_a_usable_module():
    class Interrupt(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 36:
                raise KeyboardInterrupt

    X, codes, bank = _problem(seed=1)
    data = _data(X, codes, bank, val_keys=np.arange(8))
    config = _config(max_epochs=50, learning_rate=0.05, early_stopping=True, n_iter_no_change=50)
    rec = Recorder()
    module = _module(hidden=(64,))
    with pytest.warns(UserWarning, match="interrupted by the user after 36 epochs"):
        history = fit_loop(module, data, config, rng=np.random.default_rng(0),
                           device=torch.device("cpu"),
                           callbacks=[*default_callbacks(data, config), rec, Interrupt()])
    assert history.interrupted and history.n_iter == 36
    best = int(np.argmax(history.validation_scores))
    assert best < 35  # the held-out loss turned back up before the interrupt
    assert all(torch.equal(v, rec.states[best][k]) for k, v in module.state_dict().items())
    assert not module.training and rec.calls[-1] == "train_end"


def test_non_finite_loss_names_the_epoch():
    X, codes, bank = _problem()
    X[5] = np.inf
    with pytest.raises(FloatingPointError, match="The training loss became nan at epoch 1"):
        fit_loop(_module(), _data(X, codes, bank), _config(), rng=np.random.default_rng(0),
                 device=torch.device("cpu"))


@pytest.mark.parametrize("loss", ["infonce", "clip", "siglip"])
@pytest.mark.parametrize("batch_size, n", [(1, 120), (16, 1)])
def test_contrastive_minibatches_of_one_row_are_an_error(loss, batch_size, n):
    # such minibatches are skipped: the loop would report loss 0 with no optimiser step
    X, codes, bank = _problem()
    module = _module()
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(ValueError, match=rf"loss='{loss}' contrasts every row .* at least 2 "
                                         rf"rows; got batch_size={batch_size} for {n} "):
        fit_loop(module, _data(X[:n], codes[:n], bank), _config(loss=loss, batch_size=batch_size),
                 rng=np.random.default_rng(0), device=torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


@pytest.mark.parametrize("loss", ["kd", "kd_mse"])
def test_minibatches_of_one_row_train_feature_distillation(loss):
    X, codes, bank = _problem()
    module = _module()
    before = [p.detach().clone() for p in module.parameters()]
    history = fit_loop(module, _data(X, codes, bank), _config(loss=loss, batch_size=1,
                                                              max_epochs=1),
                       rng=np.random.default_rng(0), device=torch.device("cpu"))
    assert history.t == X.shape[0] and history.loss_curve[0] > 0
    assert not all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_drawing_the_next_epoch_ahead_gives_the_same_training():
    """On an accelerator the next epoch's inputs are drawn in a thread: same draws, same result."""
    X, codes, bank = _problem(seed=3)

    def draw(rng):  # fresh noisy inputs every epoch, from the loop's generator only
        return (X + rng.normal(size=X.shape)).astype(np.float32)

    states = []
    for ahead in (False, True):
        data = TrainData(codes=codes, sampler=PairSampler(bank, codes), epoch_features=draw,
                         epoch_features_ahead=ahead)
        module = _module()
        fit_loop(module, data, _config(max_epochs=4), rng=np.random.default_rng(0),
                 device=torch.device("cpu"))
        states.append(module.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("field, value, message", [
    ("loss", "mse", "TrainConfig.loss must be one of"),
    ("batch_size", 0, "TrainConfig.batch_size must be a positive integer; got 0"),
    ("batch_size", True, "TrainConfig.batch_size must be a positive integer; got True"),
    ("max_epochs", 2.5, "TrainConfig.max_epochs must be a positive integer; got 2.5"),
    ("learning_rate", float("nan"), "TrainConfig.learning_rate must be a finite number > 0"),
    ("momentum", 1.5, "TrainConfig.momentum must be a number in"),
    ("early_stopping", "yes", "TrainConfig.early_stopping must be True or False"),
])
def test_config_is_validated_when_built(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_config_and_data_are_frozen_and_data_is_validated():
    X, codes, bank = _problem()
    with pytest.raises(AttributeError):
        TrainConfig().loss = "clip"
    data = _data(X, codes, bank)
    with pytest.raises(AttributeError):
        data.features = None
    sampler = PairSampler(bank, codes)
    with pytest.raises(ValueError, match="exactly one of features and epoch_features"):
        TrainData(codes=codes, sampler=sampler)
    with pytest.raises(ValueError, match="features has 3 rows but codes has 120"):
        TrainData(codes=codes, sampler=sampler, features=X[:3])
    with pytest.raises(ValueError, match="all of val_features, val_codes and val_table"):
        TrainData(codes=codes, sampler=sampler, features=X, val_codes=codes)
