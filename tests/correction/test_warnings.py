"""The degenerate-controls warnings: once per fit, at the user's line, with the action.

Fewer controls than features (158 controls for 978 L1000 genes) make TVN's
PCA of the controls rank-deficient; constant features have no control
scale. Both are handled (left unscaled). The user who chose the correction
is told once per fit what it means and what to do; where semiclip chose
TVN itself (PEA's canonical correction), the rank deficiency is expected
and handled, and nothing is said.
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from semiclip import ControlNormalizer, PEAAugmenter

HERE = __file__


def _rank_deficient(constant=False):
    """10 controls for 30 features on two plates: the controls span 9 dimensions."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 30))
    y = np.where(np.arange(120) % 12 == 0, "c", "t")
    batch = np.repeat(["a", "b"], 60)
    if constant:
        X[:, 4] = 2.5
    return X, y, batch


def _well_conditioned(constant=None):
    """200 controls for 6 features on two plates; ``constant``: columns constant everywhere."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 6))
    y = np.where(np.arange(400) % 2 == 0, "c", "t")
    batch = np.repeat(["a", "b"], 200)
    for j in constant or ():
        X[:, j] = 1.0 + j
    return X, y, batch


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in caught if "zero variance in the controls" in str(w.message)]


def test_rank_deficient_tvn_warns_once_with_what_it_means_and_what_to_do():
    X, y, batch = _rank_deficient(constant=True)  # a constant feature, and rank-deficient
    _, caught = _caught(lambda: ControlNormalizer(control_label="c").fit(X, y, batch=batch))
    assert len(caught) == 1, [str(w.message) for w in caught]  # one warning, not one per cause
    msg = str(caught[0].message)
    assert caught[0].category is UserWarning
    # what: the counts (controls, span, null components, the constant feature by index)
    assert "ControlNormalizer(method='tvn')" in msg
    assert "1 of 30 features have (near) zero variance in the controls (feature 4)" in msg
    assert "21 of 30 PCA components have (near) zero variance in the controls" in msg
    assert "the 10 controls span 9 of 30 dimensions" in msg
    # what to do: the three actions, and how to silence it
    for action in ("method='center_scale'", "shrinkage='ledoit-wolf'", "at least 31 controls",
                   "warnings.filterwarnings('ignore', message='.*zero variance in the controls')"):
        assert action in msg, action


def test_the_warning_points_at_the_users_line_also_through_a_pipeline():
    X, y, batch = _rank_deficient()
    _, caught = _caught(lambda: ControlNormalizer(control_label="c").fit_transform(
        X, y, batch=batch))
    assert [w.filename for w in caught] == [HERE]  # not semiclip/correction/_normalizer.py
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler(), ControlNormalizer(control_label="c"))
        _, caught = _caught(lambda: pipe.fit(X, y, batch=batch))
    assert [w.filename for w in caught] == [HERE]


def test_constant_features_named_with_the_batches_and_the_fix():
    pd = pytest.importorskip("pandas")
    X, y, batch = _well_conditioned()
    X[batch == "b", 2] = 7.0  # constant on plate b only
    X[:, 5] = 3.0             # constant everywhere
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(6)])
    norm = ControlNormalizer("center_scale", control_label="c")
    _, caught = _caught(lambda: norm.fit(df, y, batch=batch))
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "ControlNormalizer(method='center_scale'): 2 of 6 features have (near) zero " \
           "variance in the controls of some batches (features 'g2', 'g5'; batches 'a', 'b')" in msg
    assert "Drop features that are constant in the controls" in msg


def test_well_conditioned_controls_do_not_warn():
    X, y, batch = _well_conditioned()
    for method in ("tvn", "center_scale", "center"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ControlNormalizer(method, control_label="c").fit_transform(X, y, batch=batch)


def test_pea_canonical_tvn_on_rank_deficient_controls_is_silent():
    # PEA chose TVN itself and handles the null components: nothing for the user to act on
    X, y, batch = _rank_deficient()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pea = PEAAugmenter(control_label="c", random_state=0).fit(X, y, batch=batch)
        pea.fit_resample(X, y, batch=batch)
        pea.sample(X, y, batch=batch)
    # ... and the canonical correction still records what it left unscaled
    assert pea.canonical_.null_components_.sum() == 21


def test_pea_constant_feature_warns_once_per_fit_for_the_augmenter():
    X, y, batch = _well_conditioned(constant=[3])
    pea = PEAAugmenter(control_label="c", random_state=0)
    _, caught = _caught(lambda: pea.fit_resample(X, y, batch=batch))
    assert len(caught) == 1, [str(w.message) for w in caught]
    msg = str(caught[0].message)
    assert msg.startswith("PEAAugmenter: 1 of 6 features have (near) zero variance in the "
                          "controls (feature 3)")
    assert "PCA components" not in msg  # the constant feature's null component is the same fact
    assert caught[0].filename == HERE
