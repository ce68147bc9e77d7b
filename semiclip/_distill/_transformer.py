"""SemiClippedTransformer: the scikit-learn face of Semi-Clipped distillation.

One estimator, one module. ``fit`` and ``partial_fit`` decide their modes
once (:func:`._fit_plan.plan_fit`) and then run the same steps, each a
method reading that plan:

``prepare data -> pair -> randomness -> encoder -> hyper-parameters ->
train and select -> finalize``

The estimator validates inputs, prepares the frozen encoder and the weak
pairing (:mod:`._weak_pairing`, shared with :class:`RidgeDistiller`), and
hands arrays to the training loop of :mod:`semiclip._nn`; it reaches torch
only through :mod:`semiclip._nn`. An on-disk ``X`` is handled by
:mod:`._on_disk`, the DDP ranks' seed by :mod:`._ranks`, the held-out
selection by :mod:`._selection`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils.validation import check_is_fitted

from .._core import check_finite_rows, check_labels, control_mask
from .._core.compat import fit_context as _fit_context
from .._nn import (
    Device,
    ThreadRebalance,
    adapter_from_bytes,
    adapter_layer_sizes,
    adapter_to_bytes,
    as_row_source,
    decoder_from_embeddings,
    decoder_from_source,
    default_callbacks,
    fit_loop,
    forward_numpy,
    init_adapter,
    make_adapter,
    make_optimizer,
    resolve_device,
    split_fine_tuned,
    thread_budget,
    with_trainable_encoder,
)
from ._callbacks import ConvergenceCheck, check_callbacks, warn_not_converged
from ._degenerate import check_contrastive, check_teacher
from ._encoders import encode, encoder_module, fit_encoder, stream_encoders
from ._fit_plan import FitInputs, plan_fit
from ._groups import sample_groups
from ._loop_inputs import split_by_key, train_config, training_data
from ._on_disk import (
    check_source_input,
    encoded_width,
    encoder_from_source,
    transform_source,
)
from ._params import TRANSFORMER_CONSTRAINTS, fill_doc
from ._ranks import check_ranks_agree, random_state_and_context
from ._recipes import resolve_recipe
from ._ridge_fit import RidgeFineTune, TrainingRuns
from ._selection import (
    best_candidate,
    held_out_scores,
    structure_candidates,
    structure_choice,
    validation_report,
    warn_if_not_generalising,
)
from ._weak_pairing import check_X, distiller_tags, pair_with_bank, resolve_bank

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from .._core import ImageBank
    from .._correction import PEAAugmenter
    from .._nn import Callback

__all__ = ["SemiClippedTransformer"]


@fill_doc
class SemiClippedTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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
    [[encoder]]
    [[encoder_dim]]
    [[hidden_layer_sizes]]
    [[loss]]
    temperature : float, default=0.1
        Fixed softmax temperature of the contrastive losses.
    [[structure_weight]]
    [[preservation_weight]]
    [[target]]
    [[augmenter]]
    [[recipe]]
    [[solver]]
    batch_size : "auto" or int, default="auto"
        Minibatch size; clamped to the number of training samples. The
        contrastive losses need at least 2 (and at least 2 paired keys).
    max_iter : "auto" or int, default="auto"
        Maximum number of epochs.
    learning_rate_init : "auto" or float, default="auto"
        Initial learning rate of the cosine schedule.
    momentum : float, default=0.95
        SGD momentum.
    [[weight_decay]]
    min_learning_rate : float, default=1e-6
        End value of the cosine schedule.
    [[lr_schedule]]
    [[early_stopping]]
    validation_fraction : float, default=0.1
        Fraction of keys held out for early stopping.
    [[n_iter_no_change]]
    [[tol]]
    [[unpaired]]
    [[control_label]]
    decoder_alpha : float, default=1.0
        Ridge penalty of the linear decoder behind ``inverse_transform``.
    [[image_bank]]
    [[device]]
    [[n_threads]]
    [[strategy]]
    [[random_state]]
    verbose : int, default=0
        ``>= 1`` shows a progress bar (tqdm if installed, plain lines
        otherwise) and prints the held-out judgement after ``fit``.
    [[callbacks]]
    [[warm_start]]
    [[train_encoder]]
    [[init]]
    [[ridge_alpha]]
    [[anchor_weight]]
    [[refit]]

    Attributes
    ----------
    encoder_ : object
        The frozen encoder (fitted PCA, the given transformer, a torch
        module wrapper, or None).
    adapter_ : torch.nn.Module
        The trained adapter, on the CPU after ``fit``: a ``Sequential`` MLP
        (one ``Linear`` when linear), or, for a ridge start with hidden
        layers, a residual adapter (``linear(x) + mlp(x)``).
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
        ``"auto"`` chose and why (``choices``), ``selected_epoch`` and, when
        folds chose it, ``epoch_search``.
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
    RidgeDistiller : The closed-form ridge baseline with the same interface.
    PEAAugmenter : The PEA student augmentation.
    ControlNormalizer : Deterministic control-based batch correction.

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
        [[fit_X]]
        [[fit_y]]
        [[fit_image_bank]]
        [[fit_keys]]
        [[fit_batch]]
        [[fit_groups]]

        Returns
        -------
        self : SemiClippedTransformer
            The fitted estimator.
        """
        with thread_budget(self.n_threads) as threads:
            labels, name = (y, "y") if keys is None else (keys, "keys")
            self._fit(
                X, labels, image_bank=image_bank, batch=batch, key_name=name, threads=threads,
                groups=groups,
            )
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X: ArrayLike, y: ArrayLike | None = None, *,
                    image_bank: ImageBank | None = None, keys: ArrayLike | None = None,
                    batch: ArrayLike | None = None) -> SemiClippedTransformer:
        """Train one epoch on a chunk of samples (streaming, ``dask_ml.wrappers.Incremental``).

        The first call initialises the estimator from its chunk exactly as
        ``fit`` would (encoder, ``"auto"`` hyper-parameters, adapter) and
        needs ``image_bank``; later calls continue training the same adapter
        with the same optimizer (momentum kept) and may omit ``image_bank``
        (the bank of the first call is reused; it is never pickled, so pass it
        again after loading a saved model). Differences from ``fit``: one
        epoch per call, a constant learning rate (``learning_rate_init``; a
        schedule needs the total length), no early stopping, no
        ``ConvergenceWarning``; the decoder of ``inverse_transform`` is refitted
        on each chunk.

        With ``encoder="pca"`` the PCA is fitted on the first chunk and then
        frozen: an encoder that moved with every chunk would pull the
        adapter's input from under it. To base the PCA on all the data, make
        a first pass with :class:`sklearn.decomposition.IncrementalPCA`
        (``partial_fit`` on every chunk) and pass
        ``encoder=FrozenEstimator(ipca)``.

        Parameters
        ----------
        X : array-like, sparse matrix or numpy.memmap of shape (n_samples, n_features)
            A chunk of transcriptomics profiles, prepared as for ``fit``.
        y : array-like of shape (n_samples,), default=None
            Pairing key of every sample of the chunk; ``y == control_label``
            marks controls. Ignored when ``keys`` is given.
        image_bank : ImageBank, default=None
            Required on the first call (or set as a parameter).
        [[fit_keys]]
        [[fit_batch]]

        Returns
        -------
        self : SemiClippedTransformer
            The estimator, trained one more epoch.
        """
        if self.train_encoder:
            raise ValueError(
                "partial_fit does not support train_encoder=True; use fit, or a frozen encoder."
            )
        with thread_budget(self.n_threads) as threads:
            labels, name = (y, "y") if keys is None else (keys, "keys")
            self._fit(
                X, labels, image_bank=image_bank, batch=batch, key_name=name,
                incremental=True, threads=threads,
            )
        return self

    def transform(self, X: ArrayLike, *, batch: ArrayLike | None = None) -> np.ndarray:
        """Embed transcriptomics profiles in the teacher space.

        Parameters
        ----------
        X : array-like, sparse matrix or on-disk matrix of shape (n_samples, n_features)
            Transcriptomics profiles, prepared as for ``fit`` (uncorrected
            with an augmenter); an on-disk matrix is read in chunks.
        batch : array-like of shape (n_samples,), default=None
            Needed only with an augmenter (canonical correction per batch).

        Returns
        -------
        Z : ndarray of shape (n_samples, n_dims), float32
            The student embedding of every sample, in the teacher space.
        """
        check_is_fitted(self)
        corrected = getattr(self, "correction_", None) is not None
        source = as_row_source(X)
        if source is not None:
            with thread_budget(self.n_threads):
                check_source_input(self, source, reset=False)
                if corrected:
                    raise ValueError(
                        "This model was fitted with an augmenter, whose batch correction needs "
                        "X in memory; load X (e.g. np.asarray(X)) before transform."
                    )
                return transform_source(self.encoder_, self.adapter_, source,
                                        resolve_device(self.device), self._n_features_out)
        X = check_X(self, X, reset=False)
        with thread_budget(self.n_threads):
            if corrected:
                batch = check_labels(batch, X.shape[0], name="batch", allow_none=True)
                if batch is None:
                    raise ValueError(
                        "transform(X, batch=...) is required: this model was fitted with an "
                        "augmenter and applies the canonical batch correction before the "
                        "encoder. Pass one batch label per sample."
                    )
                X = self.correction_.transform(X, batch=batch)
            device = resolve_device(self.device)
            return forward_numpy(self.adapter_, encode(self.encoder_, X, device), device)

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None, *,
                      image_bank: ImageBank | None = None, keys: ArrayLike | None = None,
                      batch: ArrayLike | None = None, groups: ArrayLike | None = None
                      ) -> np.ndarray:
        """Fit, then embed ``X`` (same as ``fit(...).transform(X)``).

        Parameters
        ----------
        [[fit_X]]
        [[fit_y]]
        [[fit_image_bank]]
        [[fit_keys]]
        [[fit_batch]]
        [[fit_groups]]

        Returns
        -------
        Z : ndarray of shape (n_samples, n_dims), float32
            The student embedding of every training sample.
        """
        self.fit(X, y, image_bank=image_bank, keys=keys, batch=batch, groups=groups)
        return self.transform(X, batch=batch)

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Map embeddings back to gene space with the ridge decoder fitted in ``fit``.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_dims)
            Embeddings in the teacher space, e.g. the output of ``transform``.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features_in_), float32
            The decoded profiles, in the (corrected) gene space of ``X``.
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

    # ------------------------------------------------------------------ the fit
    def _fit(self, X, y, *, image_bank, batch, key_name="y", incremental=False, threads=None,
             groups=None):
        source = as_row_source(X)
        plan = plan_fit(self, incremental=incremental, on_disk=source is not None)
        inputs = self._prepare_data(plan, X, source, y, image_bank, batch, key_name, groups)
        rs, ddp, seed = self._randomness(plan, inputs)
        device = resolve_device(self.device) if ddp is None else ddp.device
        Xc, Z, d_in = self._encoder_step(plan, inputs, rs, device)
        params, train_idx, val_idx = self._training_params(plan, inputs, rs)
        model, adapter, history = self._train_and_select(
            plan, inputs, params, d_in, Xc, Z, seed, train_idx, val_idx, device, ddp, threads)
        self._finalize(plan, inputs, model, adapter, history, Xc, Z, device)
        return self

    def _prepare_data(self, plan, X, source, y, image_bank, batch, key_name, groups=None):
        """Validate ``X``, keys, batch and bank; pair every sample with a bank key."""
        check_callbacks(self.callbacks)
        reset = not plan.warm
        X = check_X(self, X, reset) if source is None else check_source_input(self, source, reset)
        n = X.shape[0]
        y = check_labels(y, n, name=key_name)
        batch = check_labels(batch, n, name="batch", allow_none=True)
        if image_bank is None and plan.reuse_bank:
            image_bank = self._partial_bank
        bank = resolve_bank(image_bank, self.image_bank)
        if plan.augment:
            self._check_augmenter_inputs(X, batch)
        if plan.warm and bank.n_dims != self._n_features_out:
            raise ValueError(
                f"warm_start: the fitted adapter outputs {self._n_features_out} dimensions but "
                f"image_bank has {bank.n_dims}. Use a bank of the same embedding model, or "
                "set warm_start=False to train a new adapter."
            )
        if plan.on_disk and (plan.augment or plan.train_encoder):
            raise ValueError(
                "An on-disk X (numpy.memmap, backed AnnData) cannot be used with an augmenter "
                "or train_encoder=True, which need X in memory; load it with np.asarray(X)."
            )
        codes = pair_with_bank(y, control_mask(y, self.control_label), bank,
                               unpaired=self.unpaired, control_label=self.control_label)
        paired = np.flatnonzero(codes >= 0)
        used = np.unique(codes[paired])
        check_contrastive(self.loss, self.batch_size, paired.size, used.size, plan.incremental)
        check_teacher(bank, used, self.loss, self.target)
        return FitInputs(X, source, y, batch, bank, codes, paired, int(used.size),
                         sample_groups(groups, y, n))

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

    def _randomness(self, plan, inputs):
        """``(RandomState, DDPContext or None, seed)``: every draw of the fit comes from them."""
        rs, ddp = random_state_and_context(self.random_state, ddp=plan.ddp, device=self.device)
        seed = int(rs.randint(2**31 - 1))
        if ddp is not None:
            check_ranks_agree(
                ddp, n_samples=inputs.X.shape[0], n_features=inputs.X.shape[1],
                n_paired=inputs.paired.size, n_keys=inputs.n_keys, seed=seed,
            )
        return rs, ddp, seed

    def _encoder_step(self, plan, inputs, rs, device):
        """``(corrected X, encoded X or None, encoder width)``; fits the correction and encoder.

        With an augmenter, ``X`` is corrected by its canonical correction
        first; the encoder is fitted unless the plan keeps the fitted one.
        """
        Xc = inputs.X
        if plan.augment:
            Xc = self._fit_augmentation(inputs.X, inputs.y, inputs.batch)
        elif not plan.warm:  # a new fit without augmenter: no correction of an earlier one
            vars(self).pop("augmenter_", None)
            vars(self).pop("correction_", None)
        if plan.on_disk:
            if not plan.keep_encoder:
                self.encoder_ = encoder_from_source(self.encoder, self.encoder_dim,
                                                    inputs.source, rs)
            return Xc, None, encoded_width(self.encoder_, inputs.source)
        if not plan.keep_encoder:
            self.encoder_ = fit_encoder(self.encoder, self.encoder_dim, Xc, rs)
        Z = encode(self.encoder_, Xc, device)
        return Xc, Z, Z.shape[1]

    def _fit_augmentation(self, X, y, batch):
        self.augmenter_ = clone(self.augmenter).set_params(control_label=self.control_label)
        self.augmenter_.fit(X, y, batch=batch)
        self.correction_ = self.augmenter_.canonical_correction()
        return self.correction_.transform(X, batch=batch)

    def _training_params(self, plan, inputs, rs):
        """The resolved hyper-parameters and the split of the paired samples by key."""
        params = resolve_recipe(self, n_samples=inputs.paired.size, n_keys=inputs.n_keys)
        if plan.keep_structure_weight:
            params["structure_weight"] = self.training_params_["structure_weight"]
        if plan.keep_params:
            params = dict(self.training_params_)
        if not plan.may_validate:
            params["early_stopping"] = False
        train_idx, val_idx = split_by_key(
            inputs.codes, inputs.paired, rs, early_stopping=params["early_stopping"],
            explicit=plan.explicit_early_stopping, fraction=self.validation_fraction,
            groups=inputs.groups)
        params["early_stopping"] = val_idx is not None
        self.training_params_ = params
        return params, train_idx, val_idx

    def _train_and_select(self, plan, inputs, params, d_in, Xc, Z, seed, train_idx, val_idx,
                          device, ddp, threads):
        """``(model, adapter, history)``: train, one run per candidate of
        ``structure_weight="auto"`` (keeping the best on the held-out keys), and fill
        ``validation_report_`` (see :mod:`._selection`).
        """
        weights = structure_candidates(
            self.structure_weight, previous=params.get("structure_weight"),
            has_validation=val_idx is not None and Z is not None,
            incremental=plan.incremental, warm=plan.warm, n_keys=inputs.n_keys,
            ddp=ddp is not None)
        centroids, runs = inputs.bank.centroids(), []
        ridge = RidgeFineTune(self.get_params(deep=False),
                              TrainingRuns(self._adapter_step, self._training_data, self._train))
        start = ridge.start_map(plan, inputs, params, Z, train_idx, seed)  # the ridge start
        for weight in weights:
            params["structure_weight"] = weight
            choice = ridge.fold_epochs(plan, inputs, params, d_in, Xc, Z, seed, train_idx,
                                       val_idx, start, device, ddp, threads)
            model, adapter, features = self._adapter_step(plan, inputs, params, d_in, Xc, Z,
                                                          seed)
            data = dataclasses.replace(self._training_data(plan, inputs, features, train_idx,
                                                           val_idx, device),
                                       anchor=ridge.anchor(model, adapter, start, params))
            selector = ridge.selector(start, features, inputs, val_idx, device, choice)
            history = self._train(plan, model, data, params, inputs, seed, device, ddp, threads,
                                  searching=len(weights) > 1, selector=selector)
            held_out = None  # the held-out samples' embeddings (in memory only)
            if val_idx is not None and Z is not None:
                held_out = forward_numpy(model, features[val_idx], device)
            runs.append((model, adapter, history, held_out, selector))
        search = None
        if len(runs) > 1:
            search = [{"structure_weight": w, **held_out_scores(
                run[3], inputs.codes[val_idx], centroids)[0]} for w, run in zip(weights, runs)]
            best = best_candidate(search)
            params["structure_weight"] = weights[best]
            runs = [runs[best]]
            if runs[0][4] is None:
                warn_not_converged(type(self).__name__, runs[0][2], params["max_iter"])
        model, adapter, history, held_out, selector = runs[0]
        params.setdefault("choices", {})["structure_weight"] = structure_choice(
            self.structure_weight, weights, search, plan, inputs.n_keys, val_idx is not None,
            ddp is not None)
        self.validation_report_ = None
        if held_out is not None:
            self.validation_report_ = validation_report(
                held_out, Z, inputs.codes, train_idx, val_idx, centroids, seed=seed,
                key_names=inputs.bank.unique_keys, search=search, groups=inputs.groups)
            if not (plan.incremental or (ddp is not None and ddp.rank != 0)):
                warn_if_not_generalising(self.validation_report_, type(self).__name__)
                if self.verbose:
                    print(f"{type(self).__name__}: {self.validation_report_['summary']}")
        if ridge.use_refit(inputs, params, selector):  # the chosen epochs on every key
            model, adapter, history = ridge.refit_all(
                plan, inputs, params, d_in, Xc, Z, seed, device, ddp, threads,
                selector.best_epoch)
        return model, adapter, history

    def _training_data(self, plan, inputs, features, train_idx, val_idx, device):
        """The loop's TrainData for these rows (see :func:`._loop_inputs.training_data`)."""
        return training_data(
            plan, inputs, features, train_idx, val_idx, device, encoder=self.encoder_,
            augmenter=self.augmenter_ if plan.augment else None,
            control_label=self.control_label, target=self.target)

    def _adapter_step(self, plan, inputs, params, d_in, Xc, Z, seed):
        """``(trained model, adapter, student input)``: a new or the fitted adapter.

        With ``train_encoder`` the trained model is a trainable copy of the
        encoder followed by the adapter, and its input the profiles.
        """
        if plan.warm:
            adapter = self.adapter_
            if adapter_layer_sizes(adapter)[0] != d_in:
                raise ValueError(
                    f"warm_start: the adapter expects {adapter_layer_sizes(adapter)[0]} encoder "
                    f"features but the encoder now gives {d_in}."
                )
        else:
            hidden = params["hidden_layer_sizes"]  # a ridge start of hidden layers: residual
            adapter = init_adapter(make_adapter(d_in, hidden, inputs.bank.n_dims, residual=bool(
                hidden) and params.get("init") == "ridge"), seed)
        if not plan.train_encoder:
            return adapter, adapter, Z
        try:
            module = encoder_module(self.encoder_)
        except TypeError as exc:
            raise ValueError(
                f"train_encoder=True needs a differentiable encoder ('pca', None, a PCA-like "
                f"transformer or a torch module); got {type(self.encoder_).__name__}."
            ) from exc
        X = Xc.toarray() if hasattr(Xc, "toarray") else Xc
        return with_trainable_encoder(module, adapter), adapter, np.ascontiguousarray(
            X, dtype=np.float32)

    def _train(self, plan, model, data, params, inputs, seed, device, ddp, threads,
               searching=False, selector=None, user_callbacks=True):
        """Run the training loop with the built-in and (``user_callbacks``) the user's callbacks;
        ``searching``: a run among several (the convergence warning waits for the chosen one)."""
        config = train_config(self, params, one_epoch=plan.one_epoch)
        rng = np.random.default_rng(seed)
        if plan.fresh_draws:  # a fresh shuffle and pairing draw for every chunk
            rng = np.random.default_rng([seed, self._history_.n_iter])
        history = self._history_ if plan.continue_history else None
        optimizer = None
        if plan.incremental:
            optimizer = (self._partial_optimizer if plan.reuse_optimizer
                         else make_optimizer(model.parameters(), config))
            self._partial_optimizer, self._partial_bank = optimizer, inputs.bank
        self.n_threads_ = threads.n_threads
        quiet = (searching or plan.incremental or (ddp is not None and ddp.rank != 0)
                 or selector is not None)  # chosen epochs are not run to convergence
        callbacks = [ThreadRebalance(threads), *default_callbacks(data, config, dist=ddp),
                     *([selector] if selector is not None else []),
                     ConvergenceCheck(type(self).__name__, quiet=quiet),
                     *((self.callbacks or ()) if user_callbacks else ())]
        return fit_loop(model, data, config, rng=rng, device=device, callbacks=callbacks,
                        history=history, dist=ddp, optimizer=optimizer)

    def _finalize(self, plan, inputs, model, adapter, history, Xc, Z, device):
        """Keep the trained modules and the record; fit the decoder of ``inverse_transform``."""
        if plan.train_encoder:
            self.encoder_, adapter = split_fine_tuned(model)
            Z = encode(self.encoder_, Xc, device)
        self.adapter_ = adapter.cpu()
        self._history_ = history
        self.device_ = str(device)
        # n_paired_keys_: distinct keys trained on, over every call that continued the
        # same adapter (partial_fit, warm starts)
        keys = inputs.bank.unique_keys[np.unique(inputs.codes[inputs.paired])]
        if plan.continue_keys:
            keys = np.union1d(self._paired_keys, keys)
        self._paired_keys = keys
        self.n_paired_keys_ = int(keys.size)
        if plan.on_disk:
            on_device, on_host = stream_encoders(self.encoder_)
            self.decoder_ = decoder_from_source(inputs.source, self.adapter_, device,
                                                self.decoder_alpha, on_device=on_device,
                                                on_host=on_host)
        else:
            self.decoder_ = decoder_from_embeddings(self.adapter_, Z, Xc, device,
                                                    self.decoder_alpha)

    # --------------------------------------------------------------- the record
    @property
    def _n_features_out(self):  # scikit-learn's feature-names mixin reads it
        return adapter_layer_sizes(self.adapter_)[-1]

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
        return distiller_tags(super().__sklearn_tags__())

    # ------------------------------------------------------------ persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        # partial_fit's optimizer (momentum, as large as the adapter) and bank stay in memory
        state.pop("_partial_optimizer", None)
        state.pop("_partial_bank", None)
        adapter = state.pop("adapter_", None)
        if adapter is not None:
            state["_adapter_sizes"], state["_adapter_state"] = adapter_to_bytes(adapter)
        return state

    def __setstate__(self, state):
        # the weights are CPU tensors loaded with weights_only: restoring them runs no code
        sizes = state.pop("_adapter_sizes", None)
        blob = state.pop("_adapter_state", None)
        self.__dict__.update(state)
        if blob is not None:
            self.adapter_ = adapter_from_bytes(sizes, blob)
