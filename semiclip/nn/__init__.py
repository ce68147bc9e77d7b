"""The torch layer: losses, the adapter, the linear encoder map, data sources, the training loop.

Nothing here imports scikit-learn: arrays and torch modules come in, trained
modules and histories go out. The estimators of :mod:`semiclip.distill` use
torch only through the names below.
"""

from torch import device as Device
from torch.nn import Identity, Module

from ._adapter import (
    adapter_from_bytes,
    adapter_from_state,
    adapter_layer_sizes,
    adapter_to_bytes,
    init_adapter,
    make_adapter,
)
from ._decoder import (
    DecoderMoments,
    LinearDecoder,
    decoder_from_embeddings,
    decoder_from_source,
    fit_decoder,
)
from ._device import resolve_device
from ._encoded import EncodedRows
from ._forward import (
    CHUNK_ROWS,
    AffineMap,
    ModuleEncoder,
    forward_chunks,
    forward_numpy,
    freeze_module,
    split_fine_tuned,
    with_trainable_encoder,
)
from ._losses import (
    CONTRASTIVE,
    LOSSES,
    clip_loss,
    get_loss,
    infonce_loss,
    kd_cosine_loss,
    kd_mse_loss,
    masked_cross_entropy,
    siglip_loss,
    siglip_sum,
)
from ._prefetch import PREFETCH_DEPTH, Prefetcher, StreamFeatures, TensorFeatures, embed_source
from ._sources import (
    FLOAT32_MAX,
    PCA_MAX_ROWS,
    H5Source,
    MemmapSource,
    SparseDatasetSource,
    as_row_source,
    check_source,
    file_layout,
    float32_overflow_rows,
    float32_range_error,
    subsample_rows,
)
from ._threads import ThreadBudget, thread_budget
from .training import (
    DEFAULT_TIMEOUT,
    Callback,
    DDPContext,
    History,
    ThreadRebalance,
    TrainConfig,
    TrainData,
    ddp_context,
    default_callbacks,
    distributed_module,
    fit_loop,
    init_process_group,
    make_optimizer,
)

__all__ = [
    "CHUNK_ROWS",
    "CONTRASTIVE",
    "DEFAULT_TIMEOUT",
    "FLOAT32_MAX",
    "LOSSES",
    "PCA_MAX_ROWS",
    "PREFETCH_DEPTH",
    "AffineMap",
    "Callback",
    "DDPContext",
    "DecoderMoments",
    "Device",
    "EncodedRows",
    "H5Source",
    "History",
    "Identity",
    "LinearDecoder",
    "MemmapSource",
    "Module",
    "ModuleEncoder",
    "Prefetcher",
    "SparseDatasetSource",
    "StreamFeatures",
    "TensorFeatures",
    "ThreadBudget",
    "ThreadRebalance",
    "TrainConfig",
    "TrainData",
    "adapter_from_bytes",
    "adapter_from_state",
    "adapter_layer_sizes",
    "adapter_to_bytes",
    "as_row_source",
    "check_source",
    "clip_loss",
    "ddp_context",
    "decoder_from_embeddings",
    "decoder_from_source",
    "default_callbacks",
    "distributed_module",
    "embed_source",
    "file_layout",
    "float32_overflow_rows",
    "float32_range_error",
    "fit_decoder",
    "fit_loop",
    "forward_chunks",
    "forward_numpy",
    "freeze_module",
    "get_loss",
    "infonce_loss",
    "init_adapter",
    "init_process_group",
    "kd_cosine_loss",
    "kd_mse_loss",
    "make_adapter",
    "make_optimizer",
    "masked_cross_entropy",
    "resolve_device",
    "siglip_loss",
    "siglip_sum",
    "split_fine_tuned",
    "subsample_rows",
    "thread_budget",
    "with_trainable_encoder",
]
