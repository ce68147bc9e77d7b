"""Memory and speed of ``fit`` on an on-disk ``X`` (``numpy.memmap``).

1. Peak RSS: a fresh process fits on a memmap of the paper's size
   (1.3 M samples x 978 genes, float32, ~5 GB on disk) and reports its peak
   resident memory (``VmHWM``, which counts file pages mapped into the
   process too; ``ru_maxrss`` is printed beside it: Linux carries it over
   from the parent process across ``fork`` + ``exec``, so the data are
   written by another process than the one that launches the fit). Only
   the keys of ``--train-keys`` perturbations are in the teacher bank
   (``unpaired="drop"``), so the epoch is a few hundred steps, while the
   input checks, the PCA subset, the minibatch reads and the
   decoder pass still cover all 1.3 M rows.
2. Epoch time on disk vs in memory, on the first ``--ratio-samples`` rows
   (a size that fits in memory), with the background prefetch on and off.

The data (random profiles around one mean per perturbation, integer keys)
is written once under ``--dir`` and reused; free disk space is checked
first and the size reduced (and said) when it does not fit.

Examples
--------
::

    python benchmarks/bench_memory.py                       # paper size
    python benchmarks/bench_memory.py --n-samples 200000    # quick look
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-samples", type=int, default=1_300_000)
    p.add_argument("--n-genes", type=int, default=978)
    p.add_argument("--n-keys", type=int, default=5000, help="perturbations (default 5000)")
    p.add_argument("--train-keys", type=int, default=1250,
                   help="perturbations in the bank (default 1250: ~325 k samples, ~320 steps)")
    p.add_argument("--image-dim", type=int, default=768)
    p.add_argument("--hidden", default="1024,1024", help="adapter hidden sizes")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--ratio-samples", type=int, default=65536)
    p.add_argument("--ratio-epochs", type=int, default=2)
    p.add_argument("--dir", default="/tmp/semiclip-bench-memory")
    p.add_argument("--device", default="cpu")
    p.add_argument("--keep", action="store_true", help="keep the data files")
    p.add_argument("--phase", default="all", choices=["all", "write", "rss", "ratio"])
    return p.parse_args(argv)


def paths(args):
    base = os.path.join(args.dir, f"X_{args.n_samples}x{args.n_genes}")
    return base + ".npy", base + "_y.npy", os.path.join(args.dir, "bank.npz")


def write_data(args):
    """Write X (npy, written chunk by chunk), y and the bank; never all of X in memory."""
    os.makedirs(args.dir, exist_ok=True)
    x_path, y_path, bank_path = paths(args)
    need = args.n_samples * args.n_genes * 4
    free = shutil.disk_usage(args.dir).free
    if os.path.exists(x_path):
        return
    if need > 0.8 * free:
        n = int(0.8 * free // (args.n_genes * 4))
        print(f"NOTE: {need / 2**30:.1f} GiB needed but {free / 2**30:.1f} GiB free in "
              f"{args.dir}; using {n} samples instead of {args.n_samples}.")
        args.n_samples = n
        x_path, y_path, bank_path = paths(args)
    rng = np.random.default_rng(0)
    means = rng.standard_normal((args.n_keys, args.n_genes), dtype=np.float32)
    y = rng.integers(0, args.n_keys, args.n_samples).astype(np.int64)
    X = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.float32,
                                  shape=(args.n_samples, args.n_genes))
    t0 = time.perf_counter()
    for start in range(0, args.n_samples, 65536):
        stop = min(start + 65536, args.n_samples)
        block = rng.standard_normal((stop - start, args.n_genes), dtype=np.float32)
        block += means[y[start:stop]]
        X[start:stop] = block
    X.flush()
    del X
    np.save(y_path, y)
    latent = rng.standard_normal((args.n_keys, args.image_dim), dtype=np.float32)
    bank_keys = np.repeat(np.arange(args.n_keys), 3)
    bank = latent[bank_keys] + 0.5 * rng.standard_normal((bank_keys.size, args.image_dim),
                                                         dtype=np.float32)
    np.savez(bank_path, embeddings=bank, keys=bank_keys)
    print(f"wrote {x_path} ({need / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s")


def _estimator(args, **extra):
    from semiclip import SemiClippedTransformer

    return SemiClippedTransformer(
        encoder="pca", encoder_dim=256,
        hidden_layer_sizes=tuple(int(h) for h in args.hidden.split(",") if h),
        batch_size=args.batch_size, solver="sgd", learning_rate_init=1e-3,
        early_stopping=True, n_iter_no_change=10**6, unpaired="drop",
        device=args.device, random_state=0, **extra,
    )


def _status():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.split(":")[0] in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[line.split(":")[0]] = int(line.split()[1]) / 2**20  # GiB
    return out


def rss_phase(args):
    """Runs in a fresh process: fit on the whole memmap, report peak memory."""
    import resource
    import warnings

    from semiclip import ImageBank

    x_path, y_path, bank_path = paths(args)
    X = np.load(x_path, mmap_mode="r")
    y = np.load(y_path)
    b = np.load(bank_path)
    keep = b["keys"] < args.train_keys
    bank = ImageBank(b["embeddings"][keep], b["keys"][keep])
    est = _estimator(args, max_iter=1)
    before = _status()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, image_bank=bank)
    seconds = time.perf_counter() - t0
    after = _status()
    import pickle

    blob = pickle.dumps(est)
    params = sum(p.numel() * p.element_size() for p in est.adapter_.parameters())
    print(json.dumps({
        "n_samples": int(X.shape[0]), "n_genes": int(X.shape[1]),
        "steps": int(np.ceil(est.t_ / args.batch_size)), "trained_samples": int(est.t_),
        "fit_seconds": seconds, "epoch_seconds": est._history_.epoch_seconds,
        "peak_rss_gib": after["VmHWM"],
        "ru_maxrss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "rss_before_fit_gib": before.get("VmRSS"), "rss_after_fit": after,
        "pickle_mib": len(blob) / 2**20, "adapter_param_mib": params / 2**20,
        "encoder_pickle_mib": len(pickle.dumps(est.encoder_)) / 2**20,
        "pca_rows": int(est.encoder_.n_samples_),
    }))


class EpochSeconds:
    """A training callback appending every epoch's wall time to ``seconds``."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_epoch_end(self, trainer, record):
        self.seconds.append(record["seconds"])


def ratio_phase(args):
    """Epoch time on disk vs in memory (same rows), prefetch on and off."""
    import warnings

    import semiclip._nn._prefetch as prefetch
    import semiclip._nn.training._callbacks as callbacks
    import semiclip._nn.training._loop as loop
    from semiclip import ImageBank

    x_path, y_path, bank_path = paths(args)
    n = min(args.ratio_samples, args.n_samples)
    X_disk = np.load(x_path, mmap_mode="r")[:n]
    X_mem = np.array(X_disk)
    y = np.load(y_path)[:n]
    b = np.load(bank_path)
    bank = ImageBank(b["embeddings"], b["keys"])
    results = {}
    for _round in range(2):  # interleaved rounds; median epoch time per setting
        for name, X, depth in [("memory", X_mem, 2), ("disk", X_disk, 2),
                               ("disk, no prefetch", X_disk, 0)]:
            prefetch.PREFETCH_DEPTH = loop.PREFETCH_DEPTH = callbacks.PREFETCH_DEPTH = depth
            est = _estimator(args, max_iter=args.ratio_epochs)
            est.set_params(callbacks=[EpochSeconds(results.setdefault(name, []))])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y, image_bank=bank)
    med = {k: float(np.median(v)) for k, v in results.items()}
    print(json.dumps({"n_samples": n, "epoch_seconds": med,
                      "ratio_disk_vs_memory": med["disk"] / med["memory"],
                      "ratio_disk_no_prefetch_vs_memory":
                          med["disk, no prefetch"] / med["memory"]}))


def _run_phase(phase, argv):
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--phase", phase]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line)
    return json.loads(lines[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.phase == "rss":
        return rss_phase(args)
    if args.phase == "ratio":
        return ratio_phase(args)
    if args.phase == "write":
        write_data(args)
        print(json.dumps({"n_samples": args.n_samples}))
        return None
    print(f"disk: {shutil.disk_usage(os.path.dirname(args.dir) or '/').free / 2**30:.0f} GiB "
          f"free under {os.path.dirname(args.dir) or '/'}")
    written = _run_phase("write", argv)  # in another process: keeps this one's RSS small
    argv = [a for a in argv if a != "--keep"] + ["--n-samples", str(written["n_samples"])]
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"adapter 256 -> {args.hidden} -> {args.image_dim}, batch {args.batch_size}")
    rss = _run_phase("rss", argv)
    print(f"\n1. fit on a {rss['n_samples']:,} x {rss['n_genes']} float32 memmap "
          f"({rss['n_samples'] * rss['n_genes'] * 4 / 2**30:.2f} GiB on disk)")
    print(f"   {rss['steps']} training steps ({rss['trained_samples']:,} samples), "
          f"fit {rss['fit_seconds']:.0f} s (epoch {rss['epoch_seconds'][0]:.0f} s), "
          f"PCA on {rss['pca_rows']:,} rows")
    print(f"   peak RSS {rss['peak_rss_gib']:.2f} GiB (VmHWM; goal < 3 GiB), ru_maxrss "
          f"{rss['ru_maxrss_gib']:.2f} GiB; RSS before fit {rss['rss_before_fit_gib']:.2f} GiB; "
          "after fit " + ", ".join(f"{k} {v:.2f}" for k, v in rss["rss_after_fit"].items()))
    print(f"   pickle {rss['pickle_mib']:.1f} MiB = "
          f"{rss['pickle_mib'] / (rss['adapter_param_mib'] + rss['encoder_pickle_mib']):.2f} x "
          f"(adapter {rss['adapter_param_mib']:.1f} MiB + encoder "
          f"{rss['encoder_pickle_mib']:.1f} MiB)")
    ratio = _run_phase("ratio", argv)
    sec = ratio["epoch_seconds"]
    print(f"\n2. epoch time on {ratio['n_samples']:,} rows (median of 2 rounds x "
          f"{args.ratio_epochs} epochs):")
    for k, v in sec.items():
        print(f"   {k:<20} {v:8.2f} s")
    print(f"   memmap / in memory: {ratio['ratio_disk_vs_memory']:.2f} with prefetch "
          f"(goal <= 1.5), {ratio['ratio_disk_no_prefetch_vs_memory']:.2f} without")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
    return None


if __name__ == "__main__":
    main()
