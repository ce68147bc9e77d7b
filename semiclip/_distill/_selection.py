"""Held-out-key model selection and the validation report of :class:`SemiClippedTransformer`.

With early stopping the fit holds out ``validation_fraction`` of the keys.
Beyond the loss the loop monitors, the held-out keys score the fitted
adapter on what users measure downstream:

- **MRR**: cross-modal retrieval of each held-out key's teacher centroid
  among all held-out centroids by the key's mean student embedding
  (:func:`semiclip.metrics.cross_modal_retrieval`);
- **RSA**: Spearman correlation of the held-out keys' pairwise cosine
  similarities, student vs teacher
  (:func:`semiclip.metrics.representational_similarity`).

The *floor* is the frozen encoder alone through a ridge map onto the teacher
centroids (alpha 1, as :class:`~semiclip.RidgeDistiller`), fitted on the
training keys and scored on the same held-out keys. An adapter below the
floor on both scores (a lower RSA, and a per-key paired MRR difference whose
bootstrap interval lies below 0) has learnt nothing that carries beyond the
frozen encoder; one whose MRR is not above chance (its 95 % bootstrap interval
over the held-out keys includes chance) has learnt nothing that carries to
new keys: :func:`warn_if_not_generalising` says so in both cases, given at
least ``MIN_WARN_KEYS`` (10) held-out keys (with fewer, every interval is
too wide to tell: read ``validation_report_``).

The held-out sets hold out whole perturbations (groups, see :mod:`._groups`):
``n_groups`` counts them, and the verdict needs at least
:data:`MIN_JUDGE_GROUPS` (10); with fewer it says "too few held-out
perturbations to judge" and ``generalises`` is False. Every report carries
its ``verdict`` and one ``summary`` line (printed after ``fit`` with
``verbose``).

With a ridge start (``init="ridge"``) the number of fine-tune epochs is
chosen by held-out ``MRR + RSA`` (epoch 0, the ridge map itself, included),
on folds of the training groups or on this split (see :mod:`._epochs`): the
selection is made on what users measure, not on the held-out contrastive
loss (which rewards picking the partner, not the teacher's graded
similarity).

``structure_weight="auto"`` trains one adapter per weight of
:data:`STRUCTURE_GRID` on the same split and keeps the one with the highest
held-out ``MRR + RSA``. The report of the chosen weight is then optimistic
(the held-out keys chose it); the floor is not.
"""

import warnings

import numpy as np
from sklearn.linear_model import Ridge

from ..exceptions import GeneralizationWarning
from ._recipes import LARGE_KEYS

__all__ = [
    "MIN_JUDGE_GROUPS",
    "STRUCTURE_GRID",
    "best_candidate",
    "held_out_scores",
    "selection_score",
    "structure_candidates",
    "structure_choice",
    "validation_report",
    "warn_if_not_generalising",
]

#: the weights ``structure_weight="auto"`` tries (one fit each), on the validation keys
STRUCTURE_GRID = (0.0, 1.0, 10.0)
FLOOR_ALPHA = 1.0
N_BOOTSTRAP = 1000
MIN_RSA_KEYS = 3
#: fewer held-out perturbations than this: "too few to judge" (never ``generalises``)
MIN_JUDGE_GROUPS = 10
MIN_WARN_KEYS = MIN_JUDGE_GROUPS
VERDICTS = {
    "generalises": "generalises",
    "below_floor": "below the floor",
    "at_chance": "at chance",
    "too_few": "too few held-out perturbations to judge",
}


def structure_candidates(value, *, previous, has_validation, incremental, warm, n_keys, ddp):
    """The structure weights to train: ``(value,)``, or :data:`STRUCTURE_GRID` for ``"auto"``.

    ``"auto"`` searches only where it can and where it is cheap: with
    held-out keys (early stopping on), below ``LARGE_KEYS`` paired keys, in a
    full single-process fit. A warm start keeps the weight chosen before;
    elsewhere ``"auto"`` is 0.
    """
    if not isinstance(value, str):
        return (float(value),)
    if warm or incremental:
        return (float(previous) if previous is not None else 0.0,)
    if not has_validation or n_keys >= LARGE_KEYS or ddp:
        return (0.0,)
    return STRUCTURE_GRID


def structure_choice(value, weights, search, plan, n_keys, has_validation, ddp):
    """Why ``structure_weight`` is what it is (for ``training_params_["choices"]``); warns when
    ``"auto"`` could not choose on a fresh fit."""
    warm, incremental = plan.warm, plan.incremental
    if not isinstance(value, str):
        return "given"
    if warm or incremental:
        return "'auto': kept from the previous fit (warm start / partial_fit)"
    if search is None:
        why = ("no held-out perturbations (early stopping off or too few keys)"
               if not has_validation else f"{n_keys} paired keys (the search stops at "
               f"{LARGE_KEYS})" if n_keys >= LARGE_KEYS else "strategy='ddp'" if ddp
               else "an on-disk X")
        warnings.warn(f"structure_weight='auto' could not choose ({why}); using 0. Set "
                      "structure_weight to a number.", UserWarning, stacklevel=6)
        return f"'auto' could not choose: {why}; 0"
    scores = [selection_score(c) for c in search]
    tie = " (a tie: the first, the smallest weight)" if scores.count(max(scores)) > 1 else ""
    return f"'auto': the highest held-out MRR + RSA among {tuple(weights)}{tie}"


def held_out_scores(student, codes, centroids, *, n_bootstrap=0, random_state=None):
    """``({"mrr", "mrr_chance", "rsa", ...}, reciprocal rank per key)`` on held-out key codes."""
    from ..metrics import cross_modal_retrieval, representational_similarity

    keys = np.unique(codes)
    teacher = centroids[keys]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate held-out sets are reported, not warned
        cm = cross_modal_retrieval(student, codes, teacher, keys, top_k=(1,),
                                   n_bootstrap=n_bootstrap, random_state=random_state)
        rsa = np.nan  # undefined on fewer than 3 keys (fewer than 3 pairs)
        if keys.size >= MIN_RSA_KEYS:
            rsa = representational_similarity(student, codes, teacher, keys,
                                              n_bootstrap=0).correlation
    out = {"mrr": float(cm.mrr), "mrr_chance": float(cm.mrr_chance), "rsa": float(rsa)}
    if n_bootstrap:
        out.update(mrr_ci_low=float(cm.ci_low), mrr_ci_high=float(cm.ci_high))
    return out, np.asarray(cm.reciprocal_rank, dtype=np.float64)


def paired_upper(difference, n_bootstrap, rng, confidence=0.95):
    """Upper end of the bootstrap interval (over keys) of the mean of per-key ``difference``."""
    idx = rng.integers(0, difference.size, size=(n_bootstrap, difference.size))
    return float(np.quantile(difference[idx].mean(axis=1), 0.5 + confidence / 2))


def selection_score(scores):
    """``MRR + RSA`` of :func:`held_out_scores` (RSA counts -1 where undefined)."""
    rsa = scores["rsa"]
    return scores["mrr"] + (rsa if np.isfinite(rsa) else -1.0)


def best_candidate(candidates):
    """Index of the candidate with the highest held-out ``MRR + RSA`` (first among ties)."""
    return int(np.argmax([selection_score(c) for c in candidates]))


def judge(report):
    """Fill ``verdict``, ``generalises`` and ``summary`` of a report (see the module docstring)."""
    if report["n_groups"] < MIN_JUDGE_GROUPS:
        verdict = "too_few"
    elif not report["above_chance"]:
        verdict = "at_chance"
    elif report["below_floor"]:
        verdict = "below_floor"
    else:
        verdict = "generalises"
    report["verdict"] = VERDICTS[verdict]
    report["generalises"] = verdict == "generalises"
    report["summary"] = (
        f"held-out perturbations {report['n_groups']} ({report['n_keys']} keys): MRR "
        f"{report['mrr']:.3f} [{report['mrr_ci_low']:.3f}-{report['mrr_ci_high']:.3f}], floor "
        f"{report['floor_mrr']:.3f}, chance {report['mrr_chance']:.3f}; RSA {report['rsa']:.3f}, "
        f"floor {report['floor_rsa']:.3f}; verdict: {report['verdict']}")
    return report


def validation_report(student_val, features, codes, train_idx, val_idx, centroids, *, seed,
                      key_names, search=None, groups=None):
    """The fitted ``validation_report_``: held-out scores of the adapter and of the ridge floor.

    ``features`` are the frozen encoder's outputs of every sample (the
    floor's inputs); ``student_val`` the adapter's embeddings of the
    held-out samples; ``key_names`` the bank's key of every code.
    """
    val_codes = codes[val_idx]
    rng = np.random.default_rng([int(seed), 12])  # the fit's own draws stay untouched
    student, rr = held_out_scores(student_val, val_codes, centroids, n_bootstrap=N_BOOTSTRAP,
                                  random_state=rng)
    # in float64: float32 features of ~1e20 (a finite input within float32's range) would
    # overflow the ridge's Gram matrix to inf
    features = np.asarray(features, dtype=np.float64)
    floor_map = Ridge(alpha=FLOOR_ALPHA).fit(features[train_idx], centroids[codes[train_idx]])
    floor, floor_rr = held_out_scores(floor_map.predict(features[val_idx]), val_codes, centroids)
    report = {
        "n_keys": int(np.unique(val_codes).size),
        "keys": np.asarray(key_names)[np.unique(val_codes)].tolist(),
        "n_samples": int(val_idx.size),
        **student,
        "floor_mrr": floor["mrr"],
        "floor_rsa": floor["rsa"],
    }
    # below the floor: a lower RSA, and an MRR whose paired difference from the floor's
    # (per held-out key, bootstrap over keys) has its whole interval below 0
    mrr_below = paired_upper(rr - floor_rr, N_BOOTSTRAP, rng) < 0
    report["below_floor"] = bool(mrr_below and report["rsa"] < floor["rsa"])
    # the MRR's bootstrap interval over held-out keys must clear chance
    report["above_chance"] = bool(report["mrr_ci_low"] > report["mrr_chance"])
    report["n_groups"] = report["n_keys"] if groups is None else int(
        np.unique(np.asarray(groups, dtype=object)[val_idx].astype(str)).size)
    if search is not None:
        report["structure_weight_search"] = search
    return judge(report)


def warn_if_not_generalising(report, name):
    """A :class:`GeneralizationWarning` when the report says the adapter does not generalise."""
    if report is None or report["generalises"] or report["n_groups"] < MIN_JUDGE_GROUPS:
        return
    if report["below_floor"]:
        what = ("does not generalise beyond the frozen encoder: on {n} held-out perturbations it "
                "falls below the frozen encoder's ridge floor on both scores")
        advice = ("A ridge map (semiclip.RidgeDistiller) is better here: use it, keep the "
                  "default ridge start (init='auto') if you changed init, or add keys.")
    else:
        what = ("does not generalise to new perturbations: on {n} held-out perturbations its "
                "retrieval of the teacher is not above chance (the MRR's 95 % interval includes "
                "it)")
        advice = ("Check that the teacher relates to the transcriptomics (keys matched, the "
                  "right embedding), or add keys.")
    warnings.warn(
        f"{name}: the distilled embedding {what.format(n=report['n_groups'])}. Cross-modal MRR "
        f"{report['mrr']:.3f} (95 % interval {report['mrr_ci_low']:.3f}-"
        f"{report['mrr_ci_high']:.3f}; ridge floor {report['floor_mrr']:.3f}; chance "
        f"{report['mrr_chance']:.3f}), RSA with the teacher {report['rsa']:.3f} (floor "
        f"{report['floor_rsa']:.3f}). {advice} See validation_report_.",
        GeneralizationWarning,
        stacklevel=6,  # here, _train_and_select, _fit, fit, scikit-learn's fit wrapper, the caller
    )
