"""Parameter constraints of the distillation estimators, and the docs they share.

``fill_doc`` (from :mod:`semiclip._core` with :data:`PARAM_DOCS`)
replaces ``[[name]]`` lines of a docstring with the shared numpydoc entry of
parameter ``name``, so that :class:`~semiclip.SemiClippedTransformer` and
:class:`~semiclip.RidgeDistiller` describe their common parameters with the
same words.
"""

import numbers

from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .._core import ImageBank
from .._core import fill_doc as _fill_doc
from .._core.compat import IntegerInterval
from .._nn import LOSSES, Device, Module

__all__ = ["PARAM_DOCS", "SHARED_CONSTRAINTS", "TRANSFORMER_CONSTRAINTS", "fill_doc"]

SHARED_CONSTRAINTS = {
    "encoder": [StrOptions({"pca"}), None, HasMethods(["transform"])],
    "encoder_dim": [IntegerInterval(1, None, closed="left")],
    "unpaired": [StrOptions({"raise", "drop"})],
    "control_label": "no_validation",
    "image_bank": [None, ImageBank],
    "random_state": ["random_state"],
}

TRANSFORMER_CONSTRAINTS = {
    **SHARED_CONSTRAINTS,
    "encoder": [*SHARED_CONSTRAINTS["encoder"], Module],
    "hidden_layer_sizes": [StrOptions({"auto"}), "array-like"],
    "loss": [StrOptions(set(LOSSES))],
    "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    "structure_weight": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
    "preservation_weight": [Interval(numbers.Real, 0, None, closed="left")],
    "target": [StrOptions({"sample", "centroid"})],
    "augmenter": [None, HasMethods(["fit", "sample"])],
    "recipe": [StrOptions({"auto", "paper"})],
    "solver": [StrOptions({"auto", "sgd", "adam", "adamw"})],
    "batch_size": [StrOptions({"auto"}), IntegerInterval(1, None, closed="left")],
    "max_iter": [StrOptions({"auto"}), IntegerInterval(1, None, closed="left")],
    "learning_rate_init": [
        StrOptions({"auto"}),
        Interval(numbers.Real, 0, None, closed="neither"),
    ],
    "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
    "weight_decay": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
    "min_learning_rate": [Interval(numbers.Real, 0, None, closed="left")],
    "lr_schedule": [StrOptions({"cosine", "constant"})],
    "early_stopping": [StrOptions({"auto"}), "boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_iter_no_change": [IntegerInterval(1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "decoder_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
    "device": [str, Device],
    "n_threads": [None, IntegerInterval(1, None, closed="left")],
    "strategy": [StrOptions({"single", "ddp"})],
    "verbose": ["verbose"],
    "callbacks": [None, list],
    "warm_start": ["boolean"],
    "train_encoder": ["boolean"],
    "init": [StrOptions({"auto", "ridge", "random"})],
    "ridge_alpha": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
    "anchor_weight": [Interval(numbers.Real, 0, None, closed="left")],
    "refit": [StrOptions({"auto"}), "boolean"],
}

PARAM_DOCS = {
    "encoder_dim": """\
encoder_dim : int, default=256
    Components of the ``"pca"`` encoder (capped by the data size).""",
    "unpaired": """\
unpaired : {"raise", "drop"}, default="raise"
    What to do with non-control training samples whose key has no bank
    row: raise a ValueError naming them, or drop them from the
    distillation (they still shape the encoder and decoder).""",
    "control_label": """\
control_label : scalar or None, default=None
    Key of control samples (``y == control_label``); they are never
    paired with the teacher.""",
    "image_bank": """\
image_bank : ImageBank or None, default=None
    Teacher bank used when ``fit`` receives none. Passing the bank to
    ``fit`` (routed as metadata in pipelines and grid searches) is the
    usual path; this parameter serves tools that can only set
    parameters. ``clone`` shares the (immutable) bank instead of copying it.""",
    "structure_weight": """\
structure_weight : float or "auto", default=0.0
    Weight of the teacher-structure term added to the loss: the mean over
    the minibatch's pairs of ``(cos(s_i, s_j) - cos(t_i, t_j))**2``
    (relational distillation, :func:`semiclip._nn.relational_loss`), which
    teaches the graded similarity between perturbations that
    known-relationship recall and mAP depend on, where the contrastive
    loss only teaches to pick the partner. ``"auto"`` trains one adapter per
    weight of ``(0, 1, 10)`` on the same split and keeps the one with the
    highest held-out-key MRR + RSA (see ``validation_report_``); it needs
    early stopping's held-out keys and fewer than 2,000 paired keys, and
    is 0 otherwise (``partial_fit``, ``strategy="ddp"``, on-disk ``X``).
    The chosen value is in ``training_params_``.""",
    "preservation_weight": """\
preservation_weight : float, default=0.0
    Weight of the input-preservation term: 1 - linear CKA between the
    minibatch's student rows and the frozen encoder's outputs
    (:func:`semiclip._nn.cka_loss`). It keeps the embedding's similarity
    structure close to the transcriptomics' (interpretability) at some
    cost in recall; see the User Guide for the measured trade-off.""",
    "fit_groups": """\
groups : array-like of shape (n_samples,), default=None
    Perturbation of every sample: held-out sets (early stopping, the
    ``"auto"`` choices, the validation report) hold out whole groups, so
    that they never share a perturbation with training. Default: the part
    of each key before its first ``"|"`` (keys ``"compound|dose"`` from
    :func:`semiclip.datasets.make_keys` give the compound); other keys are their own
    group. Routed as metadata like ``keys``.""",
    "fit_keys": """\
keys : array-like of shape (n_samples,), default=None
    Pairing keys when ``y`` holds something else, typically the target
    of a probe later in a Pipeline (e.g. mechanism of action):
    ``pipe.fit(X, moa, semiclippedtransformer__keys=perturbation)``.""",
}

fill_doc = _fill_doc(PARAM_DOCS)
"""Decorator filling the ``[[name]]`` lines with :data:`PARAM_DOCS`."""
