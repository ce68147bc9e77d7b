"""SemiClippedTransformer: the scikit-learn face of Semi-Clipped distillation.

The estimator validates inputs, prepares the frozen encoder and the weak
pairing, and hands arrays to the training loop of :mod:`semiclip._nn`
(the steps are in :mod:`._fit_steps`); it reaches torch only through
:mod:`semiclip._nn`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils.validation import check_is_fitted

from .._core import check_labels
from .._nn import (
    Device,
    as_row_source,
    forward_numpy,
    resolve_device,
    thread_budget,
)
from ._fit_steps import FitStepsMixin
from ._fitted import FittedStateMixin
from ._incremental import IncrementalMixin
from ._pairing import WeakPairingMixin
from ._params import TRANSFORMER_CONSTRAINTS, fill_doc
from ._ridge_fit import RidgeStartMixin

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import ArrayLike

    from .._core import ImageBank
    from .._correction import PEAAugmenter
    from .._nn import Callback

__all__ = ["SemiClippedTransformer"]


@fill_doc
class SemiClippedTransformer(
    FittedStateMixin,
    RidgeStartMixin,
    IncrementalMixin,
    FitStepsMixin,
    WeakPairingMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Distil frozen image-teacher embeddings into a transcriptomics representation.

    A frozen encoder (PCA, any fitted transformer, or a torch module) maps
    transcriptomics profiles ``X`` to features; a trainable adapter MLP maps
    those to the teacher's embedding space. The adapter is trained with a
    one-sided contrastive loss: every training sample is paired, afresh each
    epoch, with a random teacher embedding of the same key (perturbation
    and, optionally, concentration) from ``image_bank``; samples never share
    a well with their teacher, only a key (weak pairing). After ``fit``,
    ``transform`` needs transcriptomics only.

    Read more in the :ref:`User Guide <semiclipped>`.

    Parameters
    ----------
    encoder : "pca", None, fitted transformer or torch.nn.Module, default="pca"
        Frozen encoder. ``"pca"`` fits a PCA of ``encoder_dim`` components on
        the training ``X`` once and then freezes it; ``None`` is the identity;
        a fitted scikit-learn transformer is used as is, never refitted (wrap
        it in :class:`sklearn.frozen.FrozenEstimator` so that ``clone`` and
        grid search keep it fitted); any other object with a ``transform``
        method and no ``fit`` is used as is; a ``torch.nn.Module`` is frozen
        (eval mode, no gradients) and must accept ``n_features_in_`` inputs.
    [[encoder_dim]]
    hidden_layer_sizes : "auto" or tuple of int, default="auto"
        Hidden layers of the adapter (ReLU, no normalisation), positive
        integers (``()``: a linear adapter). ``"auto"``
        picks by the amount of data: linear (no hidden layer) below 2,000
        paired keys, ``(1024, 1024)`` above (the paper's adapter), see Notes.
    loss : {"infonce", "clip", "siglip", "soft_infonce", "kd", "kd_mse"}, default="infonce"
        ``"infonce"``: one-sided InfoNCE student -> teacher on L2-normalised
        vectors (the paper's loss); ``"clip"``: symmetric InfoNCE;
        ``"siglip"``: pairwise sigmoid loss; ``"soft_infonce"``: InfoNCE
        with the teacher's own similarities as soft targets (CWCL);
        ``"kd"``: cosine feature distillation; ``"kd_mse"``: mean squared
        error distillation.
    temperature : float, default=0.1
        Fixed softmax temperature of the contrastive losses.
    [[structure_weight]]
    [[preservation_weight]]
    target : {"sample", "centroid"}, default="sample"
        ``"sample"`` pairs each sample with a random teacher row of its key
        (the paper); ``"centroid"`` with the key's mean teacher embedding.
    augmenter : PEAAugmenter or None, default=None
        Student-side augmentation. With an augmenter, ``fit`` and
        ``transform`` take *uncorrected* ``X`` plus ``batch``: each epoch the
        student sees a fresh augmentation, and ``transform`` applies the
        canonical correction (TVN on all training controls) first.
    recipe : {"auto", "paper"}, default="auto"
        Where ``"auto"`` hyper-parameters get their values. ``"paper"``: the
        published recipe (adapter (1024, 1024), SGD momentum 0.95, lr 1e-3,
        weight decay 1e-4, cosine schedule to 1e-6, batch 1024, 150 epochs,
        no early stopping). ``"auto"``: defaults that also work on a few
        hundred keys (see Notes). Explicit values always win.
    solver : {"auto", "sgd", "adam", "adamw"}, default="auto"
    batch_size : "auto" or int, default="auto"
        Minibatch size; clamped to the number of training samples. The
        contrastive losses need at least 2 (and at least 2 paired keys).
    max_iter : "auto" or int, default="auto"
        Maximum number of epochs.
    learning_rate_init : "auto" or float, default="auto"
        Initial learning rate of the cosine schedule.
    momentum : float, default=0.95
        SGD momentum.
    weight_decay : "auto" or float, default="auto"
    min_learning_rate : float, default=1e-6
        End value of the cosine schedule.
    lr_schedule : {"cosine", "constant"}, default="cosine"
    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the perturbations (``groups``),
        stop when the held-out loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, keep the best epoch (see ``init``);
        ``"auto"``: on unless ``recipe="paper"`` or below 20 paired keys.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    [[unpaired]]
    [[control_label]]
    decoder_alpha : float, default=1.0
        Ridge penalty of the linear decoder behind ``inverse_transform``.
    [[image_bank]]
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``.
    n_threads : int or None, default=None
        Torch intra-op threads during ``fit``/``transform`` (restored
        afterwards). ``None``: torch's setting, shared among the fits running
        at once in this process's threads (no oversubscription in grid searches).
    strategy : {"single", "ddp"}, default="single"
        ``"ddp"`` trains as one rank of a torch DDP job (``torchrun``, or
        :func:`semiclip.distributed.fit`), each rank taking its share of every
        minibatch, negatives shared across ranks. See :mod:`semiclip.distributed`.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the shuffling, the weak-pair draws,
        the validation split and the PCA, through local generators only.
        What an integer seed reproduces bit for bit, and what only to a
        tolerance, is in the User Guide (:ref:`reproducibility`).
    verbose : int, default=0
        ``>= 1`` shows a progress bar (tqdm if installed, plain lines
        otherwise) and prints the held-out judgement after ``fit``.
    callbacks : list of Callback or None, default=None
        Hooks the training loop calls every epoch (see :mod:`semiclip.callbacks`):
        log to a CSV file (:class:`~semiclip.callbacks.CSVLogger`) or TensorBoard,
        or stop on your own criterion; run after the built-in ones, in order.
    warm_start : bool, default=False
        Continue training the fitted adapter (and keep the encoder) on the
        next ``fit``.
    [[init]]
    [[ridge_alpha]]
    [[anchor_weight]]
    [[refit]]
    train_encoder : bool, default=False
        Fine-tune the encoder jointly with the adapter instead of freezing it
        (the paper's ablation; frozen is better). The ``"pca"`` encoder
        becomes a linear layer initialised with the PCA projection; a torch
        module is copied and trained; other encoders cannot be fine-tuned.
        ``encoder_`` is then the trained torch module.

    Attributes
    ----------
    encoder_ : object
        The frozen encoder (fitted PCA, the given transformer, a torch
        module wrapper, or None).
    adapter_ : torch.nn.Sequential
        The trained adapter, on the CPU after ``fit``.
    decoder_ : object
        Linear decoder used by :meth:`inverse_transform`.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float
        Negative held-out loss per epoch (higher is better); empty without
        early stopping.
    best_loss_ : float
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run (across warm starts and ``partial_fit`` calls).
    t_ : int
        Training samples seen.
    training_params_ : dict
        The resolved hyper-parameters (no ``"auto"`` left), what every
        ``"auto"`` chose and why (``choices``), ``selected_epoch``.
    device_ : str
        Device the adapter was trained on.
    n_threads_ : int
        Torch intra-op threads used for training (see ``n_threads``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.
    validation_report_ : dict or None
        Scores on the held-out keys of early stopping (None without them):
        ``mrr`` (cross-modal retrieval of the keys' teacher centroids),
        ``mrr_chance``, its 95 % bootstrap interval over keys
        (``mrr_ci_low``, ``mrr_ci_high``), ``rsa`` (Spearman of pairwise
        cosine similarities, student vs teacher), the same for the frozen
        encoder through a ridge map (``floor_mrr``, ``floor_rsa``),
        ``below_floor``, ``above_chance``, ``generalises``, the held-out
        ``keys``, ``n_keys``, the held-out perturbations ``n_groups``,
        ``n_samples``, the ``verdict`` ("generalises", "below the floor",
        "at chance" or, below 10 perturbations, "too few held-out
        perturbations to judge"), the one-line ``summary`` and, after
        ``structure_weight="auto"``, every candidate's scores
        (``structure_weight_search``). A
        :class:`~semiclip.GeneralizationWarning` says when the adapter does
        not generalise (below the floor on both scores, or at chance), given
        at least 10 held-out keys.
    n_paired_keys_ : int
        Distinct keys used for training (validation keys included), over
        every call that trained the same adapter (``partial_fit`` chunks,
        warm starts).

    See Also
    --------
    RidgeDistiller : the closed-form ridge baseline with the same interface.
    PEAAugmenter : the PEA student augmentation.
    ControlNormalizer : deterministic control-based batch correction.

    Notes
    -----
    The paper trains on ~5,000 keys and 1.3 M samples; on a few hundred keys
    a 1024-1024 adapter overfits, so ``recipe="auto"`` uses a linear adapter
    (started at ridge) and Adam with early stopping below 2,000 paired keys,
    and caps the batch size so that an epoch has at least 8 steps.

    References
    ----------
    Bendidi et al., "A Cross Modal Knowledge Distillation & Data Augmentation
    Recipe for Improving Transcriptomics Representations through
    Morphological Features", ICML 2025, arXiv:2505.21317.

    Examples
    --------
    >>> from semiclip import SemiClippedTransformer
    >>> from semiclip.datasets import make_weakly_paired
    >>> data = make_weakly_paired(n_perturbations=60, n_genes=100, random_state=0)
    >>> est = SemiClippedTransformer(encoder_dim=32, max_iter=5, control_label="control",
    ...                              random_state=0)
    >>> Z = est.fit_transform(data.X, data.y, image_bank=data.image_bank)
    >>> Z.shape == (data.X.shape[0], data.image_bank.n_dims)
    True
    """

    _parameter_constraints = TRANSFORMER_CONSTRAINTS

    # Side inputs requested by default when metadata routing is enabled.
    __metadata_request__fit = {"image_bank": True, "keys": True, "batch": True, "groups": True}
    __metadata_request__transform = {"batch": True}

    def __init__(self, *, encoder: Any = "pca", encoder_dim: int = 256,
                 hidden_layer_sizes: str | Sequence[int] = "auto", loss: str = "infonce",
                 temperature: float = 0.1, structure_weight: float | str = 0.0,
                 preservation_weight: float = 0.0, target: str = "sample",
                 augmenter: PEAAugmenter | None = None, recipe: str = "auto", solver: str = "auto",
                 batch_size: int | str = "auto", max_iter: int | str = "auto",
                 learning_rate_init: float | str = "auto", momentum: float = 0.95,
                 weight_decay: float | str = "auto", min_learning_rate: float = 1e-6,
                 lr_schedule: str = "cosine", early_stopping: bool | str = "auto",
                 validation_fraction: float = 0.1, n_iter_no_change: int = 10, tol: float = 1e-4,
                 unpaired: str = "raise", control_label: Any = None, decoder_alpha: float = 1.0,
                 image_bank: ImageBank | None = None, device: str | Device = "auto",
                 n_threads: int | None = None, strategy: str = "single",
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0,
                 callbacks: list[Callback] | None = None, warm_start: bool = False,
                 train_encoder: bool = False, init: str = "auto", ridge_alpha: float | str = "auto",
                 anchor_weight: float = 10.0, refit: bool | str = "auto") -> None:
        self.encoder = encoder
        self.encoder_dim = encoder_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.loss = loss
        self.temperature = temperature
        self.structure_weight = structure_weight
        self.preservation_weight = preservation_weight
        self.target = target
        self.augmenter = augmenter
        self.recipe = recipe
        self.solver = solver
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.min_learning_rate = min_learning_rate
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.unpaired = unpaired
        self.control_label = control_label
        self.decoder_alpha = decoder_alpha
        self.image_bank = image_bank
        self.device = device
        self.n_threads = n_threads
        self.strategy = strategy
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.train_encoder = train_encoder
        self.init = init
        self.ridge_alpha = ridge_alpha
        self.anchor_weight = anchor_weight
        self.refit = refit

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None, *, image_bank: ImageBank | None = None,
            keys: ArrayLike | None = None, batch: ArrayLike | None = None,
            groups: ArrayLike | None = None) -> SemiClippedTransformer:
        """Train the adapter on weakly paired data.

        Parameters
        ----------
        X : array-like, sparse matrix or on-disk matrix of shape (n_samples, n_features)
            Transcriptomics profiles (batch-corrected unless an augmenter is
            used, in which case uncorrected). A ``numpy.memmap`` (e.g.
            ``np.load(path, mmap_mode="r")``) or the ``X`` of an AnnData
            opened with ``backed="r"`` stays on disk: minibatches are read as
            needed (ahead of the compute), and the ``"pca"`` encoder is fitted
            on a random subset of at most 65,536 rows.
        y : array-like of shape (n_samples,), default=None
            Pairing key of every sample; ``y == control_label`` marks
            controls. Ignored when ``keys`` is given.
        image_bank : ImageBank
            Frozen teacher embeddings with their keys. Falls back to the
            ``image_bank`` parameter.
        [[fit_keys]]
        batch : array-like of shape (n_samples,), default=None
            Plate / batch of every sample; required with an augmenter.
        [[fit_groups]]

        Returns
        -------
        self : object
        """
        with thread_budget(self.n_threads) as threads:
            labels, name = (y, "y") if keys is None else (keys, "keys")
            self._fit(
                X, labels, image_bank=image_bank, batch=batch, key_name=name, threads=threads,
                groups=groups,
            )
        return self

    def transform(self, X: ArrayLike, *, batch: ArrayLike | None = None) -> np.ndarray:
        """Embed transcriptomics profiles in the teacher space.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        batch : array-like of shape (n_samples,), default=None
            Needed only with an augmenter (canonical correction per batch).

        Returns
        -------
        Z : ndarray of shape (n_samples, n_dims), float32
        """
        check_is_fitted(self)
        source = as_row_source(X)
        if source is not None:
            with thread_budget(self.n_threads):
                self._check_fit_input(X, reset=False)
                return self._transform_source(source, resolve_device(self.device))
        X = self._check_X(X, reset=False)
        with thread_budget(self.n_threads):
            if getattr(self, "correction_", None) is not None:
                batch = check_labels(batch, X.shape[0], name="batch", allow_none=True)
                if batch is None:
                    raise ValueError(
                        "transform(X, batch=...) is required: this model was fitted with an "
                        "augmenter and applies the canonical batch correction before the "
                        "encoder. Pass one batch label per sample."
                    )
                X = self.correction_.transform(X, batch=batch)
            device = resolve_device(self.device)
            return forward_numpy(self.adapter_, self._encode(X, device), device)

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None, *,
                      image_bank: ImageBank | None = None, keys: ArrayLike | None = None,
                      batch: ArrayLike | None = None, groups: ArrayLike | None = None
                      ) -> np.ndarray:
        """Fit, then embed ``X`` (same as ``fit(...).transform(X)``)."""
        self.fit(X, y, image_bank=image_bank, keys=keys, batch=batch, groups=groups)
        return self.transform(X, batch=batch)
