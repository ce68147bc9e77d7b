"""
Which genes drive a probe's decision? Gene attributions through Semi-Clipped
============================================================================

A logistic-regression probe on the Semi-Clipped embedding predicts each
perturbation's group (complex). For one group, gradient x input of the
probe's class score, back through the adapter and the frozen encoder, gives
one attribution per gene and sample (:func:`semiclip.interpret.gradient_attributions`).
The synthetic generator knows which genes each group moves (``driver_genes``):
the top attributed genes should be enriched for them, far above chance.

Run: ``python examples/interpret_probe.py [--plot genes.png]``
(``SEMICLIP_EXAMPLE_SMALL=1``: tiny data).
"""

import os
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from semiclip import ControlNormalizer, SemiClippedTransformer
from semiclip.datasets import make_weakly_paired
from semiclip.interpret import decoder_attributions, gradient_attributions

SMALL = os.environ.get("SEMICLIP_EXAMPLE_SMALL") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)
# fewer controls than genes in this synthetic data: TVN's warning about the directions
# the controls do not span is expected here (see the FAQ)
warnings.filterwarnings("ignore", message=".*zero variance in the controls")

if SMALL:
    data = make_weakly_paired(n_perturbations=64, n_genes=120, n_batches=4,
                              controls_per_batch=12, random_state=0)
    params = dict(encoder_dim=24, max_iter=15)
else:
    data = make_weakly_paired(n_perturbations=400, random_state=0)
    params = {}

X = ControlNormalizer("tvn", control_label="control", basis="feature").fit_transform(
    data.X, data.y, batch=data.batch)
treated = ~data.is_control
group = dict(zip(data.perturbations, data.groups))
target = np.array([group[k] for k in data.y[treated]])

pipe = make_pipeline(SemiClippedTransformer(control_label="control", random_state=0, **params),
                     LogisticRegression(max_iter=2000))
# without metadata routing: the pairing keys and the bank go to the transformer step
pipe.fit(X[treated], target, semiclippedtransformer__keys=data.y[treated],
         semiclippedtransformer__image_bank=data.image_bank)

g = int(np.bincount(target).argmax())  # the largest group
rows = X[treated][target == g]
controls_mean = X[data.is_control].mean(axis=0)
att = gradient_attributions(pipe, rows, target=g, baseline=controls_mean)
score = np.abs(att.mean())

k = data.driver_genes.shape[1]
top = np.argsort(-score)[:k]
drivers = set(data.driver_genes[g].tolist())
hits = len(drivers.intersection(top.tolist()))
chance = k * k / X.shape[1]
print(f"group {g}: {rows.shape[0]} samples; {hits} of the top {k} attributed genes are among "
      f"its {k} driver genes (chance {chance:.1f})")

# the linear-decoder view of the same class direction (no gradients)
dec = decoder_attributions(pipe, target=g)
top_dec = np.argsort(-np.abs(dec.mean()))[:k]
print(f"decoder view: {len(drivers.intersection(top_dec.tolist()))} of its top {k} genes "
      "are drivers")

if "--plot" in sys.argv:
    from semiclip.plotting import plot_gene_attributions

    path = sys.argv[sys.argv.index("--plot") + 1]
    plot_gene_attributions(att.mean(), att.feature_names, top=20, path=path)
    print(f"figure saved to {path}")
