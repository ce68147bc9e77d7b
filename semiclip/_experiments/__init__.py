"""Held-out-perturbation experiments: the engine of ``semiclip demo`` and ``semiclip benchmark``.

Split the perturbations (keys) into training and held-out ones, correct
the transcriptomics on the training controls, fit each method on the
training keys only and score the held-out ones (:func:`run_heldout`); the
benchmark rows and the paper's orderings (:func:`benchmark_methods`,
:func:`expected_order`). No command-line code here: see :mod:`semiclip.cli`.
"""

from ._benchmark import (
    BASELINE,
    EXTRA_ROWS,
    FULL,
    QUICK,
    ROWS,
    benchmark_methods,
    expected_order,
    plot_benchmark,
    run_benchmark,
)
from ._heldout import (
    EVAL_NORMALIZE,
    demo_methods,
    markdown_table,
    prepare_heldout,
    run_experiment,
    run_heldout,
    score_embedding,
    summarize,
)
from ._newplates import N_TRAIN_PLATES, CorrectedOnNewPlates, NewPlates, prepare_new_plates
from ._realbench import (
    REAL_ROWS,
    paired_differences,
    real_methods,
    real_table,
    recall_metrics,
    run_real,
)
from ._settings import (
    REAL_SETTINGS,
    SETTING_TITLES,
    consensus,
    demo_setting,
    graph_teacher,
    ta_orf_knowledge,
)
from ._tradeoff import PRESERVATION_WEIGHTS, plot_tradeoff, run_tradeoff, tradeoff_table

__all__ = [
    "BASELINE",
    "N_TRAIN_PLATES",
    "CorrectedOnNewPlates",
    "NewPlates",
    "EVAL_NORMALIZE",
    "EXTRA_ROWS",
    "FULL",
    "PRESERVATION_WEIGHTS",
    "QUICK",
    "REAL_ROWS",
    "REAL_SETTINGS",
    "ROWS",
    "SETTING_TITLES",
    "benchmark_methods",
    "consensus",
    "demo_methods",
    "demo_setting",
    "expected_order",
    "graph_teacher",
    "markdown_table",
    "paired_differences",
    "plot_benchmark",
    "plot_tradeoff",
    "prepare_new_plates",
    "prepare_heldout",
    "real_methods",
    "real_table",
    "recall_metrics",
    "run_benchmark",
    "run_experiment",
    "run_heldout",
    "run_real",
    "run_tradeoff",
    "score_embedding",
    "summarize",
    "ta_orf_knowledge",
    "tradeoff_table",
]
