"""Recall vs interpretability over ``preservation_weight`` (``semiclip benchmark --tradeoff``).

The input-preservation term keeps the embedding's similarity structure close
to the frozen encoder's; interpretability (how well the genes can be read
back from the embedding) rises with its weight while held-out recall may
fall. :func:`run_tradeoff` fits one :class:`~semiclip.SemiClippedTransformer`
per weight and seed on a setting of :mod:`._settings` (the demo data by
default) and scores the held-out keys; :func:`tradeoff_table` marks the
weights whose mean interpretability is at least ``0.8 x`` raw's while their
mean recall is at least ``0.9 x`` the best weight's.
"""

import numpy as np

from .._core import t_interval
from ._realbench import cell, recall_metrics, run_real

__all__ = ["PRESERVATION_WEIGHTS", "plot_tradeoff", "run_tradeoff", "tradeoff_table"]

PRESERVATION_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)


def run_tradeoff(setting_fn, *, weights=PRESERVATION_WEIGHTS, seeds=(0, 1, 2), max_iter="auto",
                 progress=None):
    """``{label: [scores per seed]}``: raw transcriptomics, then one row per weight."""
    from .._distill import SemiClippedTransformer

    def factory(weight):
        return lambda seed, ctl: SemiClippedTransformer(
            control_label=ctl, preservation_weight=weight, max_iter=max_iter, random_state=seed)

    methods = {"raw transcriptomics": "raw"}
    methods.update({f"preservation_weight={w:g}": factory(w) for w in weights})
    return run_real(setting_fn, methods, seeds=seeds, progress=progress)


def _recall_metric(results):
    return recall_metrics(next(iter(results.values()))[0])[0]


def tradeoff_table(results, *, interpretability_ratio=0.8, recall_ratio=0.9):
    """Markdown table of mean ± 95 % t-interval; ``*`` marks the weights meeting both ratios."""
    recall = _recall_metric(results)
    mean = {name: {m: np.mean([r[m] for r in runs]) for m in (recall, "interpretability")}
            for name, runs in results.items()}
    raw = mean.pop("raw transcriptomics", None)
    best = max(v[recall] for v in mean.values())
    lines = [f"| row | {recall} | interpretability | meets both |", "|---|---|---|---|"]
    for name, runs in results.items():
        cells = [cell([r[m] for r in runs]) for m in (recall, "interpretability")]
        ok = ""
        if name in mean and raw is not None:
            ok = "*" if (mean[name]["interpretability"] >= interpretability_ratio
                         * raw["interpretability"] and mean[name][recall] >= recall_ratio
                         * best) else ""
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ok} |")
    lines.append("")
    lines.append(f"* : interpretability >= {interpretability_ratio} x raw and {recall} >= "
                 f"{recall_ratio} x the best weight's (means over seeds).")
    return "\n".join(lines)


def plot_tradeoff(results, path):
    """Recall against interpretability, one point per row with its 95 % intervals; a PNG."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the figure needs matplotlib (pip install 'semiclip[plot]').") from exc
    recall = _recall_metric(results)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, runs in results.items():
        x, xh = t_interval([r["interpretability"] for r in runs])
        y, yh = t_interval([r[recall] for r in runs])
        ax.errorbar(x, y, xerr=np.nan_to_num(xh), yerr=np.nan_to_num(yh), fmt="o", capsize=3)
        ax.annotate(name.replace("preservation_weight=", "w="), (x, y), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    chance = next(iter(results.values()))[0].get(f"{recall} chance")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.legend(loc="lower left")
    ax.set_xlabel("interpretability (held-out)")
    ax.set_ylabel(f"held-out {recall}")
    ax.set_title("Recall vs interpretability over preservation_weight")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
