"""Cost of PEA: one training epoch with the augmenter on vs off (issue 4 goal: <= +25 %).

Same data (make_weakly_paired at demo size, uncorrected X + plates), same
model (the default linear adapter, or ``--hidden 1024 1024``), same number of
epochs without early stopping. With PEA, every epoch draws a fresh
augmentation of the student input (per plate: a random transform from
center / center_scale / TVN, steps dropped, statistics on a random control
subsample) and re-encodes it; without PEA the input is the canonical TVN,
encoded once. Runs are interleaved over ``--repeats`` rounds. The figure is the median
wall time of an epoch as the training loop measures it (``epoch_seconds``,
the augmentation drawn or waited for at the start of the epoch included;
the first epoch skipped), median over rounds; also the sum over epochs, and
the process CPU time of the whole fit (one-off work included).

Usage::

    python benchmarks/bench_pea.py [--epochs 40] [--repeats 3] [--hidden 1024 1024]

Measured (median epoch, wall; this machine's timings vary by about 30 %
between runs even on idle cores):

- 2-core CPU, linear adapter: off 15-17 ms, on 22-27 ms (+35 to +60 %);
  the code before the encoded PEA path: off 15.7 ms, on 56.9 ms (+262 %).
- 2-core CPU, ``--hidden 1024 1024``: off 222 ms, on 226 ms (+2 %).
- H200 GPU: linear off 16.1 ms, on 20.3 ms (+26 %); (1024, 1024) off 18.4 ms,
  on 22.5 ms (+22 %).
"""

import argparse
import time
import warnings

import numpy as np

from semiclip import ControlNormalizer, PEAAugmenter, SemiClippedTransformer
from semiclip.datasets import make_weakly_paired


def one_run(data, pea, epochs, hidden, threads):
    params = dict(control_label="control", max_iter=epochs, early_stopping=False, tol=0.0,
                  n_iter_no_change=epochs + 1, hidden_layer_sizes=hidden, random_state=0,
                  n_threads=threads)
    if pea:
        est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **params)
        X, kw = data.X, {"batch": data.batch}
    else:
        norm = ControlNormalizer("tvn", control_label="control", basis="feature")
        X, kw = norm.fit_transform(data.X, data.y, batch=data.batch), {}
        est = SemiClippedTransformer(**params)
    c0 = time.process_time()
    est.fit(X, data.y, image_bank=data.image_bank, **kw)
    cpu = time.process_time() - c0
    # wall time of every epoch, measured by the training loop (the augmentation
    # drawn at the start of an epoch, or waited for, included); the first is skipped
    seconds = np.array(est._history_.epoch_seconds[1:])
    return float(np.median(seconds)), float(seconds.sum()), cpu, est.n_threads_


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", type=int, nargs="*", default=[])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: auto)")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    data = make_weakly_paired(random_state=0)
    print(f"data: {data.X.shape[0]} x {data.X.shape[1]}, {len(np.unique(data.batch))} plates; "
          f"adapter hidden={tuple(args.hidden)}; {args.epochs} epochs, {args.repeats} rounds")
    res = {False: [], True: []}
    for _ in range(args.repeats):
        for pea in (False, True):
            res[pea].append(one_run(data, pea, args.epochs, tuple(args.hidden), args.threads))
    off = np.median(np.array(res[False])[:, :3], axis=0)
    on = np.median(np.array(res[True])[:, :3], axis=0)
    print(f"torch threads: off {res[False][0][3]}, on {res[True][0][3]}")
    print(f"median epoch (wall): off {off[0] * 1e3:.1f} ms, on {on[0] * 1e3:.1f} ms -> "
          f"PEA adds {100 * (on[0] / off[0] - 1):+.0f} %")
    print(f"all epochs but the first (wall): off {off[1]:.2f} s, on {on[1]:.2f} s -> "
          f"PEA adds {100 * (on[1] / off[1] - 1):+.0f} %")
    print(f"whole fit, process CPU time (one-off work included): off {off[2]:.2f} s, "
          f"on {on[2]:.2f} s")


if __name__ == "__main__":
    main()
