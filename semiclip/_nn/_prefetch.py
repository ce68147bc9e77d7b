"""Minibatch features for the training loop, with background prefetch.

The loop asks a *feature provider* for the student input of a sequence of
minibatches (``positions[start:stop]`` for each ``(start, stop)`` bound) and
gets device tensors back, in order:

- :class:`TensorFeatures`: features already in memory (the encoded ``X``),
  moved to the device once; a minibatch is one ``index_select``.
- :class:`StreamFeatures`: raw rows read from an on-disk ``X`` (a row source,
  see :mod:`semiclip._nn._sources`) in the background, ``depth`` minibatches
  ahead of the compute, then encoded by the frozen encoder: on the device
  (a module) or on the host in the reading thread (a function).
  For an accelerator several reader threads share the reads (``preadv``
  releases the GIL; random 1024-row reads of a cached 5 GB file took
  ~10 ms in one thread and ~4 ms with two on a 2-core machine).

:class:`Prefetcher` is the background thread: it runs a generator, hands its
items over through a bounded queue, re-raises its exceptions in the
consumer, and stops cleanly when the consumer stops early (early stopping,
``KeyboardInterrupt``).
"""

import itertools
import os
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ._forward import CHUNK_ROWS

__all__ = ["PREFETCH_DEPTH", "Prefetcher", "StreamFeatures", "TensorFeatures", "embed_source"]

PREFETCH_DEPTH = 2
"""Minibatches read ahead of the compute (0 reads synchronously)."""

MAX_READERS = 4
"""Reader threads for an accelerator (at most half the cores); one for the CPU."""

_END = object()


class Prefetcher:
    """Iterate over ``make_items()`` in a daemon thread, ``depth`` items ahead.

    With ``depth=0`` the items are produced synchronously in the caller.
    """

    def __init__(self, make_items, depth=PREFETCH_DEPTH, name="semiclip-prefetch"):
        self._make_items = make_items
        self.depth = int(depth)
        self._stop = threading.Event()
        self._thread = None
        if self.depth > 0:
            self._queue = queue.Queue(maxsize=self.depth)
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            for item in self._make_items():
                if not self._put((True, item)):
                    return
            self._put((True, _END))
        except BaseException as exc:  # re-raised in the consumer
            self._put((False, exc))

    def __iter__(self):
        if self._thread is None:
            yield from self._make_items()
            return
        try:
            while True:
                ok, item = self._queue.get()
                if not ok:
                    raise item
                if item is _END:
                    return
                yield item
        finally:
            self.close()

    def close(self):
        """Stop the producer thread (also when the consumer stops early)."""
        self._stop.set()
        if self._thread is not None:
            while True:  # unblock a producer waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._thread.join(timeout=10)


def _device_stage(on_device, device):
    """The on-device encoder as a float32 function, or None."""
    if on_device is None:
        return None
    module = on_device.to(device).eval()
    return lambda x: module(x).float()


class TensorFeatures:
    """In-memory features, moved to ``device`` once."""

    def __init__(self, features, device):
        self.tensor = torch.as_tensor(features, device=device)
        self.device = device
        self.n = self.tensor.shape[0]

    def batches(self, positions, bounds, positions_t=None):
        if positions_t is None:
            positions_t = torch.as_tensor(positions, device=self.device)
        for start, stop in bounds:
            yield self.tensor.index_select(0, positions_t[start:stop])

    def close(self):
        pass


class StreamFeatures:
    """Rows of an on-disk ``X`` read in the background and encoded on the device.

    Parameters
    ----------
    source : row source
        From :func:`semiclip._nn.as_row_source`.
    rows : ndarray of int
        Source row of every position the loop refers to.
    device : torch.device
    on_device : torch.nn.Module, optional
        Frozen encoder applied to the rows on the device.
    on_host : callable, optional
        Frozen encoder applied to the numpy rows in the reading thread.
    depth : int, optional
        Minibatches prefetched (default :data:`PREFETCH_DEPTH`).
    """

    def __init__(self, source, rows, device, *, on_device=None, on_host=None, depth=None):
        self.source = source
        self.rows = np.asarray(rows, dtype=np.int64)
        self.n = self.rows.size
        self.device = device
        self.depth = PREFETCH_DEPTH if depth is None else depth
        self._on_device, self._on_host = _device_stage(on_device, device), on_host
        self._pin = device.type == "cuda"
        cores = os.cpu_count() or 1
        self.readers = 1 if device.type == "cpu" else max(1, min(MAX_READERS, cores // 2))

    def _read(self, positions, start, stop):
        x = self.source.take(self.rows[positions[start:stop]])
        if self._on_host is not None:
            x = self._on_host(x)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return t.pin_memory() if self._pin else t

    def _produce(self, positions, bounds):
        if self.readers == 1:
            for start, stop in bounds:
                yield self._read(positions, start, stop)
            return
        with ThreadPoolExecutor(self.readers, thread_name_prefix="semiclip-reader") as pool:
            todo = iter(bounds)
            pending = deque(
                pool.submit(self._read, positions, *b)
                for b in itertools.islice(todo, 2 * self.readers)
            )
            try:
                while pending:
                    x = pending.popleft().result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append(pool.submit(self._read, positions, *nxt))
                    yield x
            finally:
                for f in pending:
                    f.cancel()

    def batches(self, positions, bounds, positions_t=None):
        positions = np.asarray(positions)
        prefetch = Prefetcher(lambda: self._produce(positions, bounds), self.depth)
        try:
            for t in prefetch:
                t = t.to(self.device, non_blocking=True)
                if self._on_device is not None:
                    with torch.no_grad():
                        t = self._on_device(t)
                yield t
        finally:
            prefetch.close()

    def close(self):
        pass


def embed_source(source, model, device, *, on_device=None, on_host=None, chunk=CHUNK_ROWS):
    """Yield ``(raw rows, model(encoder(rows)))`` for consecutive chunks of an on-disk ``X``.

    The next chunk is read while the current one is embedded; the model
    runs in eval mode without gradients and is back on the CPU at the end.
    """
    model = model.to(device).eval()
    stage = _device_stage(on_device, device)
    try:
        with torch.no_grad():
            for _, _, raw in Prefetcher(lambda: source.chunks(chunk)):
                z = raw if on_host is None else on_host(raw)
                z = torch.as_tensor(np.ascontiguousarray(z, dtype=np.float32), device=device)
                if stage is not None:
                    z = stage(z)
                yield raw, model(z).cpu().numpy()
    finally:
        model.cpu()
