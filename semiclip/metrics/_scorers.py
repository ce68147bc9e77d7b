"""Scorers for model selection on pipelines that end in a transformer.

``GridSearchCV(scoring=make_retrieval_scorer())`` scores each held-out fold
by the retrieval mAP of ``estimator.transform(X_test)`` with ``y_test`` as
labels. Both scorers are built with :func:`sklearn.metrics.make_scorer`, so
side inputs (``groups``, ``batch``) are routed with scikit-learn's metadata
routing: ``scorer.set_score_request(groups=True)`` once
``sklearn.set_config(enable_metadata_routing=True)``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .._core import control_mask
from ._cross_modal import cross_modal_retrieval
from ._map import mean_average_precision
from ._recall import known_relationship_recall
from ._rsa import representational_similarity

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence

    from numpy.typing import ArrayLike


def _map_score(y_true, embedding, *, groups=None, distance="cosine", control_label=None):
    if control_label is not None and not control_mask(y_true, control_label).any():
        control_label = None  # a CV fold without controls (e.g. GroupKFold) is fine
    result = mean_average_precision(
        embedding, y_true, groups=groups, distance=distance, control_label=control_label,
        n_bootstrap=0,
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
        n_bootstrap=0,
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


def _cross_modal_score(y_true, embedding, *, keys=None, teacher, teacher_keys, top_k,
                       distance, control_label):
    result = cross_modal_retrieval(
        embedding, y_true if keys is None else keys, teacher, teacher_keys,
        top_k=(1,) if top_k is None else (top_k,), distance=distance,
        control_label=control_label, n_bootstrap=0,
    )
    return result.mrr if top_k is None else result.top_k[top_k]


def _rsa_score(y_true, embedding, *, keys=None, teacher, teacher_keys, method, distance,
               control_label):
    result = representational_similarity(
        embedding, y_true if keys is None else keys, teacher, teacher_keys, method=method,
        distance=distance, control_label=control_label, n_bootstrap=0,
    )
    return result.correlation


def make_cross_modal_scorer(teacher: Any, *, teacher_keys: ArrayLike | None = None,
                            metric: str = "mrr", distance: str = "cosine",
                            control_label: Any = None) -> Callable[..., float]:
    """Scorer: cross-modal retrieval of the teacher by the transformed held-out samples.

    The scorer calls ``estimator.transform(X)`` and returns
    :func:`cross_modal_retrieval` of the result against ``teacher``, the keys
    being ``y`` (or a routed ``keys``); greater is better. The teacher
    candidates are the teacher keys present in the fold, so a fold is scored
    among its own held-out keys.

    Parameters
    ----------
    teacher : ImageBank or array-like of shape (n_teacher, n_features)
        Teacher embeddings (see :func:`cross_modal_retrieval`).
    teacher_keys : array-like of shape (n_teacher,), default=None
        Key of each teacher row; only with an array ``teacher``.
    metric : str, default="mrr"
        ``"mrr"`` or ``"top<k>"`` (e.g. ``"top5"``: top-5 accuracy).
    distance : {"cosine", "correlation", "euclidean"}, default="cosine"
        Similarity used to rank.
    control_label : object, default=None
        Key of control rows, dropped on both sides.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, **metadata)``. With metadata routing
        enabled, ``scorer.set_score_request(keys=True)`` takes the keys from a
        ``keys`` passed to ``GridSearchCV.fit`` instead of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from semiclip.metrics import make_cross_modal_scorer
    >>> rng = np.random.default_rng(0)
    >>> teacher = rng.normal(size=(8, 3))
    >>> y = np.repeat(np.arange(8), 2)
    >>> X = np.hstack([teacher[y], 0.01 * rng.normal(size=(16, 2))])
    >>> scorer = make_cross_modal_scorer(teacher, teacher_keys=np.arange(8))
    >>> round(scorer(PCA(n_components=3).fit(X), X, y), 2) <= 1.0
    True
    """
    from sklearn.metrics import make_scorer

    found = re.fullmatch(r"top([1-9][0-9]*)", metric) if isinstance(metric, str) else None
    if metric != "mrr" and found is None:
        raise ValueError(
            f"metric must be 'mrr' or 'top<k>' (e.g. 'top1', 'top5'); got {metric!r}."
        )
    return make_scorer(
        _cross_modal_score,
        response_method=("transform",),
        teacher=teacher,
        teacher_keys=teacher_keys,
        top_k=None if found is None else int(found.group(1)),
        distance=distance,
        control_label=control_label,
    )


def make_rsa_scorer(teacher: Any, *, teacher_keys: ArrayLike | None = None,
                    method: str = "spearman", distance: str = "cosine",
                    control_label: Any = None) -> Callable[..., float]:
    """Scorer: representational similarity of the transformed held-out samples.

    The scorer calls ``estimator.transform(X)`` and returns the correlation of
    :func:`representational_similarity` against ``teacher``, the keys being
    ``y`` (or a routed ``keys``); greater is better.

    Parameters
    ----------
    teacher : ImageBank or array-like of shape (n_teacher, n_teacher_features)
        Teacher embeddings.
    teacher_keys : array-like of shape (n_teacher,), default=None
        Key of each teacher row; only with an array ``teacher``.
    method : {"spearman", "pearson"}, default="spearman"
        Correlation of the pair similarities.
    distance : {"cosine", "correlation", "euclidean"}, default="cosine"
        Similarity within each side.
    control_label : object, default=None
        Key of control rows, dropped on both sides.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, **metadata)``; see
        :func:`make_cross_modal_scorer` for routing ``keys``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from semiclip.metrics import make_rsa_scorer
    >>> rng = np.random.default_rng(0)
    >>> teacher = rng.normal(size=(8, 3))
    >>> y = np.repeat(np.arange(8), 2)
    >>> X = teacher[y] + 0.01 * rng.normal(size=(16, 3))
    >>> scorer = make_rsa_scorer(teacher, teacher_keys=np.arange(8))
    >>> bool(scorer(PCA(n_components=3).fit(X), X, y) > 0.9)
    True
    """
    from sklearn.metrics import make_scorer

    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson'; got {method!r}.")
    return make_scorer(
        _rsa_score,
        response_method=("transform",),
        teacher=teacher,
        teacher_keys=teacher_keys,
        method=method,
        distance=distance,
        control_label=control_label,
    )
