"""semiclip's retrieval mAP vs copairs on TA-ORF L1000, and its memory at 50k profiles.

Replicate retrieval on the TA-ORF L1000 treated profiles (934 wells, 978
genes): positives share ``Metadata_gene`` and come from another plate
(copairs ``pos_sameby=[gene], pos_diffby=[plate]``), negatives are all other
genes (``neg_diffby=[gene]``), cosine similarity.

Reference: ``copairs.map.average_precision`` (per-profile AP) and
``copairs.map.mean_average_precision`` (per-gene mAP and p-values). Ours:
``semiclip.metrics.mean_average_precision(X, gene, groups=plate)``.

Printed: overall mAP (mean of the per-gene mAP) of both and their
difference, per-profile AP agreement (max difference, fraction within
1e-6), per-gene mAP agreement, the number of float32 near-ties that could
make copairs rank differently, the number of genes significant at p < 0.05
for both tools, and the speed ratio. Then the peak memory of our mAP on
50,000 synthetic profiles in a fresh process.

copairs is a benchmark-only tool (``.venv/bin/pip install copairs``).
On a shared, oversubscribed machine, small BLAS calls suffer from thread
contention; ``OPENBLAS_NUM_THREADS=1`` gives steadier timings (both tools
run in the same process, so they share the setting). The BLAS thread count
is printed.

Run from the repository root::

    .venv/bin/python benchmarks/bench_map.py [--repeats 3] [--null-size 10000]
    .venv/bin/python benchmarks/bench_map.py --memory-only --profiles 50000 --dim 128
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

_MEMORY_CHILD = r"""
import json, resource, time
import numpy as np
from semiclip.metrics import mean_average_precision
n, d = {n}, {d}
rng = np.random.default_rng(0)
labels = rng.integers(0, n // 5, size=n)          # about 5 replicates per label
plates = rng.integers(0, 20, size=n)
X = rng.normal(size=(n // 5, d))[labels] + 2.0 * rng.normal(size=(n, d))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
t = time.perf_counter()
res = mean_average_precision(X, labels, groups=plates)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(dict(before=before, peak=peak, seconds=seconds, map=res.map,
                      n_queries=int(np.isfinite(res.ap).sum()), input_mib=X.nbytes / 2**20)))
"""


def _blas_threads():
    from threadpoolctl import threadpool_info

    return ", ".join(
        f"{i['internal_api']} {i['num_threads']} thread(s)" for i in threadpool_info()
    ) or "unknown"


def _best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times), float(np.median(times))


def _near_ties(X, labels, plates):
    """Queries whose positive/negative order is tied or flipped in copairs' float32 keys."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    key32 = (np.float32(1) - S.astype(np.float32)).astype(np.float32)
    affected = 0
    for i in range(len(labels)):  # diagnostic only
        pos = (labels == labels[i]) & (plates != plates[i])
        neg = labels != labels[i]
        if not pos.any():
            continue
        p64, n64 = S[i, pos][:, None], S[i, neg][None, :]
        p32, n32 = key32[i, pos][:, None], key32[i, neg][None, :]
        # float64 says negative strictly above, float32 says positive first (or vice versa)
        if np.any((n64 > p64) & (n32 >= p32)) or np.any((n64 <= p64) & (n32 < p32)):
            affected += 1
    return affected


def compare(repeats, null_size):
    import pandas as pd
    from copairs.map import average_precision
    from copairs.map import mean_average_precision as cp_map

    from semiclip.metrics import mean_average_precision

    df = pd.read_csv(DATA / "ta_orf_l1000" / "TA_OE005_U2OS_72H_L1000_level4.csv.gz")
    df = df[df.Metadata_pert_type == "trt_oe"].reset_index(drop=True)
    meta = df[[c for c in df.columns if c.startswith("Metadata_")]]
    X = df[[c for c in df.columns if not c.startswith("Metadata_")]].to_numpy(dtype=np.float64)
    genes, plates = meta.Metadata_gene.to_numpy(), meta.Metadata_Plate.to_numpy()
    print(f"BLAS: {_blas_threads()}")
    print(f"TA-ORF L1000 treated profiles: {X.shape[0]} x {X.shape[1]}, "
          f"{np.unique(genes).size} genes, {np.unique(plates).size} plates")

    def copairs_ap():
        return average_precision(
            meta, X, pos_sameby=["Metadata_gene"], pos_diffby=["Metadata_Plate"],
            neg_sameby=[], neg_diffby=["Metadata_gene"], progress_bar=False,
        )

    def copairs_full():
        ap = copairs_ap()
        with tempfile.TemporaryDirectory() as cache:  # no null cached from a previous run
            m = cp_map(ap, sameby=["Metadata_gene"], null_size=null_size, threshold=0.05,
                       seed=0, progress_bar=False, cache_dir=cache)
        return ap, m

    ap_ref, t_cp_ap, t_cp_ap_med = _best(copairs_ap, repeats)
    (_, m_ref), t_cp_full, t_cp_full_med = _best(copairs_full, repeats)
    ours, t_ap, t_ap_med = _best(lambda: mean_average_precision(X, genes, groups=plates), repeats)
    ours_p, t_full, t_full_med = _best(
        lambda: mean_average_precision(
            X, genes, groups=plates, null_size=null_size, random_state=0
        ),
        repeats,
    )

    ref = ap_ref.average_precision.to_numpy()
    both = np.isfinite(ref) & np.isfinite(ours.ap)
    assert np.array_equal(np.isfinite(ref), np.isfinite(ours.ap))
    assert np.array_equal(ap_ref.n_pos_pairs.to_numpy()[both], ours.n_positives[both])
    assert np.array_equal(ap_ref.n_total_pairs.to_numpy()[both], ours.n_candidates[both])
    diff = np.abs(ours.ap[both] - ref[both])
    ref_label = m_ref.set_index("Metadata_gene")
    label_diff = np.abs(
        ours.label_map - ref_label.mean_average_precision.loc[ours.labels].to_numpy()
    )
    overall_ref = ref_label.mean_average_precision.mean()
    print(f"\noverall mAP (mean of per-gene mAP): copairs {overall_ref:.10f}  semiclip "
          f"{ours.map:.10f}  |diff| {abs(overall_ref - ours.map):.2e} (goal <= 1e-5)")
    print(f"per-profile AP: {both.sum()} queries, max |diff| {diff.max():.2e}, within 1e-6: "
          f"{np.mean(diff <= 1e-6):.2%} (goal >= 99 %), > 1e-6: {(diff > 1e-6).sum()}")
    print(f"per-gene mAP: {ours.labels.size} genes, max |diff| {label_diff.max():.2e}; skipped "
          f"(no replicate on another plate): {ours.n_skipped_labels}")
    print(f"queries whose float32 keys (copairs) could order a positive/negative pair "
          f"differently than float64: {_near_ties(X, genes, plates)}")
    p_ref = ref_label.p_value.loc[ours_p.labels].to_numpy()
    print(f"p < 0.05 (null_size={null_size}): copairs {np.sum(p_ref < 0.05)} genes, semiclip "
          f"{np.sum(ours_p.label_p_values < 0.05)} genes, "
          f"both {np.sum((p_ref < 0.05) & (ours_p.label_p_values < 0.05))}")
    print(f"\ntime (best of {repeats}; medians in brackets):")
    print(f"  per-profile AP:  copairs {t_cp_ap:7.3f} s [{t_cp_ap_med:.3f}]  "
          f"semiclip {t_ap:7.3f} s [{t_ap_med:.3f}]  -> {t_cp_ap / t_ap:.1f}x faster")
    print(f"  AP + mAP + p-values (null_size={null_size}): copairs {t_cp_full:7.3f} s "
          f"[{t_cp_full_med:.3f}]  semiclip {t_full:7.3f} s [{t_full_med:.3f}]  -> "
          f"{t_cp_full / t_full:.1f}x faster")


def memory(n, d):
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD.format(n=n, d=d)],
        check=True, capture_output=True, text=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nmemory: mean_average_precision on {n:,} synthetic profiles x {d} dims "
          f"(~5 replicates per label, 20 plates, groups=plates), fresh process")
    print(f"  input {r['input_mib']:.0f} MiB; peak RSS before the call {r['before']:.0f} MiB, "
          f"peak RSS of the process {r['peak']:.0f} MiB ({r['peak'] / 1024:.2f} GiB; bound 4 GiB: "
          f"{'OK' if r['peak'] < 4096 else 'EXCEEDED'})")
    print(f"  {r['n_queries']:,} queries, mAP {r['map']:.4f}, time {r['seconds']:.1f} s; the dense "
          f"similarity matrix alone would be {n * n * 8 / 2**30:.1f} GiB in float64")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--null-size", type=int, default=10000)
    parser.add_argument("--profiles", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if not args.memory_only:
        if not DATA.is_dir():
            sys.exit(f"{DATA} not found: the comparison needs ../shared/data")
        compare(args.repeats, args.null_size)
    if not args.skip_memory:
        memory(args.profiles, args.dim)


if __name__ == "__main__":
    main()
