"""2-D maps of perturbation embeddings, coloured by group."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import control_mask
from ._base import axes, fill_doc, finish

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

__all__ = ["plot_embedding_map"]


def _group_of_keys(groups, uniq, first_row, n_rows):
    """Group label of every distinct key (None where unknown)."""
    if hasattr(groups, "index") and hasattr(groups, "to_dict"):  # pandas Series key -> group
        groups = groups.to_dict()
    if isinstance(groups, dict):
        labels = [groups.get(k) for k in uniq.tolist()]
    else:
        arr = np.asarray(groups, dtype=object)
        if arr.shape != (n_rows,):
            raise ValueError(
                f"groups must be a dict {{key: group}} or one group per row of embeddings "
                f"({n_rows}); got shape {arr.shape}."
            )
        labels = arr[first_row].tolist()
    return np.array(
        [None if g is None or (isinstance(g, float) and g != g) else g for g in labels],
        dtype=object,
    )


@fill_doc
def plot_embedding_map(embeddings: ArrayLike, keys: ArrayLike, *,
                       groups: Mapping[Any, Any] | ArrayLike | None = None, method: str = "pca",
                       control_label: Any = None, max_groups: int = 10, random_state: int = 0,
                       ax: Axes | None = None, path: str | os.PathLike[str] | None = None) -> Axes:
    """2-D map of the mean embedding of every perturbation, coloured by group.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_dims)
        Embeddings (or profiles) of the samples.
    keys : array-like of shape (n_samples,)
        Perturbation of every sample; the map has one point per distinct key
        (the mean of its rows).
    groups : dict or array-like, optional
        Group of every key (e.g. its known complex): a dict / Series
        ``{key: group}``, or one group per row (the group of a key's first
        row is used). Keys without a group are grey ("other").
    method : {"pca", "umap"}, default="pca"
        Projection to 2-D. ``"umap"`` needs ``umap-learn``.
    control_label : scalar, optional
        Key of controls, left out of the map.
    max_groups : int, default=10
        Colour the ``max_groups`` largest groups; the others join "other".
    random_state : int, default=0
        Seed of the projection (PCA's solver, UMAP).
    [[ax]]
    [[path]]

    Returns
    -------
    ax : matplotlib Axes
        One scatter collection per coloured group (plus one for "other").

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.plotting import plot_embedding_map
    >>> emb = np.random.default_rng(0).normal(size=(40, 8))
    >>> keys = np.repeat(["A", "B", "C", "D", "E"], 8)
    >>> ax = plot_embedding_map(emb, keys, groups={"A": "complex 1", "B": "complex 1"})
    >>> [(c.get_label(), len(c.get_offsets())) for c in ax.collections]
    [('other', 3), ('complex 1', 2)]
    """
    E = np.asarray(embeddings, dtype=np.float64)
    keys = np.asarray(keys)
    if E.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_samples, n_dims); got shape {E.shape}.")
    if keys.shape != (E.shape[0],):
        raise ValueError(
            f"keys must have one entry per row of embeddings ({E.shape[0]}); "
            f"got shape {keys.shape}."
        )
    if method not in ("pca", "umap"):
        raise ValueError(f"method must be 'pca' or 'umap'; got {method!r}.")
    if not isinstance(max_groups, numbers.Integral) or max_groups < 1:
        raise ValueError(f"max_groups must be a positive integer; got {max_groups!r}.")
    keep = ~control_mask(keys, control_label)
    E_kept, keys_kept = E[keep], keys[keep]
    uniq, first_row, inverse = np.unique(keys_kept, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if uniq.size < 3:
        raise ValueError(f"a map needs at least 3 distinct keys; got {uniq.size}.")
    group = None
    if groups is not None:  # checked before the (possibly slow) projection
        group = _group_of_keys(groups, uniq, np.flatnonzero(keep)[first_row], E.shape[0])
    from scipy.sparse import csr_matrix

    counts = np.bincount(inverse, minlength=uniq.size)
    indicator = csr_matrix(
        (np.ones(inverse.size), (inverse, np.arange(inverse.size))), shape=(uniq.size, inverse.size)
    )
    means = np.asarray(indicator @ E_kept) / counts[:, None]
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=random_state)
        xy = pca.fit_transform(means)
        ratio = pca.explained_variance_ratio_
        axis_labels = (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})")
    else:
        try:
            import umap
        except ImportError as exc:
            raise ImportError(
                "method='umap' needs umap-learn (`pip install umap-learn`); or use method='pca'."
            ) from exc
        n_neighbors = int(min(15, uniq.size - 1))
        xy = umap.UMAP(n_components=2, n_neighbors=n_neighbors,
                       random_state=random_state).fit_transform(means)
        axis_labels = ("UMAP1", "UMAP2")

    ax = axes(ax, path, (6, 5))
    if group is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color="C0")
    else:
        known = np.array([g is not None for g in group], dtype=bool)
        text = np.array([str(g) for g in group], dtype=object)
        names, sizes = np.unique(text[known].astype(str), return_counts=True)
        shown = names[np.argsort(-sizes, kind="stable")][:max_groups]
        other = ~(known & np.isin(text.astype(str), shown))
        if other.any():
            ax.scatter(xy[other, 0], xy[other, 1], s=8, color="lightgrey", label="other")
        for i, name in enumerate(shown.tolist()):
            sel = ~other & (text == name)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=18, color=f"C{i % 10}", label=name)
        ax.legend(loc="best", fontsize="small", markerscale=1.5)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(f"{uniq.size} perturbations ({method.upper()})")
    return finish(ax, path)
