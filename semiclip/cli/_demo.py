"""``semiclip demo``: raw vs the ridge floor vs Semi-Clipped (vs + PEA) on synthetic data, held out.

``--quick``: one seed on half the perturbations (seconds).
"""

import time

from ._files import atomic_write, check_outputs

__all__ = ["add_parser", "run"]


def run(args):
    """The body of ``semiclip demo``."""
    from .._distill import RidgeDistiller
    from .._experiments import demo_methods, markdown_table, run_experiment, summarize

    if args.quick:  # one seed on half the perturbations: a first look in seconds
        args.seeds = 1 if args.seeds is None else args.seeds
        args.n_perturbations = args.n_perturbations or QUICK_PERTURBATIONS
    seeds_n = DEFAULT_SEEDS if args.seeds is None else args.seeds
    n_perturbations = args.n_perturbations or DEFAULT_PERTURBATIONS
    args.n_perturbations = n_perturbations
    if seeds_n < 1:
        raise ValueError(f"--seeds must be >= 1; got {seeds_n}.")
    check_outputs([("--plot", args.plot or None)])  # "" or none: no figure
    seeds = tuple(range(seeds_n))
    methods = demo_methods()
    # the linear floor: PCA of the input, ridge onto each key's mean image embedding
    methods = {"raw transcriptomics": methods.pop("raw transcriptomics"),
               "ridge (RidgeDistiller)": lambda seed: RidgeDistiller(control_label="control",
                                                                    random_state=seed),
               **methods}
    if args.no_pea:
        methods.pop("Semi-Clipped + PEA")
    data_params = {"n_perturbations": n_perturbations}
    print(
        f"semiclip demo: synthetic weakly paired data ({args.n_perturbations} perturbations, "
        f"978 genes, 12 plates; teacher: 128-d image embeddings, 3 per perturbation).\n"
        f"Each method is fitted on 2/3 of the perturbations and scored on the held-out third; "
        f"{len(seeds)} seeds.",
        flush=True,
    )
    start = time.perf_counter()

    def progress(name, seed, scores):
        print(
            f"  seed {seed} {name:<22} recall={scores['recall']:.3f} mAP={scores['map']:.3f} "
            f"interpretability={scores['interpretability']:.3f} ({scores['fit_seconds']:.1f} s)",
            flush=True,
        )

    _with_progress_bars(methods, args.verbose)
    results = run_experiment(methods, seeds=seeds, data_params=data_params, progress=progress)
    table = summarize(results)
    print()
    print(_table(table, markdown_table, len(seeds)))
    raw = table["raw transcriptomics"]["recall"][0]
    ours = table["Semi-Clipped"]["recall"][0]
    ridge = table["ridge (RidgeDistiller)"]["recall"][0]
    chance = results["raw transcriptomics"][0]["recall_chance"]
    spread = (f"Mean ± 95 % interval over {len(seeds)} seeds" if len(seeds) > 1 else
              "One seed, so no interval (intervals need --seeds 2 or more)")
    print(
        f"\nKnown-relationship recall on held-out perturbations (chance {chance:.2f}): "
        f"Semi-Clipped {ours:.3f} vs raw transcriptomics {raw:.3f} ({ours / raw:.1f}x) and "
        f"the ridge floor {ridge:.3f}. {spread}; total {time.perf_counter() - start:.0f} s."
    )
    print(EXPLANATION)
    if _same_scores(results, "Semi-Clipped", "Semi-Clipped + PEA"):
        print(PEA_UNUSED)
    if args.plot:
        _demo_plot(results, args.plot, chance, len(seeds))
    return 0


#: what the columns of the demo's table mean, printed after it
EXPLANATION = """What the columns mean:
  recall: of the known relationships between held-out perturbations, the fraction found
    among their most similar pairs (the goal: higher is better, chance as above).
  mAP: how well replicates of a perturbation on other plates retrieve each other;
    interpretability: how well the genes can be decoded back from the embedding (raw = 1).
  Both drop as distillation gets stronger, and that is expected: the image teacher moves the
    embedding away from replicate-level transcriptomic detail towards shared biology."""


#: printed when the + PEA row scores exactly as the plain one on every seed
PEA_UNUSED = (
    "Semi-Clipped + PEA equals Semi-Clipped on every seed: PEA acts only through training,\n"
    "  and the held-out choice kept the ridge start (no fine-tune epoch beat it). To see PEA's\n"
    "  effect, fine-tune: init='random', or early_stopping=False with anchor_weight (the docs'\n"
    "  \"Choosing settings\" page has the trade).")


def _same_scores(results, a, b):
    """Whether rows ``a`` and ``b`` scored the same recall and mAP on every seed."""
    if a not in results or b not in results:
        return False
    return all(x["recall"] == y["recall"] and x["map"] == y["map"]
               for x, y in zip(results[a], results[b]))


def _table(table, markdown_table, n_seeds):
    """The summary table; with one seed, values without a (meaningless) ``± 0.000``."""
    text = markdown_table(table, baseline="raw transcriptomics")
    if n_seeds > 1:
        return text
    import re

    return re.sub(r"(\d\.\d{3}) ± \d+\.\d{3}", r"\1", text)


def _with_progress_bars(methods, verbose):
    """Wrap estimator factories so they show progress bars (``verbose``)."""

    def with_verbose(make):
        def build(seed):
            est = make(seed)
            if "verbose" in est.get_params(deep=False):
                est.set_params(verbose=verbose)
            return est
        return build

    for name, method in list(methods.items()):
        if callable(method):
            methods[name] = with_verbose(method)


def _demo_plot(results, path, chance=None, n_seeds=1):
    try:
        from ..plotting import plot_recall_bars
    except ImportError:  # pragma: no cover
        print("matplotlib is not installed: no figure (pip install 'semiclip[plot]').")
        return
    try:
        per_method = {name: [r["recall"] for r in runs] for name, runs in results.items()}
        spread = f"mean and 95 % interval over {n_seeds} seeds" if n_seeds > 1 else "one seed"
        ax = plot_recall_bars(per_method, ylabel="held-out known-relationship recall",
                              chance=chance, ci=0.95 if n_seeds > 1 else None,
                              title=f"semiclip demo: held-out recall ({spread})")
        for label in ax.get_xticklabels():
            label.set_rotation(15)
            label.set_horizontalalignment("right")
        with atomic_write(path) as tmp:
            ax.figure.savefig(tmp, dpi=150, bbox_inches="tight")
        print(f"Figure saved to {path}")
    except ImportError as exc:
        print(f"No figure: {exc}")


DEFAULT_SEEDS, DEFAULT_PERTURBATIONS, QUICK_PERTURBATIONS = 3, 600, 300


def add_parser(subparsers):
    """Register ``semiclip demo``."""
    demo = subparsers.add_parser(
        "demo", help="fit raw vs ridge vs Semi-Clipped (vs +PEA) on built-in synthetic data"
    )
    demo.add_argument("--quick", action="store_true",
                      help=f"one seed on {QUICK_PERTURBATIONS} perturbations: a first look in "
                           "seconds, no interval")
    demo.add_argument("--seeds", type=int, default=None,
                      help=f"number of seeds (default {DEFAULT_SEEDS}; --quick: 1)")
    demo.add_argument("--n-perturbations", type=int, default=None, metavar="N",
                      help="perturbations of the synthetic data set, a third held out "
                           f"(default {DEFAULT_PERTURBATIONS}; --quick: {QUICK_PERTURBATIONS})")
    demo.add_argument("--no-pea", action="store_true", help="skip the Semi-Clipped + PEA row")
    demo.add_argument("--plot", metavar="PNG", default="semiclip-demo.png",
                      help="where to save the figure ('' for none)")
    demo.add_argument("--verbose", type=int, default=1, help="progress bars (0 = off)")
    demo.set_defaults(func=run)
    return demo
