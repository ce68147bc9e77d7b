"""Held-out scores of the methods on the settings of :mod:`._settings`, over seeds.

Every row is fitted on the training keys of a setting and scored on its
held-out keys: known-relationship recall per database, replicate mAP
(where a key has several profiles), representational similarity with the
teacher (RSA: Spearman correlation of the keys' pairwise cosine
similarities, student vs teacher), cross-modal retrieval of the teacher
(MRR: each held-out key's mean embedding ranks the held-out teacher
centroids) and interpretability. Raw transcriptomics lives in another space
than the teacher: it has an RSA but no MRR.

The table gives the mean over seeds with a 95 % t-interval, and for every
row its paired per-seed difference from the ridge baseline with its
interval: a row "beats ridge" only where that interval excludes 0.
"""

import time
import warnings

import numpy as np

from .._core import t_interval

__all__ = [
    "REAL_ROWS",
    "cell",
    "paired_differences",
    "real_methods",
    "real_table",
    "recall_metrics",
    "run_real",
    "score_setting",
]

#: (id, row label, SemiClippedTransformer parameters or None) of the real-data benchmark
REAL_ROWS = (
    ("raw", "raw transcriptomics", None),
    ("ridge", "ridge distillation baseline", None),
    ("ridge1", "ridge, alpha=1 (before alpha='auto')", None),
    ("semiclipped", "Semi-Clipped, defaults", {}),
    ("legacy", "Semi-Clipped, defaults before the ridge start",
     {"init": "random", "anchor_weight": 0.0, "refit": False}),
    ("anchor0", "Semi-Clipped, anchor_weight=0", {"anchor_weight": 0.0}),
    ("anchor3", "Semi-Clipped, anchor_weight=3", {"anchor_weight": 3.0}),
    # the anchored fine-tune run to convergence, no held-out epoch choice: the trade's middle
    ("anchor3free", "Semi-Clipped, anchor_weight=3, early_stopping=False",
     {"anchor_weight": 3.0, "early_stopping": False}),
    ("anchor10free", "Semi-Clipped, anchor_weight=10, early_stopping=False",
     {"early_stopping": False}),
    ("structure", "Semi-Clipped, structure_weight='auto'", {"structure_weight": "auto"}),
    ("structure10", "Semi-Clipped, structure_weight=10", {"structure_weight": 10.0}),
    ("preservation", "Semi-Clipped, preservation_weight=1", {"preservation_weight": 1.0}),
    ("soft", "Semi-Clipped, loss='soft_infonce'", {"loss": "soft_infonce"}),
    ("paper", "Semi-Clipped, recipe='paper'", {"recipe": "paper"}),
)
BASELINE = "ridge distillation baseline"


def score_setting(Z, setting):
    """The held-out scores of embeddings ``Z`` of ``setting.X_test`` (a dict of floats)."""
    from ..metrics import (
        cross_modal_retrieval,
        interpretability_score,
        known_relationship_recall,
        mean_average_precision,
        representational_similarity,
    )

    te = setting.test
    y, b, ctl = setting.y[te], setting.batch[te], setting.control_label
    trt = np.ones(y.size, bool) if ctl is None else y != ctl
    Z = np.asarray(Z, dtype=np.float64)
    scores = {}
    for name, pairs in setting.relationships.items():
        res = known_relationship_recall(
            Z, y, relationships=pairs, batch=None if ctl is None else b, control_label=ctl,
            normalize=None if ctl is None else "center_scale", n_bootstrap=0)
        scores[f"recall {name}"] = res.recall
        scores[f"recall {name} chance"] = res.chance
        scores[f"recall {name} pairs"] = res.n_pairs
    if setting.replicates:
        scores["map"] = mean_average_precision(Z[trt], y[trt], groups=b[trt], n_bootstrap=0).map
    bank = setting.image_bank
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # raw transcriptomics: no cross-modal space
        scores["rsa"] = representational_similarity(Z[trt], y[trt], bank, n_bootstrap=0).correlation
        if Z.shape[1] == bank.n_dims:
            cm = cross_modal_retrieval(Z[trt], y[trt], bank, top_k=(1,), n_bootstrap=0)
            scores["mrr"], scores["mrr chance"] = cm.mrr, cm.mrr_chance
    scores["interpretability"] = interpretability_score(
        Z, setting.X_test, batch=None if ctl is None else b, control_label=ctl, y=y,
        random_state=0).score
    return scores


def real_methods(rows=None, max_iter="auto"):
    """``{label: "raw" or factory(seed, control_label)}`` of the rows (all of :data:`REAL_ROWS`)."""
    from .._distill import RidgeDistiller, SemiClippedTransformer

    spec = {r: (label, params) for r, label, params in REAL_ROWS}
    rows = list(spec) if rows is None else list(rows)
    unknown = [r for r in rows if r not in spec]
    if unknown:
        raise ValueError(f"unknown real-data row(s) {unknown}; choose from {', '.join(spec)}.")

    def semiclipped(params):
        return lambda seed, ctl: SemiClippedTransformer(
            control_label=ctl, max_iter=max_iter, random_state=seed, **params)

    out = {}
    for r in rows:
        label, params = spec[r]
        if r == "raw":
            out[label] = "raw"
        elif r == "ridge":
            out[label] = lambda seed, ctl: RidgeDistiller(control_label=ctl, random_state=seed)
        elif r == "ridge1":
            out[label] = lambda seed, ctl: RidgeDistiller(control_label=ctl, alpha=1.0,
                                                          random_state=seed)
        else:
            out[label] = semiclipped(params)
    return out


def run_real(setting_fn, methods, *, seeds=(0, 1, 2, 3, 4), progress=None):
    """Every method on every seed of a setting: ``{label: [scores per seed]}``."""
    from sklearn.exceptions import ConvergenceWarning

    from ..exceptions import GeneralizationWarning

    results = {name: [] for name in methods}
    for seed in seeds:
        setting = setting_fn(seed)
        tr = setting.train
        for name, method in methods.items():
            start = time.perf_counter()
            report = None
            if isinstance(method, str):
                Z = setting.X_test
            else:
                est = method(seed, setting.control_label)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", GeneralizationWarning)
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    est.fit(setting.X_train, setting.y[tr], image_bank=setting.image_bank)
                    Z = est.transform(setting.X_test)
                report = getattr(est, "validation_report_", None)
                warned = any(issubclass(w.category, GeneralizationWarning) for w in caught)
            scores = score_setting(Z, setting)
            scores["fit_seconds"] = time.perf_counter() - start
            if report is not None:
                scores["warned"] = float(warned)
                if "structure_weight_search" in report:
                    scores["chosen structure_weight"] = est.training_params_["structure_weight"]
            params = {} if isinstance(method, str) else getattr(est, "training_params_", {})
            if params.get("selected_epoch") is not None:  # issue 19: what the defaults chose
                scores["selected epoch"] = float(params["selected_epoch"])
                scores["ridge relative alpha"] = float(params.get("ridge_alpha_relative", np.nan))
            results[name].append(scores)
            if progress is not None:
                progress(name, seed, scores)
    return results


def paired_differences(results, metric, baseline=BASELINE):
    """``{label: (mean, half-width)}`` of the per-seed differences ``row - baseline``."""
    base = [r.get(metric, np.nan) for r in results[baseline]]
    out = {}
    for name, runs in results.items():
        diff = np.array([r.get(metric, np.nan) for r in runs]) - np.array(base)
        out[name] = t_interval(diff) if np.all(np.isfinite(diff)) else (np.nan, np.nan)
    return out


def recall_metrics(scores):
    """The recall columns of one run's scores (``"recall <database>"``), in order."""
    return [m for m in scores if m.startswith("recall ") and m.count(" ") == 1]


def cell(values):
    """``"mean ± half-width"`` of a 95 % t-interval (the mean alone for one value; "-" none)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    mean, half = t_interval(values)
    return f"{mean:.3f}" if not np.isfinite(half) else f"{mean:.3f} ± {half:.3f}"


def _diff_cell(mean, half):
    if not np.isfinite(mean):
        return "-"
    if not np.isfinite(half):
        return f"{mean:+.3f}"
    mark = " (>)" if mean - half > 0 else " (<)" if mean + half < 0 else ""
    return f"{mean:+.3f} ± {half:.3f}{mark}"


def real_table(results, metrics=None, differences=None):
    """A Markdown table: mean ± 95 % t-interval over seeds, and paired differences from ridge.

    ``(>)`` / ``(<)`` mark a paired difference whose interval excludes 0;
    ``warned`` counts the seeds whose fit raised a
    :class:`~semiclip.GeneralizationWarning`.
    """
    seen = {m for runs in results.values() for m in runs[0]}
    if metrics is None:
        first = next(iter(results.values()))[0]
        metrics = recall_metrics(first)
        metrics += [m for m in ("map", "rsa", "mrr", "interpretability") if m in seen]
    if differences is None:  # the first database's recall, mAP, RSA and MRR (issue 19)
        differences = [*recall_metrics(metrics)[:1],
                       *[m for m in ("map", "rsa", "mrr") if m in metrics]]
    diffs = {m: paired_differences(results, m) for m in differences if BASELINE in results}
    warned = any("warned" in r for runs in results.values() for r in runs)
    head = ["method", *metrics, *(f"{m} - ridge" for m in diffs), *(["warned"] * warned),
            "fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in results.items():
        cells = [cell([r.get(m, np.nan) for r in runs]) for m in metrics]
        cells += [_diff_cell(*diffs[m][name]) for m in diffs]
        if warned:
            n = sum(r.get("warned", 0) for r in runs)
            cells.append(f"{n:.0f}/{len(runs)}" if "warned" in runs[0] else "-")
        cells.append(f"{np.mean([r['fit_seconds'] for r in runs]):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    chance = {}
    for m in metrics:
        runs = next((r for r in results.values() if f"{m} chance" in r[0]), None)
        if runs is not None:
            chance[m] = np.mean([r[f"{m} chance"] for r in runs])
    if chance:
        lines.append("")
        lines.append("Chance: " + ", ".join(f"{m} {v:.3f}" for m, v in chance.items()) + ".")
    return "\n".join(lines)
