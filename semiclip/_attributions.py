"""The result of :mod:`semiclip.interpret`: per-gene attribution scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Attributions"]


@dataclass
class Attributions:
    """Per-gene attribution scores.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_genes) or (n_genes,)
        Attribution of every gene (for every sample, for gradient attributions).
    feature_names : ndarray of str
        Gene names: ``feature_names=`` when given, else the columns of a
        DataFrame ``X``, else ``feature_names_in_`` of the estimator (fitted
        on a DataFrame, e.g. ``from_dataframe(..., as_frame=True).data``),
        else ``x0, x1...``.
    method : str
        ``"gradient_x_input"`` or ``"decoder"``.
    """

    values: np.ndarray
    feature_names: np.ndarray = field(repr=False)
    method: str = "gradient_x_input"

    def mean(self) -> np.ndarray:
        """Mean attribution per gene over samples.

        Returns
        -------
        mean : ndarray of shape (n_genes,)
            ``values`` averaged over samples (``values`` itself when it is 1-D).
        """
        return self.values if self.values.ndim == 1 else self.values.mean(axis=0)

    def top(self, k: int = 20, absolute: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return the names and scores of the ``k`` genes with the largest mean attribution.

        Parameters
        ----------
        k : int, default=20
            Number of genes (all of them when there are fewer).
        absolute : bool, default=True
            Rank by the absolute mean attribution (genes pushing either way);
            False ranks by the signed value (the most positive first).

        Returns
        -------
        names : ndarray of shape (k,)
            Gene names, the highest-ranked first.
        scores : ndarray of shape (k,)
            Their (signed) mean attributions.
        """
        score = self.mean()
        order = np.argsort(-(np.abs(score) if absolute else score), kind="stable")[:k]
        return self.feature_names[order], score[order]

    def to_frame(self) -> pd.DataFrame:
        """Return the attributions as a pandas DataFrame with genes as columns (pandas required).

        Returns
        -------
        frame : pandas.DataFrame of shape (n_samples, n_genes)
            One row per sample (a single row for 1-D ``values``).
        """
        import pandas as pd

        values = self.values if self.values.ndim == 2 else self.values[None, :]
        return pd.DataFrame(values, columns=self.feature_names)

    def to_series(self) -> pd.Series:
        """Mean attribution per gene as a pandas Series indexed by gene (pandas required).

        :func:`semiclip.plotting.plot_gene_attributions` draws it (or the
        Attributions object itself) with the gene names.

        Returns
        -------
        series : pandas.Series of shape (n_genes,)
            The mean attribution, named ``"score"``, indexed by ``"gene"``.
        """
        import pandas as pd

        return pd.Series(self.mean(), index=pd.Index(self.feature_names, name="gene"),
                         name="score")
