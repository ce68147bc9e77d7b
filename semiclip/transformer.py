"""SemiClippedTransformer: the scikit-learn face of Semi-Clipped distillation.

The estimator validates inputs, prepares the frozen encoder and the weak
pairing, and hands arrays to :func:`semiclip._training.train_adapter`; it
knows nothing about tensors beyond that call and the forward pass in
``transform``.
"""

import copy
import io
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._adapter import adapter_layer_sizes, init_adapter, make_adapter
from ._bank import ImageBank, PairSampler
from ._base import WeakPairingMixin
from ._data_source import as_row_source
from ._encoder import TorchModuleEncoder, encoder_to_torch, freeze_module
from ._device import resolve_device
from ._losses import LOSSES
from ._pea_encoded import EncodedPEA, linear_encoder_map
from ._recipes import resolve_recipe
from ._scaling import ScalingMixin
from ._threads import thread_budget
from ._training import TrainConfig, TrainData, make_optimizer, train_adapter
from ._validation import check_finite_rows, check_labels, control_mask


class SemiClippedTransformer(
    ScalingMixin,
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
        grid search keep it fitted); a ``torch.nn.Module`` is frozen (eval
        mode, no gradients).
    encoder_dim : int, default=256
        Components of the ``"pca"`` encoder (capped by the data size).
    hidden_layer_sizes : "auto" or tuple of int, default="auto"
        Hidden layers of the adapter (ReLU, no normalisation). ``"auto"``
        picks by the amount of data: linear (no hidden layer) below 2,000
        paired keys, ``(1024, 1024)`` above (the paper's adapter), see Notes.
    loss : {"infonce", "clip", "siglip", "kd", "kd_mse"}, default="infonce"
        ``"infonce"``: one-sided InfoNCE student -> teacher on L2-normalised
        vectors (the paper's loss); ``"clip"``: symmetric InfoNCE;
        ``"siglip"``: pairwise sigmoid loss; ``"kd"``: cosine feature
        distillation; ``"kd_mse"``: mean squared error distillation.
    temperature : float, default=0.1
        Fixed softmax temperature of the contrastive losses.
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
        Minibatch size; clamped to the number of training samples.
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
        Hold out ``validation_fraction`` of the keys (no key on both sides),
        stop when the held-out loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs and restore the best weights. ``"auto"``:
        on unless ``recipe="paper"`` or there are fewer than 20 paired keys.
    validation_fraction : float, default=0.1
        Fraction of keys held out for early stopping.
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    unpaired : {"raise", "drop"}, default="raise"
        What to do with non-control training samples whose key has no bank
        row: raise a ValueError naming them, or drop them from the
        contrastive training (they still shape the encoder and decoder).
    control_label : scalar or None, default=None
        Key of control samples (``y == control_label``): never paired; used
        by the augmenter and the canonical correction.
    decoder_alpha : float, default=1.0
        Ridge penalty of the linear decoder behind ``inverse_transform``.
    image_bank : ImageBank or None, default=None
        Teacher bank used when ``fit`` receives none. Passing the bank to
        ``fit`` (routed as metadata in pipelines and grid searches) is the
        usual path; this parameter serves tools that can only set
        parameters. ``clone`` shares the (immutable) bank instead of copying it.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``.
    n_threads : int or None, default=None
        Torch intra-op threads during ``fit``/``transform`` (restored
        afterwards). ``None``: torch's current setting (which joblib's loky
        and dask workers already cap per process), divided by the number of
        fits running at once in this process's threads, so that parallel
        grid searches do not oversubscribe the cores.
    strategy : {"single", "ddp"}, default="single"
        ``"ddp"`` trains as one rank of a torch DDP job (launched with
        ``torchrun``, or with :func:`semiclip.distributed.fit`): every rank
        takes its share of each global minibatch of ``batch_size`` samples,
        negatives are shared across ranks and gradients averaged, so the run
        matches a one-process fit. See :mod:`semiclip.distributed`.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the shuffling, the weak-pair draws,
        the validation split and the PCA, through local generators only.
    verbose : int, default=0
        ``>= 1`` shows a progress bar (tqdm if installed, plain lines
        otherwise).
    warm_start : bool, default=False
        Continue training the fitted adapter (and keep the encoder) on the
        next ``fit``.
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
        The resolved hyper-parameters (no ``"auto"`` left).
    device_ : str
        Device the adapter was trained on.
    n_threads_ : int
        Torch intra-op threads used for training (see ``n_threads``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.
    n_paired_keys_ : int
        Distinct keys used for training (validation keys included).

    See Also
    --------
    RidgeDistiller : the closed-form ridge baseline with the same interface.
    PEAAugmenter : the PEA student augmentation.
    ControlNormalizer : deterministic control-based batch correction.

    Notes
    -----
    The paper trains on ~5,000 keys and 1.3 M samples. On a few hundred keys
    the same recipe runs only a few hundred optimisation steps and a
    1024-1024 adapter overfits, so ``recipe="auto"`` adapts to the data:
    a linear adapter and Adam with early stopping on held-out keys below
    2,000 paired keys, the paper's adapter above; the batch size is capped
    so that an epoch has at least 8 steps.

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

    _parameter_constraints = {
        "encoder": [
            StrOptions({"pca"}),
            None,
            HasMethods(["transform"]),
            torch.nn.Module,
        ],
        "encoder_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [StrOptions({"auto"}), "array-like"],
        "loss": [StrOptions(set(LOSSES))],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "target": [StrOptions({"sample", "centroid"})],
        "augmenter": [None, HasMethods(["fit", "sample"])],
        "recipe": [StrOptions({"auto", "paper"})],
        "solver": [StrOptions({"auto", "sgd", "adam", "adamw"})],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
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
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "unpaired": [StrOptions({"raise", "drop"})],
        "control_label": "no_validation",
        "decoder_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "image_bank": [None, ImageBank],
        "device": [str, torch.device],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "strategy": [StrOptions({"single", "ddp"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "train_encoder": ["boolean"],
    }

    # Side inputs requested by default when metadata routing is enabled.
    __metadata_request__fit = {"image_bank": True, "keys": True, "batch": True}
    __metadata_request__transform = {"batch": True}

    def __init__(
        self,
        *,
        encoder="pca",
        encoder_dim=256,
        hidden_layer_sizes="auto",
        loss="infonce",
        temperature=0.1,
        target="sample",
        augmenter=None,
        recipe="auto",
        solver="auto",
        batch_size="auto",
        max_iter="auto",
        learning_rate_init="auto",
        momentum=0.95,
        weight_decay="auto",
        min_learning_rate=1e-6,
        lr_schedule="cosine",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        unpaired="raise",
        control_label=None,
        decoder_alpha=1.0,
        image_bank=None,
        device="auto",
        n_threads=None,
        strategy="single",
        random_state=None,
        verbose=0,
        warm_start=False,
        train_encoder=False,
    ):
        self.encoder = encoder
        self.encoder_dim = encoder_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.loss = loss
        self.temperature = temperature
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
        self.warm_start = warm_start
        self.train_encoder = train_encoder

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, image_bank=None, keys=None, batch=None):
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
        keys : array-like of shape (n_samples,), default=None
            Pairing keys when ``y`` holds something else, typically the
            target of a probe later in a Pipeline (e.g. mechanism of action):
            ``pipe.fit(X, moa, semiclippedtransformer__keys=perturbation)``.
        batch : array-like of shape (n_samples,), default=None
            Plate / batch of every sample; required with an augmenter.

        Returns
        -------
        self : object
        """
        with thread_budget(self.n_threads) as threads:
            labels, name = (y, "y") if keys is None else (keys, "keys")
            self._fit(
                X, labels, image_bank=image_bank, batch=batch, key_name=name, threads=threads
            )
        return self

    def _validation_split(self, codes, paired_idx, rs, early_stopping, explicit):
        """Hold out a fraction of keys (never samples of a training key)."""
        if not early_stopping:
            return paired_idx, None
        keys = np.unique(codes[paired_idx])
        n_val = int(round(self.validation_fraction * keys.size))
        if n_val < 2 or keys.size - n_val < 2:
            if explicit:
                raise ValueError(
                    f"early_stopping needs at least 2 validation keys and 2 training keys; "
                    f"validation_fraction={self.validation_fraction} of {keys.size} paired "
                    "keys gives "
                    f"{n_val}. Raise validation_fraction, add keys, or set early_stopping=False."
                )
            return paired_idx, None
        val_keys = rs.permutation(keys)[:n_val]
        is_val = np.isin(codes[paired_idx], val_keys)
        return paired_idx[~is_val], paired_idx[is_val]

    def _fit(self, X, y, *, image_bank, batch, key_name="y", incremental=False, threads=None):
        warm = (self.warm_start or incremental) and hasattr(self, "adapter_")
        X, source = self._check_fit_input(X, reset=not warm)
        n = X.shape[0]
        y = check_labels(y, n, name=key_name)
        batch = check_labels(batch, n, name="batch", allow_none=True)
        if image_bank is None and incremental and warm:
            image_bank = getattr(self, "_partial_bank", None)
        bank = self._resolve_bank(image_bank)
        if self.augmenter is not None:
            self._check_augmenter_inputs(X, batch)
        if warm and bank.n_dims != self._n_features_out:
            raise ValueError(
                f"warm_start: the fitted adapter outputs {self._n_features_out} dimensions but "
                f"image_bank has {bank.n_dims}. Use a bank of the same embedding model, or "
                "set warm_start=False to train a new adapter."
            )
        is_ctl = control_mask(y, self.control_label)
        codes = self._pairing(y, is_ctl, bank)
        paired_idx = np.flatnonzero(codes >= 0)
        n_keys = np.unique(codes[paired_idx]).size

        rs, ddp = self._random_state_and_context()
        seed = int(rs.randint(2**31 - 1))
        rng = np.random.default_rng(seed)
        if incremental and warm:  # a fresh shuffle and pairing draw for every chunk
            rng = np.random.default_rng([seed, self._history_.n_iter])
        device = resolve_device(self.device) if ddp is None else ddp.device
        if ddp is not None:
            self._check_ranks_agree(
                ddp, n_samples=n, n_features=X.shape[1], n_paired=paired_idx.size,
                n_keys=n_keys, seed=seed,
            )
        if source is not None and (self.augmenter is not None or self.train_encoder):
            raise ValueError(
                "An on-disk X (numpy.memmap, backed AnnData) cannot be used with an augmenter "
                "or train_encoder=True, which need X in memory; load it with np.asarray(X)."
            )

        Xc = X
        if self.augmenter is not None:
            Xc = self._fit_augmentation(X, y, batch)

        refit_encoder = not (incremental and warm)  # partial_fit: frozen after the first call
        if source is None:
            if refit_encoder:
                self.encoder_ = self._fit_encoder(Xc, rs)
            Z = self._encode(Xc, device)
            d_in = Z.shape[1]
        else:
            if refit_encoder:
                self.encoder_ = self._encoder_from_source(source, rs)
            Z, d_in = None, self._encoded_width(source)

        params = resolve_recipe(self, n_samples=paired_idx.size, n_keys=n_keys)
        if incremental:
            if warm:
                params = dict(self.training_params_)
            params["early_stopping"] = False
        explicit_es = self.early_stopping is True and not incremental
        train_idx, val_idx = self._validation_split(
            codes, paired_idx, rs, params["early_stopping"], explicit_es
        )
        params["early_stopping"] = val_idx is not None
        self.training_params_ = params

        if warm:
            adapter = self.adapter_
            if adapter_layer_sizes(adapter)[0] != d_in:
                raise ValueError(
                    f"warm_start: the adapter expects {adapter_layer_sizes(adapter)[0]} encoder "
                    f"features but the encoder now gives {d_in}."
                )
        else:
            adapter = make_adapter(d_in, params["hidden_layer_sizes"], bank.n_dims)
            init_adapter(adapter, seed)

        model, inputs = adapter, Z
        if self.train_encoder:
            model, inputs = self._trainable_encoder(adapter, Xc)
        sampler = PairSampler(bank, codes[train_idx], target=self.target)
        if source is None:
            data = TrainData(features=inputs[train_idx], codes=codes[train_idx], sampler=sampler)
        else:
            data = TrainData(features=None, codes=codes[train_idx], sampler=sampler)
            data.stream = self._stream(source, train_idx, device)
        if val_idx is not None:
            if source is None:
                data.val_features = inputs[val_idx]
            else:
                data.val_stream = self._stream(source, val_idx, device)
            data.val_codes = codes[val_idx]
            data.val_table = bank.centroids()
        if self.augmenter is not None:
            data.epoch_features = self._epoch_features(X, y, batch, train_idx, device)
            # on an accelerator, drawn in the background while the device trains;
            # on the CPU a drawing thread would only contend for the GIL and cores
            # (measured slower than drawing at the start of each epoch)
            data.epoch_features_ahead = device.type != "cpu"

        config = self._train_config(params, incremental)
        history = self._history_ if warm else None
        optimizer = getattr(self, "_partial_optimizer", None) if incremental and warm else None
        if incremental and optimizer is None:
            optimizer = make_optimizer(model.parameters(), config)
        self.n_threads_ = torch.get_num_threads() if threads is None else threads.n_threads
        history = train_adapter(
            model, data, config, rng=rng, device=device, history=history, dist=ddp,
            optimizer=optimizer, on_epoch_start=None if threads is None else threads.rebalance,
        )
        if incremental:
            self._partial_optimizer, self._partial_bank = optimizer, bank
        if self.train_encoder:
            self.encoder_ = TorchModuleEncoder(freeze_module(model[0].cpu()), torch.device("cpu"))
            Z = self._encode(Xc, device)
        self.adapter_ = adapter.cpu()
        self._history_ = history
        self.device_ = str(device)
        self.n_paired_keys_ = int(n_keys)
        self._n_features_out = bank.n_dims
        quiet = incremental or (ddp is not None and ddp.rank != 0)
        if not history.converged and not history.interrupted and not quiet:
            warnings.warn(
                f"SemiClippedTransformer stopped at max_iter={config.max_epochs} epochs "
                "before the loss stopped improving; raise max_iter if the embedding "
                "is not good enough.",
                ConvergenceWarning,
            )
        self.decoder_ = self._decoder_from_chunks(
            X if self.augmenter is None else Xc, Z, source, device
        )
        return self

    def _train_config(self, params, incremental):
        """The loop's settings from the resolved ``params`` (one epoch for partial_fit)."""
        return TrainConfig(
            loss=self.loss,
            temperature=self.temperature,
            batch_size=params["batch_size"],
            max_epochs=1 if incremental else params["max_iter"],
            solver=params["solver"],
            learning_rate=params["learning_rate_init"],
            momentum=self.momentum,
            weight_decay=params["weight_decay"],
            lr_schedule="constant" if incremental else self.lr_schedule,
            min_learning_rate=self.min_learning_rate,
            early_stopping=params["early_stopping"],
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            verbose=self.verbose,
        )

    # augmentation hooks (PEA); the canonical correction is applied at transform
    def _check_augmenter_inputs(self, X, batch):
        if batch is None:
            raise ValueError(
                "fit(..., batch=...) is required with an augmenter: PEA corrects each batch "
                "against its own controls. Pass one batch (plate) label per sample."
            )
        if self.control_label is None:
            raise ValueError(
                "control_label is required with an augmenter: PEA fits its corrections on "
                "control samples (y == control_label)."
            )
        if hasattr(X, "toarray"):
            raise TypeError("The augmenter needs dense X; convert with X.toarray().")

    def _fit_augmentation(self, X, y, batch):
        self.augmenter_ = clone(self.augmenter).set_params(control_label=self.control_label)
        self.augmenter_.fit(X, y, batch=batch)
        self.correction_ = self.augmenter_.canonical_correction()
        return self.correction_.transform(X, batch=batch)

    def _epoch_features(self, X, y, batch, train_idx, device):
        """A fresh PEA augmentation of the training rows, encoded, once per epoch.

        Only the training rows and the controls (which PEA fits its per-batch
        statistics on) are augmented, in float32. With the ``"pca"`` encoder
        the augmentation is composed with it (:mod:`semiclip._pea_encoded`,
        the same result up to rounding at a fraction of the cost); otherwise
        with BLAS single-threaded so that it does not fight torch's threads.
        """
        from threadpoolctl import ThreadpoolController

        aug = self.augmenter_
        rows = np.union1d(train_idx, np.flatnonzero(control_mask(y, self.control_label)))
        X_sub = np.ascontiguousarray(X[rows], dtype=np.float32)
        y_sub, b_sub = y[rows], batch[rows]
        where = np.searchsorted(rows, train_idx)
        blas = ThreadpoolController()  # scanned once, not every epoch
        linear = None if self.train_encoder else linear_encoder_map(self.encoder_)
        if linear is not None:
            # a PCA encoder: PEA composed with it, mostly in its output space
            sampler = EncodedPEA(aug, X_sub, y_sub, b_sub, linear, rows=where)

            def encoded(rng):  # numpy's part is small: one BLAS thread, no wake-ups
                with blas.limit(limits=1, user_api="blas"):
                    return sampler(rng)

            return encoded

        def features(rng):
            with blas.limit(limits=1, user_api="blas"):
                sample = aug.sample(X_sub, y_sub, batch=b_sub, random_state=rng)[where]
            if self.train_encoder:
                return np.ascontiguousarray(sample, dtype=np.float32)
            return self._encode(sample, device)

        return features

    def _trainable_encoder(self, adapter, X):
        """``Sequential(encoder, adapter)`` with a trainable copy of the encoder, and its input."""
        try:
            module = copy.deepcopy(encoder_to_torch(self.encoder_))
        except TypeError as exc:
            raise ValueError(
                f"train_encoder=True needs a differentiable encoder ('pca', None, a PCA-like "
                f"transformer or a torch module); got {type(self.encoder_).__name__}."
            ) from exc
        module.train()
        for p in module.parameters():
            p.requires_grad_(True)
        if hasattr(X, "toarray"):
            X = X.toarray()
        return torch.nn.Sequential(module, adapter), np.ascontiguousarray(X, dtype=np.float32)

    # ------------------------------------------------------------ transform
    def _forward(self, Z, device, chunk=8192):
        adapter = self.adapter_.to(device).eval()
        outs = []
        with torch.no_grad():
            for start in range(0, Z.shape[0], chunk):
                zb = torch.as_tensor(Z[start : start + chunk], device=device)
                outs.append(adapter(zb).cpu().numpy())
        self.adapter_.cpu()
        if not outs:
            return np.zeros((0, self._n_features_out), dtype=np.float32)
        return np.concatenate(outs, axis=0)

    def transform(self, X, *, batch=None):
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
            return self._forward(self._encode(X, device), device)

    def fit_transform(self, X, y=None, *, image_bank=None, keys=None, batch=None):
        """Fit, then embed ``X`` (same as ``fit(...).transform(X)``)."""
        self.fit(X, y, image_bank=image_bank, keys=keys, batch=batch)
        return self.transform(X, batch=batch)

    def inverse_transform(self, Z):
        """Map embeddings back to gene space with the ridge decoder fitted in ``fit``.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_dims)

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features_in_), float32
        """
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"inverse_transform expects embeddings of shape (n_samples, "
                f"{self._n_features_out}); got {Z.shape}."
            )
        check_finite_rows(Z, "Z")
        return self.decoder_.predict(Z)

    # ------------------------------------------------------------- plumbing
    @property
    def loss_curve_(self):
        check_is_fitted(self)
        return list(self._history_.loss_curve)

    @property
    def validation_scores_(self):
        check_is_fitted(self)
        return list(self._history_.validation_scores)

    @property
    def best_loss_(self):
        check_is_fitted(self)
        return self._history_.best_loss

    @property
    def best_validation_score_(self):
        check_is_fitted(self)
        s = self._history_.best_validation_score
        return None if not self._history_.validation_scores else s

    @property
    def n_iter_(self):
        check_is_fitted(self)
        return self._history_.n_iter

    @property
    def t_(self):
        check_is_fitted(self)
        return self._history_.t

    def __sklearn_is_fitted__(self):
        return hasattr(self, "adapter_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        state = self.__dict__.copy()
        # partial_fit's optimizer (momentum, as large as the adapter) and bank stay in memory
        state.pop("_partial_optimizer", None)
        state.pop("_partial_bank", None)
        adapter = state.pop("adapter_", None)
        if adapter is not None:
            buf = io.BytesIO()
            cpu_state = {k: v.detach().cpu() for k, v in adapter.state_dict().items()}
            torch.save(cpu_state, buf)
            state["_adapter_sizes"] = adapter_layer_sizes(adapter)
            state["_adapter_state"] = buf.getvalue()
        return state

    def __setstate__(self, state):
        sizes = state.pop("_adapter_sizes", None)
        blob = state.pop("_adapter_state", None)
        self.__dict__.update(state)
        if blob is not None:
            adapter = make_adapter(sizes[0], sizes[1:-1], sizes[-1])
            weights = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            adapter.load_state_dict(weights)
            self.adapter_ = adapter.eval()

