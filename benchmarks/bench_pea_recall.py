"""Does PEA raise held-out known-relationship recall on synthetic data? (issue 4, must show 3)

Semi-Clipped (TVN-corrected X, ``SemiClippedTransformer()``) vs Semi-Clipped +
PEA (uncorrected X + plates, ``SemiClippedTransformer(augmenter=PEAAugmenter())``,
canonical TVN at inference) on :func:`~semiclip.datasets.make_weakly_paired`,
both with default parameters, under two protocols and two plate-effect models:

- ``same plates``: the engine of ``semiclip demo`` / ``benchmark``
  (:func:`semiclip._experiments.run_heldout`): held-out perturbations sit on
  the training plates and are corrected by the TVN fitted on the training
  controls;
- ``new plates``: train on the training perturbations of plates 0-7, score
  the held-out perturbations on plates 8-11, never seen in training and
  corrected by a TVN fitted on their own controls (a new experiment). Both
  models get the same corrected test input;
- plate effects: the generator's default (additive offset + low-rank noise)
  or with ``plate_gain=0.5`` (per-plate, per-gene multiplicative gains, which
  TVN removes only partly).

Prints, per setting, the recall of both models on every seed, their
difference and its mean ± sd (and how many seeds PEA wins).

Usage::

    python benchmarks/bench_pea_recall.py [--seeds 3] [--settings all|name,name]

Measured on a 2-core CPU (``--seeds 3``: about 1.5 min on idle cores;
``--seeds 10``: about 4 min), recall of no PEA / PEA and PEA - no PEA per
seed::

    setting                       no PEA  PEA    per seed (3 seeds)       mean +- sd
    same plates                   0.653   0.626  -0.041 -0.015 -0.023     -0.026 +- 0.014
    same plates, plate_gain=0.5   0.596   0.582  +0.006 -0.029 -0.021     -0.015 +- 0.019
    new plates                    0.514   0.526  +0.004 +0.018 +0.013     +0.012 +- 0.007
    new plates, plate_gain=0.5    0.461   0.472  +0.034 -0.023 +0.020     +0.011 +- 0.030

    10 seeds (0-9)                no PEA  PEA    mean +- sd          PEA wins
    same plates                   0.652   0.615  -0.037 +- 0.019     0/10
    same plates, plate_gain=0.5   0.615   0.578  -0.037 +- 0.026     1/10
    new plates                    0.530   0.542  +0.012 +- 0.010     9/10
    new plates, plate_gain=0.5    0.484   0.490  +0.006 +- 0.017     7/10

PEA costs recall whenever the held-out perturbations are corrected exactly
as the training data were (same plates): the student then meets at
inference the very input distribution it was trained on, and PEA's random
per-plate corrections only add input noise (mostly through dropped steps:
with ``drop_step_prob=0`` the cost is -0.007, with TVN-only control
subsampling +0.004 +- 0.007). It gains a little (+0.012, 9 of 10 seeds) only
on new plates, where the TVN refitted on the new plates' controls is a
correction the student never saw; per-plate center-scaling of the new plates
gives the no-PEA model about the same gain. Multiplicative plate gains
(``plate_gain``), which TVN removes only partly, lower both models but do not
make PEA more useful.
"""

import argparse
import time
import warnings

import numpy as np

#: id -> (row label, protocol, make_weakly_paired parameters)
SETTINGS = {
    "same": ("same plates", "same", {}),
    "same_gain": ("same plates, plate_gain=0.5", "same", {"plate_gain": 0.5}),
    "new": ("new plates", "new", {}),
    "new_gain": ("new plates, plate_gain=0.5", "new", {"plate_gain": 0.5}),
}
def run_setting(protocol, data_params, seed):
    """Held-out recall of (no PEA, PEA) on one seed."""
    from semiclip import PEAAugmenter, SemiClippedTransformer
    from semiclip._experiments import (
        CorrectedOnNewPlates,
        prepare_heldout,
        prepare_new_plates,
        run_heldout,
    )
    from semiclip.datasets import make_weakly_paired

    data = make_weakly_paired(random_state=seed, **data_params)
    if protocol == "same":
        prepared, wrap = prepare_heldout(data, seed=seed), (lambda est: est)
    else:
        prepared, test_norm = prepare_new_plates(data, seed=seed)
        wrap = lambda est: CorrectedOnNewPlates(est, test_norm)  # noqa: E731

    def no_pea(s):
        return SemiClippedTransformer(control_label="control", random_state=s, n_threads=1)

    def pea(s):
        return wrap(SemiClippedTransformer(control_label="control", random_state=s, n_threads=1,
                                           augmenter=PEAAugmenter(random_state=s)))

    return tuple(run_heldout(m, data, seed=seed, prepared=prepared)["recall"]
                 for m in (no_pea, pea))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--settings", default="all",
                        help="'all' or comma-separated ids among " + ",".join(SETTINGS))
    args = parser.parse_args(argv)
    names = list(SETTINGS) if args.settings == "all" else args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose among {list(SETTINGS)}")
    warnings.simplefilter("ignore")
    print(f"held-out known-relationship recall, {args.seeds} seeds (0..{args.seeds - 1})\n")
    print("| setting | seed | no PEA | PEA | PEA - no PEA |")
    print("|---|---|---|---|---|")
    summary = []
    for setting in names:
        name, protocol, params = SETTINGS[setting]
        rows = []
        start = time.perf_counter()
        for seed in range(args.seeds):
            base, aug = run_setting(protocol, params, seed)
            rows.append((base, aug))
            print(f"| {name} | {seed} | {base:.3f} | {aug:.3f} | {aug - base:+.3f} |", flush=True)
        r = np.array(rows)
        d = r[:, 1] - r[:, 0]
        sd = d.std(ddof=1) if d.size > 1 else 0.0
        summary.append((name, r[:, 0].mean(), r[:, 1].mean(), d.mean(), sd, int((d > 0).sum()),
                        d.size, time.perf_counter() - start))
    print("\n| setting | no PEA | PEA | PEA - no PEA (mean ± sd) | PEA wins | s (all seeds) |")
    print("|---|---|---|---|---|---|")
    for name, b, a, dm, sd, wins, n, sec in summary:
        print(f"| {name} | {b:.3f} | {a:.3f} | {dm:+.3f} ± {sd:.3f} | {wins}/{n} | {sec:.0f} |")


if __name__ == "__main__":
    main()
