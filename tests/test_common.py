"""scikit-learn's common estimator checks on every public estimator.

The distillation estimators need a teacher bank, which the checks cannot
pass to ``fit``; they get one through the documented ``image_bank``
parameter, with integer keys covering the labels the checks use and
``unpaired="drop"``. The control-based correctors get ``control_label=1``,
a label present in the checks' targets. No check is expected to fail.
"""

import warnings

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from semiclip import (
    ControlNormalizer,
    ImageBank,
    PEAAugmenter,
    RidgeDistiller,
    SemiClippedTransformer,
)

_rng = np.random.default_rng(0)
CHECK_BANK = ImageBank(_rng.standard_normal((40, 4)), np.repeat(np.arange(20), 2))

ESTIMATORS = [
    SemiClippedTransformer(
        image_bank=CHECK_BANK,
        unpaired="drop",
        encoder_dim=3,
        hidden_layer_sizes=(8,),
        max_iter=2,
        early_stopping=False,
        random_state=0,
    ),
    RidgeDistiller(image_bank=CHECK_BANK, unpaired="drop", encoder_dim=3, random_state=0),
    # the correctors need a control label present in the checks' y (integer labels 0..2);
    # with control_label=None they refuse to fit, by design (a clear error)
    ControlNormalizer("tvn", control_label=1),
    ControlNormalizer("center", control_label=1),
    ControlNormalizer("center_scale", control_label=1, basis="feature"),
    ControlNormalizer("tvn", control_label=1, shrinkage="ledoit-wolf", per_batch_scaling=True),
    PEAAugmenter(control_label=1, random_state=0),
]

# check name -> reason, per estimator class
EXPECTED_FAILED = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)
