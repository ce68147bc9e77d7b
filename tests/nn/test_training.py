"""The training loop and its callbacks, on small torch modules (no estimator involved)."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch

from semiclip import ImageBank
from semiclip._core import PairSampler
from semiclip._nn import (
    AffineMap,
    Callback,
    History,
    TrainConfig,
    TrainData,
    cka_loss,
    default_callbacks,
    fit_loop,
    get_loss,
    init_adapter,
    make_adapter,
    relational_loss,
    with_trainable_encoder,
)
from semiclip._nn.training import validation_loss


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


@pytest.mark.parametrize("loss", ["infonce", "clip", "siglip", "soft_infonce"])
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
    ("structure_weight", -0.5, r"TrainConfig.structure_weight must be a finite number >= 0; "
                               r"got -0.5"),
    ("structure_weight", True, "TrainConfig.structure_weight must be a finite number >= 0"),
    ("preservation_weight", math.inf, "TrainConfig.preservation_weight must be a finite "
                                      "number >= 0; got inf"),
    ("preservation_weight", "1", "TrainConfig.preservation_weight must be a finite number"),
    ("target_temperature", 0.0, r"TrainConfig.target_temperature must be None \(the "
                                r"temperature\) or a finite number > 0; got 0.0"),
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


# ------------------------------------------------- structure-preserving terms
def _one_step(loss="infonce", **kw):
    """One full-batch plain-SGD step: its loss and update can be computed by hand."""
    return _config(loss=loss, batch_size=12, max_epochs=1, solver="sgd", momentum=0.0,
                   weight_decay=0.0, lr_schedule="constant", learning_rate=0.1, **kw)


def _pairs():
    """12 keys with one teacher row each: the weak-pair draw is fixed."""
    X, codes, bank = _problem(n_keys=12, per_key=1)
    teacher = torch.as_tensor(bank.centroids().astype(np.float32))[torch.as_tensor(codes)]
    return X, codes, bank, teacher


def _sgd_update(start, total, lr=0.1):
    grads = torch.autograd.grad(total, list(start.parameters()), retain_graph=True)
    return [(p - lr * g).detach() for p, g in zip(start.parameters(), grads)]


@pytest.mark.parametrize("loss", ["infonce", "soft_infonce", "kd"])
def test_one_step_adds_exactly_the_weighted_terms(loss):
    X, codes, bank, teacher = _pairs()
    module = _module()
    start = copy.deepcopy(module)
    config = _one_step(loss, structure_weight=2.5, preservation_weight=0.75)
    history = fit_loop(module, _data(X, codes, bank), config, rng=np.random.default_rng(0),
                       device=torch.device("cpu"))
    x = torch.as_tensor(X)
    out = start(x)
    main = get_loss(loss)(out, teacher, torch.as_tensor(codes), config.temperature)
    rel, cka = relational_loss(out, teacher), cka_loss(out, x)
    assert rel.item() > 0.01 and cka.item() > 0.01
    total = main + 2.5 * rel + 0.75 * cka
    assert history.loss_curve == [pytest.approx(total.item(), rel=1e-6)]
    assert history.structure_curve == [pytest.approx(rel.item(), rel=1e-6)]
    assert history.preservation_curve == [pytest.approx(cka.item(), rel=1e-6)]
    for got, want in zip(module.parameters(), _sgd_update(start, total)):
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)
    plain = _sgd_update(start, main)  # the terms moved the weights
    assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(module.parameters(), plain))


def test_preservation_compares_with_the_encoder_output_when_fine_tuning():
    """With ``Sequential(encoder, adapter)`` (train_encoder) the reference is the encoder's
    output, detached: the term pulls the student toward it, not the encoder toward the student."""
    X, codes, bank, teacher = _pairs()
    rng = np.random.default_rng(1)
    model = with_trainable_encoder(AffineMap(rng.normal(size=(6, 4)), X.mean(axis=0)),
                                   _module(d_in=4))
    start = copy.deepcopy(model)
    history = fit_loop(model, _data(X, codes, bank), _one_step(preservation_weight=1.5),
                       rng=np.random.default_rng(0), device=torch.device("cpu"))
    x = torch.as_tensor(X)
    encoded = start[0](x)
    out = start[1](encoded)
    cka = cka_loss(out, encoded.detach())
    assert abs(cka.item() - cka_loss(out, x).item()) > 1e-3  # not the raw profiles
    assert history.preservation_curve == [pytest.approx(cka.item(), rel=1e-6)]
    assert history.structure_curve == [None]
    total = get_loss("infonce")(out, teacher, torch.as_tensor(codes), 0.1) + 1.5 * cka
    for got, want in zip(model.parameters(), _sgd_update(start, total)):
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)


def test_weights_zero_compute_no_term_and_records_say_none(monkeypatch):
    import semiclip._nn.training._terms as terms

    X, codes, bank = _problem()
    data, config = _data(X, codes, bank), _config(max_epochs=2)
    reference = _module()
    fit_loop(reference, data, config, rng=np.random.default_rng(0), device=torch.device("cpu"))

    def never(*args):
        raise AssertionError("a structure term was computed")

    monkeypatch.setattr(terms, "relational_loss", never)
    monkeypatch.setattr(terms, "cka_loss", never)
    rec = Recorder()
    module = _module()
    history = fit_loop(module, data, config, rng=np.random.default_rng(0),
                       device=torch.device("cpu"),
                       callbacks=[*default_callbacks(data, config), rec])
    assert all(torch.equal(a, b) for a, b in zip(module.parameters(), reference.parameters()))
    assert [(r["structure"], r["preservation"]) for r in rec.records] == [(None, None)] * 2
    assert history.structure_curve == history.preservation_curve == [None, None]
    with pytest.raises(AssertionError, match="a structure term was computed"):  # wired there
        fit_loop(_module(), data, _config(max_epochs=1, structure_weight=1e-9),
                 rng=np.random.default_rng(0), device=torch.device("cpu"))


def test_term_records_are_the_epoch_means():
    X, codes, bank = _problem()
    rec = Recorder()
    data = _data(X, codes, bank)
    config = _config(max_epochs=2, structure_weight=1.0, preservation_weight=0.5)
    history = fit_loop(_module(), data, config, rng=np.random.default_rng(0),
                       device=torch.device("cpu"),
                       callbacks=[*default_callbacks(data, config), rec])
    assert [r["structure"] for r in rec.records] == history.structure_curve
    assert [r["preservation"] for r in rec.records] == history.preservation_curve
    assert all(0 < v < 4 for v in history.structure_curve)
    assert all(0 < v < 1 for v in history.preservation_curve)


def test_history_from_before_the_terms_continues():
    """A History pickled before the term curves existed loads with them filled with None."""
    old = History(loss_curve=[1.0, 0.5], n_iter=2)
    state = {k: v for k, v in vars(old).items()
             if k not in ("structure_curve", "preservation_curve")}
    restored = History.__new__(History)
    restored.__setstate__(state)
    assert restored.structure_curve == restored.preservation_curve == [None, None]
    assert pickle.loads(pickle.dumps(restored)) == restored


def test_soft_infonce_validation_loss_has_soft_targets_over_the_centroids():
    s = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]], dtype=torch.float64)
    table = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    cos = [[1.0, 0.0, -1.0], [0.6, 0.8, -0.6], [0.0, 1.0, 0.0]]  # cos(s_i, table_j)
    cos_tt = [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]  # cos(table_i, table_j)
    codes = [1, 2, 0]

    def soft_ce(pred, target):
        zt, zp = sum(map(math.exp, target)), sum(map(math.exp, pred))
        return -sum(math.exp(t) / zt * (p - math.log(zp)) for t, p in zip(target, pred))

    expected = sum(soft_ce([c / 0.5 for c in cos[i]], [c / 2.0 for c in cos_tt[codes[i]]])
                   for i in range(3)) / 3
    config = TrainConfig(loss="soft_infonce", temperature=0.5, target_temperature=2.0)
    got = validation_loss(torch.nn.Identity(), s, torch.tensor(codes), table, config,
                          torch.device("cpu"))
    assert got == pytest.approx(expected, rel=1e-12)


def test_soft_infonce_trains_with_its_target_temperature():
    """The loop's ``"soft_infonce"`` uses ``target_temperature`` for the targets, computed here
    from the definition (softmax of teacher cosines against log-softmax of student cosines)."""
    X, codes, bank, teacher = _pairs()
    module = _module()
    start = copy.deepcopy(module)
    config = _one_step("soft_infonce", temperature=0.3, target_temperature=0.05)
    history = fit_loop(module, _data(X, codes, bank), config, rng=np.random.default_rng(0),
                       device=torch.device("cpu"))
    s = torch.nn.functional.normalize(start(torch.as_tensor(X)), dim=1)
    t = torch.nn.functional.normalize(teacher, dim=1)
    target = torch.softmax(t @ t.T / 0.05, dim=1)
    total = -(target * torch.log_softmax(s @ t.T / 0.3, dim=1)).sum(dim=1).mean()
    default = -(torch.softmax(t @ t.T / 0.3, dim=1)
                * torch.log_softmax(s @ t.T / 0.3, dim=1)).sum(dim=1).mean()
    assert abs(total.item() - default.item()) > 1e-3  # the target temperature matters here
    assert history.loss_curve == [pytest.approx(total.item(), rel=1e-6)]
    for got, want in zip(module.parameters(), _sgd_update(start, total)):
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)
