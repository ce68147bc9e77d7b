"""Cost of PEA: one training epoch with the augmenter on vs off (issue 4 goal: <= +25 %).

Same data (make_weakly_paired at demo size, uncorrected X + plates), same
model (the default linear adapter, or ``--hidden 1024 1024``), same number of
epochs without early stopping. With PEA, every epoch draws a fresh
augmentation of the student input (per plate: a random transform from
center / center_scale / TVN, steps dropped, statistics on a random control
subsample) and re-encodes it; without PEA the input is the canonical TVN,
encoded once. Runs are interleaved over ``--repeats`` rounds; the figure is
the ratio of median per-epoch times (process CPU time as well as wall clock).

Usage::

    python benchmarks/bench_pea.py [--epochs 20] [--repeats 3] [--hidden 1024 1024]
"""

import argparse
import time
import warnings

import numpy as np

from semiclip import ControlNormalizer, PEAAugmenter, SemiClippedTransformer
from semiclip.datasets import make_weakly_paired


def one_run(data, pea, epochs, hidden, threads):
    params = dict(control_label="control", max_iter=epochs, early_stopping=False, tol=0.0,
                  hidden_layer_sizes=hidden, random_state=0, n_threads=threads)
    if pea:
        est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **params)
        X, kw = data.X, {"batch": data.batch}
    else:
        norm = ControlNormalizer("tvn", control_label="control", basis="feature")
        X, kw = norm.fit_transform(data.X, data.y, batch=data.batch), {}
        est = SemiClippedTransformer(**params)
    # time one full fit; per-epoch = (fit with E epochs - fit with 1 epoch) / (E - 1)
    wall, cpu = [], []
    for n_ep in (1, epochs):
        est.set_params(max_iter=n_ep)
        w0, c0 = time.perf_counter(), time.process_time()
        est.fit(X, data.y, image_bank=data.image_bank, **kw)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return (wall[1] - wall[0]) / (epochs - 1), (cpu[1] - cpu[0]) / (epochs - 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
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
    off = np.median(np.array(res[False]), axis=0)
    on = np.median(np.array(res[True]), axis=0)
    print(f"per-epoch wall: off {off[0] * 1e3:.1f} ms, on {on[0] * 1e3:.1f} ms -> "
          f"PEA adds {100 * (on[0] / off[0] - 1):+.0f} %")
    print(f"per-epoch CPU:  off {off[1] * 1e3:.1f} ms, on {on[1] * 1e3:.1f} ms -> "
          f"PEA adds {100 * (on[1] / off[1] - 1):+.0f} %")


if __name__ == "__main__":
    main()
