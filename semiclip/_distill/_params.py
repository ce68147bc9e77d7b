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
    "init": """\
init : {"auto", "ridge", "random"}, default="auto"
    Where the adapter starts. ``"ridge"``: at the closed-form ridge map
    of the frozen features onto each key's teacher centroid (alpha
    ``ridge_alpha``, outputs rescaled to the centroids' spread), the
    estimate of the conditional mean of the teacher that RSA rewards;
    the contrastive fine-tune then starts from there, held near it by
    ``anchor_weight``, and with held-out keys the epoch kept is the one
    (0 = the ridge start itself) of the best held-out MRR + RSA.
    ``"random"``: PyTorch's default initialisation, and the epoch of the
    best held-out loss (the behaviour before this parameter).
    ``"auto"``: ``"ridge"`` for a linear adapter trained from scratch
    with ``X`` in memory, ``"random"`` otherwise (hidden layers,
    ``partial_fit``, on-disk ``X``); the choice and the reason are in
    ``training_params_["choices"]``.""",
    "ridge_alpha": """\
ridge_alpha : "auto" or float, default="auto"
    Penalty of the ridge start. ``"auto"``: K-fold (5) over the training
    perturbation groups (see ``groups``), the alpha of the best mean
    held-out MRR + RSA among 0.001-100 times the mean eigenvalue of the
    features' centred Gram matrix (warns and uses 1 times it with fewer
    than 10 groups). The chosen value and every candidate's scores are in
    ``training_params_``.""",
    "anchor_weight": """\
anchor_weight : float, default=10.0
    Weight of the anchor term of a ridge start: ``anchor_weight *
    mean ||s - s_start||^2 / E||c - mean c||^2``, the squared distance of
    each student row from the ridge start's output on the same input,
    relative to the teacher centroids' spread. Higher stays nearer the
    ridge map (RSA, the teacher's graded similarity); lower lets the
    contrastive loss move toward retrieval and replicate mAP. 0 is the
    plain contrastive fine-tune. Ignored with a random start.""",
    "refit": """\
refit : "auto" or bool, default="auto"
    After choosing the epoch on held-out keys (a ridge start with early
    stopping), fit the ridge start again on every key with the chosen
    alpha and train that many epochs on every key. ``"auto"``: on below
    2,000 paired keys. ``validation_report_`` always describes the model
    of the held-out split.""",
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
