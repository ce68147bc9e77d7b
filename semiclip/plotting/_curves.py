"""Training curves: the loss and the validation score per epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import axes, fill_doc, finish

if TYPE_CHECKING:
    import os

    from matplotlib.axes import Axes

__all__ = ["plot_loss_curves"]


def _curve(source, names):
    for name in names:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        if value is not None:
            return np.asarray(value, dtype=np.float64).ravel()
    return None


@fill_doc
def plot_loss_curves(estimator_or_history: Any, ax: Axes | None = None, *,
                     path: str | os.PathLike[str] | None = None) -> Axes:
    """Plot the training loss and, when recorded, the validation score per epoch.

    Parameters
    ----------
    estimator_or_history : estimator, history or mapping or sequence
        A fitted estimator with ``loss_curve_`` (and ``validation_scores_``
        with early stopping), such as
        :class:`~semiclip.SemiClippedTransformer` or scikit-learn's
        ``MLPClassifier``; a training history with ``loss_curve`` and
        ``validation_scores``; a dict with those keys; or a sequence of
        losses.
    [[ax]]
    [[path]]

    Returns
    -------
    ax : matplotlib Axes
        The loss axes. The validation scores are drawn on a twin axes
        sharing the epoch axis (``ax.figure.axes[-1]``), with a dotted line
        at the best epoch.

    Examples
    --------
    >>> from semiclip.plotting import plot_loss_curves
    >>> history = {"loss_curve": [2.1, 1.4, 1.1], "validation_scores": [0.2, 0.3, 0.28]}
    >>> ax = plot_loss_curves(history)
    >>> len(ax.get_lines()), ax.get_ylabel()
    (1, 'training loss')
    """
    source = estimator_or_history
    if isinstance(source, (list, tuple, np.ndarray)):
        loss, val = np.asarray(source, dtype=np.float64).ravel(), None
    else:
        loss = _curve(source, ("loss_curve_", "loss_curve"))
        val = _curve(source, ("validation_scores_", "validation_scores"))
    if loss is None or loss.size == 0:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"{type(source).__name__} has no loss curve (loss_curve_ / loss_curve); fit the "
            "estimator first or pass the list of losses."
        )
    ax = axes(ax, path, (6, 4))
    epochs = np.arange(1, loss.size + 1)
    handles = ax.plot(epochs, loss, color="C0", marker="." if loss.size < 30 else None,
                      label="training loss")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    if val is not None and val.size:
        twin = ax.twinx()
        val_epochs = np.arange(1, val.size + 1)
        handles += twin.plot(val_epochs, val, color="C1", marker="." if val.size < 30 else None,
                             label="validation score")
        best = int(val_epochs[np.nanargmax(val)])
        handles.append(twin.axvline(best, color="C1", linestyle=":", label=f"best epoch ({best})"))
        twin.set_ylabel("validation score")
    ax.legend(handles=handles, loc="best")
    return finish(ax, path)
