"""Control-based batch correction, numpy only: center, center-scale, TVN, and PEA's random family.

The steps (:func:`fit_center_scale`, :func:`fit_whitening`, :func:`fit_coral`,
:func:`fit_tvn`, ...) are pure functions over rows grouped by batch; the
scikit-learn faces are :class:`ControlNormalizer` (the deterministic
correction) and :class:`PEAAugmenter` (random relaxations of it for
training). This layer imports no torch.
"""

from ._augmenter import PEAAugmenter
from ._center_scale import (
    CenterScale,
    apply_center_scale,
    apply_center_scale_by_group,
    degenerate_scale,
    fit_center_scale,
)
from ._groups import Groups, group_rows
from ._normalizer import ControlNormalizer
from ._plan import STEPS, BatchPlan, PEAFamily, PEASampler
from ._tvn import (
    TVNStats,
    apply_tvn,
    fit_tvn,
    fit_tvn_coral,
    fit_tvn_global,
    tvn_affine,
    tvn_global,
)
from ._whitening import Coral, Whitening, fit_coral, fit_whitening

__all__ = [
    "STEPS",
    "BatchPlan",
    "CenterScale",
    "ControlNormalizer",
    "Coral",
    "Groups",
    "PEAAugmenter",
    "PEAFamily",
    "PEASampler",
    "TVNStats",
    "Whitening",
    "apply_center_scale",
    "apply_center_scale_by_group",
    "apply_tvn",
    "degenerate_scale",
    "fit_center_scale",
    "fit_coral",
    "fit_tvn",
    "fit_tvn_coral",
    "fit_tvn_global",
    "fit_whitening",
    "group_rows",
    "tvn_affine",
    "tvn_global",
]
