"""``semiclip benchmark``: the paper's comparison on synthetic weakly paired data.

Every row is fitted on the training perturbations of
:func:`semiclip.datasets.make_weakly_paired` and scored on the held-out ones
by the engine of ``semiclip demo`` (:func:`semiclip._experiments.run_heldout`),
over several seeds (data, split and model all change with the seed), and
summarised as mean and 95 % t-interval.

Rows (ids for ``--methods``):

==============  ==================================================================
``raw``         TVN-corrected transcriptomics itself
``pca``         the frozen PCA encoder alone (256 components), no distillation
``kd``          feature distillation, cosine to the teacher (``loss="kd"``)
``clip``        symmetric CLIP loss (``loss="clip"``)
``siglip``      SigLIP pairwise sigmoid loss (``loss="siglip"``)
``semiclipped`` Semi-Clipped with default parameters: frozen encoder + adapter,
                one-sided InfoNCE
``pea``         Semi-Clipped + PEA (``augmenter=PEAAugmenter()``)
``ridge``       :class:`~semiclip.RidgeDistiller`, ridge onto teacher centroids
``finetuned``   adapter ablation: Semi-Clipped with the PCA-initialised encoder
                trained jointly (``train_encoder=True``); compare with
                ``semiclipped`` (frozen encoder + adapter)
``newplates``   Semi-Clipped scored on new plates: held-out keys on plates 9-12,
                never trained on, TVN-corrected on their own controls
``newplates_pea`` the same with PEA (the setting where the paper's PEA helps)
``paper``       Semi-Clipped with ``recipe="paper"`` (not in the default set)
==============  ==================================================================
"""

import numpy as np

__all__ = [
    "BASELINE",
    "EXTRA_ROWS",
    "FULL",
    "QUICK",
    "ROWS",
    "benchmark_methods",
    "expected_order",
    "plot_benchmark",
    "run_benchmark",
]

#: (id, row label); the default rows of the benchmark, in table order
ROWS = (
    ("raw", "raw transcriptomics"),
    ("pca", "PCA (frozen encoder only)"),
    ("kd", "feature KD"),
    ("clip", "symmetric CLIP"),
    ("siglip", "SigLIP"),
    ("semiclipped", "Semi-Clipped (frozen encoder + adapter)"),
    ("pea", "Semi-Clipped + PEA"),
    ("ridge", "ridge distillation baseline"),
    ("finetuned", "ablation: encoder fine-tuned (train_encoder=True)"),
    ("newplates", "new plates: Semi-Clipped"),
    ("newplates_pea", "new plates: Semi-Clipped + PEA"),
)
EXTRA_ROWS = (("paper", "Semi-Clipped, recipe='paper'"),)
BASELINE = "raw transcriptomics"

#: ``--quick``: 3 seeds; as many perturbations as the demo data (600: the
#: contrastive losses need many keys) but 3 samples per perturbation instead of
#: 5, 400 genes instead of 978 and at most 40 epochs; two seeds at a time. The
#: rest of the demo data's structure is kept (12 plates with 48 controls, 128-d
#: teacher, 3 teacher rows per key). Under 10 minutes on 2 cores.
QUICK = {"seeds": 3, "n_perturbations": 600, "samples_per_perturbation": 3, "n_genes": 400,
         "max_iter": 40, "n_jobs": 2}
#: the default run: the demo data (600 perturbations x 5 samples, 978 genes), 5 seeds.
FULL = {"seeds": 5, "n_perturbations": 600, "samples_per_perturbation": 5, "n_genes": 978,
        "max_iter": "auto", "n_jobs": 1}


class _PCAOnly:
    """The frozen PCA encoder alone, with the benchmark's ``fit`` signature."""

    def __init__(self, n_components, random_state):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None, *, image_bank=None):
        from sklearn.decomposition import PCA

        n = min(self.n_components, X.shape[0] - 1, X.shape[1])
        self.pca_ = PCA(n_components=n, random_state=self.random_state).fit(X)
        return self

    def transform(self, X):
        return self.pca_.transform(X)


def benchmark_methods(max_iter="auto", rows=None, verbose=0):
    """``{label: "raw" or factory(seed)}`` for :func:`run_experiment`.

    Parameters
    ----------
    max_iter : "auto" or int
        Maximum epochs of every trained row.
    rows : list of str, optional
        Row ids (see the module docstring); default all of :data:`ROWS`.
    verbose : int
        Progress bars of the trained rows.

    Returns
    -------
    methods : dict
        One entry per row, in the order asked for.
    """
    from .._correction import PEAAugmenter
    from .._distill import RidgeDistiller, SemiClippedTransformer
    from ._newplates import NewPlates

    labels = dict(ROWS + EXTRA_ROWS)
    rows = [r for r, _ in ROWS] if rows is None else list(rows)
    unknown = [r for r in rows if r not in labels]
    if unknown:
        raise ValueError(
            f"unknown benchmark row(s) {unknown}; choose from {', '.join(labels)}."
        )

    def semiclipped(**params):
        def make(seed):
            return SemiClippedTransformer(
                control_label="control", max_iter=max_iter, random_state=seed,
                verbose=verbose, **params,
            )
        return make

    factories = {
        "raw": lambda: "raw",
        "pca": lambda: lambda seed: _PCAOnly(256, seed),
        "kd": lambda: semiclipped(loss="kd"),
        "clip": lambda: semiclipped(loss="clip"),
        "siglip": lambda: semiclipped(loss="siglip"),
        "semiclipped": lambda: semiclipped(),
        "pea": lambda: (lambda seed: semiclipped(augmenter=PEAAugmenter(random_state=seed))(seed)),
        "ridge": lambda: lambda seed: RidgeDistiller(control_label="control", random_state=seed),
        "finetuned": lambda: semiclipped(train_encoder=True),
        "paper": lambda: semiclipped(recipe="paper"),
        "newplates": lambda: NewPlates(semiclipped()),
        "newplates_pea": lambda: NewPlates(lambda seed: semiclipped(
            augmenter=PEAAugmenter(random_state=seed))(seed)),
    }
    return {labels[row]: factories[row]() for row in rows}


def expected_order(table, results=None):
    """Check the orderings the paper reports; returns ``[(claim, holds, detail)]``.

    With ``results`` (the per-seed scores of :func:`run_benchmark`, 2 seeds
    or more) a claim ``A > B`` holds only when the 95 % t-interval of the
    paired per-seed differences ``recall(A) - recall(B)`` excludes 0 (above
    it); without, when the mean recall of A is above B's.
    """
    from .._core import t_interval

    def recall(label):
        row = table.get(label)
        return None if row is None else row["recall"][0]

    def claim(a, b, name):
        ra, rb = recall(a), recall(b)
        if ra is None or rb is None:
            return None
        detail = f"{ra:.3f} vs {rb:.3f}"
        if results is None or len(results.get(a, ())) < 2:
            return name, ra > rb, detail
        diff = np.array([x["recall"] for x in results[a]]) - [x["recall"] for x in results[b]]
        mean, half = t_interval(diff)
        return name, bool(mean - half > 0), f"{detail}; paired difference {mean:+.3f} ± {half:.3f}"

    labels = dict(ROWS)
    ours = labels["semiclipped"]
    pairs = [(ours, labels[o], f"Semi-Clipped > {labels[o]}") for o in ("clip", "siglip", "kd",
                                                                         "raw")]
    pairs += [(labels[o], labels["raw"], f"{labels[o]} > raw") for o in ("clip", "siglip", "kd")]
    pairs += [(labels["pea"], ours, "PEA > no PEA"),
              (labels["newplates_pea"], labels["newplates"], "PEA > no PEA on new plates"),
              (ours, labels["finetuned"], "frozen encoder + adapter > fine-tuned encoder")]
    return [c for c in (claim(a, b, name) for a, b, name in pairs) if c is not None]


def plot_benchmark(results, path, metrics=("recall", "map", "interpretability")):
    """One panel per metric, a bar per row with its 95 % interval; saved as PNG."""
    from ..plotting import plot_recall_bars

    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the figure needs matplotlib (pip install 'semiclip[plot]').") from exc
    fig = Figure(figsize=(4.2 * len(metrics), 5.2))
    axes = fig.subplots(1, len(metrics))
    titles = {"recall": "known-relationship recall", "map": "retrieval mAP",
              "interpretability": "interpretability"}
    for ax, metric in zip(axes, metrics):
        values = {name: [r[metric] for r in runs] for name, runs in results.items()}
        chance = None
        if metric == "recall":
            chance = next(iter(results.values()))[0]["recall_chance"]
        plot_recall_bars(values, ax=ax, chance=chance, ylabel=titles[metric])
        ax.set_title(titles[metric])
        for label in ax.get_xticklabels():
            label.set_rotation(60)
            label.set_horizontalalignment("right")
            label.set_fontsize(8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _run_seed(seed, *, max_iter, rows, verbose, params, progress, torch_threads):
    """One seed of every row (a worker of :func:`run_benchmark`)."""
    from .._nn import thread_budget
    from ._heldout import run_experiment

    methods = benchmark_methods(max_iter=max_iter, rows=rows, verbose=verbose)
    with thread_budget(torch_threads):
        return run_experiment(methods, seeds=(seed,), data_params=params, progress=progress)


def run_benchmark(*, seeds=3, n_perturbations=600, max_iter="auto", rows=None, verbose=0,
                  data_params=None, progress=None, n_jobs=1):
    """Run the benchmark; returns ``(results, table)``.

    ``seeds`` is a count (seeds ``0 .. seeds - 1``) or the seeds themselves.
    ``n_jobs`` seeds run at a time, each in its own process (joblib), with
    the cores shared among them. ``results`` is ``{label: [scores per seed]}``
    as from :func:`semiclip._experiments.run_experiment`, ``table`` its
    :func:`~semiclip._experiments.summarize`.
    """
    import os

    from ._heldout import summarize

    methods = benchmark_methods(max_iter=max_iter, rows=rows, verbose=verbose)
    params = {"n_perturbations": n_perturbations, **(data_params or {})}
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    kwargs = dict(max_iter=max_iter, rows=rows, verbose=verbose, params=params,
                  progress=progress)
    n_jobs = max(1, min(int(n_jobs), len(seeds)))
    if n_jobs == 1:
        per_seed = [_run_seed(s, torch_threads=None, **kwargs) for s in seeds]
    else:
        from joblib import Parallel, delayed

        threads = max(1, (os.cpu_count() or 1) // n_jobs)
        per_seed = Parallel(n_jobs=n_jobs)(
            delayed(_run_seed)(s, torch_threads=threads, **kwargs) for s in seeds
        )
    results = {name: [r for run in per_seed for r in run[name]] for name in methods}
    return results, summarize(results)
