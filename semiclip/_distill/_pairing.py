"""Input handling shared by the distillation estimators: ``X``, the teacher bank, the weak
pairing.
"""

import numpy as np
from sklearn.utils.validation import validate_data

from .._core import ImageBank, check_finite_rows, format_examples
from .._nn import float32_overflow_rows, float32_range_error
from ._encoders import encode, fit_encoder

__all__ = ["WeakPairingMixin"]


class WeakPairingMixin:
    """Checks of ``X``, the teacher bank and the weak pairing, and the frozen encoder.

    Expects the estimator to define ``image_bank``, ``unpaired``,
    ``control_label``, ``encoder``, ``encoder_dim`` and ``warm_start``.
    """

    def _check_X(self, X, reset):
        """``X`` validated: float32 or float64, C-ordered, finite, within float32's range.

        A C-ordered array is used as is; any other layout (Fortran order, a
        pandas frame's block) is copied to C order once, so that the result
        does not depend on the memory layout of the input.
        """
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=[np.float32, np.float64],
            order="C",
            ensure_all_finite=False,
            ensure_min_samples=1,
        )
        if hasattr(X, "data") and not isinstance(X, np.ndarray):  # sparse
            check_finite_rows(np.asarray(X.sum(axis=1)), "X", "drop or impute them first")
        else:
            check_finite_rows(X, "X", "drop or impute them first")
        rows = float32_overflow_rows(X)
        if rows.size:
            raise float32_range_error("X", rows[:5], count=rows.size)
        return X

    def _resolve_bank(self, image_bank):
        bank = image_bank if image_bank is not None else self.image_bank
        if bank is None:
            raise ValueError(
                "fit needs the teacher embeddings: pass image_bank=ImageBank(embeddings, keys) "
                "to fit (in a Pipeline: semiclippedtransformer__image_bank=bank, or enable "
                "metadata routing), or set the image_bank parameter."
            )
        if not isinstance(bank, ImageBank):
            raise TypeError(
                f"image_bank must be an ImageBank, got {type(bank).__name__}; build one with "
                "ImageBank(embeddings, keys)."
            )
        return bank

    def _pairing(self, y, is_ctl, bank):
        """Bank key code of every non-control sample; handles ``unpaired``."""
        codes = np.full(y.shape[0], -1, dtype=np.int64)
        codes[~is_ctl] = bank.codes(y[~is_ctl])
        missing = (~is_ctl) & (codes < 0)
        if missing.any():
            missing_keys = np.unique(y[missing])
            msg = (
                f"{int(missing.sum())} training samples ({missing_keys.size} distinct keys, "
                f"e.g. {format_examples(missing_keys)}) have no row in image_bank "
                f"(bank keys e.g. {format_examples(bank.unique_keys)})."
            )
            if self.unpaired == "raise":
                raise ValueError(
                    msg + " Check that keys are spelled the same way on both sides "
                    "(semiclip.datasets.match_report helps), mark controls with "
                    "control_label, or pass unpaired='drop' to train without them."
                )
        paired = codes >= 0
        if not paired.any():
            if is_ctl.all():
                raise ValueError(
                    f"All {y.shape[0]} samples are controls (y == {self.control_label!r}); "
                    "fit needs perturbed samples whose keys appear in image_bank."
                )
            raise ValueError(
                "No training sample could be paired with image_bank: none of the keys of y "
                f"(e.g. {format_examples(np.unique(y))}) is in the bank (e.g. "
                f"{format_examples(bank.unique_keys)})."
            )
        return codes

    def _fit_encoder(self, X, rs):
        if getattr(self, "warm_start", False) and hasattr(self, "encoder_"):
            return self.encoder_
        return fit_encoder(self.encoder, self.encoder_dim, X, rs)

    def _encode(self, X, device=None):
        return encode(self.encoder_, X, device)

    def __sklearn_tags__(self):  # both distillers: a target (the keys), sparse X, float32 out
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
