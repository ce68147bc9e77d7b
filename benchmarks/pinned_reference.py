"""Pinned reference: ``transform`` of the demo data, to check that a refactor changes no bit.

For seeds 0, 1, 2 the script builds the demo data
(``make_weakly_paired(n_perturbations=600, random_state=seed)``), splits the
perturbations as ``semiclip demo`` does, TVN-corrects on the training
controls, fits three models on the training perturbations and embeds the
held-out ones:

- ``default``: ``SemiClippedTransformer(control_label="control", random_state=seed)``;
- ``pea``: the same with ``augmenter=PEAAugmenter(random_state=seed)`` (fitted
  on the uncorrected profiles with their plates, as the demo does);
- ``hidden64``: the same as ``default`` with ``hidden_layer_sizes=(64,)``.

Only public API is used, so the script runs unchanged before and after a
move of the package's internals.

Usage::

    python benchmarks/pinned_reference.py --write ref.npz   # before the change
    python benchmarks/pinned_reference.py --check ref.npz   # after it: exit 1 on any difference

The SHA-256 of every embedding is printed; ``--check`` also prints the
largest absolute difference of any embedding that is not bit-identical.
Bit identity holds on one machine and one set of library versions (BLAS
results depend on the CPU and the library build).

Measured for the layout move (issue 11), 2-core CPU, torch 2.13.0: all nine
embeddings bit-identical before and after.
"""

import argparse
import hashlib
import sys
import time
import warnings

import numpy as np

SEEDS = (0, 1, 2)
CONFIGS = ("default", "pea", "hidden64")


#: the settings that reproduce the fits before the ridge start (issue 19): ``--legacy``
LEGACY = {"init": "random", "anchor_weight": 0.0, "refit": False}


def embeddings(seeds=SEEDS, legacy=False):
    from sklearn.exceptions import ConvergenceWarning

    from semiclip import ControlNormalizer, PEAAugmenter, SemiClippedTransformer
    from semiclip.datasets import make_weakly_paired, split_by_key

    out = {}
    for seed in seeds:
        data = make_weakly_paired(n_perturbations=600, random_state=seed)
        X, y, b = data.X, data.y, data.batch
        tr, te = split_by_key(y, test_size=1 / 3, control_label="control", random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            norm = ControlNormalizer("tvn", control_label="control", basis="feature")
            Xtr = norm.fit_transform(X[tr], y[tr], batch=b[tr])
            Xte = norm.transform(X[te], batch=b[te])
            for config in CONFIGS:
                start = time.perf_counter()
                params = dict(control_label="control", random_state=seed)
                if legacy:
                    params.update(LEGACY)
                if config == "hidden64":
                    params["hidden_layer_sizes"] = (64,)
                if config == "pea":
                    est = SemiClippedTransformer(
                        augmenter=PEAAugmenter(random_state=seed), **params
                    ).fit(X[tr], y[tr], image_bank=data.image_bank, batch=b[tr])
                    Z = est.transform(X[te], batch=b[te])
                else:
                    est = SemiClippedTransformer(**params).fit(
                        Xtr, y[tr], image_bank=data.image_bank
                    )
                    Z = est.transform(Xte)
                name = f"seed{seed}_{config}"
                out[name] = np.asarray(Z)
                digest = hashlib.sha256(out[name].tobytes()).hexdigest()[:16]
                print(f"{name:<16} {Z.shape} sha256 {digest} "
                      f"({est.n_iter_} epochs, {time.perf_counter() - start:.1f} s)", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="NPZ", help="save the embeddings there")
    g.add_argument("--check", metavar="NPZ", help="compare with embeddings saved by --write")
    p.add_argument("--legacy", action="store_true",
                   help="fit with init='random', anchor_weight=0, refit=False (the defaults "
                        "before the ridge start)")
    args = p.parse_args(argv)
    found = embeddings(legacy=args.legacy)
    if args.write:
        np.savez(args.write, **found)
        print(f"saved {len(found)} embeddings to {args.write}")
        return 0
    ref = np.load(args.check)
    differ = 0
    for name, Z in found.items():
        R = ref[name]
        if (R.shape == Z.shape and R.dtype == Z.dtype
                and np.array_equal(R.view(np.uint8), Z.view(np.uint8))):
            continue
        differ += 1
        diff = np.abs(R.astype(np.float64) - Z).max() if R.shape == Z.shape else float("nan")
        print(f"DIFFERS: {name}: max |diff| = {diff:.3g}")
    print(f"{len(found) - differ} of {len(found)} embeddings bit-identical to {args.check}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
