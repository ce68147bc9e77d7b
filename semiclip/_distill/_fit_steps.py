"""The steps of :meth:`SemiClippedTransformer.fit`: inputs -> encoder -> adapter -> data -> loop.

:meth:`FitStepsMixin._fit` reads as the list of named steps; each step is
one method. The modes (warm start, ``partial_fit``, on-disk ``X``, an
augmenter, ``train_encoder``, DDP) each touch only the steps they change.
The torch side is reached through :mod:`semiclip._nn` only.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from .._core import ImageBank, PairSampler, check_labels, control_mask
from .._nn import (
    ThreadRebalance,
    TrainConfig,
    TrainData,
    adapter_layer_sizes,
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
    with_trainable_encoder,
)
from ._callbacks import ConvergenceCheck, check_callbacks, warn_not_converged
from ._degenerate import check_contrastive, check_teacher
from ._encoded_pea import epoch_features
from ._encoders import encoder_module, stream_encoders
from ._groups import group_validation_split, sample_groups
from ._recipes import resolve_recipe
from ._selection import (
    best_candidate,
    held_out_scores,
    structure_candidates,
    structure_choice,
    validation_report,
    warn_if_not_generalising,
)

__all__ = ["FitInputs", "FitStepsMixin"]


@dataclass(frozen=True)
class FitInputs:
    """The validated inputs of one ``fit`` / ``partial_fit`` call."""

    X: object  # validated in-memory X, or the on-disk row source
    source: object  # the row source of an on-disk X, else None
    y: np.ndarray
    batch: np.ndarray
    bank: ImageBank
    codes: np.ndarray  # bank key code of every sample, -1 for unpaired and controls
    paired: np.ndarray  # indices of the paired samples
    n_keys: int
    warm: bool  # continue the fitted adapter
    incremental: bool  # partial_fit
    groups: np.ndarray = None  # perturbation group of every sample (held-out splits)


class FitStepsMixin:
    """``_fit`` and its steps; mixed into :class:`SemiClippedTransformer`."""

    def _fit(self, X, y, *, image_bank, batch, key_name="y", incremental=False, threads=None,
             groups=None):
        inputs = self._fit_inputs(X, y, image_bank, batch, key_name, incremental, groups)
        rs, ddp, seed = self._randomness(inputs)
        device = resolve_device(self.device) if ddp is None else ddp.device
        Xc, Z, d_in = self._encoder_step(inputs, rs, device)
        params, train_idx, val_idx = self._training_params(inputs, rs)
        model, adapter, history = self._train_and_select(
            inputs, params, d_in, Xc, Z, seed, train_idx, val_idx, device, ddp, threads)
        if self.train_encoder:
            self.encoder_, adapter = split_fine_tuned(model)
            Z = self._encode(Xc, device)
        self.adapter_ = adapter.cpu()
        self._history_ = history
        self.device_ = str(device)
        self._record_keys(inputs)
        self.decoder_ = self._fit_decoder(inputs.source, Xc, Z, device)
        return self

    # ------------------------------------------------------------------ inputs
    def _fit_inputs(self, X, y, image_bank, batch, key_name, incremental, groups=None):
        """Validate ``X``, keys, batch and bank; pair every sample with a bank key."""
        check_callbacks(self.callbacks)
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
        if source is not None and (self.augmenter is not None or self.train_encoder):
            raise ValueError(
                "An on-disk X (numpy.memmap, backed AnnData) cannot be used with an augmenter "
                "or train_encoder=True, which need X in memory; load it with np.asarray(X)."
            )
        codes = self._pairing(y, control_mask(y, self.control_label), bank)
        paired = np.flatnonzero(codes >= 0)
        used = np.unique(codes[paired])
        check_contrastive(self.loss, self.batch_size, paired.size, used.size, incremental)
        check_teacher(bank, used, self.loss, self.target)
        return FitInputs(X, source, y, batch, bank, codes, paired, int(used.size), warm,
                         incremental, sample_groups(groups, y, n))

    def _record_keys(self, inputs):
        """``n_paired_keys_``: distinct keys trained on, over every call that continued the
        same adapter (``partial_fit``, warm starts).
        """
        keys = inputs.bank.unique_keys[np.unique(inputs.codes[inputs.paired])]
        if inputs.warm and getattr(self, "_paired_keys", None) is not None:
            keys = np.union1d(self._paired_keys, keys)
        self._paired_keys = keys
        self.n_paired_keys_ = int(keys.size)

    def _randomness(self, inputs):
        """``(RandomState, DDPContext or None, seed)``: every draw of the fit comes from them."""
        rs, ddp = self._random_state_and_context()
        seed = int(rs.randint(2**31 - 1))
        if ddp is not None:
            self._check_ranks_agree(
                ddp, n_samples=inputs.X.shape[0], n_features=inputs.X.shape[1],
                n_paired=inputs.paired.size, n_keys=inputs.n_keys, seed=seed,
            )
        return rs, ddp, seed

    # ----------------------------------------------------------------- encoder
    def _encoder_step(self, inputs, rs, device):
        """``(corrected X, encoded X or None, encoder width)``; fits the correction and encoder.

        With an augmenter, ``X`` is corrected by its canonical correction
        first; ``partial_fit`` keeps the encoder of its first call.
        """
        Xc = inputs.X
        if self.augmenter is not None:
            Xc = self._fit_augmentation(inputs.X, inputs.y, inputs.batch)
        refit = not (inputs.incremental and inputs.warm)
        if inputs.source is not None:
            if refit:
                self.encoder_ = self._encoder_from_source(inputs.source, rs)
            return Xc, None, self._encoded_width(inputs.source)
        if refit:
            self.encoder_ = self._fit_encoder(Xc, rs)
        Z = self._encode(Xc, device)
        return Xc, Z, Z.shape[1]

    def _fit_augmentation(self, X, y, batch):
        self.augmenter_ = clone(self.augmenter).set_params(control_label=self.control_label)
        self.augmenter_.fit(X, y, batch=batch)
        self.correction_ = self.augmenter_.canonical_correction()
        return self.correction_.transform(X, batch=batch)

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

    # ---------------------------------------------------------------- settings
    def _training_params(self, inputs, rs):
        """The resolved hyper-parameters and the split of the paired samples by key."""
        params = resolve_recipe(self, n_samples=inputs.paired.size, n_keys=inputs.n_keys)
        if inputs.warm and "structure_weight" in getattr(self, "training_params_", {}):
            params["structure_weight"] = self.training_params_["structure_weight"]
        if inputs.incremental:
            if inputs.warm:
                params = dict(self.training_params_)
            params["early_stopping"] = False
        explicit = self.early_stopping is True and not inputs.incremental
        train_idx, val_idx = self._validation_split(
            inputs.codes, inputs.paired, rs, params["early_stopping"], explicit, inputs.groups
        )
        params["early_stopping"] = val_idx is not None
        self.training_params_ = params
        return params, train_idx, val_idx

    def _validation_split(self, codes, paired_idx, rs, early_stopping, explicit, groups=None):
        """Hold out a fraction of keys (never samples of a training key)."""
        if not early_stopping:
            return paired_idx, None
        if groups is not None:  # held-out perturbations, not keys (issue 19)
            split = group_validation_split(codes, paired_idx, groups, rs,
                                           self.validation_fraction, explicit=explicit)
            if split is not None:
                return split
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
            structure_weight=params["structure_weight"],
            preservation_weight=self.preservation_weight,
            anchor_weight=params.get("anchor_weight", 0.0),
            anchor_scale=params.get("anchor_scale", 1.0),
        )

    # ----------------------------------------------------------------- adapter
    def _adapter_step(self, inputs, params, d_in, Xc, Z, seed):
        """``(trained model, adapter, student input)``: a new or the fitted adapter.

        With ``train_encoder`` the trained model is a trainable copy of the
        encoder followed by the adapter, and its input the profiles.
        """
        if inputs.warm:
            adapter = self.adapter_
            if adapter_layer_sizes(adapter)[0] != d_in:
                raise ValueError(
                    f"warm_start: the adapter expects {adapter_layer_sizes(adapter)[0]} encoder "
                    f"features but the encoder now gives {d_in}."
                )
        else:
            adapter = init_adapter(
                make_adapter(d_in, params["hidden_layer_sizes"], inputs.bank.n_dims), seed
            )
        if not self.train_encoder:
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

    # --------------------------------------------------------------- selection
    def _train_and_select(self, inputs, params, d_in, Xc, Z, seed, train_idx, val_idx, device,
                          ddp, threads):
        """``(model, adapter, history)``: train, one run per candidate of
        ``structure_weight="auto"`` (keeping the best on the held-out keys), and fill
        ``validation_report_`` (see :mod:`._selection`).
        """
        weights = structure_candidates(
            self.structure_weight, previous=params.get("structure_weight"),
            has_validation=val_idx is not None and Z is not None,
            incremental=inputs.incremental, warm=inputs.warm, n_keys=inputs.n_keys,
            ddp=ddp is not None)
        centroids, runs = inputs.bank.centroids(), []
        start = self._ridge_start(inputs, params, Z, train_idx, seed)  # issue 19: ridge start
        for weight in weights:
            params["structure_weight"] = weight
            model, adapter, features = self._adapter_step(inputs, params, d_in, Xc, Z, seed)
            data = dataclasses.replace(
                self._training_data(inputs, features, train_idx, val_idx, device),
                anchor=self._start(model, adapter, start, params))
            selector = self._selector(start, features, inputs, val_idx, device)
            history = self._train(model, data, params, inputs, seed, device, ddp, threads,
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
            self.structure_weight, weights, search, inputs, val_idx is not None, ddp is not None)
        self.validation_report_ = None
        if held_out is not None:
            self.validation_report_ = validation_report(
                held_out, Z, inputs.codes, train_idx, val_idx, centroids, seed=seed,
                key_names=inputs.bank.unique_keys, search=search, groups=inputs.groups)
            if not (inputs.incremental or (ddp is not None and ddp.rank != 0)):
                warn_if_not_generalising(self.validation_report_, type(self).__name__)
                if self.verbose:
                    print(f"{type(self).__name__}: {self.validation_report_['summary']}")
        if selector is not None:  # issue 19: the chosen epoch, then the refit on every key
            params["selected_epoch"] = selector.best_epoch
            params["choices"]["epochs"] = (f"epoch {selector.best_epoch} (0 = the ridge start) "
                                           "of the best held-out MRR + RSA")
        if self._use_refit(inputs, params, selector):
            model, adapter, history = self._refit_all(
                inputs, params, d_in, Xc, Z, seed, device, ddp, threads, selector.best_epoch)
        return model, adapter, history

    # -------------------------------------------------------------------- data
    def _training_data(self, inputs, features, train_idx, val_idx, device):
        """The loop's :class:`TrainData`: student input, key codes, pair sampler, validation."""
        codes = inputs.codes
        kwargs = {}
        if inputs.source is not None:
            kwargs["features"] = self._stream(inputs.source, train_idx, device)
        elif self.augmenter is None:
            kwargs["features"] = features[train_idx]
        else:
            controls = control_mask(inputs.y, self.control_label)
            kwargs["epoch_features"] = epoch_features(
                self.augmenter_, self.encoder_, inputs.X, inputs.y, inputs.batch, train_idx,
                controls, raw=self.train_encoder, device=device,
            )
            # on an accelerator, drawn in the background while the device trains;
            # on the CPU a drawing thread would only contend for the GIL and cores
            # (measured slower than drawing at the start of each epoch)
            kwargs["epoch_features_ahead"] = device.type != "cpu"
        if val_idx is not None:
            kwargs["val_features"] = (features[val_idx] if inputs.source is None
                                      else self._stream(inputs.source, val_idx, device))
            kwargs["val_codes"] = codes[val_idx]
            kwargs["val_table"] = inputs.bank.centroids()
        sampler = PairSampler(inputs.bank, codes[train_idx], target=self.target)
        return TrainData(codes=codes[train_idx], sampler=sampler, **kwargs)

    # -------------------------------------------------------------------- loop
    def _train(self, model, data, params, inputs, seed, device, ddp, threads, searching=False,
               selector=None):
        """Run the training loop with the built-in and the user's callbacks.

        ``searching``: one run of the ``structure_weight="auto"`` search (the
        convergence warning then waits for the chosen run).
        """
        config = self._train_config(params, inputs.incremental)
        rng = np.random.default_rng(seed)
        if inputs.incremental and inputs.warm:  # a fresh shuffle and pairing draw for every chunk
            rng = np.random.default_rng([seed, self._history_.n_iter])
        history = self._history_ if inputs.warm else None
        optimizer = None
        if inputs.incremental:
            optimizer = getattr(self, "_partial_optimizer", None) if inputs.warm else None
            if optimizer is None:
                optimizer = make_optimizer(model.parameters(), config)
            self._partial_optimizer, self._partial_bank = optimizer, inputs.bank
        self.n_threads_ = threads.n_threads
        quiet = searching or inputs.incremental or (ddp is not None and ddp.rank != 0)
        quiet = quiet or selector is not None  # the epochs are chosen, not run to convergence
        callbacks = [ThreadRebalance(threads), *default_callbacks(data, config, dist=ddp),
                     *([selector] if selector is not None else []),
                     ConvergenceCheck(type(self).__name__, quiet=quiet), *(self.callbacks or ())]
        return fit_loop(model, data, config, rng=rng, device=device, callbacks=callbacks,
                        history=history, dist=ddp, optimizer=optimizer)

    def _fit_decoder(self, source, Xc, Z, device):
        """Ridge decoder of ``inverse_transform`` from streamed (embedding, X) chunks."""
        if source is None:
            return decoder_from_embeddings(self.adapter_, Z, Xc, device, self.decoder_alpha)
        on_device, on_host = stream_encoders(self.encoder_)
        return decoder_from_source(source, self.adapter_, device, self.decoder_alpha,
                                   on_device=on_device, on_host=on_host)

