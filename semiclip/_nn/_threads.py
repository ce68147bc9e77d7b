"""Torch intra-op threads during ``fit``/``transform``: no oversubscription, restored after.

Parallel model selection runs several fits at once. In worker *processes*
(joblib's default loky backend, dask workers started by a nanny) the
launcher already caps each worker's threads through ``OMP_NUM_THREADS``,
which torch reads at start-up. In worker *threads* (joblib's threading
backend, a dask worker running several tasks) every fit would use all cores
and N fits would run N x cores threads. :func:`thread_budget` counts the
fits running in this process and gives each its share of the cores; torch's
thread count is per calling thread, so every fit sets its own and restores
it on exit, and :meth:`ThreadBudget.rebalance` (called by the training loop
every epoch) follows the number of fits still running.
"""

import contextlib
import threading

import torch

__all__ = ["ThreadBudget", "thread_budget"]

_lock = threading.Lock()
_active = 0


def _cpu_count():
    try:
        from joblib import cpu_count

        return max(1, int(cpu_count()))
    except Exception:  # pragma: no cover - joblib is a dependency
        import os

        return max(1, os.cpu_count() or 1)


class ThreadBudget:
    """The thread count of one running fit (see :func:`thread_budget`)."""

    def __init__(self, n_threads, before):
        self.requested = n_threads
        self.before = before
        self.n_threads = before

    def share(self):
        if self.requested is not None:
            return max(1, int(self.requested))
        with _lock:
            active = max(_active, 1)
        return max(1, min(self.before, _cpu_count()) // active)

    def rebalance(self):
        """Set this thread's torch threads to its current share."""
        n = self.share()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.n_threads = n
        return n


@contextlib.contextmanager
def thread_budget(n_threads=None):
    """Set torch's intra-op threads for the duration of a fit, then restore them.

    ``n_threads=None``: the current torch setting (which launchers such as
    loky and dask cap per worker process), divided by the number of fits
    running concurrently in this process and capped by the available cores.
    An integer is used as is.
    """
    global _active
    before = torch.get_num_threads()
    with _lock:
        _active += 1
    budget = ThreadBudget(n_threads, before)
    try:
        budget.rebalance()
        yield budget
    finally:
        with _lock:
            _active -= 1
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
