"""Train :class:`~semiclip.SemiClippedTransformer` on several processes with torch DDP.

Two ways in, one training loop:

1. **torchrun** (several GPUs, several nodes). Every rank runs the same
   script with ``SemiClippedTransformer(strategy="ddp")``; ``fit`` joins the
   process group that torchrun describes in the environment (or one you
   initialised yourself)::

       torchrun --nproc_per_node=4 train.py

   All ranks end with the same fitted estimator; save it on rank 0
   (:func:`is_main_process`).

2. **One call from Python** (a notebook, a test, a CPU box):
   :func:`fit` starts ``nproc`` fresh Python processes, trains, and returns
   the fitted estimator to the caller.

Each rank trains on its share of every global minibatch of ``batch_size``
samples (see :class:`semiclip._nn.DDPContext`); the teacher bank is replicated; the
epoch plans come from the same seed on every rank, so the run sees exactly
the minibatches of a one-process fit (the same samples and teacher draws),
with the same loss and gradients up to the order of the floating-point sums
(the gradient all-reduce, the loss sharded over ranks). The fitted model is
therefore close to, not bit-identical with, a one-process fit with the same
``random_state``: measured on 2 CPU processes (gloo), 3 to 30 epochs and the
five losses, the largest embedding difference was at most 3.0e-7 times the
largest absolute embedding value (1.0e-6 is the bound the tests check) and
the loss curves agreed to a relative 1.1e-7. The difference is of the order
of float32 rounding per step; it can grow with the number of steps, like
any change of summation order. See "Reproducibility" in the user guide's
Concepts page.

Collectives time out after ``timeout`` seconds, so a crashed or stalled
rank ends the others with an error instead of a hang.
"""

from __future__ import annotations

import numbers
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._nn import DEFAULT_TIMEOUT as _DEFAULT_TIMEOUT
from ._nn import distributed_module as _distributed_module
from ._nn import file_layout as _file_layout
from ._nn import init_process_group

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._distill import SemiClippedTransformer

__all__ = ["fit", "init_process_group", "is_main_process", "rank", "world_size"]


def rank() -> int:
    """Rank of this process (0 without a process group).

    Returns
    -------
    rank : int
        ``torch.distributed.get_rank()`` inside a process group, else 0.
    """
    dist = _distributed_module()
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group).

    Returns
    -------
    world_size : int
        ``torch.distributed.get_world_size()`` inside a process group, else 1.
    """
    dist = _distributed_module()
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and without a process group): log, save and evaluate there.

    Returns
    -------
    is_main : bool
        Whether this process has rank 0.
    """
    return rank() == 0


# ------------------------------------------------------------------ launcher
def _portable(X):
    """Send an on-disk memmap by reference (file, offset, shape), anything else by value."""
    if isinstance(X, np.memmap) and X.ndim == 2:
        layout = _file_layout(X)
        if layout is not None and layout[2] == layout[3]:
            return ("memmap", layout[0], X.dtype.str, tuple(X.shape), layout[1])
    return ("value", X)


def _open(ref):
    if ref[0] == "memmap":
        _, path, dtype, shape, offset = ref
        return np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
    return ref[1]


_WORKER = (
    "from semiclip.distributed import _rank_main; _rank_main({0}, {1}, {2!r}, {3!r}, {4!r})"
)


def _rank_main(rank_, nproc, workdir, backend, timeout):
    """Body of one spawned rank: join the group, fit, rank 0 writes the result."""
    try:
        os.environ.update(RANK=str(rank_), LOCAL_RANK=str(rank_), WORLD_SIZE=str(nproc))
        with open(os.path.join(workdir, "payload.pkl"), "rb") as fh:
            payload = pickle.load(fh)
        if backend == "gloo":
            from joblib import cpu_count

            torch.set_num_threads(max(1, cpu_count() // nproc))
        store = _distributed_module().FileStore(os.path.join(workdir, "store"), nproc)
        init_process_group(backend, timeout=timeout, store=store, rank=rank_, world_size=nproc)
        est = payload["estimator"]
        user_strategy = est.get_params()["strategy"]
        est.set_params(strategy="ddp")
        est.fit(_open(payload["X"]), payload["y"], **payload["fit_params"])
        if rank_ == 0:
            est.set_params(strategy=user_strategy)
            tmp = os.path.join(workdir, "result.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(est, fh)
            os.replace(tmp, os.path.join(workdir, "result.pkl"))
        _distributed_module().destroy_process_group()
    except BaseException as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        with open(os.path.join(workdir, f"error-{rank_}.txt"), "w") as fh:
            fh.write(f"{type(exc).__name__}: {first}\n{traceback.format_exc()}")
        sys.stderr.flush()
        os._exit(1)  # leave at once: the peers see the closed connection


def fit(estimator: SemiClippedTransformer, X: ArrayLike, y: ArrayLike | None = None, *,
        nproc: int = 2, backend: str | None = None, timeout: float = _DEFAULT_TIMEOUT,
        **fit_params: Any
) -> SemiClippedTransformer:
    """Fit ``estimator`` with DDP on ``nproc`` new local processes; return it fitted.

    Parameters
    ----------
    estimator : SemiClippedTransformer
        Its parameters are used as they are (``strategy`` is switched to
        ``"ddp"`` inside the workers only). Use an integer ``random_state``
        to reproduce a one-process fit to float rounding (the same
        minibatches and draws; sums in another order, see the module notes).
    X : array-like, sparse matrix or numpy.memmap
        A ``numpy.memmap`` is reopened from its file in every process (not
        copied); anything else is pickled to the processes.
    y : array-like of shape (n_samples,), default=None
        Pairing keys, as for ``estimator.fit``.
    nproc : int, default=2
        Processes (one per GPU with CUDA; CPU processes share the cores).
    backend : {"gloo", "nccl"}, optional
        Default ``"nccl"`` when the estimator trains on CUDA, else ``"gloo"``.
    timeout : float, default=600
        Seconds a collective waits for the other ranks before failing.
    **fit_params
        Passed to ``fit`` (``image_bank``, ``keys``, ``batch``).

    Returns
    -------
    estimator : SemiClippedTransformer
        A fitted copy, loaded from rank 0.

    Raises
    ------
    RuntimeError
        When a rank fails, with every failing rank's error.
    """
    if isinstance(nproc, (bool, np.bool_)) or not isinstance(nproc, numbers.Integral) \
            or nproc < 1:
        raise ValueError(f"nproc must be a positive integer; got {nproc!r}.")
    nproc = int(nproc)
    device = str(estimator.get_params().get("device", "cpu"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if cuda and nproc > torch.cuda.device_count():
        raise ValueError(
            f"nproc={nproc} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
            "use one process per GPU."
        )
    workdir = tempfile.mkdtemp(prefix="semiclip-ddp-")
    try:
        payload = {"estimator": estimator, "X": _portable(X), "y": y, "fit_params": fit_params}
        with open(os.path.join(workdir, "payload.pkl"), "wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER.format(r, nproc, workdir, backend, float(timeout))],
                env=env,
            )
            for r in range(nproc)
        ]
        failed_at, order = None, []
        try:
            while len(order) < nproc:
                for r, p in enumerate(procs):
                    if r not in order and p.poll() is not None:
                        order.append(r)
                        if p.returncode != 0 and failed_at is None:
                            failed_at = time.monotonic()
                if failed_at is not None and time.monotonic() - failed_at > float(timeout) + 5:
                    break  # the survivors did not notice: stop them
                time.sleep(0.05)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
        order += [r for r in range(nproc) if r not in order]
        errors = []
        for r in order:
            path = os.path.join(workdir, f"error-{r}.txt")
            if os.path.exists(path):
                with open(path) as fh:
                    errors.append((r, fh.read().strip()))
            elif procs[r].returncode != 0:
                errors.append((r, f"exit code {procs[r].returncode} (killed or crashed)"))
        if errors:
            summary = "; ".join(f"rank {r}: {text.splitlines()[0]}" for r, text in errors)
            r0, text = errors[0]
            detail = text.split("\n", 1)[-1]
            raise RuntimeError(
                f"DDP fit on {nproc} processes failed ({summary}). Traceback of rank "
                f"{r0}, the first to fail:\n{detail}"
            )
        with open(os.path.join(workdir, "result.pkl"), "rb") as fh:
            return pickle.load(fh)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
