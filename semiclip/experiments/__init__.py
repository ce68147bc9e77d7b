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

__all__ = [
    "BASELINE",
    "EVAL_NORMALIZE",
    "EXTRA_ROWS",
    "FULL",
    "QUICK",
    "ROWS",
    "benchmark_methods",
    "demo_methods",
    "expected_order",
    "markdown_table",
    "plot_benchmark",
    "prepare_heldout",
    "run_benchmark",
    "run_experiment",
    "run_heldout",
    "score_embedding",
    "summarize",
]
