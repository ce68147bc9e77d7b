"""semiclip: distil microscopy embeddings into transcriptomics representations.

Implements Semi-Clipped cross-modal distillation and PEA (Perturbation
Embedding Augmentation) from weakly paired data (Bendidi et al., ICML 2025)
as scikit-learn estimators.

Public names are imported lazily, so ``import semiclip`` stays fast and does
not import torch until an estimator is used.
"""

from importlib import import_module

__version__ = "0.2.0.dev0"

# public name -> private module that defines it
_LAZY = {
    "ImageBank": "semiclip._core",
    "SemiClippedTransformer": "semiclip._distill",
    "RidgeDistiller": "semiclip._distill",
    "ControlNormalizer": "semiclip._correction",
    "PEAAugmenter": "semiclip._correction",
    "GeneralizationWarning": "semiclip.exceptions",
}
_SUBMODULES = {"callbacks", "cli", "datasets", "distributed", "exceptions", "interpret",
               "metrics", "model_selection", "persistence", "plotting"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = import_module(f"semiclip.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'semiclip' has no attribute {name!r}")


def __dir__():
    return __all__
