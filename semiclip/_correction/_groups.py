"""Rows grouped by batch: the sorted layout every correction step works on.

The steps of control-based batch correction (:mod:`._center_scale`,
:mod:`._whitening`, :mod:`._tvn`) are pure functions and small frozen
dataclasses, shared by :class:`~semiclip.ControlNormalizer` (deterministic
correction) and :class:`~semiclip.PEAAugmenter` (random relaxations of it).
Nothing here validates user input; the estimators do.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["EPS", "Groups", "group_of_sorted", "group_rows"]

EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Groups:
    """Rows sorted by group: group ``g`` holds ``order[bounds[g]:bounds[g+1]]``."""

    order: np.ndarray
    bounds: np.ndarray

    @property
    def n_groups(self):
        return self.bounds.size - 1

    @property
    def counts(self):
        return np.diff(self.bounds)

    def rows(self, g):
        return self.order[self.bounds[g] : self.bounds[g + 1]]

    @classmethod
    def of(cls, rows_per_group):
        """Groups whose group ``g`` holds ``rows_per_group[g]`` (a list of int arrays)."""
        sizes = [r.size for r in rows_per_group]
        return cls(order=np.concatenate(rows_per_group), bounds=np.cumsum([0] + sizes))


def group_rows(codes, n_groups, mask=None):
    """Sort the rows (optionally only those with ``mask``) by integer group code."""
    rows = np.arange(codes.size) if mask is None else np.flatnonzero(mask)
    order = rows[np.argsort(codes[rows], kind="stable")]
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1), side="left")
    return Groups(order=order, bounds=bounds)


def group_of_sorted(groups):
    """Group code of every row of ``groups.order`` (the sorted layout)."""
    return np.repeat(np.arange(groups.n_groups), groups.counts)
