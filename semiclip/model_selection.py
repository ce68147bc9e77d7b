"""Cross-validation for perturbation screens.

- :class:`PerturbationGroupKFold`: K folds grouped by perturbation (no
  perturbation on both sides of a split), with the control wells spread over
  all folds, so that every training fold has controls of every plate for a
  per-plate :class:`~semiclip.ControlNormalizer`, and every test fold has
  controls to correct with.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from ._core import control_mask as _control_mask

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import ArrayLike

__all__ = ["PerturbationGroupKFold"]


class PerturbationGroupKFold(BaseCrossValidator):
    """K-fold iterator grouped by perturbation that spreads the controls over the folds.

    Each perturbation (a value of ``groups``) is in the test set of exactly one
    fold and never in train and test of the same split, as with
    :class:`~sklearn.model_selection.GroupKFold`: scores are measured on
    perturbations the model never saw. Control rows (``groups ==
    control_label``) are not a perturbation: scikit-learn's ``GroupKFold``
    would put them all in one test fold, leaving that fold's training set
    without controls (a :class:`~semiclip.ControlNormalizer` cannot be fitted)
    and the other test folds without any. Here each control row goes to one
    test fold in turn (round-robin in row order, so the controls of each plate
    are spread evenly when rows are grouped by plate), and every training set
    keeps the controls of the other folds.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2 and at most the number of perturbations.
    control_label : object, default=None
        Value of ``groups`` marking control rows. None: no controls, the split
        is a plain group K-fold.
    shuffle : bool, default=False
        Assign the perturbations (and controls) to folds in a random order
        (``random_state``) instead of largest-first by row count.
    random_state : int, RandomState instance or None, default=None
        Seed of the order when ``shuffle=True``; ignored otherwise.

    See Also
    --------
    sklearn.model_selection.GroupKFold : Group K-fold that treats controls as one group.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.model_selection import PerturbationGroupKFold
    >>> groups = np.array(["ctrl", "a", "a", "b", "ctrl", "b", "c", "c", "ctrl", "d"])
    >>> cv = PerturbationGroupKFold(n_splits=2, control_label="ctrl")
    >>> for train, test in cv.split(np.zeros((10, 1)), groups=groups):
    ...     print(sorted(set(groups[test].tolist())), int((groups[test] == "ctrl").sum()))
    ['a', 'c', 'ctrl'] 2
    ['b', 'ctrl', 'd'] 1
    """

    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits: int = 5, *, control_label: Any = None, shuffle: bool = False,
                 random_state: int | np.random.RandomState | None = None) -> None:
        self.n_splits = n_splits
        self.control_label = control_label
        self.shuffle = shuffle
        self.random_state = random_state

    def _check_n_splits(self):
        n = self.n_splits
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 2:
            raise ValueError(f"n_splits must be an integer >= 2; got {n!r}.")
        return int(n)

    def _fold_of_row(self, groups):
        """The test fold of every row."""
        n_splits = self._check_n_splits()
        if groups is None:
            raise ValueError(
                "groups is required: the perturbation of every row (pass groups= to split, "
                "or to GridSearchCV.fit / cross_validate with metadata routing).")
        groups = np.asarray(groups)
        if groups.ndim != 1:
            raise ValueError(f"groups must be 1-D; got shape {groups.shape}.")
        is_control = (np.zeros(groups.shape[0], dtype=bool) if self.control_label is None
                      else _control_mask(groups, self.control_label))
        names, inverse, counts = np.unique(groups[~is_control], return_inverse=True,
                                           return_counts=True)
        if names.size < n_splits:
            raise ValueError(
                f"n_splits={n_splits} is more than the {names.size} perturbation(s) in groups "
                f"(controls {self.control_label!r} not counted); lower n_splits.")
        rng = check_random_state(self.random_state) if self.shuffle else None
        if rng is None:  # largest first, ties in order of first appearance
            order = np.lexsort((np.arange(names.size), -counts))
        else:
            order = rng.permutation(names.size)
        load = np.zeros(n_splits, dtype=np.int64)
        fold_of_group = np.empty(names.size, dtype=np.int64)
        for g in order:  # greedy: each perturbation to the lightest fold so far
            fold = int(np.argmin(load))
            fold_of_group[g] = fold
            load[fold] += counts[g]
        fold = np.empty(groups.shape[0], dtype=np.int64)
        fold[~is_control] = fold_of_group[inverse]
        controls = np.flatnonzero(is_control)
        if rng is not None:
            controls = controls[rng.permutation(controls.size)]
        fold[controls] = np.arange(controls.size) % n_splits
        return fold, n_splits

    def split(self, X: ArrayLike, y: ArrayLike | None = None,
              groups: ArrayLike | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate the train and test row indices of each fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (only its number of rows is used).
        y : array-like of shape (n_samples,), default=None
            Ignored.
        groups : array-like of shape (n_samples,)
            Perturbation of every row; rows equal to ``control_label`` are controls.

        Yields
        ------
        train : ndarray of int
            Training row indices of the fold.
        test : ndarray of int
            Test row indices of the fold.
        """
        n_rows = len(X) if not hasattr(X, "shape") else X.shape[0]
        fold, n_splits = self._fold_of_row(groups)
        if fold.shape[0] != n_rows:
            raise ValueError(f"groups has {fold.shape[0]} entries but X has {n_rows} rows.")
        for k in range(n_splits):
            yield np.flatnonzero(fold != k), np.flatnonzero(fold == k)

    def get_n_splits(self, X: ArrayLike | None = None, y: ArrayLike | None = None,
                     groups: ArrayLike | None = None) -> int:
        """Number of splits.

        Parameters
        ----------
        X : object, default=None
            Ignored.
        y : object, default=None
            Ignored.
        groups : object, default=None
            Ignored.

        Returns
        -------
        n_splits : int
            ``n_splits``.
        """
        return self._check_n_splits()
