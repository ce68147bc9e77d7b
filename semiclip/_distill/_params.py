"""Parameter constraints of the distillation estimators, and the docs they share.

``fill_doc`` (from :mod:`semiclip._core` with :data:`PARAM_DOCS`)
replaces ``[[name]]`` lines of a docstring with the shared numpydoc entry of
parameter ``name``, so that :class:`~semiclip.SemiClippedTransformer` and
:class:`~semiclip.RidgeDistiller` describe their common parameters with the
same words.
"""

import numbers

from .._core import ImageBank
from .._core import fill_doc as _fill_doc
from .._core.compat import HasMethods, IntegerInterval, Interval, StrOptions
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
    "solver": """\
solver : {"auto", "sgd", "adam", "adamw"}, default="auto"
    Optimizer of the adapter: SGD with ``momentum`` (the paper's), Adam,
    or AdamW (Adam with decoupled weight decay). ``"auto"``: ``"sgd"`` with
    ``recipe="paper"``, ``"adam"`` otherwise.""",
    "weight_decay": """\
weight_decay : "auto" or float, default="auto"
    L2 penalty on the adapter's weights, passed to the optimizer (added to
    the gradient for SGD and Adam, decoupled for AdamW); 0 turns it off.
    ``"auto"``: 1e-4 for both recipes.""",
    "lr_schedule": """\
lr_schedule : {"cosine", "constant"}, default="cosine"
    Learning rate over the optimisation steps: ``"cosine"`` decays it from
    ``learning_rate_init`` to ``min_learning_rate`` along half a cosine
    over the ``max_iter`` epochs; ``"constant"`` keeps
    ``learning_rate_init``.""",
    "n_iter_no_change": """\
n_iter_no_change : int, default=10
    Epochs without an improvement of at least ``tol`` after which
    training stops: of the held-out score with early stopping, of the
    training loss without it (scikit-learn's MLP rule).""",
    "tol": """\
tol : float, default=1e-4
    Smallest change of the monitored figure (held-out score or training
    loss, see ``n_iter_no_change``) that counts as an improvement.""",
    "fit_X": """\
X : array-like, sparse matrix or on-disk matrix of shape (n_samples, n_features)
    Transcriptomics profiles (batch-corrected unless an augmenter is
    used, in which case uncorrected). A ``numpy.memmap`` (e.g.
    ``np.load(path, mmap_mode="r")``) or the ``X`` of an AnnData
    opened with ``backed="r"`` stays on disk: minibatches are read as
    needed (ahead of the compute), and the ``"pca"`` encoder is fitted
    on a random subset of at most 65,536 rows.""",
    "ridge_fit_X": """\
X : array-like or sparse matrix of shape (n_samples, n_features)
    Transcriptomics profiles (batch-corrected).""",
    "fit_y": """\
y : array-like of shape (n_samples,), default=None
    Pairing key of every sample; ``y == control_label`` marks
    controls. Ignored when ``keys`` is given.""",
    "fit_image_bank": """\
image_bank : ImageBank, default=None
    Frozen teacher embeddings with their keys. Falls back to the
    ``image_bank`` parameter.""",
    "fit_batch": """\
batch : array-like of shape (n_samples,), default=None
    Plate / batch of every sample; required with an augmenter.""",
    "init": """\
init : {"auto", "ridge", "random"}, default="auto"
    Where the adapter starts. ``"ridge"``: at the closed-form ridge map
    of the frozen features onto each key's teacher centroid (alpha
    ``ridge_alpha``, outputs rescaled to the centroids' spread), the
    estimate of the conditional mean of the teacher that RSA rewards;
    the contrastive fine-tune then starts from there, held near it by
    ``anchor_weight``, and with held-out keys the number of epochs is the
    one (0 = the ridge start itself) of the best held-out MRR + RSA: the
    fewest within one standard error of the best over 5 folds of the
    training perturbations below 2,000 paired keys, the best on the
    validation split above. With hidden layers the adapter is residual,
    ``linear(x) + mlp(x)``: the ridge map on the linear path and an MLP
    whose last layer starts at zero, so it starts at the ridge map too.
    ``"random"``: PyTorch's default initialisation of the plain MLP, and
    the epoch of the best held-out loss (the behaviour before this
    parameter). ``"auto"``: ``"ridge"`` for an adapter trained from
    scratch with ``X`` in memory, ``"random"`` otherwise (``partial_fit``,
    on-disk ``X``, a warm start, a ``Checkpoint`` callback,
    ``recipe="paper"``); the choice and the reason are in
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
    plain contrastive fine-tune. Ignored with a random start. With early
    stopping the held-out choice of epochs (by MRR + RSA) often keeps the
    start itself; with ``early_stopping=False`` the anchored fine-tune runs
    to convergence and this weight sets where the model sits on the
    RSA-retrieval trade (on the demo data, 3: replicate mAP +0.08 and RSA
    -0.01 from the ridge map; see the "choosing settings" guide).""",
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
    "encoder": """\
encoder : "pca", None, fitted transformer or torch.nn.Module, default="pca"
    Frozen encoder. ``"pca"`` fits a PCA of ``encoder_dim`` components on
    the training ``X`` once and then freezes it; ``None`` is the identity;
    a fitted scikit-learn transformer is used as is, never refitted (wrap
    it in :class:`sklearn.frozen.FrozenEstimator` so that ``clone`` and
    grid search keep it fitted); any other object with a ``transform``
    method and no ``fit`` is used as is; a ``torch.nn.Module`` is frozen
    (eval mode, no gradients) and must accept ``n_features_in_`` inputs.""",
    "hidden_layer_sizes": """\
hidden_layer_sizes : "auto" or tuple of int, default="auto"
    Hidden layers of the adapter (ReLU, no normalisation), positive
    integers (``()``: a linear adapter). ``"auto"``
    picks by the amount of data: linear (no hidden layer) below 2,000
    paired keys, ``(1024, 1024)`` above (the paper's adapter), see Notes.""",
    "loss": """\
loss : {"infonce", "clip", "siglip", "soft_infonce", "kd", "kd_mse"}, default="infonce"
    ``"infonce"``: one-sided InfoNCE student -> teacher on L2-normalised
    vectors (the paper's loss); ``"clip"``: symmetric InfoNCE;
    ``"siglip"``: pairwise sigmoid loss; ``"soft_infonce"``: InfoNCE
    with the teacher's own similarities as soft targets (CWCL);
    ``"kd"``: cosine feature distillation; ``"kd_mse"``: mean squared
    error distillation.""",
    "augmenter": """\
augmenter : PEAAugmenter or None, default=None
    Student-side augmentation. With an augmenter, ``fit`` and
    ``transform`` take *uncorrected* ``X`` plus ``batch``: each epoch the
    student sees a fresh augmentation, and ``transform`` applies the
    canonical correction (TVN on all training controls) first.""",
    "recipe": """\
recipe : {"auto", "paper"}, default="auto"
    Where ``"auto"`` hyper-parameters get their values. ``"paper"``: the
    published recipe (adapter (1024, 1024), SGD momentum 0.95, lr 1e-3,
    weight decay 1e-4, cosine schedule to 1e-6, batch 1024, 150 epochs,
    no early stopping). ``"auto"``: defaults that also work on a few
    hundred keys (see Notes). Explicit values always win.""",
    "device": """\
device : str, default="auto"
    ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ``"mps"``.""",
    "n_threads": """\
n_threads : int or None, default=None
    Torch intra-op threads during ``fit``/``transform`` (restored
    afterwards). ``None``: torch's setting, shared among the fits running
    at once in this process's threads (no oversubscription in grid searches).""",
    "strategy": """\
strategy : {"single", "ddp"}, default="single"
    ``"ddp"`` trains as one rank of a torch DDP job (``torchrun``, or
    :func:`semiclip.distributed.fit`), each rank taking its share of every
    minibatch, negatives shared across ranks. See :mod:`semiclip.distributed`.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds the weight initialisation, the shuffling, the weak-pair draws,
    the validation split and the PCA, through local generators only.
    What an integer seed reproduces bit for bit, and what only to a
    tolerance, is in the User Guide (:ref:`reproducibility`).""",
    "callbacks": """\
callbacks : list of Callback or None, default=None
    Hooks the training loop calls every epoch (see :mod:`semiclip.callbacks`):
    log to a CSV file (:class:`~semiclip.callbacks.CSVLogger`) or TensorBoard,
    or stop on your own criterion; run after the built-in ones, in order.""",
    "target": """\
target : {"sample", "centroid"}, default="sample"
    ``"sample"`` pairs each sample with a random teacher row of its key
    (the paper); ``"centroid"`` with the key's mean teacher embedding.""",
    "early_stopping": """\
early_stopping : "auto" or bool, default="auto"
    Hold out ``validation_fraction`` of the perturbations (``groups``),
    stop when the held-out loss has not improved by ``tol`` for
    ``n_iter_no_change`` epochs, keep the best epoch (see ``init``);
    ``"auto"``: on unless ``recipe="paper"`` or below 20 paired keys.""",
    "warm_start": """\
warm_start : bool, default=False
    Continue training the fitted adapter (and keep the encoder) on the
    next ``fit``.""",
    "train_encoder": """\
train_encoder : bool, default=False
    Fine-tune the encoder jointly with the adapter instead of freezing it
    (the paper's ablation; frozen is better). The ``"pca"`` encoder
    becomes a linear layer initialised with the PCA projection; a torch
    module is copied and trained; other encoders cannot be fine-tuned.
    ``encoder_`` is then the trained torch module.""",
}

fill_doc = _fill_doc(PARAM_DOCS)
"""Decorator filling the ``[[name]]`` lines with :data:`PARAM_DOCS`."""
