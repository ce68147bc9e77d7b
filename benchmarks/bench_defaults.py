"""Held-out known-relationship recall of the default settings (issue 3 goal).

Raw transcriptomics vs the ridge baseline vs SemiClippedTransformer with
default parameters vs the paper's recipe, on make_weakly_paired at demo size
(the setting the defaults were tuned on) and on a second generator setting
that was not used for tuning. 3 seeds each.

Goal: defaults >= 1.8x raw and >= 0.8x ridge on both settings.

Usage::

    python benchmarks/bench_defaults.py [--seeds 3] [--no-paper] [--eval center_scale|tvn]
"""

import argparse
import time
import warnings

import numpy as np

from semiclip import RidgeDistiller, SemiClippedTransformer
from semiclip._experiments import run_heldout
from semiclip.datasets import make_weakly_paired

SETTINGS = {
    "demo (tuned)": {},
    "second (untuned)": dict(
        n_perturbations=900, n_genes=500, latent_dim=24, samples_per_perturbation=4,
        image_dim=64, images_per_perturbation=2, group_strength=0.7, tx_signal=0.3,
        image_noise=0.8, batch_strength=1.5, n_batches=8,
    ),
}


def methods(paper):
    rows = {
        "raw": "raw",
        "ridge": lambda s: RidgeDistiller(control_label="control", random_state=s),
        "defaults": lambda s: SemiClippedTransformer(control_label="control", random_state=s),
    }
    if paper:
        rows["paper recipe"] = lambda s: SemiClippedTransformer(
            recipe="paper", control_label="control", random_state=s
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-paper", action="store_true")
    parser.add_argument("--eval", default="center_scale", help="normalisation before recall")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for setting, params in SETTINGS.items():
        rows = methods(not args.no_paper)
        recalls = {name: [] for name in rows}
        seconds = {name: [] for name in rows}
        for seed in range(args.seeds):
            data = make_weakly_paired(random_state=seed, **params)
            for name, method in rows.items():
                t0 = time.perf_counter()
                scores = run_heldout(method, data, seed=seed, eval_normalize=args.eval)
                recalls[name].append(scores["recall"])
                seconds[name].append(time.perf_counter() - t0)
        print(f"\n## {setting}  (recall on held-out perturbations, "
              f"eval normalisation: {args.eval})")
        print("| method | recall per seed | mean | vs raw | vs ridge | s/seed |")
        print("|---|---|---|---|---|---|")
        raw, ridge = np.mean(recalls["raw"]), np.mean(recalls["ridge"])
        for name in rows:
            m = np.mean(recalls[name])
            per = ", ".join(f"{r:.3f}" for r in recalls[name])
            print(f"| {name} | {per} | {m:.3f} | {m / raw:.2f}x | {m / ridge:.2f}x | "
                  f"{np.mean(seconds[name]):.1f} |")


if __name__ == "__main__":
    main()
