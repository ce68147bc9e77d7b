"""Recall bars per database, with intervals over seeds."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import t_interval
from ._base import axes, fill_doc, finish

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    from matplotlib.axes import Axes

__all__ = ["plot_recall_bars"]


def _values(value, where):
    """Floats from a number, an object with ``.recall``, a dict with "recall", or a list."""
    if isinstance(value, numbers.Real):
        return [float(value)]
    if hasattr(value, "recall"):
        return _values(value.recall, where)
    if isinstance(value, dict) and "recall" in value:
        return _values(value["recall"], where)
    if isinstance(value, (list, tuple, np.ndarray)):
        out = [v for item in np.asarray(value, dtype=object).ravel() for v in _values(item, where)]
        if out:
            return out
    raise TypeError(
        f"results[{where}] must be a number, an object with .recall, or a list of them; got "
        f"{type(value).__name__}."
    )


def _interval(value, where, ci):
    """``(mean, low error, high error)``: a result's own interval, or a t interval over seeds."""
    own = (getattr(value, "ci_low", np.nan), getattr(value, "ci_high", np.nan))
    if ci is not None and hasattr(value, "recall") and np.isfinite(own).all():
        mid = float(value.recall)  # the interval the tables print (bootstrap, Wilson-widened)
        return mid, mid - float(own[0]), float(own[1]) - mid
    values = _values(value, where)
    if ci is None:
        return float(np.mean(values)), np.nan, np.nan
    mean, half = t_interval(values, ci)
    return mean, half, half


@fill_doc
def plot_recall_bars(results: Mapping[Any, Any], ax: Axes | None = None, *, ci: float | None = 0.95,
                     chance: float | None = None, ylabel: str = "recall",
                     title: str | None = None,
                     path: str | os.PathLike[str] | None = None) -> Axes:
    """Bar plot of recall per database, with intervals over seeds.

    Parameters
    ----------
    results : mapping
        Either ``{database: values}`` (one bar per database) or
        ``{method: {database: values}}`` (bars grouped by database, one
        colour per method). ``values`` is a number, an object with a
        ``.recall`` attribute, or a list of them (one per seed). A single
        result with an interval (``ci_low``, ``ci_high``, e.g. a
        :class:`~semiclip.metrics.RecallResult`) is drawn with that interval.
    [[ax]]
    ci : float or None, default=0.95
        Level of the error bars over seeds: a Student-t interval of the
        mean, ``mean +/- t_{(1+ci)/2, n-1} * sd / sqrt(n)``; a single result
        draws its own ``ci_low``/``ci_high``; no bar for a single number or
        ``ci=None``.
    chance : float, optional
        Draw a dashed horizontal line at the chance level.
    ylabel : str, default="recall"
        Label of the y axis.
    title : str, optional
        Title of the axes.
    [[path]]

    Returns
    -------
    ax : matplotlib Axes
        One ``BarContainer`` per method in ``ax.containers``.

    Examples
    --------
    >>> from semiclip.plotting import plot_recall_bars
    >>> ax = plot_recall_bars({"raw": {"CORUM": [0.10, 0.12], "HuMAP": [0.09, 0.11]},
    ...                        "Semi-Clipped": {"CORUM": [0.18, 0.2], "HuMAP": [0.15, 0.17]}},
    ...                       chance=0.1)
    >>> len(ax.patches)
    4
    """
    if not isinstance(results, dict) or not results:
        raise TypeError(
            "results must be a non-empty dict {database: values} or "
            f"{{method: {{database: values}}}}; got {type(results).__name__}."
        )
    if ci is not None and not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1) or None; got {ci!r}.")
    nested = all(isinstance(v, dict) and "recall" not in v for v in results.values())
    series = results if nested else {None: results}
    databases = list(dict.fromkeys(db for per_db in series.values() for db in per_db))
    ax = axes(ax, path, (max(4.0, 1.2 * len(databases) + 1), 4))
    width = 0.8 / len(series)
    x = np.arange(len(databases), dtype=np.float64)
    for i, (method, per_db) in enumerate(series.items()):
        stats = [
            _interval(per_db[db], f"{method!r}][{db!r}" if nested else repr(db), ci)
            if db in per_db
            else (np.nan, np.nan, np.nan)
            for db in databases
        ]
        means, lows, highs = np.array(stats).T
        halves = np.vstack([lows, highs])
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar(
            x + offset,
            means,
            width=width,
            yerr=halves if np.isfinite(halves).any() else None,
            capsize=3,
            color=f"C{i}",
            label=None if method is None else str(method),
        )
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(x)
    ax.set_xticklabels([str(db) for db in databases])
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(str(title))
    if nested or chance is not None:
        ax.legend(loc="best")
    return finish(ax, path)
