"""Checkpoint and resume (``semiclip.callbacks.Checkpoint``).

- a fit interrupted mid-epoch (``KeyboardInterrupt`` from a callback) and then
  resumed from its checkpoint gives, bit for bit on the CPU, the model,
  ``loss_curve_`` and validation scores of an uninterrupted fit: SGD with
  momentum and early stopping (best weights, patience), Adam with PEA
  augmentation and the structure terms (the augmentation generator);
- the checkpoint of the interrupt is the last completed epoch; a finished
  run resumes with nothing left to train;
- the file never runs code when read: a file holding any other object is
  refused (and the object's code never runs); a garbage file is refused;
- writes are atomic: a write that fails leaves the previous checkpoint
  intact and no temporary file; only rank 0 of a DDP job writes;
- a checkpoint of another configuration or data split is refused with what
  differs; bad parameters are named.
"""

import os
import pickle
import types
import warnings

import numpy as np
import pytest
import torch

from semiclip import PEAAugmenter, SemiClippedTransformer
from semiclip.callbacks import Callback, Checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore::semiclip.GeneralizationWarning")

# a random start: the one training run a Checkpoint resumes (a ridge start selects among runs)
SGD = dict(encoder_dim=8, max_iter=8, early_stopping=True, validation_fraction=0.25,
           n_iter_no_change=50, batch_size=32, learning_rate_init=0.05, solver="sgd",
           control_label="control", random_state=0, init="random")
ADAM_PEA = dict(encoder_dim=8, max_iter=6, early_stopping=False, batch_size=40, init="random",
                learning_rate_init=0.01, solver="adam", loss="soft_infonce",
                structure_weight=0.5, preservation_weight=0.5, control_label="control",
                random_state=3)


class InterruptAt(Callback):
    """Ctrl-C in the middle of epoch ``epoch + 1`` (after its first step)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, trainer, loss):
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt


def _fit(data, params, callbacks=(), pea=False):
    extra = {"augmenter": PEAAugmenter(random_state=0)} if pea else {}
    est = SemiClippedTransformer(**params, **extra, callbacks=list(callbacks))
    fit_params = {"batch": data.batch} if pea else {}
    return est.fit(data.X, data.y, image_bank=data.image_bank, **fit_params)


def _embed(est, data, pea):
    return est.transform(data.X, **({"batch": data.batch} if pea else {}))


def _saved_epoch(path):
    return torch.load(path, weights_only=True)["trainer"]["epoch"]


# no epoch after the first improves by tol: early stopping after 1 + 3 epochs, the patience
# count and best score carry over the interrupt
PATIENCE = dict(SGD, n_iter_no_change=3, tol=100.0)


@pytest.mark.parametrize("params, pea, stop, every, n_iter", [
    (SGD, False, 4, 3, 8),     # interrupted after epoch 4; written at 3, the interrupt writes 4
    (ADAM_PEA, True, 2, 1, 6),
    (PATIENCE, False, 2, 1, 4),
])
def test_resumed_fit_equals_uninterrupted_fit(tiny_data, tmp_path, params, pea, stop, every,
                                              n_iter):
    reference = _fit(tiny_data, params, pea=pea)
    path = tmp_path / "run.ckpt"
    with pytest.warns(UserWarning, match="Training interrupted"):
        stopped = _fit(tiny_data, params, [InterruptAt(stop), Checkpoint(path, every, True)],
                       pea=pea)
    assert stopped.n_iter_ == stop and _saved_epoch(path) == stop  # the last completed epoch
    resumed = _fit(tiny_data, params, [Checkpoint(path, every, resume=True)], pea=pea)
    assert resumed.n_iter_ == reference.n_iter_ == n_iter
    assert resumed.loss_curve_ == reference.loss_curve_
    assert resumed.validation_scores_ == reference.validation_scores_
    expected = _embed(reference, tiny_data, pea)
    np.testing.assert_array_equal(_embed(resumed, tiny_data, pea), expected)
    # the interrupted run is not the reference: the comparison can fail
    assert stopped.loss_curve_ != reference.loss_curve_
    # a finished run's checkpoint: nothing left to train, the same model again
    assert _saved_epoch(path) == n_iter
    again = _fit(tiny_data, params, [Checkpoint(path, every, resume=True)], pea=pea)
    assert again.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(_embed(again, tiny_data, pea), expected)


def test_without_resume_the_file_is_only_written(tiny_data, tmp_path):
    path = tmp_path / "sub" / "run.ckpt"  # the directory is created
    params = dict(SGD, max_iter=3)
    reference = _fit(tiny_data, params)
    _fit(tiny_data, dict(params, learning_rate_init=0.2), [Checkpoint(path)])
    fresh = _fit(tiny_data, params, [Checkpoint(path, resume=False)])
    assert fresh.loss_curve_ == reference.loss_curve_
    assert sorted(os.listdir(path.parent)) == ["run.ckpt"]


class _RunsCode:
    def __reduce__(self):
        return (os.makedirs, (MARKER,))


MARKER = None


def test_a_file_that_would_run_code_is_refused(tiny_data, tmp_path):
    global MARKER
    MARKER = str(tmp_path / "code-ran")
    path = tmp_path / "run.ckpt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "semiclip-checkpoint", "version": 1, "x": _RunsCode()}, fh,
                    protocol=2)
    with pytest.raises(ValueError, match="is not a semiclip checkpoint: it is not a file of "
                                         "tensors and plain containers, so it was not loaded"
                                         ".*GLOBAL os.makedirs"):
        _fit(tiny_data, dict(SGD, max_iter=2), [Checkpoint(path, resume=True)])
    assert not os.path.exists(MARKER)
    with open(path, "wb") as fh:
        fh.write(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a semiclip checkpoint"):
        _fit(tiny_data, dict(SGD, max_iter=2), [Checkpoint(path, resume=True)])
    torch.save({"weights": torch.zeros(2)}, path)  # a torch file, but not ours
    with pytest.raises(ValueError, match="is not a semiclip checkpoint"):
        _fit(tiny_data, dict(SGD, max_iter=2), [Checkpoint(path, resume=True)])


def test_a_failed_write_leaves_the_previous_checkpoint(tiny_data, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    calls = []
    original = torch.save

    def failing_save(obj, fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second write dies half-way
            fh.write(b"half a file")
            raise OSError("disk full")
        return original(obj, fh, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        _fit(tiny_data, dict(SGD, max_iter=4), [Checkpoint(path)])
    monkeypatch.setattr(torch, "save", original)
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]  # no temporary file left
    assert _saved_epoch(path) == 1  # the first epoch's checkpoint, whole


def test_only_rank_zero_writes(tiny_data, tmp_path):
    """The hooks of a rank-1 trainer write nothing (what a DDP rank other than 0 runs)."""
    captured = {}

    class Capture(Callback):
        def on_epoch_end(self, trainer, record):
            captured["trainer"] = trainer

    _fit(tiny_data, dict(SGD, max_iter=1), [Capture()])
    trainer = captured["trainer"]
    for rank, written in ((1, False), (0, True)):
        path = tmp_path / f"rank{rank}.ckpt"
        trainer.dist = types.SimpleNamespace(rank=rank, world_size=2)
        cb = Checkpoint(path)
        cb.on_train_begin(trainer)
        cb.on_epoch_end(trainer, {})
        cb.on_train_end(trainer)
        assert path.exists() is written
    trainer.dist = None


def test_another_run_is_refused_with_what_differs(tiny_data, tmp_path):
    path = tmp_path / "run.ckpt"
    _fit(tiny_data, dict(SGD, max_iter=2), [Checkpoint(path)])
    with pytest.raises(ValueError, match="max_epochs: 2 in the file, 3 now"):
        _fit(tiny_data, dict(SGD, max_iter=3), [Checkpoint(path, resume=True)])
    with pytest.raises(ValueError, match="another split"):  # another random split
        _fit(tiny_data, dict(SGD, max_iter=2, random_state=1), [Checkpoint(path, resume=True)])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(every=0), ValueError, "every=...\\) must be a positive integer; got 0"),
    (dict(every=True), ValueError, "got True"),
    (dict(path=3), TypeError, "must be a file name \\(str or path-like\\); got int"),
])
def test_bad_parameters_are_named(tiny_data, tmp_path, kwargs, error, match):
    kwargs = {"path": tmp_path / "x.ckpt", **kwargs}
    with pytest.raises(error, match=match):
        _fit(tiny_data, dict(SGD, max_iter=1), [Checkpoint(**kwargs)])


def test_checkpoint_is_a_parameter_that_clones_and_pickles(tmp_path):
    from sklearn.base import clone

    cb = Checkpoint(tmp_path / "a.ckpt", every=2, resume=True)
    est = clone(SemiClippedTransformer(callbacks=[cb]))
    copy = est.get_params()["callbacks"][0]
    assert (copy.path, copy.every, copy.resume) == (cb.path, 2, True)
    back = pickle.loads(pickle.dumps(cb))
    assert vars(back) == vars(cb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.dumps(est)


class FailAfter(Callback):
    """A job killed after epoch ``epoch`` (on every rank)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == self.epoch:
            raise RuntimeError("preempted")


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_ddp_job_resumes_from_the_checkpoint_of_rank_zero(tiny_data, tmp_path):
    from semiclip import distributed

    X, y, bank = tiny_data.X.astype(np.float32), tiny_data.y, tiny_data.image_bank
    params = dict(SGD, max_iter=4, batch_size=25)
    path = tmp_path / "run.ckpt"

    def ddp_fit(callbacks):
        est = SemiClippedTransformer(**params, callbacks=callbacks)
        return distributed.fit(est, X, y, image_bank=bank, nproc=2, timeout=60)

    whole = ddp_fit([])
    with pytest.raises(RuntimeError, match="preempted"):
        ddp_fit([Checkpoint(path), FailAfter(2)])
    assert _saved_epoch(path) == 2 and sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    resumed = ddp_fit([Checkpoint(path, resume=True)])  # both ranks read it
    assert resumed.n_iter_ == 4 and resumed.loss_curve_ == whole.loss_curve_
    np.testing.assert_array_equal(resumed.transform(X), whole.transform(X))


def test_a_checkpoint_makes_auto_a_random_start_and_ridge_an_error(tiny_data, tmp_path):
    """A ridge start is several runs (epoch choice, refit) that a checkpoint cannot resume."""
    params = {k: v for k, v in SGD.items() if k != "init"}
    est = _fit(tiny_data, dict(params, max_iter=2), [Checkpoint(tmp_path / "a.ckpt")])
    assert est.training_params_["init"] == "random"
    assert "Checkpoint" in est.training_params_["choices"]["init"]
    plain = _fit(tiny_data, dict(params, max_iter=2))
    assert plain.training_params_["init"] == "ridge"
    with pytest.raises(ValueError, match="init='ridge' is not possible here .*Checkpoint"):
        _fit(tiny_data, dict(params, init="ridge", max_iter=2), [Checkpoint(tmp_path / "b.ckpt")])
