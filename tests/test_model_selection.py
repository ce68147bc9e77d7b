"""Model selection on real screens: per-plate correction in a grid search, split by perturbation.

- ``semiclip.model_selection.PerturbationGroupKFold``: no perturbation on both
  sides of a split, controls spread over every fold;
- the scorers of ``semiclip.metrics`` hand a routed ``batch`` to
  ``estimator.transform``, so a ``Pipeline(ControlNormalizer, ...)`` corrects
  each held-out fold per plate; scores are checked against a manual per-fold
  computation with the public estimators and metrics.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from semiclip import ControlNormalizer, RidgeDistiller
from semiclip.datasets import make_weakly_paired
from semiclip.metrics import (
    cross_modal_retrieval,
    make_cross_modal_scorer,
    make_recall_scorer,
    make_retrieval_scorer,
    mean_average_precision,
)
from semiclip.model_selection import PerturbationGroupKFold


@pytest.fixture(scope="module")
def screen():
    return make_weakly_paired(n_perturbations=66, n_genes=30, n_batches=3, controls_per_batch=8,
                              image_dim=12, samples_per_perturbation=3, random_state=0)


# ------------------------------------------------------------------- splitter
def test_splitter_groups_perturbations_and_spreads_controls():
    rng = np.random.default_rng(0)
    groups = np.array(["ctl"] * 7 + [f"p{i}" for i in rng.integers(0, 9, size=40)], dtype=object)
    groups = groups[rng.permutation(groups.size)]
    cv = PerturbationGroupKFold(n_splits=3, control_label="ctl")
    assert cv.get_n_splits() == 3
    seen = np.zeros(groups.size, dtype=int)
    for train, test in cv.split(np.zeros((groups.size, 2)), groups=groups):
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == groups.size
        shared = set(groups[train]) & set(groups[test])
        assert shared == {"ctl"}  # only the controls are on both sides
        assert (groups[test] == "ctl").sum() in (2, 3)  # 7 controls over 3 folds
        seen[test] += 1
    assert (seen == 1).all()  # every row tested once


def test_splitter_spreads_each_plates_controls():
    plate = np.repeat([0, 1], 20)
    groups = np.where(np.arange(40) % 4 == 0, "ctl", np.char.add("p", (np.arange(40) % 7)
                                                                 .astype(str)))
    for _, test in PerturbationGroupKFold(2, control_label="ctl").split(groups, groups=groups):
        ctl = groups[test] == "ctl"
        assert np.bincount(plate[test][ctl], minlength=2).tolist() == [3, 2] or \
            np.bincount(plate[test][ctl], minlength=2).tolist() == [2, 3]


def test_splitter_shuffle_is_seeded_and_still_grouped():
    groups = np.repeat(np.arange(12), 3)
    a = [t.tolist() for _, t in PerturbationGroupKFold(3, shuffle=True, random_state=1)
         .split(groups, groups=groups)]
    b = [t.tolist() for _, t in PerturbationGroupKFold(3, shuffle=True, random_state=1)
         .split(groups, groups=groups)]
    assert a == b
    for test in a:
        assert all(np.isin(groups, groups[test]).sum() == len(test) for _ in [0])


def test_splitter_bad_input():
    X = np.zeros((6, 1))
    with pytest.raises(ValueError, match="groups is required: the perturbation of every row"):
        next(PerturbationGroupKFold(2).split(X))
    with pytest.raises(ValueError, match=re.escape(
            "n_splits=4 is more than the 2 perturbation(s) in groups (controls 'c' not counted)")):
        next(PerturbationGroupKFold(4, control_label="c").split(X, groups=list("cabcab")))
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2; got 1"):
        PerturbationGroupKFold(1).get_n_splits()
    with pytest.raises(ValueError, match="groups has 5 entries but X has 6 rows"):
        next(PerturbationGroupKFold(2).split(X, groups=list("aabbc")))


# ---------------------------------------------------------- routed grid search
def _manual_fold_score(screen, train, test, alpha):
    """The fold's score without the scorer or the Pipeline: public pieces by hand."""
    norm = ControlNormalizer("center", control_label="control").fit(
        screen.X[train], screen.y[train], batch=screen.batch[train])
    ridge = RidgeDistiller(encoder_dim=6, alpha=alpha, control_label="control",
                           random_state=0).fit(norm.transform(screen.X[train],
                                                              batch=screen.batch[train]),
                                               screen.y[train], image_bank=screen.image_bank)
    Z = ridge.transform(norm.transform(screen.X[test], batch=screen.batch[test]))
    return cross_modal_retrieval(Z, screen.y[test], screen.image_bank, control_label="control",
                                 n_bootstrap=0).mrr


def test_grid_search_corrects_each_plate_of_the_held_out_fold(screen):
    cv = PerturbationGroupKFold(n_splits=3, control_label="control")
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            ControlNormalizer("center", control_label="control"),
            RidgeDistiller(encoder_dim=6, control_label="control", image_bank=screen.image_bank,
                           random_state=0))
        scorer = make_cross_modal_scorer(screen.image_bank, control_label="control")
        search = GridSearchCV(pipe, {"ridgedistiller__alpha": [0.1, 100.0]},
                              scoring=scorer.set_score_request(batch=True), cv=cv,
                              error_score="raise")
        search.fit(screen.X, screen.y, groups=screen.y, batch=screen.batch)
    splits = list(cv.split(screen.X, groups=screen.y))
    for c, alpha in enumerate([0.1, 100.0]):
        for f, (train, test) in enumerate(splits):
            assert search.cv_results_[f"split{f}_test_score"][c] == pytest.approx(
                _manual_fold_score(screen, train, test, alpha), abs=1e-12)


def test_scorer_without_batch_request_is_refused(screen):
    """Passing batch without deciding the scorer's request is an error, not a silent fallback."""
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(ControlNormalizer("center", control_label="control"),
                             RidgeDistiller(encoder_dim=6, control_label="control",
                                            image_bank=screen.image_bank))
        search = GridSearchCV(pipe, {"ridgedistiller__alpha": [1.0]},
                              scoring=make_cross_modal_scorer(screen.image_bank,
                                                              control_label="control"),
                              cv=PerturbationGroupKFold(3, control_label="control"))
        with pytest.raises(Exception, match=r"\[batch\] are passed but are not explicitly set"):
            search.fit(screen.X, screen.y, groups=screen.y, batch=screen.batch)


def test_scorer_hands_batch_to_transform_and_to_the_metric(screen):
    norm = ControlNormalizer("center", control_label="control").fit(
        screen.X, screen.y, batch=screen.batch)
    treated = ~screen.is_control
    expected = mean_average_precision(norm.transform(screen.X, batch=screen.batch)[treated],
                                      screen.y[treated], n_bootstrap=0).map
    scorer = make_retrieval_scorer()  # no routing: transform's own batch keyword
    assert scorer(norm, screen.X[treated], screen.y[treated],
                  batch=screen.batch[treated]) == pytest.approx(expected, abs=1e-12)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = make_retrieval_scorer().set_score_request(batch=True)
        assert routed(make_pipeline(norm), screen.X[treated], screen.y[treated],
                      batch=screen.batch[treated]) == pytest.approx(expected, abs=1e-12)
    assert pickle.loads(pickle.dumps(routed))(norm, screen.X[treated], screen.y[treated],
                                              batch=screen.batch[treated]) == routed(
        norm, screen.X[treated], screen.y[treated], batch=screen.batch[treated])


def test_scorer_warns_on_few_pairs(screen):
    Z = screen.X[~screen.is_control]
    y = screen.y[~screen.is_control]
    ident = FunctionTransformer().fit(Z)
    few = np.isin(y, np.unique(y)[:19])
    with pytest.warns(UserWarning, match=re.escape(
            "make_retrieval_scorer: this score rests on 19 labels (fewer than 20)")):
        make_retrieval_scorer()(ident, Z[few], y[few])
    enough = np.isin(y, np.unique(y)[:20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_retrieval_scorer()(ident, Z[enough], y[enough])
    pairs = [(a, b) for a, b in screen.relationships[:5]]
    with pytest.warns(UserWarning, match="make_recall_scorer: this score rests on"):
        make_recall_scorer(pairs)(ident, Z, y)
