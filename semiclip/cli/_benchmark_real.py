"""``semiclip benchmark --real`` and ``--tradeoff``: held-out tables on the real-data settings."""

import json
import time

from ._files import atomic_write, check_outputs

__all__ = ["run_real_command"]

#: seeds of --real / --tradeoff (``--seeds`` overrides; --quick: 2)
REAL_SEEDS, TRADEOFF_SEEDS = 5, 3


def _seeds(args, default):
    n = args.seeds if args.seeds is not None else (2 if args.quick else default)
    if n < 1:
        raise ValueError(f"--seeds must be >= 1; got {n}.")
    return tuple(range(n))


def _progress(name, seed, scores):
    from .._experiments import recall_metrics

    keep = {*recall_metrics(scores), "rsa", "mrr", "interpretability"}
    shown = {k: v for k, v in scores.items() if k in keep}
    text = " ".join(f"{k.replace(' ', '_')}={v:.3f}" for k, v in shown.items())
    print(f"  seed {seed} {name:<42} {text} ({scores['fit_seconds']:.1f} s)", flush=True)


def run_real_command(args):
    """The body of ``semiclip benchmark --real`` / ``--tradeoff``: tables, optional figure."""
    from .._experiments import (
        REAL_SETTINGS,
        SETTING_TITLES,
        demo_setting,
        plot_tradeoff,
        real_methods,
        real_table,
        run_real,
        run_tradeoff,
        tradeoff_table,
    )

    plot = None
    if args.plot and args.tradeoff:
        plot = args.plot if args.plot != "semiclip-benchmark.png" else "semiclip-tradeoff.png"
    # checked before the long run (and against each other); written whole at the end
    check_outputs([("--out", args.out or None),
                   ("--out (scores)", f"{args.out}.json" if args.out else None),
                   ("--plot", plot)])
    max_iter = args.max_iter if args.max_iter is not None else "auto"
    start = time.perf_counter()
    sections, raw = [], {}
    if args.real:
        names = list(REAL_SETTINGS) if not args.settings else [
            s.strip() for s in args.settings.split(",") if s.strip()]
        unknown = [n for n in names if n not in REAL_SETTINGS]
        if unknown:
            raise ValueError(f"--settings: unknown setting(s) {', '.join(unknown)}; choose "
                             f"among {', '.join(REAL_SETTINGS)}.")
        rows = None if not args.methods else [r.strip() for r in args.methods.split(",")
                                               if r.strip()]
        methods = real_methods(rows, max_iter=max_iter)
        seeds = _seeds(args, REAL_SEEDS)
        for name in names:
            title = f"## {name}: {SETTING_TITLES[name]}; {len(seeds)} seeds"
            print(title, flush=True)
            results = run_real(REAL_SETTINGS[name], methods, seeds=seeds, progress=_progress)
            raw[name] = results
            sections.append(title + "\n\n" + real_table(results))
            print("\n" + sections[-1] + "\n", flush=True)
    if args.tradeoff:
        seeds = _seeds(args, TRADEOFF_SEEDS)
        title = f"## Recall vs interpretability over preservation_weight (demo data, " \
                f"{len(seeds)} seeds)"
        print(title, flush=True)
        results = run_tradeoff(demo_setting, seeds=seeds, max_iter=max_iter, progress=_progress)
        raw["tradeoff"] = results
        sections.append(title + "\n\n" + tradeoff_table(results))
        print("\n" + sections[-1] + "\n", flush=True)
        if args.plot:
            path = plot
            try:
                with atomic_write(path) as tmp:
                    plot_tradeoff(results, tmp)
                print(f"Figure saved to {path}")
            except ImportError as exc:
                print(f"No figure: {exc}")
    print(f"Total {time.perf_counter() - start:.0f} s.", flush=True)
    if args.out:
        with atomic_write(args.out) as tmp:
            tmp.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
        scores = f"{args.out}.json"
        with atomic_write(scores) as tmp:
            tmp.write_text(json.dumps(raw, indent=1, default=float), encoding="utf-8")
        print(f"Tables saved to {args.out}, every seed's scores to {scores}")
    return 0
