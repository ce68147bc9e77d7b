"""Figures: training curves, recall bars, embedding maps, gene attributions.

matplotlib is an optional extra (``pip install semiclip[plot]``), imported
only when a function is called. Every function draws on ``ax`` (a new figure
when None), returns the Axes, and with ``path=`` also writes a PNG. With
``path=`` and no ``ax`` the figure is created without pyplot (so it needs no
display, is not shown and is not kept open); otherwise pyplot creates it, as
usual in notebooks.
"""

from ._bars import plot_recall_bars
from ._curves import plot_loss_curves
from ._genes import plot_gene_attributions
from ._maps import plot_embedding_map

__all__ = [
    "plot_embedding_map",
    "plot_gene_attributions",
    "plot_loss_curves",
    "plot_recall_bars",
]
