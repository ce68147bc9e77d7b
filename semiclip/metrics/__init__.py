"""Evaluation metrics for perturbation embeddings (any embedding, not only ours).

- :func:`known_relationship_recall`: EFAAR recall of known gene-gene
  relationships;
- :func:`mean_average_precision`: retrieval mAP with the convention of the
  ``copairs`` package (tied similarities ranked at chance);
- :func:`interpretability_score`: how well a linear decoder recovers gene
  expression from the embedding;
- :func:`make_retrieval_scorer`, :func:`make_recall_scorer`: scorers for
  :class:`~sklearn.model_selection.GridSearchCV` on pipelines ending in a
  transformer.
"""

from ._interpretability import InterpretabilityResult, interpretability_score
from ._map import MAPResult, mean_average_precision
from ._recall import RecallResult, known_relationship_recall
from ._scorers import make_recall_scorer, make_retrieval_scorer

__all__ = [
    "InterpretabilityResult",
    "MAPResult",
    "RecallResult",
    "interpretability_score",
    "known_relationship_recall",
    "make_recall_scorer",
    "make_retrieval_scorer",
    "mean_average_precision",
]
