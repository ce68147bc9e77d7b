"""Held-out-perturbation experiments on synthetic weakly paired data.

The engine behind ``semiclip demo`` and ``semiclip benchmark``: split the
perturbations (keys) into training and held-out ones, batch-correct the
transcriptomics on the training controls, fit each method on the training
keys only, embed the held-out perturbations (and all controls) and score
them with the package's metrics.
"""

import time
import warnings

import numpy as np

from .._core import t_interval

__all__ = [
    "EVAL_NORMALIZE",
    "demo_methods",
    "markdown_table",
    "prepare_heldout",
    "run_experiment",
    "run_heldout",
    "score_embedding",
    "summarize",
]

#: how embeddings are batch-corrected before recall and mAP. TVN on a
#: learned 128-d embedding with a few dozen controls per plate amplifies
#: estimation noise (see the ControlNormalizer docs), so the demo uses the
#: per-plate center-scale on controls.
EVAL_NORMALIZE = "center_scale"


def score_embedding(Z, X_ref, y, batch, relationships, control_label, eval_normalize):
    """Held-out recall (and its chance), replicate mAP and interpretability of embeddings ``Z``."""
    from ..metrics import interpretability_score, known_relationship_recall, mean_average_precision

    rec = known_relationship_recall(
        Z, y, relationships=relationships, batch=batch, control_label=control_label,
        normalize=eval_normalize, n_bootstrap=0,
    )
    trt = y != control_label
    mp = mean_average_precision(Z[trt], y[trt], groups=batch[trt], n_bootstrap=0)
    interp = interpretability_score(
        Z, X_ref, batch=batch, control_label=control_label, y=y, random_state=0
    )
    return {
        "recall": rec.recall,
        "recall_chance": rec.chance,
        "map": mp.map,
        "interpretability": interp.score,
    }


def prepare_heldout(data, *, seed=0, test_size=1 / 3):
    """Split ``data`` by key and TVN-correct it on the training controls.

    Shared by every method of one seed (the split and the correction do not
    depend on the method). Returns ``(train_mask, test_mask, X_train_tvn,
    X_test_tvn)``.
    """
    from .._correction import ControlNormalizer
    from ..datasets import split_by_key

    ctl = data.control_label
    tr, te = split_by_key(data.y, test_size=test_size, control_label=ctl, random_state=seed)
    norm = ControlNormalizer("tvn", control_label=ctl, basis="feature")
    with warnings.catch_warnings():
        # fewer controls than genes: expected here, handled (null components unscaled)
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        Xtr = norm.fit_transform(data.X[tr], data.y[tr], batch=data.batch[tr])
    Xte = norm.transform(data.X[te], batch=data.batch[te])
    return tr, te, Xtr, Xte


def run_heldout(method, data, *, seed=0, test_size=1 / 3, eval_normalize=EVAL_NORMALIZE,
                prepared=None):
    """Fit ``method`` on the training keys of ``data`` and score the held-out keys.

    Parameters
    ----------
    method : "raw" or callable
        ``"raw"`` scores the batch-corrected transcriptomics itself. A
        callable ``method(seed)`` returns an unfitted estimator with the
        ``fit(X, y, *, image_bank[, batch])`` / ``transform`` interface;
        estimators with an ``augmenter`` receive *uncorrected* X and the
        batches, all others the TVN-corrected X.
    data : Bunch from :func:`~semiclip.datasets.make_weakly_paired`
    seed : int
        Seeds the split and the method.
    prepared : tuple, optional
        :func:`prepare_heldout` output for this ``data``/``seed``/``test_size``
        (computed when omitted).

    Returns
    -------
    dict
        ``recall``, ``recall_chance``, ``map``, ``interpretability``,
        ``fit_seconds``.
    """
    ctl = data.control_label
    if prepared is None:
        prepared = prepare_heldout(data, seed=seed, test_size=test_size)
    tr, te, Xtr, Xte = prepared
    from sklearn.exceptions import ConvergenceWarning

    X, y, b = data.X, data.y, data.batch
    start = time.perf_counter()
    if isinstance(method, str) and method == "raw":
        Z = Xte
    else:
        est = method(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message=".*zero variance in the controls")
            if getattr(est, "augmenter", None) is not None:
                est.fit(X[tr], y[tr], image_bank=data.image_bank, batch=b[tr])
                Z = est.transform(X[te], batch=b[te])
            else:
                est.fit(Xtr, y[tr], image_bank=data.image_bank)
                Z = est.transform(Xte)
    seconds = time.perf_counter() - start
    scores = score_embedding(
        np.asarray(Z), Xte, y[te], b[te], data.relationships, ctl, eval_normalize
    )
    scores["fit_seconds"] = seconds
    return scores


def demo_methods(max_iter="auto"):
    """The three rows of ``semiclip demo``: raw, Semi-Clipped, Semi-Clipped + PEA."""
    from .._correction import PEAAugmenter
    from .._distill import SemiClippedTransformer

    def semiclipped(seed):
        return SemiClippedTransformer(control_label="control", max_iter=max_iter, random_state=seed)

    def semiclipped_pea(seed):
        return SemiClippedTransformer(
            control_label="control", max_iter=max_iter, random_state=seed,
            augmenter=PEAAugmenter(random_state=seed),
        )

    return {"raw transcriptomics": "raw", "Semi-Clipped": semiclipped,
            "Semi-Clipped + PEA": semiclipped_pea}


def run_experiment(methods, *, seeds=(0, 1, 2), data_params=None, progress=None):
    """Run every method on every seed; return ``{method: [scores per seed]}``.

    Methods wrapped in :class:`~semiclip._experiments.NewPlates` are
    scored under the new-plates protocol (held-out keys on plates never
    trained on, corrected on their own controls).
    """
    from ..datasets import make_weakly_paired
    from ._newplates import NewPlates, prepare_new_plates

    data_params = dict(data_params or {})
    results = {name: [] for name in methods}
    for seed in seeds:
        data = make_weakly_paired(random_state=seed, **data_params)
        prepared = prepare_heldout(data, seed=seed)
        new = None
        if any(isinstance(m, NewPlates) for m in methods.values()):
            new = prepare_new_plates(data, seed=seed)
        for name, method in methods.items():
            split = prepared
            if isinstance(method, NewPlates):  # held-out keys on plates never trained on
                split, method = new[0], method.bind(new[1])
            scores = run_heldout(method, data, seed=seed, prepared=split)
            results[name].append(scores)
            if progress is not None:
                progress(name, seed, scores)
    return results


def summarize(results, metrics=("recall", "map", "interpretability")):
    """Mean and 95 % t-interval half-width of every metric, per method."""
    table = {}
    for name, runs in results.items():
        row = {}
        for m in metrics:
            mean, half = t_interval([r[m] for r in runs])
            row[m] = (mean, 0.0 if np.isnan(half) else half)
        row["fit_seconds"] = float(np.mean([r["fit_seconds"] for r in runs]))
        table[name] = row
    return table


def markdown_table(table, baseline=None, metrics=("recall", "map", "interpretability")):
    """Render :func:`summarize` output as a Markdown table."""
    head = "| method | " + " | ".join(metrics) + " | fit s |"
    if baseline is not None:
        head += " recall vs raw |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, row in table.items():
        cells = [f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in metrics]
        line = f"| {name} | " + " | ".join(cells) + f" | {row['fit_seconds']:.1f} |"
        if baseline is not None:
            line += f" {row['recall'][0] / table[baseline]['recall'][0]:.2f}x |"
        lines.append(line)
    return "\n".join(lines)
