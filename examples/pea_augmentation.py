"""
PEA standalone and in an imbalanced-learn pipeline
==================================================

:class:`semiclip.PEAAugmenter` draws, for every plate, a random control-based
correction (center, center-scale or TVN, steps dropped at random, statistics
on a random subsample of the plate's controls). Here it is used without
Semi-Clipped: to augment the training set of a logistic-regression probe of
each perturbation's group, and as the sampler step of an
``imblearn.pipeline.Pipeline``. ``sample_indices_`` re-aligns per-sample
arrays (the plates) with the resampled rows.

Run: ``python examples/pea_augmentation.py`` (``SEMICLIP_EXAMPLE_SMALL=1``: tiny).
"""

import os

import numpy as np
from sklearn.linear_model import LogisticRegression

from semiclip import PEAAugmenter
from semiclip.datasets import make_weakly_paired, split_by_key

SMALL = os.environ.get("SEMICLIP_EXAMPLE_SMALL") == "1"
n_pert, n_genes = (80, 100) if SMALL else (400, 978)
data = make_weakly_paired(n_perturbations=n_pert, n_genes=n_genes, n_batches=6,
                          controls_per_batch=16, batch_strength=2.0, random_state=0)

# the probe's labels: the group of every perturbation; controls keep their key,
# which is how PEAAugmenter finds them (y == control_label)
group = dict(zip(data.perturbations, data.groups))
y = np.array(["control" if k == "control" else f"group {group[k]}" for k in data.y], dtype=object)
train, test = split_by_key(data.y, control_label="control", random_state=0)
Xtr, ytr, btr = data.X[train], y[train], data.batch[train]

# -- standalone: one augmented copy, then original + 2 copies ----------------------------
pea = PEAAugmenter(control_label="control", n_augmentations=2, random_state=0)
pea.fit(Xtr, ytr, batch=btr)
copy1 = pea.sample(Xtr, ytr, batch=btr)
print(f"one augmented copy: shape {copy1.shape}, mean |change| "
      f"{np.abs(copy1 - Xtr).mean():.3f}")
X_res, y_res = pea.fit_resample(Xtr, ytr, batch=btr)
b_res = btr[pea.sample_indices_]  # the plate of every resampled row
print(f"fit_resample: {Xtr.shape[0]} -> {X_res.shape[0]} rows; plates re-aligned: "
      f"{b_res.shape[0] == X_res.shape[0]}")

# -- a probe trained on augmented copies, scored on the canonical correction --------------
canonical = pea.canonical_correction()  # full TVN on all training controls
treated_test = test & ~data.is_control
Xte = canonical.transform(data.X[treated_test], batch=data.batch[treated_test])
yte = y[treated_test]


def probe(X, labels):
    keep = labels != "control"
    return LogisticRegression(max_iter=3000).fit(X[keep], labels[keep])


acc_tvn = probe(canonical.transform(Xtr, batch=btr), ytr).score(Xte, yte)
copies = np.concatenate([pea.sample(Xtr, ytr, batch=btr, random_state=s) for s in range(3)])
acc_pea = probe(copies, np.tile(ytr, 3)).score(Xte, yte)
print(f"probe on held-out perturbations: canonical TVN {acc_tvn:.3f}, 3 PEA copies {acc_pea:.3f}")

# -- in an imbalanced-learn pipeline: the sampler runs in fit only -------------------------
try:
    from imblearn.pipeline import make_pipeline
except ImportError:
    print("imbalanced-learn is not installed: skipping the pipeline part")
else:
    # the probe is scored on canonical-corrected samples, so the original rows
    # it trains on go through the canonical correction too (keep_original)
    pipe = make_pipeline(PEAAugmenter(control_label="control", keep_original="canonical",
                                      random_state=0),
                         LogisticRegression(max_iter=3000))
    pipe.fit(Xtr, ytr, peaaugmenter__batch=btr)
    print(f"imblearn pipeline: trained on {pipe[0].sample_indices_.shape[0]} rows; "
          f"accuracy on canonical-corrected held-out samples {pipe.score(Xte, yte):.3f}")
