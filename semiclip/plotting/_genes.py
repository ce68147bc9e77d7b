"""Gene attributions as horizontal bars."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np

from ._base import axes, fill_doc, finish

if TYPE_CHECKING:
    import os

    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

    from ..interpret import Attributions

__all__ = ["plot_gene_attributions"]


@fill_doc
def plot_gene_attributions(scores: ArrayLike | Attributions,
                           feature_names: ArrayLike | None = None, *, top: int = 20,
                           title: str | None = None, ax: Axes | None = None,
                           path: str | os.PathLike[str] | None = None) -> Axes:
    """Horizontal bars of the ``top`` features with the largest absolute attribution.

    Parameters
    ----------
    scores : array-like of shape (n_features,) or Attributions
        One attribution per feature (gene); a pandas Series gives its index
        as names; an :class:`~semiclip.interpret.Attributions` object its
        mean over samples and its gene names. Average other 2-D
        attributions first (e.g. ``np.abs(A).mean(axis=0)``).
    feature_names : array-like of shape (n_features,), optional
        Names of the features; default the Series index, the Attributions'
        ``feature_names``, or ``"feature i"``.
    top : int, default=20
        Number of features shown, largest ``|score|`` at the top.
    title : str, optional
        Title of the axes (e.g. the perturbation or direction explained).
    [[ax]]
    [[path]]

    Returns
    -------
    ax : matplotlib Axes
        Positive scores in red, negative in blue.

    Examples
    --------
    >>> from semiclip.plotting import plot_gene_attributions
    >>> ax = plot_gene_attributions([0.5, -2.0, 1.0], ["TP53", "KRAS", "MYC"], top=2)
    >>> [t.get_text() for t in ax.get_yticklabels()]  # from the top
    ['KRAS', 'MYC']
    """
    if hasattr(scores, "feature_names") and callable(getattr(scores, "mean", None)) \
            and hasattr(scores, "values") and not hasattr(scores, "index"):  # Attributions
        if feature_names is None:
            feature_names = scores.feature_names
        scores = scores.mean()
    if feature_names is None and hasattr(scores, "index") and hasattr(scores, "to_numpy"):
        feature_names = np.asarray(scores.index)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(
            f"scores must be 1-D (one value per feature); got shape {s.shape}. Average over "
            "samples first, e.g. np.abs(scores).mean(axis=0)."
        )
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} NaN or inf value(s).")
    names = (
        np.array([f"feature {j}" for j in range(s.size)], dtype=object)
        if feature_names is None
        else np.asarray(feature_names, dtype=object)
    )
    if names.shape != s.shape:
        raise ValueError(
            f"feature_names has {names.size} entries but scores has {s.size}; pass one name "
            "per score."
        )
    if not isinstance(top, numbers.Integral) or top < 1:
        raise ValueError(f"top must be a positive integer; got {top!r}.")
    order = np.argsort(-np.abs(s), kind="stable")[:top]
    ax = axes(ax, path, (5, 0.3 * order.size + 1))
    positions = np.arange(order.size)[::-1]  # largest at the top
    colors = np.where(s[order] >= 0, "C3", "C0")
    ax.barh(positions, s[order], color=colors)
    ax.set_yticks(positions)
    ax.set_yticklabels([str(n) for n in names[order]])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("attribution")
    if title is not None:
        ax.set_title(str(title))
    return finish(ax, path)
