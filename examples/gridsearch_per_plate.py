"""
Grid search with per-plate batch correction inside the Pipeline
===============================================================

On a real screen the batch correction belongs *inside* the cross-validation:
the controls of each plate are estimated on the training fold only, and the
held-out fold is corrected with its own plate's statistics. This example puts
a :class:`semiclip.ControlNormalizer` (per plate) in a
:class:`~sklearn.pipeline.Pipeline` before the distiller and tunes the
pipeline with :class:`~sklearn.model_selection.GridSearchCV`:

- folds from :class:`semiclip.model_selection.PerturbationGroupKFold`: no
  perturbation in both the training and the test side of a split, and the
  control wells spread over every fold (scikit-learn's ``GroupKFold`` would
  put all controls in one fold, leaving a training fold without any);
- the score, :func:`semiclip.metrics.make_cross_modal_scorer` (MRR of each
  held-out perturbation's teacher), receives ``batch`` through scikit-learn's
  metadata routing and hands it to ``Pipeline.transform``, which gives it to
  the ``ControlNormalizer``.

The scorer warns when a fold's score rests on fewer than 20 perturbations:
such a score is too noisy to choose between models.

Run: ``python examples/gridsearch_per_plate.py`` (``SEMICLIP_EXAMPLE_SMALL=1``: tiny).
"""

import os

import sklearn
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from semiclip import ControlNormalizer, RidgeDistiller
from semiclip.datasets import make_weakly_paired
from semiclip.metrics import make_cross_modal_scorer
from semiclip.model_selection import PerturbationGroupKFold

SMALL = os.environ.get("SEMICLIP_EXAMPLE_SMALL") == "1"
sklearn.set_config(enable_metadata_routing=True)

data = make_weakly_paired(n_perturbations=120 if SMALL else 400, n_genes=60 if SMALL else 978,
                          n_batches=4, controls_per_batch=16 if SMALL else 48, random_state=0)
print(f"{data.X.shape[0]} wells, {len(set(data.batch))} plates, "
      f"{int(data.is_control.sum())} control wells")

# %%
# The pipeline: per-plate centering on the controls, then the ridge distiller
# (the teacher bank is a parameter, so ``fit`` only needs X, y and batch).
pipe = make_pipeline(
    ControlNormalizer("center_scale", control_label="control"),
    RidgeDistiller(encoder_dim=16 if SMALL else 128, control_label="control",
                   image_bank=data.image_bank, random_state=0),
)
# ``batch`` must reach the scorer (which passes it on to transform): request it.
scorer = make_cross_modal_scorer(data.image_bank, control_label="control")
scorer.set_score_request(batch=True)
cv = PerturbationGroupKFold(n_splits=3, control_label="control")
search = GridSearchCV(pipe, {"ridgedistiller__alpha": [0.1, 10.0, 1000.0]}, scoring=scorer,
                      cv=cv, n_jobs=1, error_score="raise")
# groups -> the splitter, batch -> ControlNormalizer.fit/.transform and the scorer
search.fit(data.X, data.y, groups=data.y, batch=data.batch)

for _, test in cv.split(data.X, groups=data.y):
    print(f"test fold: {len(set(data.y[test])) - 1} perturbations, "
          f"{int(data.is_control[test].sum())} control wells")
res = search.cv_results_
for i, params in enumerate(res["params"]):
    print(f"{params}  held-out MRR {res['mean_test_score'][i]:.3f} ± "
          f"{res['std_test_score'][i]:.3f}")
print("best:", search.best_params_, f"MRR {search.best_score_:.3f}")
