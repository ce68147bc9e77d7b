"""What a fitted :class:`~semiclip.SemiClippedTransformer` keeps: its decoder and its record.

``inverse_transform``, the fitted attributes read from the
training history (``loss_curve_``, ``n_iter_``...), and pickling with the
adapter's weights as CPU tensors (loaded with ``weights_only``: restoring
them runs no code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._core import check_finite_rows
from .._nn import (
    adapter_from_bytes,
    adapter_layer_sizes,
    adapter_to_bytes,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["FittedStateMixin"]


class FittedStateMixin:
    """``inverse_transform``, history attributes, tags, pickling."""

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Map embeddings back to gene space with the ridge decoder fitted in ``fit``.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_dims)
            Embeddings in the teacher space, e.g. the output of ``transform``.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features_in_), float32
            The decoded profiles, in the (corrected) gene space of ``X``.
        """
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"inverse_transform expects embeddings of shape (n_samples, "
                f"{self._n_features_out}); got {Z.shape}."
            )
        check_finite_rows(Z, "Z")
        return self.decoder_.predict(Z)

    # ------------------------------------------------------------- the record
    @property
    def _n_features_out(self):  # scikit-learn's feature-names mixin reads it
        return adapter_layer_sizes(self.adapter_)[-1]

    @property
    def loss_curve_(self):
        check_is_fitted(self)
        return list(self._history_.loss_curve)

    @property
    def validation_scores_(self):
        check_is_fitted(self)
        return list(self._history_.validation_scores)

    @property
    def best_loss_(self):
        check_is_fitted(self)
        return self._history_.best_loss

    @property
    def best_validation_score_(self):
        check_is_fitted(self)
        s = self._history_.best_validation_score
        return None if not self._history_.validation_scores else s

    @property
    def n_iter_(self):
        check_is_fitted(self)
        return self._history_.n_iter

    @property
    def t_(self):
        check_is_fitted(self)
        return self._history_.t

    def __sklearn_is_fitted__(self):
        return hasattr(self, "adapter_")

    # ------------------------------------------------------------ persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        # partial_fit's optimizer (momentum, as large as the adapter) and bank stay in memory
        state.pop("_partial_optimizer", None)
        state.pop("_partial_bank", None)
        adapter = state.pop("adapter_", None)
        if adapter is not None:
            state["_adapter_sizes"], state["_adapter_state"] = adapter_to_bytes(adapter)
        return state

    def __setstate__(self, state):
        sizes = state.pop("_adapter_sizes", None)
        blob = state.pop("_adapter_state", None)
        self.__dict__.update(state)
        if blob is not None:
            self.adapter_ = adapter_from_bytes(sizes, blob)
