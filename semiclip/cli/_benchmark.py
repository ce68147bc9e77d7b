"""``semiclip benchmark``: the paper's comparison on synthetic data (a table and a figure).

``--real`` runs the real-data settings instead (TA-ORF L1000 with a
knowledge teacher, consensus profiles, the demo data; see
:mod:`semiclip._experiments`), ``--tradeoff`` the recall-interpretability
sweep over ``preservation_weight``.
"""

import time

from ._files import atomic_write, check_outputs

__all__ = ["add_parser", "run"]

# Written out rather than read from semiclip._experiments, whose import loads
# scikit-learn, scipy and pandas: ``semiclip benchmark --help`` stays instant.
# tests/cli/test_lean_start.py checks these against the experiments.
_QUICK_HELP = ("3 seeds, 600 perturbations x 3 samples, 400 genes, <= 40 epochs, "
               "2 seeds at a time (< 10 min on 2 cores)")
_FULL_SEEDS, _FULL_PERTURBATIONS, _FULL_GENES = 5, 600, 978
_ROW_IDS = ("raw", "pca", "kd", "clip", "siglip", "semiclipped", "pea", "ridge", "finetuned",
            "newplates", "newplates_pea", "paper")
_REAL_ROW_IDS = ("raw", "ridge", "ridge1", "semiclipped", "legacy", "anchor0", "anchor3",
                 "anchor3free", "anchor10free",
                 "structure", "structure10", "preservation", "soft", "paper")
_REAL_SETTING_NAMES = ("ta-orf", "consensus", "demo", "consensus-weak", "ta-orf-plates")


def add_parser(subparsers):
    """Register ``semiclip benchmark``."""
    p = subparsers.add_parser(
        "benchmark", help="the paper's comparison on synthetic data (table + figure)",
        description="Raw transcriptomics, PCA, feature KD, CLIP, SigLIP, Semi-Clipped, "
                    "Semi-Clipped + PEA, the ridge baseline and the adapter ablation, fitted on "
                    "2/3 of the perturbations of make_weakly_paired and scored on the held-out "
                    "third, several seeds (mean ± 95 % t-interval).")
    p.add_argument("--quick", action="store_true", help=_QUICK_HELP)
    p.add_argument("--seeds", type=int, help=f"number of seeds (default {_FULL_SEEDS})")
    p.add_argument("--n-perturbations", type=int,
                   help=f"perturbations of the synthetic data (default {_FULL_PERTURBATIONS})")
    p.add_argument("--n-genes", type=int,
                   help=f"genes of the synthetic data (default {_FULL_GENES})")
    p.add_argument("--max-iter", type=int, help="maximum epochs (default: the recipe's)")
    p.add_argument("--n-jobs", type=int,
                   help="seeds run at a time, in separate processes (default 1; --quick: 2)")
    p.add_argument("--methods", help="comma-separated row ids: " + ",".join(_ROW_IDS)
                   + "; with --real: " + ",".join(_REAL_ROW_IDS))
    p.add_argument("--plot", metavar="PNG", default="semiclip-benchmark.png",
                   help="where to save the figure ('' for none)")
    p.add_argument("--out", metavar="MD", help="also write the Markdown table there")
    p.add_argument("--verbose", type=int, default=0, help="progress bars (0 = off)")
    p.add_argument("--real", action="store_true",
                   help="the real-data settings instead: TA-ORF L1000 with a knowledge-derived "
                        "teacher, consensus profiles, the demo data (held-out recall, mAP, RSA, "
                        "MRR, interpretability; 5 seeds; paired differences from ridge)")
    p.add_argument("--settings", help="with --real: comma-separated settings among "
                   + ",".join(_REAL_SETTING_NAMES) + " (default: all)")
    p.add_argument("--tradeoff", action="store_true",
                   help="recall vs interpretability over preservation_weight on the demo data "
                        "(table + figure)")
    p.set_defaults(func=run)
    return p


def run(args):
    """The body of ``semiclip benchmark``: prints the table, writes the figure."""
    from .._experiments import (
        BASELINE,
        FULL,
        QUICK,
        expected_order,
        markdown_table,
        plot_benchmark,
        run_benchmark,
    )

    if args.real or args.tradeoff:
        from ._benchmark_real import run_real_command

        return run_real_command(args)
    config = dict(QUICK if args.quick else FULL)
    for name in ("seeds", "n_perturbations", "n_genes", "max_iter", "n_jobs"):
        value = getattr(args, name)
        if value is not None:
            config[name] = value
    if config["seeds"] < 1:
        raise ValueError(f"--seeds must be >= 1; got {config['seeds']}.")
    # checked before the long run (and against each other); written whole at the end
    check_outputs([("--out", args.out or None), ("--plot", args.plot or None)])
    rows = None if not args.methods else [r.strip() for r in args.methods.split(",") if r.strip()]
    header = (
        f"semiclip benchmark{' --quick' if args.quick else ''}: make_weakly_paired("
        f"n_perturbations={config['n_perturbations']}, samples_per_perturbation="
        f"{config['samples_per_perturbation']}, n_genes={config['n_genes']}, 12 plates, "
        f"128-d teacher), "
        f"fitted on 2/3 of the perturbations, scored on the held-out third; "
        f"{config['seeds']} seed(s); max_iter={config['max_iter']}; embeddings "
        f"center-scaled on each plate's controls before scoring."
    )
    print(header, flush=True)
    start = time.perf_counter()

    def progress(name, seed, scores):
        print(f"  seed {seed} {name:<50} recall={scores['recall']:.3f} "
              f"mAP={scores['map']:.3f} interpretability={scores['interpretability']:.3f} "
              f"({scores['fit_seconds']:.1f} s)", flush=True)

    results, table = run_benchmark(
        seeds=config["seeds"], n_perturbations=config["n_perturbations"],
        max_iter=config["max_iter"], rows=rows, verbose=args.verbose, progress=progress,
        data_params={"n_genes": config["n_genes"],
                     "samples_per_perturbation": config["samples_per_perturbation"]},
        n_jobs=config["n_jobs"],
    )
    baseline = BASELINE if BASELINE in table else None
    text = markdown_table(table, baseline=baseline)
    lines = ["", text, ""]
    checks = expected_order(table, results)
    if checks:
        lines.append("Orderings reported by the paper (held-out recall; with 2+ seeds a claim "
                     "holds only where the 95 % interval of the paired per-seed difference "
                     "excludes 0):")
        lines += [f"  [{'ok' if ok else 'NOT REPRODUCED'}] {claim}: {detail}"
                  for claim, ok, detail in checks]
    lines.append(f"Total {time.perf_counter() - start:.0f} s.")
    print("\n".join(lines), flush=True)
    if args.out:
        with atomic_write(args.out) as tmp:
            tmp.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
        print(f"Table saved to {args.out}")
    if args.plot:
        try:
            with atomic_write(args.plot) as tmp:
                plot_benchmark(results, tmp)
            print(f"Figure saved to {args.plot}")
        except ImportError as exc:
            print(f"No figure: {exc}")
    return 0
