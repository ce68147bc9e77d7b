"""Scorers for model selection on pipelines that end in a transformer.

``GridSearchCV(scoring=make_retrieval_scorer())`` scores each held-out fold
by the retrieval mAP of ``estimator.transform(X_test)`` with ``y_test`` as
labels. Side inputs (``batch``, ``keys``, ``groups``) are routed with
scikit-learn's metadata routing: once
``sklearn.set_config(enable_metadata_routing=True)``,
``scorer.set_score_request(batch=True)`` makes ``batch`` passed to
``GridSearchCV.fit`` reach the scorer, which hands it on to
``estimator.transform`` when the estimator asks for it (a
:class:`~semiclip.ControlNormalizer` per plate in a
:class:`~sklearn.pipeline.Pipeline`) and uses it for scoring where the metric
takes it.
"""

from __future__ import annotations

import inspect
import re
import warnings
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

# A fold score resting on fewer pairs (recall) or keys (other scores) than this warns.
MIN_SCORED = 20


def _transform_params(estimator, params):
    """The routed metadata that ``estimator.transform`` consumes."""
    if not params:
        return {}
    from sklearn import get_config

    if get_config().get("enable_metadata_routing", False):
        from sklearn.utils.metadata_routing import get_routing_for_object

        routing = get_routing_for_object(estimator)
        return {k: params[k] for k in routing.consumes("transform", set(params))}
    try:  # without routing: what a plain transform(X, *, batch=...) names
        names = inspect.signature(estimator.transform).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in params.items() if k in names}


class _TransformScorer:
    """``scorer(estimator, X, y, **metadata)``: a metric of ``estimator.transform(X)``.

    Metadata requested with :meth:`set_score_request` reaches the scorer; the
    part the estimator's ``transform`` consumes is passed to it, and the part
    the metric takes (``metric_params``) to the metric.
    """

    def __init__(self, name, score_func, metric_params, kwargs):
        self._name = name
        self._score_func = score_func
        self._metric_params = tuple(metric_params)
        self._kwargs = kwargs
        self._request = None

    def __call__(self, estimator, X, y_true, **params):
        Xt = estimator.transform(X, **_transform_params(estimator, params))
        metric = {k: v for k, v in params.items() if k in self._metric_params}
        score, n, unit = self._score_func(y_true, Xt, **self._kwargs, **metric)
        if n < MIN_SCORED:
            warnings.warn(
                f"{self._name}: this score rests on {n} {unit} (fewer than {MIN_SCORED}); "
                "it is too noisy to choose between models. Use fewer folds or more "
                "perturbations per fold.", UserWarning, stacklevel=2)
        return score

    def __repr__(self):
        return f"{self._name}()"

    def set_score_request(self, **kwargs: bool | str | None) -> _TransformScorer:
        """Request metadata for the scorer (scikit-learn metadata routing).

        Parameters
        ----------
        **kwargs : bool, str or None
            ``param=True`` to receive ``param``, ``False`` to not, or an alias.

        Returns
        -------
        self : scorer
            The scorer, with its request updated.
        """
        from sklearn import get_config

        if not get_config().get("enable_metadata_routing", False):
            raise RuntimeError(
                "set_score_request needs metadata routing: call "
                "sklearn.set_config(enable_metadata_routing=True) first.")
        unknown = sorted(k for k, v in kwargs.items()
                         if k not in self._accepted() and v not in (False, None))
        if unknown:
            raise TypeError(f"{self._name} takes no metadata {unknown}; it accepts "
                            f"{sorted(self._accepted())}.")
        request = self.get_metadata_routing()
        for param, alias in kwargs.items():
            request.score.add_request(param=param, alias=alias)
        self._request = request
        self._metric_params = tuple(p for p in self._metric_params if kwargs.get(p) is not False)
        return self

    def _accepted(self):
        return {"batch", *self._metric_params}

    def get_metadata_routing(self):
        """The scorer's metadata request (see :meth:`set_score_request`).

        Returns
        -------
        request : sklearn.utils.metadata_routing.MetadataRequest
            What the ``score`` call requests.
        """
        from sklearn.utils.metadata_routing import MetadataRequest

        if self._request is not None:
            return self._request
        request = MetadataRequest(owner=self._name)
        for param in sorted(self._accepted()):
            request.score.add_request(param=param, alias=None)
        return request


def _map_score(y_true, embedding, *, groups=None, distance="cosine", control_label=None):
    if control_label is not None and not control_mask(y_true, control_label).any():
        control_label = None  # a CV fold without controls (e.g. GroupKFold) is fine
    result = mean_average_precision(
        embedding, y_true, groups=groups, distance=distance, control_label=control_label,
        n_bootstrap=0,
    )
    return result.map, len(result.labels), "labels"


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
    return result.recall, result.n_pairs, "known pairs"


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
    >>> y = np.repeat(np.arange(60), 3)
    >>> X = rng.normal(size=(60, 8))[y] + 0.5 * rng.normal(size=(180, 8))
    >>> search = GridSearchCV(PCA(), {"n_components": [2, 6]},
    ...                       scoring=make_retrieval_scorer(), cv=3).fit(X, y)
    >>> search.best_params_
    {'n_components': 6}
    """
    return _TransformScorer(
        "make_retrieval_scorer", _map_score, ("groups",), dict(
        distance=distance,
        control_label=control_label,
    ))


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
    return _TransformScorer(
        "make_recall_scorer", _recall_score, ("batch",), dict(
        relationships=relationships,
        control_label=control_label,
        normalize=normalize,
        thresholds=tuple(thresholds),
        data_dir=data_dir,
    ))


def _cross_modal_score(y_true, embedding, *, keys=None, teacher, teacher_keys, top_k,
                       distance, control_label):
    result = cross_modal_retrieval(
        embedding, y_true if keys is None else keys, teacher, teacher_keys,
        top_k=(1,) if top_k is None else (top_k,), distance=distance,
        control_label=control_label, n_bootstrap=0,
    )
    return (result.mrr if top_k is None else result.top_k[top_k]), result.n_keys, "keys"


def _rsa_score(y_true, embedding, *, keys=None, teacher, teacher_keys, method, distance,
               control_label):
    result = representational_similarity(
        embedding, y_true if keys is None else keys, teacher, teacher_keys, method=method,
        distance=distance, control_label=control_label, n_bootstrap=0,
    )
    return result.correlation, result.n_keys, "keys"


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
    >>> teacher = rng.normal(size=(24, 3))
    >>> y = np.repeat(np.arange(24), 2)
    >>> X = np.hstack([teacher[y], 0.01 * rng.normal(size=(48, 2))])
    >>> scorer = make_cross_modal_scorer(teacher, teacher_keys=np.arange(24))
    >>> round(scorer(PCA(n_components=3).fit(X), X, y), 2) <= 1.0
    True
    """
    found = re.fullmatch(r"top([1-9][0-9]*)", metric) if isinstance(metric, str) else None
    if metric != "mrr" and found is None:
        raise ValueError(
            f"metric must be 'mrr' or 'top<k>' (e.g. 'top1', 'top5'); got {metric!r}."
        )
    return _TransformScorer(
        "make_cross_modal_scorer", _cross_modal_score, ("keys",), dict(
        teacher=teacher,
        teacher_keys=teacher_keys,
        top_k=None if found is None else int(found.group(1)),
        distance=distance,
        control_label=control_label,
    ))


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
    >>> teacher = rng.normal(size=(24, 3))
    >>> y = np.repeat(np.arange(24), 2)
    >>> X = teacher[y] + 0.01 * rng.normal(size=(48, 3))
    >>> scorer = make_rsa_scorer(teacher, teacher_keys=np.arange(24))
    >>> bool(scorer(PCA(n_components=3).fit(X), X, y) > 0.9)
    True
    """
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson'; got {method!r}.")
    return _TransformScorer(
        "make_rsa_scorer", _rsa_score, ("keys",), dict(
        teacher=teacher,
        teacher_keys=teacher_keys,
        method=method,
        distance=distance,
        control_label=control_label,
    ))
