"""The PEA family and its draws: which correction each batch gets, with which steps and controls.

:class:`PEAFamily` holds the validated family parameters and draws the
per-batch plan; :class:`PEASampler` holds one data set (validated rows,
batch codes, control groups) with the fitted global statistics, and turns
plans into augmented copies. :class:`~semiclip.PEAAugmenter` is the
scikit-learn face of both; the encoded path of
:class:`~semiclip.SemiClippedTransformer` draws from the same sampler.
"""

from dataclasses import dataclass

import numpy as np

from ._center_scale import CenterScale, apply_center_scale_by_group, fit_center_scale
from ._groups import Groups, group_rows
from ._tvn import apply_tvn, fit_tvn_coral
from ._whitening import fit_coral

__all__ = ["STEPS", "BatchPlan", "PEAFamily", "PEASampler"]

#: Steps of every family member, in order; each can be dropped at random.
STEPS = {
    "center": ("center",),
    "center_scale": ("center", "scale"),
    "tvn": ("center_scale", "whiten", "coral"),
}


@dataclass(frozen=True)
class BatchPlan:
    """One batch's draw: the family member, its kept steps, the control subsample."""

    transform: str
    steps: tuple
    subset: np.ndarray
    """Positions, within the batch's controls, of the controls the statistics use."""

    @property
    def tvn_variant(self):
        """``(center_scale kept, whiten kept)``: the global TVN steps this draw applies."""
        return ("center_scale" in self.steps, "whiten" in self.steps)


@dataclass(frozen=True)
class PEAFamily:
    """The transform family, validated: members, their probabilities, the step and control draws."""

    transforms: tuple
    probs: np.ndarray
    fraction: tuple
    drop_step_prob: float

    @classmethod
    def from_params(cls, transforms, transform_probs, control_fraction, drop_step_prob):
        """Validate :class:`~semiclip.PEAAugmenter`'s parameters; raise a clear ValueError."""
        members = list(transforms)
        bad = [t for t in members if not isinstance(t, str) or t not in STEPS]
        if not members or bad:
            raise ValueError(
                f"transforms must be a non-empty sequence of {sorted(STEPS)}; got "
                f"{transforms!r}."
            )
        if transform_probs is None:
            probs = np.full(len(members), 1.0 / len(members))
        else:
            probs = np.asarray(transform_probs, dtype=np.float64).ravel()
            bad = np.flatnonzero(~np.isfinite(probs))
            if bad.size:
                shown = ", ".join(f"{float(probs[i])!r} at position {i}" for i in bad[:5])
                raise ValueError(
                    f"transform_probs must be finite; got {shown} ({bad.size} value(s) NaN or "
                    f"inf in {transform_probs!r}). Pass one non-negative weight per transform, "
                    "e.g. transform_probs=[1, 1, 2]."
                )
            if probs.shape != (len(members),) or (probs < 0).any() or not probs.sum() > 0:
                raise ValueError(
                    f"transform_probs must hold {len(members)} non-negative numbers "
                    f"(one per transform, not all zero); got {transform_probs!r}."
                )
            probs = probs / probs.sum()
        frac = np.asarray(control_fraction, dtype=np.float64).ravel()
        frac = np.repeat(frac, 2) if frac.size == 1 else frac
        if frac.shape != (2,) or not (0 < frac[0] <= frac[1] <= 1):
            raise ValueError(
                "control_fraction must be a float in (0, 1] or a range (low, high) "
                f"with 0 < low <= high <= 1; got {control_fraction!r}."
            )
        return cls(tuple(members), probs, (frac[0], frac[1]), float(drop_step_prob))

    def draw(self, counts, rng):
        """One :class:`BatchPlan` per batch; ``counts`` are the batches' control counts."""
        lo, hi = self.fraction
        n_batches = counts.size
        members = rng.choice(len(self.transforms), size=n_batches, p=self.probs)
        keep = rng.random((n_batches, 3)) >= self.drop_step_prob
        fracs = rng.uniform(lo, hi, size=n_batches)
        plan = []
        for b in range(n_batches):
            name = self.transforms[members[b]]
            n_steps = len(STEPS[name])
            kept = keep[b, :n_steps].copy()
            if not kept.any():  # a batch is never left uncorrected
                kept[rng.integers(n_steps)] = True
            k = int(min(counts[b], max(2, round(fracs[b] * counts[b]))))
            subset = np.sort(rng.choice(counts[b], size=k, replace=False))
            steps = tuple(s for s, on in zip(STEPS[name], kept) if on)
            plan.append(BatchPlan(name, steps, subset))
        return plan


class PEASampler:
    """PEA draws of fixed rows: the data, its control groups and the fitted global statistics.

    Built by :meth:`semiclip.PEAAugmenter.sampler` (which validates the
    data); :meth:`sample` is what :meth:`~semiclip.PEAAugmenter.sample` returns.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows, as validated.
    codes : ndarray of shape (n_samples,)
        Batch code of every row.
    ctrl : Groups
        The control rows of every batch.
    family : PEAFamily
    """

    def __init__(self, X, codes, ctrl, family, global_steps, reg_covar, shrinkage):
        self.X, self.codes, self.ctrl, self.family = X, codes, ctrl, family
        self._global = global_steps
        self.reg_covar, self.shrinkage = reg_covar, shrinkage

    def draw(self, rng):
        """A fresh per-batch plan (list of :class:`BatchPlan`)."""
        return self.family.draw(self.ctrl.counts, rng)

    def global_steps(self, variant):
        """The fitted global TVN steps (:class:`TVNStats`, no CORAL) of a plan's ``tvn_variant``."""
        return self._global[variant]

    def fit_coral(self, Z):
        """CORAL of rows ``Z`` with the augmenter's ``reg_covar`` and ``shrinkage``."""
        return fit_coral(Z, self.reg_covar, self.shrinkage)

    def control_rows(self, plan):
        """The rows of ``X`` each batch's statistics are fitted on, under ``plan``."""
        return [self.ctrl.rows(b)[p.subset] for b, p in enumerate(plan)]

    def sample(self, rng):
        """One augmented copy of ``X`` (same shape and row order) and its plan."""
        plan = self.draw(rng)
        return self.apply(plan), plan

    def apply(self, plan):
        """The augmented copy of ``X`` that ``plan`` describes."""
        X, codes, ctrl = self.X, self.codes, self.ctrl
        n_batches = ctrl.n_groups
        groups = group_rows(codes, n_batches)
        sub_rows = self.control_rows(plan)
        out = np.empty_like(X)
        # center / center_scale members: group statistics of all subsamples at once
        simple = [b for b, p in enumerate(plan) if p.transform != "tvn"]
        if simple:
            cs = fit_center_scale(X, Groups.of(sub_rows))
            mean, scale = cs.mean, cs.scale
            for b, p in enumerate(plan):
                if "center" not in p.steps:
                    mean[b] = 0.0
                if "scale" not in p.steps:
                    scale[b] = 1.0
            apply_center_scale_by_group(X, CenterScale(mean, scale, None), groups, simple, out=out)
        # tvn members, grouped by which global steps they keep
        variants = {}
        for b, p in enumerate(plan):
            if p.transform == "tvn":
                variants.setdefault(p.tvn_variant, []).append(b)
        for key, batches in variants.items():
            coral_rows = [None] * n_batches
            for b in batches:
                if "coral" in plan[b].steps:
                    coral_rows[b] = sub_rows[b]
            stats = fit_tvn_coral(
                X, self._global[key], codes, coral_rows,
                reg=self.reg_covar, shrinkage=self.shrinkage,
            )
            every = len(batches) == n_batches  # same code path as the canonical transform
            apply_tvn(X, stats, codes, groups, None if every else batches, out=out)
        return out
