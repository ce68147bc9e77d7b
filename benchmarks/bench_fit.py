"""Throughput of ``SemiClippedTransformer.fit`` against a bare PyTorch loop.

Both run the same model and the same forward/backward: a 256-d input, a
1024-1024 ReLU MLP, a 768-d output, one-sided InfoNCE (L2-normalised,
temperature 0.1, same-key negatives masked), SGD with momentum, minibatches
of 1024. The bare loop works on *pre-paired* tensors (each sample's teacher
row drawn once, the data shuffled once, minibatches are contiguous slices,
no validation, no logging, no synchronisation before the end). ``fit`` does
everything it normally does: input checks, a fresh weak-pair draw and
shuffle every epoch, the cosine schedule, early-stopping validation on 10 %
of the keys after every epoch (on by default here), the loss curve, and the
ridge decoder at the end.

Every epoch is timed (wall clock and process CPU time): the steady-state
ratio compares the median epoch of ``fit`` (training samples per second,
validation included) with the median epoch of the bare loop; the end-to-end
ratio compares whole runs, ``fit``'s one-off work (input checks, the
decoder at the end) included. The script projects the paper's run (1.3 M
samples x 150 epochs) from both. Runs are interleaved (bare, fit, bare,
fit, ...) over ``--repeats`` rounds, so that a shared machine's load hits
both loops alike; on a busy CPU the process-CPU-time ratio is the steadier
figure.

``--profile`` adds a cProfile of one ``fit`` (where the Python time goes)
and a ``torch.profiler`` table of its operators.

Examples
--------
CPU, defaults (about a minute on 2 idle cores)::

    python benchmarks/bench_fit.py

One GPU (about a minute on an H100)::

    python benchmarks/bench_fit.py --device cuda --n-samples 262144 --epochs 3 --profile

Measured on an H200 (``--n-samples 1048576 --n-keys 5000 --epochs 4``): per
epoch 0.888-0.916 of the bare loop (445-466 k vs 486-525 k samples/s); one-off
work 7.0 s, then 2.4 s once the decoder moments ran on the GPU; projected
1.3 M x 150 epochs: about 390 s for both.
"""

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--n-samples", type=int, default=8192, help="samples (default 8192)")
    p.add_argument("--n-keys", type=int, default=2048, help="distinct keys (default 2048)")
    p.add_argument("--in-dim", type=int, default=256)
    p.add_argument("--hidden", default="1024,1024", help="comma-separated hidden sizes")
    p.add_argument("--out-dim", type=int, default=768)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    p.add_argument("--repeats", type=int, default=3, help="rounds; medians reported (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("--no-validation", action="store_true", help="fit without early stopping")
    p.add_argument("--paper-samples", type=float, default=1.3e6)
    p.add_argument("--paper-epochs", type=int, default=150)
    p.add_argument("--profile", action="store_true", help="also profile one fit")
    return p.parse_args(argv)


def make_data(args, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((args.n_samples, args.in_dim), dtype=np.float32)
    y = rng.integers(0, args.n_keys, args.n_samples)
    bank_keys = np.repeat(np.arange(args.n_keys), 3)
    bank = rng.standard_normal((bank_keys.size, args.out_dim), dtype=np.float32)
    return X, y, bank, bank_keys


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_mlp(args, device):
    sizes = [args.in_dim, *[int(h) for h in args.hidden.split(",") if h], args.out_dim]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def bare_loop(args, data, device, epochs):
    """Hand-written loop on pre-paired tensors; returns (seconds, samples)."""
    X, y, bank, bank_keys = data
    rng = np.random.default_rng(1)
    order = rng.permutation(X.shape[0])
    rows = np.searchsorted(bank_keys, y[order]) + rng.integers(0, 3, X.shape[0])
    x_all = torch.as_tensor(X[order], device=device)
    t_all = torch.as_tensor(bank[rows], device=device)
    k_all = torch.as_tensor(y[order], device=device)
    torch.manual_seed(0)
    model = make_mlp(args, device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.95, weight_decay=1e-4)
    n, bs = X.shape[0], args.batch_size
    sync(device)
    marks = [(time.perf_counter(), time.process_time())]
    for _ in range(epochs):
        for s in range(0, n, bs):
            x, t, k = x_all[s : s + bs], t_all[s : s + bs], k_all[s : s + bs]
            q = F.normalize(model(x), dim=1)
            c = F.normalize(t, dim=1)
            logits = q @ c.T / 0.1
            same = k[:, None] == k[None, :]
            off = torch.ones_like(same)
            idx = torch.arange(q.shape[0], device=device)
            off[idx, idx] = False
            loss = F.cross_entropy(logits.masked_fill(same & off, float("-inf")), idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        marks.append((time.perf_counter(), time.process_time()))
    return Run(marks, epochs * n)


def semiclip_fit(args, data, device, epochs, wrap=None):
    """``SemiClippedTransformer.fit``; returns (seconds, training samples seen)."""
    from semiclip import ImageBank, SemiClippedTransformer

    X, y, bank, bank_keys = data
    image_bank = ImageBank(bank, bank_keys)
    est = SemiClippedTransformer(
        encoder=None,
        hidden_layer_sizes=tuple(int(h) for h in args.hidden.split(",") if h),
        loss="infonce",
        temperature=0.1,
        solver="sgd",
        batch_size=args.batch_size,
        max_iter=epochs,
        learning_rate_init=1e-3,
        weight_decay=1e-4,
        early_stopping=not args.no_validation,
        validation_fraction=0.1,
        n_iter_no_change=10**6,
        device=str(device),
        random_state=0,
    )
    import warnings

    sync(device)
    marks = [(time.perf_counter(), time.process_time())]

    class EpochMarks:  # a training callback: called once per epoch, after validation
        def on_epoch_end(self, trainer, record):
            sync(device)
            marks.append((time.perf_counter(), time.process_time()))

    est.set_params(callbacks=[EpochMarks()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if wrap is None:
            est.fit(X, y, image_bank=image_bank)
        else:
            wrap(lambda: est.fit(X, y, image_bank=image_bank))
    sync(device)
    end = (time.perf_counter(), time.process_time())
    return Run(marks, est.t_, end)


class Run:
    """Timestamps (wall, CPU) at the start and after every epoch, and the samples trained."""

    def __init__(self, marks, samples, end=None):
        self.marks, self.samples = np.array(marks), samples
        self.end = np.array(end if end is not None else marks[-1])
        self.epochs = len(marks) - 1

    def total(self, col=0):
        return float(self.end[col] - self.marks[0, col])

    def epoch_times(self, col=0):
        # the first epoch of fit also holds its set-up: steady state from epoch 2 on
        return np.diff(self.marks[1:, col]) if self.epochs > 2 else np.diff(self.marks[:, col])


def profile_fit(args, data, device):
    """cProfile (Python functions) and torch.profiler (operators) of one fit."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    semiclip_fit(args, data, device, min(args.epochs, 2), wrap=prof.runcall)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    print("\n--- cProfile of one fit, by own time (top 15) ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as torch_prof:
        semiclip_fit(args, data, device, min(args.epochs, 2))
    events = torch_prof.key_averages()
    for key in (["self_device_time_total", "self_cuda_time_total"] if device.type == "cuda"
                else []) + ["self_cpu_time_total"]:
        try:
            table = events.table(sort_by=key, row_limit=15)
            break
        except (AttributeError, KeyError, ValueError):
            continue
    print(f"\n--- torch.profiler of one fit, by {key} (top 15) ---")
    print(table)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    data = make_data(args)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    import semiclip

    print(f"device: {device} ({name}), torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, semiclip from {semiclip.__file__}")
    print(f"model {args.in_dim} -> {args.hidden} -> {args.out_dim}, batch {args.batch_size}, "
          f"{args.n_samples} samples, {args.n_keys} keys, validation "
          f"{'off' if args.no_validation else 'on (10% of keys)'}")

    # warm-up (CUDA context, cuBLAS handles, allocator)
    argv = sys.argv[1:] if argv is None else list(argv)
    small = parse_args([*argv, "--n-samples", str(min(args.n_samples, 4 * args.batch_size))])
    bare_loop(small, make_data(small), device, 1)
    semiclip_fit(small, make_data(small), device, 1)

    rounds = {"bare": [], "fit": []}
    for _ in range(args.repeats):  # interleaved, so that load changes hit both loops
        rounds["bare"].append(bare_loop(args, data, device, args.epochs))
        rounds["fit"].append(semiclip_fit(args, data, device, args.epochs))
    per_epoch_samples = rounds["fit"][0].samples / args.epochs
    train_frac = per_epoch_samples / args.n_samples

    def steady(col):  # median epoch over all rounds -> samples per second
        bare = np.median(np.concatenate([r.epoch_times(col) for r in rounds["bare"]]))
        fit = np.median(np.concatenate([r.epoch_times(col) for r in rounds["fit"]]))
        return args.n_samples / bare, per_epoch_samples / fit, bare, fit

    def whole(col):
        bare = np.median([r.total(col) for r in rounds["bare"]])
        fit = np.median([r.total(col) for r in rounds["fit"]])
        return args.epochs * args.n_samples / bare, args.epochs * per_epoch_samples / fit, bare, fit

    bare_rate, fit_rate, bare_epoch, fit_epoch = steady(0)
    bare_total_rate, fit_total_rate, bare_total, fit_total = whole(0)
    fixed = max(fit_total - args.epochs * fit_epoch, 0.0)

    print()
    print(f"{'':<34}{'samples/s':>12}{'seconds':>10}")
    print(f"{'bare loop, median epoch':<34}{bare_rate:>12,.0f}{bare_epoch:>10.3f}")
    print(f"{'fit, median epoch (+validation)':<34}{fit_rate:>12,.0f}{fit_epoch:>10.3f}")
    print(f"{'bare loop, ' + str(args.epochs) + ' epochs':<34}{bare_total_rate:>12,.0f}"
          f"{bare_total:>10.3f}")
    print(f"{'fit, ' + str(args.epochs) + ' epochs, end to end':<34}{fit_total_rate:>12,.0f}"
          f"{fit_total:>10.3f}")
    print(f"fit one-off work (checks, decoder...): {fixed:.2f} s for {args.n_samples} samples; "
          f"fit trains on {train_frac:.0%} of them (the rest validates)")
    print()
    print(f"RATIO fit / bare loop, steady state (per epoch): {fit_rate / bare_rate:.3f}")
    print(f"ratio fit / bare loop, {args.epochs} epochs end to end: "
          f"{fit_total_rate / bare_total_rate:.3f}")
    if device.type == "cpu":
        b, f, _, _ = steady(1)
        bt, ft, _, _ = whole(1)
        print(f"ratio by process CPU time: {f / b:.3f} per epoch, {ft / bt:.3f} end to end")
    per_round = [(f.samples / f.total()) / (b.samples / b.total())
                 for b, f in zip(rounds["bare"], rounds["fit"])]
    print("end-to-end ratio of each round:", " ".join(f"{r:.3f}" for r in per_round))
    n, E = args.paper_samples, args.paper_epochs
    proj_fit = E * n * train_frac / fit_rate + fixed * n / args.n_samples
    proj_bare = E * n / bare_rate
    print(f"projected {n / 1e6:.1f} M samples x {E} epochs: fit {proj_fit / 3600:.2f} h "
          f"({proj_fit:,.0f} s), bare loop {proj_bare / 3600:.2f} h ({proj_bare:,.0f} s)")
    if args.profile:
        profile_fit(args, data, device)


if __name__ == "__main__":
    main()
