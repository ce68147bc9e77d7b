"""Input checks and gene aggregation of the known-relationship recall."""

import numpy as np

from .._core import check_finite_rows, check_labels, control_mask, format_examples

__all__ = ["aggregate", "check_thresholds", "control_rows", "normalize_rows"]


def check_thresholds(thresholds):
    try:
        low, high = (float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise ValueError(
            f"thresholds must be a pair of floats (low, high) in [0, 1]; got "
            f"{thresholds!r}."
        ) from None
    low, high = min(low, high), max(low, high)
    if not (0.0 <= low <= 1.0 and 0.0 <= high <= 1.0):
        raise ValueError(
            f"thresholds must lie in [0, 1] (fractions, not percents); got "
            f"{thresholds!r}. For the 5th/95th percentiles pass (0.05, 0.95)."
        )
    return low, high


def control_rows(genes, is_control, control_label, n):
    if is_control is not None and control_label is not None:
        raise ValueError(
            "Pass either is_control or control_label, not both (they would define "
            "the controls twice)."
        )
    if is_control is not None:
        mask = check_labels(is_control, n, "is_control")
        if mask.dtype != bool:
            raise TypeError(
                f"is_control must be a boolean mask; got dtype {mask.dtype}. Use "
                "control_label to name the control value of genes instead."
            )
        return mask
    mask = control_mask(genes, control_label)
    if control_label is not None and not mask.any():
        raise ValueError(
            f"control_label={control_label!r} matches no entry of genes (examples "
            f"of genes: {format_examples(np.unique(genes))}); pass the label used "
            "for the control samples."
        )
    return mask


def normalize_rows(X, genes, controls, batch, method):
    if not controls.any():
        raise ValueError(
            f"normalize={method!r} fits the batch correction on control samples, but "
            "none were given: pass control_label or is_control, or normalize=None "
            "for an embedding that is already batch-corrected."
        )
    from .._correction import ControlNormalizer

    # integer labels with -1 for the controls, whatever the type of `genes`
    y = np.unique(genes, return_inverse=True)[1].astype(np.int64)
    y[controls] = -1
    Xn = ControlNormalizer(method=method, control_label=-1).fit_transform(X, y, batch=batch)
    Xn = np.asarray(Xn, dtype=np.float64)
    check_finite_rows(
        Xn,
        f"the embeddings after normalize={method!r}",
        fix="check that every batch has enough control samples",
    )
    return Xn


def aggregate(X, genes, controls):
    """Mean row per gene over the non-control samples, genes in sorted order."""
    keep = ~controls
    names, codes = np.unique(genes[keep], return_inverse=True)
    if names.size < 2:
        raise ValueError(
            f"known_relationship_recall needs at least 2 distinct non-control genes "
            f"to form gene pairs; got {names.size} "
            f"({format_examples(names) if names.size else 'none'})."
        )
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.add.reduceat(X[keep][order], starts, axis=0) / counts[:, np.newaxis]
    names = names.astype(str)
    if names.dtype != genes.dtype:  # e.g. integer labels: sort as strings for lookups
        by_name = np.argsort(names, kind="stable")
        names, means = names[by_name], means[by_name]
    return names, means
