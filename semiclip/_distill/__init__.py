"""The scikit-learn faces of distillation: :class:`SemiClippedTransformer`, :class:`RidgeDistiller`.

Estimators validate their inputs, prepare the frozen encoder and the weak
pairing, and reach torch only through :mod:`semiclip._nn` (the training
loop, the adapter, the linear encoder map).
"""

from ._encoded_pea import EncodedPEA, epoch_features
from ._encoders import encode, encoder_module, fit_encoder, linear_encoder_map, stream_encoders
from ._recipes import PAPER, resolve_recipe
from ._ridge import RidgeDistiller
from ._transformer import SemiClippedTransformer

__all__ = [
    "PAPER",
    "EncodedPEA",
    "RidgeDistiller",
    "SemiClippedTransformer",
    "encode",
    "encoder_module",
    "epoch_features",
    "fit_encoder",
    "linear_encoder_map",
    "resolve_recipe",
    "stream_encoders",
]
