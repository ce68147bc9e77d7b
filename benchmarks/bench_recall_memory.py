"""Peak memory of known-relationship recall on 20,000 genes x 768 dimensions.

The issue's bound: < 4 GiB peak resident memory. The naive EFAAR computation
holds the full 20,000 x 20,000 similarity matrix (3.2 GB in float64), its
upper triangle (1.6 GB) and a sorted copy (1.6 GB) at once.

Each measurement runs in a fresh Python process and reports that process's
peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before the metric
(inputs built, libraries imported) and after it.

On a shared, oversubscribed machine, small BLAS calls suffer from thread
contention; ``OPENBLAS_NUM_THREADS=1`` gives steadier timings (both tools
run in the same process, so they share the setting). The BLAS thread count
is printed.

Run from the repository root::

    .venv/bin/python benchmarks/bench_recall_memory.py
    .venv/bin/python benchmarks/bench_recall_memory.py --genes 20000 --dim 768 --replicates 2
"""

import argparse
import json
import subprocess
import sys
import time

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from semiclip.datasets import load_relationships
from semiclip.metrics import known_relationship_recall

n_genes, dim, reps, n_ctrl, normalize = {n_genes}, {dim}, {reps}, {n_ctrl}, {normalize!r}
rng = np.random.default_rng(0)
# real gene symbols (so the shipped StringDB pairs apply), padded with made-up names
symbols = np.unique(np.concatenate(
    [load_relationships(s).ravel() for s in ("StringDB", "HuMAP", "Reactome")]
))
names = np.concatenate(
    [symbols, np.array([f"FAKE{{i}}" for i in range(max(0, n_genes - symbols.size))])]
)
names = rng.permutation(names)[:n_genes]
genes = np.concatenate([np.repeat(names, reps), np.array(["CTRL"] * n_ctrl)])
batch = rng.integers(0, 4, size=genes.size)
X = rng.normal(size=(genes.size, dim))
X[: names.size * reps] += np.repeat(rng.normal(size=(names.size, dim)), reps, axis=0)
kb = 1024.0
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb
t = time.perf_counter()
res = known_relationship_recall(
    X, genes, relationships="StringDB", batch=batch, control_label="CTRL", normalize=normalize
)
seconds = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb
print(json.dumps(dict(rss_before_mib=before, rss_peak_mib=after, seconds=seconds,
                      input_mib=X.nbytes / 2**20, n_rows=int(genes.size), n_genes=res.n_genes,
                      n_pairs=res.n_pairs, n_null=res.n_null, recall=res.recall,
                      chance=res.chance)))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--controls", type=int, default=2_000)
    parser.add_argument(
        "--normalize", default="tvn", choices=["tvn", "none"],
        help="batch correction before the recall (TVN on the controls, or none)",
    )
    args = parser.parse_args()
    normalize = None if args.normalize == "none" else args.normalize
    code = _CHILD.format(
        n_genes=args.genes, dim=args.dim, reps=args.replicates, n_ctrl=args.controls,
        normalize=normalize,
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    r = json.loads(out.stdout.strip().splitlines()[-1])
    gib = 2**30 / 2**20
    print(f"known_relationship_recall, {r['n_genes']} genes x {args.dim} dims "
          f"({r['n_rows']} rows: {args.replicates} replicates per gene + "
          f"{args.controls} controls), "
          f"normalize={normalize!r}, relationships='StringDB'")
    print(f"  annotated pairs evaluated: {r['n_pairs']}, null size: {r['n_null']:,}")
    print(f"  recall = {r['recall']:.4f} (chance {r['chance']:.4f})")
    print(f"  input embeddings: {r['input_mib']:.0f} MiB")
    print(f"  peak RSS before the call: {r['rss_before_mib']:.0f} MiB")
    print(f"  peak RSS of the process:  {r['rss_peak_mib']:.0f} MiB "
          f"({r['rss_peak_mib'] / gib:.2f} GiB; bound 4 GiB: "
          f"{'OK' if r['rss_peak_mib'] < 4 * gib else 'EXCEEDED'})")
    print(f"  time of the call: {r['seconds']:.1f} s (process wall {wall:.1f} s)")
    full = r["n_genes"] ** 2 * 8 / 2**30
    print(f"  for scale: the dense similarity matrix alone is {full:.2f} GiB, its upper "
          f"triangle {full / 2:.2f} GiB (plus as much again to sort it)")


if __name__ == "__main__":
    main()
