"""Torch DDP for real: 2 processes, gloo backend, CPU.

- the local-loss formulation gives, on every loss, the single-process loss
  and gradients of the same global minibatch (uneven split, repeated keys);
  so do the structure terms (relational, CKA) over every rank's rows, alone
  and with the loss (one shared gather for ``"clip"``), also with a rank that
  has no row, and ``fit_loop`` with the terms trains the single-process model;
- ``strategy="ddp"`` under an initialised process group (what torchrun
  gives) trains the same model on every rank, with a seed shared by rank 0;
- :func:`semiclip.distributed.fit` returns a usable estimator equal (to
  float tolerance) to a one-process fit with the same global batch, with
  ``X`` passed as a memmap by reference;
- a rank that crashes or stalls ends the others with a clear error.
"""

import os
import pickle
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from semiclip import SemiClippedTransformer, distributed
from semiclip._nn import (
    LOSSES,
    TrainConfig,
    TrainData,
    cka_loss,
    fit_loop,
    get_loss,
    relational_loss,
)

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(),
                       reason="torch.distributed is not available"),
    # short fits on purpose; the warning itself is tested in distill/test_transformer.py
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]
HERE = Path(__file__).resolve().parent
WORLD = 2


# ------------------------------------------------------------ helpers
def _global_batch():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((9, 5)))
    teacher = torch.tensor(rng.standard_normal((9, 4)))
    keys = torch.tensor([0, 1, 2, 0, 3, 1, 4, 5, 0])  # repeated keys across both ranks
    return x, teacher, keys


def _model():
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model.double()


# (main loss, structure weight, preservation weight) of the structure-term cases
_TERM_CASES = {
    "relational": (None, 1.0, 0.0),
    "cka": (None, 0.0, 1.0),
    "soft_infonce+terms": ("soft_infonce", 2.0, 3.0),
    "clip+terms": ("clip", 2.0, 3.0),
}


def _single_terms(model, x, teacher, keys, case):
    """The single-process loss of a structure-term case (the reference is the input ``x``)."""
    name, w_rel, w_cka = _TERM_CASES[case]
    out = model(x)
    loss = relational_loss(out, teacher) * w_rel + cka_loss(out, x) * w_cka
    return loss if name is None else loss + get_loss(name)(out, teacher, keys, 0.5)


def _local_terms(ctx, model, x, teacher, keys, rank, case):
    """The same on one rank: its rows, the students gathered once for the loss and the terms."""
    name, w_rel, w_cka = _TERM_CASES[case]
    local = model(x[rank::WORLD])
    gathered = ctx.gather_rows(local, teacher.shape[0])
    rel, cka = ctx.local_terms(local, teacher, x[rank::WORLD], gathered)
    loss = rel * w_rel + cka * w_cka
    if name is not None:
        loss = loss + ctx.local_loss(name, local, teacher, keys, 0.5, gathered=gathered)
    return loss


class _TwoRowsPerKey:
    """A float64 weak-pair sampler: key ``c`` owns table rows ``2c`` and ``2c + 1``."""

    def __init__(self, codes):
        self.codes = codes
        self.table = np.random.default_rng(2).standard_normal((12, 4))

    def draw(self, positions, rng):
        return 2 * self.codes[positions] + rng.integers(0, 2, size=len(positions))


_LOOP_CONFIG = dict(loss="soft_infonce", target_temperature=0.7, batch_size=8, max_epochs=2,
                    solver="adam", learning_rate=0.01, structure_weight=2.0,
                    preservation_weight=3.0, anchor_weight=1.5, anchor_scale=0.7)


def _fit_with_terms(dist=None):
    """``fit_loop`` with both terms on 21 samples (minibatches 8, 8, 5: uneven rank splits)."""
    x = np.random.default_rng(1).standard_normal((21, 5))
    codes = np.arange(21) % 6
    anchor = _model()  # the anchor term (issue 19): to a frozen, shifted copy of the start
    with torch.no_grad():
        anchor[-1].bias.add_(0.5)
    data = TrainData(codes=codes, sampler=_TwoRowsPerKey(codes), features=x,
                     anchor=anchor.requires_grad_(False))
    model = _model()
    history = fit_loop(model, data, TrainConfig(**_LOOP_CONFIG), rng=np.random.default_rng(0),
                       device=torch.device("cpu"), dist=dist)
    return [p.detach().clone() for p in model.parameters()], history


def _launch_workers(case, workdir, timeout=120):
    """Run ``_worker(rank, case, workdir)`` in WORLD fresh processes; wait for all."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    code = "import test_distributed as t; t._worker({}, {!r}, {!r})"
    procs = [
        subprocess.Popen([sys.executable, "-c", code.format(r, case, str(workdir))], env=env)
        for r in range(WORLD)
    ]
    try:
        for p in procs:
            assert p.wait(timeout=timeout) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _worker(rank, case, workdir):
    """Body of one rank (runs in a subprocess)."""
    torch.set_num_threads(1)
    store = torch.distributed.FileStore(os.path.join(workdir, "store"), WORLD)
    distributed.init_process_group("gloo", timeout=60, store=store, rank=rank, world_size=WORLD)
    from semiclip._nn import DDPContext

    ctx = DDPContext(torch.device("cpu"))
    out = {}
    x, teacher, keys = _global_batch()
    for name in LOSSES:
        model = torch.nn.parallel.DistributedDataParallel(_model())
        local = model(x[rank::WORLD])
        loss = ctx.local_loss(name, local, teacher, keys, 0.5)
        loss.backward()
        total = loss.detach().clone()
        ctx.all_reduce_sum(total)
        out[name] = (float(total) / WORLD, [p.grad.clone() for p in model.parameters()])
    # kd with a global minibatch of one row: rank 1 has no row at all
    model = torch.nn.parallel.DistributedDataParallel(_model())
    loss = ctx.local_loss("kd", model(x[:1][rank::WORLD]), teacher[:1], keys[:1], 0.5)
    loss.backward()
    out["kd_one_row"] = (None, [p.grad.clone() for p in model.parameters()])
    for case in _TERM_CASES:  # the structure terms over both ranks' rows
        model = torch.nn.parallel.DistributedDataParallel(_model())
        loss = _local_terms(ctx, model, x, teacher, keys, rank, case)
        loss.backward()
        total = loss.detach().clone()
        ctx.all_reduce_sum(total)
        out[case] = (float(total) / WORLD, [p.grad.clone() for p in model.parameters()])
    # the terms on a global minibatch of one row: rank 1 has none, yet joins the collectives
    model = torch.nn.parallel.DistributedDataParallel(_model())
    loss = _local_terms(ctx, model, x[:1], teacher[:1], keys[:1], rank, "clip+terms")
    loss.backward()
    out["terms_one_row"] = (None, [p.grad.clone() for p in model.parameters()])
    weights, history = _fit_with_terms(ctx)
    out["fit_terms"] = (weights, history.loss_curve, history.structure_curve,
                        history.preservation_curve)

    data = np.load(os.path.join(workdir, "data.npz"))
    from semiclip import ImageBank

    bank = ImageBank(data["bank"], data["bank_keys"])
    est = SemiClippedTransformer(**_FIT_PARAMS, strategy="ddp", random_state=None)
    est.fit(data["X"], data["y"], image_bank=bank)
    out["Z"] = est.transform(data["X"])
    out["loss_curve"] = est.loss_curve_

    # a stalled rank: the other one fails after the group's timeout, with a clear error
    group = torch.distributed.new_group(backend="gloo", timeout=timedelta(seconds=2))
    stalled = DDPContext(torch.device("cpu"), group=group, timeout_s=2)
    if rank == 1:
        time.sleep(5)
    started = time.monotonic()
    try:
        stalled.all_reduce_sum(torch.ones(1))
        out["stall"] = None
    except RuntimeError as exc:
        out["stall"] = (str(exc), time.monotonic() - started)
    with open(os.path.join(workdir, f"out-{rank}.pkl"), "wb") as fh:
        pickle.dump(out, fh)
    torch.distributed.destroy_process_group()


# a random start: these compare the training loop under DDP with one process (a ridge start
# chooses its epochs on folds in one process, on the split under DDP, and an on-disk X has none)
_FIT_PARAMS = dict(
    init="random", encoder_dim=6, hidden_layer_sizes=(16,), loss="clip", batch_size=25,
    max_iter=3,
    solver="sgd", learning_rate_init=0.05, early_stopping=True, validation_fraction=0.25,
    n_iter_no_change=50, control_label="control", device="cpu",
)


def _data(tiny_data):
    return tiny_data.X.astype(np.float32), tiny_data.y, tiny_data.image_bank


# -------------------------------------------------------------- tests
@pytest.mark.slow
def test_local_losses_gradients_and_shared_seed(tiny_data, tmp_path):
    X, y, bank = _data(tiny_data)
    np.savez(tmp_path / "data.npz", X=X, y=y, bank=bank.embeddings, bank_keys=bank.keys)
    _launch_workers("grad", tmp_path)
    ranks = [pickle.load(open(tmp_path / f"out-{r}.pkl", "rb")) for r in range(WORLD)]
    x, teacher, keys = _global_batch()
    for name in LOSSES:  # one process, the whole global minibatch, the plain loss
        model = _model()
        loss = get_loss(name)(model(x), teacher, keys, 0.5)
        loss.backward()
        for out in ranks:  # DDP leaves the same averaged gradient on every rank
            got_loss, got_grads = out[name]
            assert got_loss == pytest.approx(loss.item(), rel=1e-12), name
            for g, p in zip(got_grads, model.parameters()):
                torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12, msg=name)
    model = _model()
    get_loss("kd")(model(x[:1]), teacher[:1], keys[:1]).backward()
    for g, p in zip(ranks[1]["kd_one_row"][1], model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12)
    for case in _TERM_CASES:  # the terms over every rank's rows: the single-process ones
        model = _model()
        loss = _single_terms(model, x, teacher, keys, case)
        loss.backward()
        for out in ranks:
            got_loss, got_grads = out[case]
            assert got_loss == pytest.approx(loss.item(), rel=1e-12), case
            for g, p in zip(got_grads, model.parameters()):
                torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12, msg=case)
    model = _model()
    _single_terms(model, x[:1], teacher[:1], keys[:1], "clip+terms").backward()
    for out in ranks:
        for g, p in zip(out["terms_one_row"][1], model.parameters()):
            torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12)
    weights, history = _fit_with_terms()
    assert all(v is not None for v in history.structure_curve + history.preservation_curve)
    for out in ranks:
        got_weights, losses, structure, preservation = out["fit_terms"]
        for g, w in zip(got_weights, weights):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(losses, history.loss_curve, rtol=1e-10)
        np.testing.assert_allclose(structure, history.structure_curve, rtol=1e-10)
        np.testing.assert_allclose(preservation, history.preservation_curve, rtol=1e-10)
    # random_state=None: rank 0's seed is broadcast, both ranks hold the same model
    np.testing.assert_array_equal(ranks[0]["Z"], ranks[1]["Z"])
    assert ranks[0]["loss_curve"] == ranks[1]["loss_curve"]
    message, waited = ranks[0]["stall"]
    assert message.startswith("semiclip DDP training stopped on rank 0 of 2: a collective")
    assert "another rank crashed or stalled (timeout 2 s)" in message
    assert waited >= 1.5  # it waited for the group's timeout, then failed (no hang)


# a toy fit: its held-out judgement is tested in distill/test_selection.py
@pytest.mark.filterwarnings("ignore::semiclip.exceptions.GeneralizationWarning")
@pytest.mark.slow
def test_launcher_matches_single_process_fit(tiny_data, tmp_path):
    X, y, bank = _data(tiny_data)
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_disk = np.load(path, mmap_mode="r")
    params = dict(_FIT_PARAMS, random_state=0)
    single = SemiClippedTransformer(**params).fit(X, y, image_bank=bank)
    est = SemiClippedTransformer(**params)
    fitted = distributed.fit(est, X_disk, y, image_bank=bank, nproc=WORLD, timeout=60)
    assert not hasattr(est, "adapter_")  # the caller's estimator is left alone
    assert fitted.get_params()["strategy"] == "single"
    assert fitted.n_iter_ == single.n_iter_ == 3 and fitted.t_ == single.t_
    # the tolerance docs/guide/concepts.rst ("Reproducibility") states for DDP vs one process
    np.testing.assert_allclose(fitted.loss_curve_, single.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(fitted.validation_scores_, single.validation_scores_, rtol=1e-6)
    Z, Z1 = fitted.transform(X), single.transform(X)
    assert np.abs(Z - Z1).max() <= 1e-6 * np.abs(Z1).max()
    # usable after the run: pickles, transforms, refits in one process
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), Z)
    assert restored.fit(X, y, image_bank=bank).n_iter_ == 3


class FailingEncoder(torch.nn.Module):
    """A frozen encoder that fails on rank 1 only (the message holds the wall-clock time)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(30, 4)

    def forward(self, x):
        if os.environ.get("RANK") == "1":
            self.fail()
        return self.proj(x)

    def fail(self):
        raise RuntimeError(f"injected failure on rank 1 at t={time.time()!r}")


@pytest.mark.slow
def test_crashed_rank_ends_the_job_with_its_traceback(tiny_data):
    X, y, bank = _data(tiny_data)
    est = SemiClippedTransformer(**dict(_FIT_PARAMS, encoder=FailingEncoder(), random_state=0))
    with pytest.raises(RuntimeError) as info:
        distributed.fit(est, X, y, image_bank=bank, nproc=WORLD, timeout=600)
    raised_at = time.time()
    message = str(info.value)
    assert message.startswith("DDP fit on 2 processes failed: rank 1: RuntimeError: injected "
                              "failure on rank 1")
    # the child's own traceback, down to the line that raised
    assert "Traceback of rank 1:\nTraceback (most recent call last):" in message
    assert 'raise RuntimeError(f"injected failure on rank 1' in message
    assert "in forward" in message
    # rank 0 was stopped, not left to wait out the 600 s collective timeout (a sanity bound,
    # not a speed test: the launcher ends the siblings as soon as rank 1 has exited)
    failed_at = float(re.search(r"at t=([0-9]+\.[0-9]+)", message).group(1))
    print(f"failure on rank 1 reached the caller after {raised_at - failed_at:.2f} s")
    assert raised_at - failed_at < 120


class InterruptedEncoder(FailingEncoder):
    """A frozen encoder whose rank 1 gets a KeyboardInterrupt (as from SIGINT)."""

    def fail(self):
        raise KeyboardInterrupt


@pytest.mark.slow
def test_an_interrupted_rank_is_reported_as_interrupted(tiny_data):
    """Torch's process wrapper does not report a rank's KeyboardInterrupt as its error (the
    rank ended with status 0, or, as here without the fix, with SIGABRT); the caller must hear
    that rank 1 was interrupted."""
    X, y, bank = _data(tiny_data)
    est = SemiClippedTransformer(**dict(_FIT_PARAMS, encoder=InterruptedEncoder(),
                                        random_state=0))
    with pytest.raises(RuntimeError, match="rank 1: RuntimeError: rank 1 was interrupted"):
        distributed.fit(est, X, y, image_bank=bank, nproc=WORLD, timeout=600)


def test_ddp_without_process_group_says_how_to_launch(tiny_data):
    X, y, bank = _data(tiny_data)
    with pytest.raises(ValueError, match="torchrun --nproc_per_node=N"):
        SemiClippedTransformer(strategy="ddp", control_label="control").fit(
            X, y, image_bank=bank
        )


def test_launcher_rejects_bad_nproc(tiny_data):
    X, y, bank = _data(tiny_data)
    with pytest.raises(ValueError, match="nproc must be a positive integer; got 0"):
        distributed.fit(SemiClippedTransformer(), X, y, image_bank=bank, nproc=0)


@pytest.mark.parametrize("bad", [True, 1.5, "2"])
def test_launcher_rejects_booleans_and_non_integers(tiny_data, bad):
    X, y, bank = _data(tiny_data)
    with pytest.raises(ValueError, match=f"nproc must be a positive integer; got {bad!r}"):
        distributed.fit(SemiClippedTransformer(), X, y, image_bank=bank, nproc=bad)
