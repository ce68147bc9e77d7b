"""Perturbation groups: held-out sets never share a perturbation with training.

Keys built from several columns (``"compound|dose"``, :func:`semiclip.make_keys`)
are doses of one perturbation. Holding out *keys* leaves the other doses of
every held-out compound in training, and the held-out scores then measure
recognising a compound seen at another dose, not generalising to a new one.
Every held-out split of :class:`~semiclip.SemiClippedTransformer` (early
stopping, ``structure_weight="auto"``, ``ridge_alpha="auto"``, the validation
report) and of :class:`~semiclip.RidgeDistiller` (``alpha="auto"``) holds out
whole groups: ``fit(..., groups=...)``, by default the part of each key
before its first ``"|"``.
"""

import numpy as np

from .._core import check_labels

__all__ = ["GROUP_SEP", "group_validation_split", "perturbation_groups", "sample_groups"]

GROUP_SEP = "|"


def perturbation_groups(keys, sep=GROUP_SEP):
    """The perturbation of every key: the part before the first ``sep`` of a string key.

    Other keys (numbers, strings without ``sep``) are their own group.
    """
    keys = np.asarray(keys, dtype=object).ravel()
    return np.array([k.split(sep, 1)[0] if isinstance(k, str) else k for k in keys],
                    dtype=object)


def sample_groups(groups, labels, n):
    """The group of every sample: ``groups`` checked (one per sample), or from the keys."""
    if groups is None:
        return perturbation_groups(labels)
    return check_labels(groups, n, name="groups")


def group_validation_split(codes, paired_idx, groups, rs, fraction, *, explicit=False):
    """``(train, held-out)`` positions holding out ``fraction`` of the groups, or None.

    ``groups`` is the group of every sample. Returns None when the groups
    are the keys themselves (each key its own group: the key split of the
    caller applies, with its draws unchanged), and ``(paired_idx, None)``
    when fewer than 2 groups would be held out or kept (a ValueError instead when
    early stopping was asked for explicitly).
    """
    g = np.asarray(groups, dtype=object)[paired_idx]
    c = codes[paired_idx]
    names, g_code = np.unique(g.astype(str), return_inverse=True)
    pairs = np.unique(np.stack([g_code, c]), axis=1)
    if np.unique(pairs[0]).size == np.unique(pairs[1]).size == pairs.shape[1]:
        return None  # one key per group and one group per key: the keys are the groups
    n_val = int(round(fraction * names.size))
    if n_val < 2 or names.size - n_val < 2:
        if explicit:
            raise ValueError(
                f"early_stopping needs at least 2 held-out and 2 training perturbation groups; "
                f"validation_fraction={fraction} of {names.size} groups gives {n_val}. Raise "
                "validation_fraction, add perturbations, pass groups=..., or set "
                "early_stopping=False.")
        return paired_idx, None
    held = rs.permutation(names.size)[:n_val]
    is_val = np.isin(g_code, held)
    # a key spread over several groups (a group label that is not a function of the key)
    # would sit on both sides: keep its samples in training only
    mixed = np.intersect1d(c[is_val], c[~is_val])
    is_val &= ~np.isin(c, mixed)
    return paired_idx[~is_val], paired_idx[is_val]
