"""Evaluation metrics for perturbation embeddings (any embedding, not only ours).

- :func:`known_relationship_recall`: EFAAR recall of known gene-gene
  relationships, with a bootstrap interval over the genes;
- :func:`mean_average_precision`: retrieval mAP with the convention of the
  ``copairs`` package (tied similarities ranked at chance), with a bootstrap
  interval over the labels;
- :func:`cross_modal_retrieval`: retrieval of each key's teacher by its
  student embedding (MRR, top-k accuracy, chance levels);
- :func:`representational_similarity`: RSA, the correlation of the student's
  and the teacher's pairwise similarities between keys;
- :func:`split_half_ceiling`: the split-half reproducibility of the data, the
  best score a metric can show on it (the ceiling beside chance);
- :func:`paired_difference`: paired bootstrap difference of two embeddings'
  scores on the same perturbations;
- :func:`interpretability_score`: how well a linear decoder recovers gene
  expression from the embedding;
- :func:`make_retrieval_scorer`, :func:`make_recall_scorer`,
  :func:`make_cross_modal_scorer`, :func:`make_rsa_scorer`: scorers for
  :class:`~sklearn.model_selection.GridSearchCV` on pipelines ending in a
  transformer.
"""

from ._ceiling import CeilingResult, split_half_ceiling
from ._cross_modal import CrossModalResult, cross_modal_retrieval
from ._interpretability import InterpretabilityResult, interpretability_score
from ._map import MAPResult, mean_average_precision
from ._paired import PairedDifference, paired_difference
from ._recall import RecallResult, known_relationship_recall
from ._rsa import RSAResult, representational_similarity
from ._scorers import (
    make_cross_modal_scorer,
    make_recall_scorer,
    make_retrieval_scorer,
    make_rsa_scorer,
)

__all__ = [
    "CeilingResult",
    "CrossModalResult",
    "InterpretabilityResult",
    "MAPResult",
    "PairedDifference",
    "RSAResult",
    "RecallResult",
    "cross_modal_retrieval",
    "interpretability_score",
    "known_relationship_recall",
    "make_cross_modal_scorer",
    "make_recall_scorer",
    "make_retrieval_scorer",
    "make_rsa_scorer",
    "mean_average_precision",
    "paired_difference",
    "representational_similarity",
    "split_half_ceiling",
]
