"""What the training loop needs from torch DDP: the rank's share of a minibatch and its loss.

Sharding. Every rank draws the same epoch plan (shuffle and teacher rows,
from the same seed) and, in each global minibatch of ``batch_size``
positions, takes the positions ``rank, rank + world_size, ...``. The union
of the ranks' minibatches is exactly the single-process minibatch, and the
union of an epoch is the whole training set once (no padding, no drop).

Local loss. The teacher bank is replicated and frozen, so every rank knows
the teacher rows and keys of the *whole* global minibatch without
communicating: student rows are scored against all of them (the negatives
of every rank). Rank ``r`` returns ``sum of its rows' losses * world_size /
global batch size``; DDP averages gradients over ranks, so the update is
mathematically the gradient of the single-process mean loss (in floating
point: up to the order of the sums, see "Reproducibility" in the user
guide's Concepts page for the measured difference). For the symmetric
``"clip"`` loss the teacher->student direction needs every rank's students:
they are gathered with :func:`torch.distributed.nn.functional.all_gather`,
whose backward sums each rank's gradient contributions back to the rank
that owns the rows (a reduce-scatter); with the scaling above, DDP's
averaging then again gives the single-process gradient, which
``tests/test_distributed.py`` checks against a one-process computation
(float64, to a relative 1e-10). ``"soft_infonce"`` needs no communication
(its targets are teacher-teacher similarities of the replicated bank rows).

Structure terms (:meth:`DDPContext.local_terms`). Both are computed over the
rows of *all* ranks, from the same gathered student rows as ``"clip"`` (one
differentiable gather per step). The relational term decomposes over query
rows: rank ``r`` returns ``world_size / n^2 * sum_{i in r, j} (...)^2``. CKA
does not decompose (its normalisation is global): every rank computes it on
the gathered rows (the reference rows gathered too, without gradient) and
returns it whole; the all_gather backward then delivers ``world_size`` times
each rank's gradient, which DDP's averaging divides back. In both cases the
mean over ranks of the returned values is the single-process value (what the
epoch loss sums) and the update is the single-process gradient.
"""

from datetime import timedelta
from typing import Any

import torch
import torch.nn.functional as F

from .._device import resolve_device
from .._losses import loss_object
from .._structure import cka_loss, relational_sum
from ._cluster import cluster_env, local_rank

__all__ = ["DEFAULT_TIMEOUT", "DDPContext", "ddp_context", "distributed_module",
           "init_process_group"]

DEFAULT_TIMEOUT = 600.0
_timeout_s = None  # timeout of the process group this module initialised


def distributed_module():
    """``torch.distributed``, or a RuntimeError when this torch build lacks it."""
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("This torch build has no torch.distributed support.")
    return dist


def init_process_group(backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                       **kwargs: Any) -> None:
    """Join the process group described by the environment (torchrun or SLURM), if not done yet.

    Under torchrun (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``)
    torch reads the environment itself. Without those variables, in a task
    of ``srun``, the rank, world size and rendezvous host come from SLURM's
    variables: ``SLURM_PROCID`` (rank), ``SLURM_NTASKS`` (world size),
    the first host of ``SLURM_JOB_NODELIST`` (rendezvous address;
    ``MASTER_ADDR`` overrides) and port ``20000 + SLURM_JOB_ID % 10000``
    (``MASTER_PORT`` overrides). See "SLURM" in the user guide.

    Parameters
    ----------
    backend : str, optional
        ``"nccl"`` when CUDA is available, ``"gloo"`` otherwise.
    timeout : float, default=600
        Seconds a collective waits for the other ranks before failing.
    **kwargs
        Passed to :func:`torch.distributed.init_process_group` (e.g. ``store``,
        ``rank``, ``world_size`` without torchrun).
    """
    global _timeout_s
    dist = distributed_module()
    if dist.is_initialized():
        return
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not {"store", "init_method"} & kwargs.keys():
        env = cluster_env()
        if env is not None and env.source == "slurm":
            kwargs = dict(init_method=env.init_method, rank=env.rank,
                          world_size=env.world_size, **kwargs)
    dist.init_process_group(backend, timeout=timedelta(seconds=float(timeout)), **kwargs)
    _timeout_s = float(timeout)


def ddp_context(device):
    """The :class:`DDPContext` of this rank, joining the process group torchrun (or SLURM's
    ``srun``) describes."""
    dist = distributed_module()
    if not dist.is_initialized():
        if cluster_env() is not None:
            init_process_group()
        else:
            raise ValueError(
                "strategy='ddp' needs a torch.distributed process group: run the script with "
                "`torchrun --nproc_per_node=N script.py` (or `srun python script.py` in a "
                "SLURM job), initialise one with "
                "semiclip.distributed.init_process_group(), or call "
                "semiclip.distributed.fit(estimator, X, y, nproc=N, image_bank=bank). "
                "For one process use strategy='single'."
            )
    device = resolve_device(device)
    if device.type == "cuda":
        if device.index is None:
            local = local_rank()
            if local is None:
                local = dist.get_rank() % torch.cuda.device_count()
            device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return DDPContext(device, timeout_s=_timeout_s)


class DDPContext:
    """Rank, world size and collectives of an initialised process group."""

    def __init__(self, device, group=None, timeout_s=None):
        self.dist = dist = distributed_module()
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.device = device
        self.timeout_s = timeout_s

    # ---------------------------------------------------------- collectives
    def _failed(self, exc):
        return RuntimeError(
            f"semiclip DDP training stopped on rank {self.rank} of {self.world_size}: a "
            "collective operation failed, most likely because another rank crashed or "
            f"stalled{'' if self.timeout_s is None else f' (timeout {self.timeout_s:g} s)'}. "
            f"Look for the first error among the ranks' logs. Original error: {exc}"
        )

    def run(self, fn, *args):
        try:
            return fn(*args)
        except RuntimeError as exc:
            raise self._failed(exc) from exc

    def all_reduce_sum(self, tensor):
        self.run(self.dist.all_reduce, tensor, self.dist.ReduceOp.SUM, self.group)
        return tensor

    def broadcast_int(self, value):
        t = torch.tensor([int(value)], dtype=torch.int64, device=self._comm_device())
        self.run(self.dist.broadcast, t, self._global_rank(0), self.group)
        return int(t.item())

    def gather_ints(self, values):
        """All ranks' integer vectors, shape ``(world_size, len(values))``."""
        t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=self._comm_device())
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        self.run(self.dist.all_gather, out, t, self.group)
        return torch.stack(out).cpu().numpy()

    def _comm_device(self):
        backend = self.dist.get_backend(self.group)
        return self.device if backend in ("nccl", "xccl") else torch.device("cpu")

    def _global_rank(self, rank):
        if self.group is None:
            return rank
        return self.dist.get_global_rank(self.group, rank)

    def wrap(self, module):
        """The adapter wrapped in ``DistributedDataParallel`` (gradients all-reduced)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return self.run(
            lambda: DistributedDataParallel(module, device_ids=ids, process_group=self.group)
        )

    # ------------------------------------------------------------ sharding
    def local_positions(self, n_global):
        """Positions of this rank's rows inside a global minibatch of ``n_global``."""
        return slice(self.rank, n_global, self.world_size)

    def gather_rows(self, local, n_global):
        """Every rank's rows in global-minibatch order, differentiable (all_gather with grad)."""
        from torch.distributed.nn.functional import all_gather

        per_rank = -(-n_global // self.world_size)
        padded = F.pad(local, (0, 0, 0, per_rank - local.shape[0]))
        parts = self.run(all_gather, padded, self.group)
        # row j of rank q sits at global position q + j * world_size
        return torch.stack(parts, dim=1).reshape(-1, local.shape[1])[:n_global]

    # --------------------------------------------------------------- losses
    def local_loss(self, loss, student, teacher, keys, temperature, target_temperature=None,
                   gathered=None):
        """This rank's share of the global-minibatch loss (see the module docstring).

        ``loss`` is a registered loss's name or its :class:`~semiclip._nn.Loss`
        object (:meth:`~semiclip._nn.Loss.local` computes the share);
        ``student`` holds this rank's rows; ``teacher`` and ``keys`` the whole
        global minibatch. ``target_temperature``: of ``"soft_infonce"``
        (default ``temperature``); ``gathered``: every rank's student rows
        when already gathered (:meth:`gather_rows`), for a loss that gathers
        them (``"clip"``).
        """
        loss = loss_object(loss) if isinstance(loss, str) else loss
        n_global = teacher.shape[0]
        pos = torch.arange(self.rank, n_global, self.world_size, device=student.device)
        if loss.gathers_students and gathered is None:
            gathered = self.gather_rows(student, n_global)
        if not loss.gathers_students:
            gathered = None
        if pos.numel() == 0:
            zero = student.sum() * 0.0
            return zero if gathered is None else zero + gathered.sum() * 0.0
        return loss.local(student, teacher, keys, pos, self.world_size, temperature,
                          target_temperature, gathered)

    def local_terms(self, student, teacher, reference, gathered=None, *, relational=True,
                    preservation=True):
        """This rank's shares ``(relational, cka)`` of the structure terms over all ranks' rows.

        ``student`` and ``reference`` (the preservation term's rows) hold this
        rank's rows, ``teacher`` the whole global minibatch, ``gathered``
        every rank's student rows when already gathered. A term that is off
        is None. See the module docstring for the scaling.
        """
        n_global = teacher.shape[0]
        if gathered is None:
            gathered = self.gather_rows(student, n_global)
        rel = cka = None
        if relational:
            pos = torch.arange(self.rank, n_global, self.world_size, device=student.device)
            rel = relational_sum(student, gathered, teacher.index_select(0, pos), teacher)
            # a rank without rows still takes part in the gather's backward
            rel = rel * (self.world_size / max(n_global * n_global, 1)) + gathered.sum() * 0.0
        if preservation:
            inputs = self.gather_rows(reference.detach(), n_global)
            cka = cka_loss(gathered, inputs)
        return rel, cka
