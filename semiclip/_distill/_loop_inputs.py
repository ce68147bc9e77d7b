"""What a fit hands the training loop of :mod:`semiclip._nn`: the split of the paired samples
into training and held-out keys, the settings (:class:`TrainConfig`) and the data
(:class:`TrainData`).
"""

import numpy as np

from .._core import PairSampler, control_mask
from .._nn import TrainConfig, TrainData
from ._encoded_pea import epoch_features
from ._groups import group_validation_split
from ._on_disk import stream_features

__all__ = ["split_by_key", "train_config", "training_data"]


def split_by_key(codes, paired_idx, rs, *, early_stopping, explicit, fraction, groups=None):
    """``(train_idx, val_idx or None)``: hold out ``fraction`` of the keys (never samples of a
    training key).

    Too few keys for 2 on each side is a ValueError when early stopping was
    asked for ``explicit``-ly, no split otherwise.
    """
    if not early_stopping:
        return paired_idx, None
    if groups is not None:  # held-out perturbations, not keys (no dose of one on both sides)
        split = group_validation_split(codes, paired_idx, groups, rs, fraction, explicit=explicit)
        if split is not None:
            return split
    keys = np.unique(codes[paired_idx])
    n_val = int(round(fraction * keys.size))
    if n_val < 2 or keys.size - n_val < 2:
        if explicit:
            raise ValueError(
                f"early_stopping needs at least 2 validation keys and 2 training keys; "
                f"validation_fraction={fraction} of {keys.size} paired keys gives "
                f"{n_val}. Raise validation_fraction, add keys, or set early_stopping=False."
            )
        return paired_idx, None
    val_keys = rs.permutation(keys)[:n_val]
    is_val = np.isin(codes[paired_idx], val_keys)
    return paired_idx[~is_val], paired_idx[is_val]


def train_config(estimator, params, *, one_epoch):
    """The loop's settings: the resolved ``params`` and the estimator's other parameters
    (``one_epoch``: one epoch at a constant learning rate, for ``partial_fit``)."""
    return TrainConfig(
        loss=estimator.loss,
        temperature=estimator.temperature,
        batch_size=params["batch_size"],
        max_epochs=1 if one_epoch else params["max_iter"],
        solver=params["solver"],
        learning_rate=params["learning_rate_init"],
        momentum=estimator.momentum,
        weight_decay=params["weight_decay"],
        lr_schedule="constant" if one_epoch else estimator.lr_schedule,
        min_learning_rate=estimator.min_learning_rate,
        early_stopping=params["early_stopping"],
        n_iter_no_change=estimator.n_iter_no_change,
        tol=estimator.tol,
        verbose=params.get("verbose", estimator.verbose),
        structure_weight=params["structure_weight"],
        preservation_weight=estimator.preservation_weight,
        anchor_weight=params.get("anchor_weight", 0.0),
        anchor_scale=params.get("anchor_scale", 1.0),
    )


def training_data(plan, inputs, features, train_idx, val_idx, device, *, encoder, augmenter,
                  control_label, target):
    """The loop's :class:`TrainData`: student input, key codes, pair sampler, held-out keys.

    The student input is ``features`` (in memory), rows streamed from disk
    through ``encoder`` (on-disk ``X``), or a fresh augmentation every epoch
    (``augmenter``, the fitted one).
    """
    codes = inputs.codes
    kwargs = {}
    if plan.on_disk:
        kwargs["features"] = stream_features(encoder, inputs.source, train_idx, device)
    elif not plan.augment:
        kwargs["features"] = features[train_idx]
    else:
        controls = control_mask(inputs.y, control_label)
        kwargs["epoch_features"] = epoch_features(
            augmenter, encoder, inputs.X, inputs.y, inputs.batch, train_idx, controls,
            raw=plan.train_encoder, device=device,
        )
        # on an accelerator, drawn in the background while the device trains;
        # on the CPU a drawing thread would only contend for the GIL and cores
        # (measured slower than drawing at the start of each epoch)
        kwargs["epoch_features_ahead"] = device.type != "cpu"
    if val_idx is not None:
        kwargs["val_features"] = (stream_features(encoder, inputs.source, val_idx, device)
                                  if plan.on_disk else features[val_idx])
        kwargs["val_codes"] = codes[val_idx]
        kwargs["val_table"] = inputs.bank.centroids()
    sampler = PairSampler(inputs.bank, codes[train_idx], target=target)
    return TrainData(codes=codes[train_idx], sampler=sampler, **kwargs)
