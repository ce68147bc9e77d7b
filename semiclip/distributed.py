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

import multiprocessing
import numbers
import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.multiprocessing as mp

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


def _rank_main(rank_, nproc, payload, backend, timeout, store_port, result):
    """Body of one spawned rank: join the group through the parent's store, fit, rank 0 sends
    the fitted estimator back through ``result`` (a pipe the parent reads while it waits).

    An exception propagates to :func:`torch.multiprocessing.start_processes`'s wrapper, which
    hands its traceback to the parent.
    """
    os.environ.update(RANK=str(rank_), LOCAL_RANK=str(rank_), WORLD_SIZE=str(nproc))
    if backend == "gloo":
        from joblib import cpu_count

        torch.set_num_threads(max(1, cpu_count() // nproc))
    dist = _distributed_module()
    store = dist.TCPStore("127.0.0.1", store_port, is_master=False,
                          timeout=timedelta(seconds=float(timeout)))
    init_process_group(backend, timeout=timeout, store=store, rank=rank_, world_size=nproc)
    est = payload["estimator"]
    user_strategy = est.get_params()["strategy"]
    est.set_params(strategy="ddp")
    try:
        est.fit(_open(payload["X"]), payload["y"], **payload["fit_params"])
    except KeyboardInterrupt:  # torch's wrapper reports no error for it (status 0 or an abort)
        raise RuntimeError(f"rank {rank_} was interrupted (KeyboardInterrupt or SIGINT) "
                           "during the fit") from None
    if rank_ == 0:
        est.set_params(strategy=user_strategy)
        result.send(est)
    result.close()
    dist.destroy_process_group()


def _receive(conn, box):
    """Read rank 0's estimator (in a thread, so that rank 0 never blocks on a full pipe)."""
    try:
        box.append(conn.recv())
    except (EOFError, OSError):  # every rank ended without sending (a failure)
        pass


def _failure(exc, nproc):
    """The caller's error for a failed rank: which rank, and its traceback."""
    r = exc.error_index
    text = str(exc).strip()
    if isinstance(exc, mp.ProcessRaisedException):
        detail = text.split("terminated with the following error:", 1)[-1].strip()
        last = detail.splitlines()[-1] if detail else ""
        return RuntimeError(
            f"DDP fit on {nproc} processes failed: rank {r}: {last}. The other ranks were "
            f"stopped. Traceback of rank {r}:\n{detail}"
        )
    return RuntimeError(
        f"DDP fit on {nproc} processes failed: rank {r}: {text} (killed or crashed). The "
        "other ranks were stopped."
    )


def fit(estimator: SemiClippedTransformer, X: ArrayLike, y: ArrayLike | None = None, *,
        nproc: int = 2, backend: str | None = None, timeout: float = _DEFAULT_TIMEOUT,
        **fit_params: Any
) -> SemiClippedTransformer:
    """Fit ``estimator`` with DDP on ``nproc`` new local processes; return it fitted.

    The processes are started with :func:`torch.multiprocessing.start_processes`
    (start method ``"spawn"``: fresh interpreters, safe with CUDA). In a
    script, call this function under ``if __name__ == "__main__":``, as
    for any spawned process pool.

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
        Pairing keys (the perturbation of every row of ``X``), as for ``estimator.fit``.
    nproc : int, default=2
        Processes (one per GPU with CUDA; CPU processes share the cores).
    backend : {"gloo", "nccl"}, optional
        Default ``"nccl"`` when the estimator trains on CUDA, else ``"gloo"``.
    timeout : float, default=600
        Seconds a collective waits for the other ranks before failing (a
        stalled rank). A rank that fails ends the others at once.
    **fit_params
        Passed to ``fit`` (``image_bank``, ``keys``, ``batch``).

    Returns
    -------
    estimator : SemiClippedTransformer
        A fitted copy: rank 0's estimator. The caller's ``estimator`` is
        left unfitted.

    Raises
    ------
    RuntimeError
        When a rank fails: the message names the first rank to fail and
        holds its traceback; the other ranks are stopped at once.
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
    payload = {"estimator": estimator, "X": _portable(X), "y": y, "fit_params": fit_params}
    # the rendezvous: a store served by this process on a free port (no file, no fixed port)
    store = _distributed_module().TCPStore("127.0.0.1", 0, is_master=True,
                                          wait_for_workers=False)
    receiver, sender = multiprocessing.get_context("spawn").Pipe(duplex=False)
    try:
        context = mp.start_processes(
            _rank_main, args=(nproc, payload, backend, float(timeout), store.port, sender),
            nprocs=nproc, join=False, start_method="spawn",
        )
    finally:
        sender.close()  # the ranks hold the only write ends: EOF once they have all ended
    box = []
    reader = threading.Thread(target=_receive, args=(receiver, box), daemon=True,
                              name="semiclip-ddp-result")
    reader.start()
    try:
        # each join returns when a rank ends; on the first failure it stops the others and
        # raises with that rank's traceback
        while not context.join():
            pass
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as exc:
        raise _failure(exc, nproc) from None
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
            process.join()
        reader.join()
        receiver.close()
        del store
    if not box:
        raise RuntimeError(f"DDP fit on {nproc} processes ended without a result from rank 0.")
    return box[0]
