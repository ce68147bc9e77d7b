"""Scorers for model selection on pipelines that end in a transformer.

``GridSearchCV(scoring=make_retrieval_scorer())`` scores each held-out fold
by the retrieval mAP of ``estimator.transform(X_test)`` with ``y_test`` as
labels. Both scorers are built with :func:`sklearn.metrics.make_scorer`, so
side inputs (``groups``, ``batch``) are routed with scikit-learn's metadata
routing: ``scorer.set_score_request(groups=True)`` once
``sklearn.set_config(enable_metadata_routing=True)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._validation import control_mask
from ._map import mean_average_precision
from ._recall import known_relationship_recall

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence

    from numpy.typing import ArrayLike


def _map_score(y_true, embedding, *, groups=None, distance="cosine", control_label=None):
    if control_label is not None and not control_mask(y_true, control_label).any():
        control_label = None  # a CV fold without controls (e.g. GroupKFold) is fine
    result = mean_average_precision(
        embedding, y_true, groups=groups, distance=distance, control_label=control_label
    )
    return result.map


def _recall_score(y_true, embedding, *, batch=None, relationships, control_label=None,
                  normalize=None, thresholds=(0.05, 0.95), data_dir=None):
    result = known_relationship_recall(
        embedding,
        y_true,
        relationships=relationships,
        batch=batch,
        control_label=control_label,
        normalize=normalize,
        thresholds=thresholds,
        data_dir=data_dir,
    )
    return result.recall


def make_retrieval_scorer(*, distance: str = "cosine", control_label: Any = None
) -> Callable[..., float]:
    """Scorer: retrieval mAP of the transformed held-out samples.

    The scorer calls ``estimator.transform(X)`` (the estimator is usually a
    :class:`~sklearn.pipeline.Pipeline` ending in a transformer) and returns
    :func:`mean_average_precision` of the result with ``y`` as labels;
    greater is better.

    Parameters
    ----------
    distance : {"cosine", "correlation", "euclidean"}, default="cosine"
        Similarity used for ranking.
    control_label : object, default=None
        Label of control samples (never queries, kept as negatives).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, **metadata)``. To require positives from
        another group (plate), enable metadata routing and request it:
        ``scorer.set_score_request(groups=True)``; ``groups`` passed to
        ``GridSearchCV.fit`` then reaches it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from semiclip.metrics import make_retrieval_scorer
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(10), 6)
    >>> X = rng.normal(size=(10, 8))[y] + 0.5 * rng.normal(size=(60, 8))
    >>> search = GridSearchCV(PCA(), {"n_components": [2, 6]},
    ...                       scoring=make_retrieval_scorer(), cv=3).fit(X, y)
    >>> search.best_params_
    {'n_components': 6}
    """
    from sklearn.metrics import make_scorer

    return make_scorer(
        _map_score,
        response_method=("transform",),
        distance=distance,
        control_label=control_label,
    )


def make_recall_scorer(
    relationships: str | os.PathLike[str] | ArrayLike | Mapping[str, Any] | Sequence[Any], *,
    control_label: Any = None, normalize: str | None = None,
    thresholds: tuple[float, float] = (0.05, 0.95), data_dir: str | os.PathLike[str] | None = None,
) -> Callable[..., float]:
    """Scorer: known-relationship recall of the transformed held-out samples.

    The scorer calls ``estimator.transform(X)`` and returns
    :func:`known_relationship_recall` of the result with ``y`` as the genes;
    greater is better.

    Parameters
    ----------
    relationships : str, path-like or array-like of shape (n_pairs, 2)
        Source of known relationships (see :func:`known_relationship_recall`).
    control_label : object, default=None
        Value of ``y`` marking control samples (excluded from the gene means;
        needed when ``normalize`` is set).
    normalize : {"tvn", "center", "center_scale"} or None, default=None
        Batch correction on the controls of the held-out fold before
        aggregation. With metadata routing, ``scorer.set_score_request(batch=True)``
        routes ``batch`` to it.
    thresholds : tuple of two floats, default=(0.05, 0.95)
        Percentile thresholds.
    data_dir : str or path-like, default=None
        Directory holding the database files for source names.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, **metadata)``.
    """
    from sklearn.metrics import make_scorer

    return make_scorer(
        _recall_score,
        response_method=("transform",),
        relationships=relationships,
        control_label=control_label,
        normalize=normalize,
        thresholds=tuple(thresholds),
        data_dir=data_dir,
    )
