"""PEAAugmenter: Perturbation Embedding Augmentation, random relaxations of batch correction."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _correction as C
from .normalize import (
    _SHRINKAGE,
    ControlNormalizer,
    check_finite_rows,
    _check_batch_consistency,
    _check_controls_per_batch,
    _check_y,
    _encode_batches,
)

#: Steps of every family member, in order; each can be dropped at random.
STEPS = {
    "center": ("center",),
    "center_scale": ("center", "scale"),
    "tvn": ("center_scale", "whiten", "coral"),
}


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    rs = check_random_state(random_state)
    return np.random.default_rng(rs.randint(0, 2**31 - 1, size=4))


class PEAAugmenter(BaseEstimator):
    """Perturbation Embedding Augmentation (PEA) of transcriptomics profiles.

    PEA turns control-based batch correction into a random family of
    transforms that keep biology and vary technical noise. Every call to
    :meth:`sample` returns a fresh augmented copy of ``X``: for each batch
    (plate), independently,

    1. a transform is drawn from ``transforms`` (probabilities
       ``transform_probs``): ``"center"`` (subtract the mean of the batch's
       controls), ``"center_scale"`` (also divide by their standard
       deviation) or ``"tvn"`` (center-scale on all controls, PCA whitening
       on the controls, per-batch CORAL; see
       :class:`~semiclip.ControlNormalizer`);
    2. each step of that transform (``STEPS``) is dropped with probability
       ``drop_step_prob``, keeping at least one (our default: a batch is
       never left uncorrected);
    3. the per-batch statistics are estimated on a random subsample of the
       batch's controls, a fraction drawn uniformly from
       ``control_fraction`` (at least 2 controls).

    Every member returns data in the input feature basis (TVN's PCA rotation
    is undone, an orthogonal map), the basis of the canonical correction
    :attr:`canonical_` used at inference, so all augmented copies are
    comparable inputs for a downstream model.

    The global TVN statistics (the center-scale on all controls and the PCA
    whitening, with and without that center-scale) are computed once in
    :meth:`fit`; :meth:`sample` only draws what must be random and fits the
    per-batch statistics (means, standard deviations, low-rank CORAL) on the
    subsampled controls of the data it is given.

    Read more in the :ref:`User Guide <pea>`.

    Parameters
    ----------
    transforms : tuple of {"center", "center_scale", "tvn"}, \
            default=("center", "center_scale", "tvn")
        The transform family.
    transform_probs : array-like of shape (len(transforms),) or None, default=None
        Sampling probabilities of the family members (normalised to sum to
        one). None: uniform.
    drop_step_prob : float in [0, 1], default=0.5
        Probability of dropping each step of the drawn transform.
    control_fraction : float or (float, float) in (0, 1], default=(0.5, 1.0)
        Range of the fraction of each batch's controls the statistics are
        fitted on, drawn uniformly per batch and call; a float fixes it.
    control_label : object, default=None
        Label of the control samples in ``y``. Required.
    n_augmentations : int, default=1
        Number of augmented copies :meth:`fit_resample` appends.
    keep_original : bool or "canonical", default=True
        What :meth:`fit_resample` puts before the augmented copies: the
        original rows as given (True, imbalanced-learn's contract: a sampler
        never changes the rows it keeps, and in an
        :class:`imblearn.pipeline.Pipeline` the next step sees such rows at
        predict time), the original rows through the canonical correction
        (``"canonical"``: every output row is then a corrected profile, as
        ``SemiClippedTransformer(augmenter=...)`` sees them), or nothing
        (False: only the augmented copies).
    reg_covar : float, default=0.5
        Added to the diagonal of each batch's control covariance before the
        CORAL inverse square root.
    shrinkage : None, "ledoit-wolf" or float in [0, 1], default=None
        Covariance shrinkage for CORAL, as in
        :class:`~semiclip.ControlNormalizer`.
    random_state : int, RandomState instance or None, default=None
        Seeds the generator created in :meth:`fit`, which :meth:`sample`
        advances when it is not given its own ``random_state``.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    batches_ : ndarray of shape (n_batches,) or None
        Sorted batch labels seen in fit (None without ``batch``).
    n_controls_ : ndarray of shape (n_batches,)
        Number of controls per batch in fit.
    canonical_ : ControlNormalizer
        The canonical correction: full TVN fitted on all controls, in the
        feature basis (``ControlNormalizer(method="tvn", basis="feature")``
        with the same ``control_label``, ``reg_covar`` and ``shrinkage``).
        Apply it at inference with ``canonical_.transform(X, batch=batch)``.
    sample_indices_ : ndarray of shape (n_output_rows,)
        After :meth:`fit_resample`: the row of ``X`` each output row comes
        from, to re-align ``batch`` and other per-sample arrays.

    See Also
    --------
    ControlNormalizer : The deterministic corrections PEA relaxes.

    Notes
    -----
    With ``transforms=("tvn",)``, ``drop_step_prob=0`` and
    ``control_fraction=1``, :meth:`sample` equals ``canonical_.transform``.
    Zero-variance features of a control subsample are left unscaled (the
    epsilon guard of :class:`~semiclip.ControlNormalizer`), silently since
    it happens by chance in small subsamples.

    References
    ----------
    Bendidi et al., "A Cross Modal Knowledge Distillation & Data Augmentation
    Recipe for Improving Transcriptomics Representations through Morphological
    Features", ICML 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip import PEAAugmenter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4))
    >>> y = np.tile(["ctrl", "ctrl", "geneA"], 20)
    >>> plate = np.repeat(["p1", "p2", "p3"], 20)
    >>> pea = PEAAugmenter(control_label="ctrl", random_state=0).fit(X, y, batch=plate)
    >>> pea.sample(X, y, batch=plate).shape
    (60, 4)
    >>> X_res, y_res = pea.fit_resample(X, y, batch=plate)
    >>> X_res.shape, bool((y_res == y[pea.sample_indices_]).all())
    ((120, 4), True)
    """

    _parameter_constraints = {
        "transforms": ["array-like"],
        "transform_probs": ["array-like", None],
        "drop_step_prob": [Interval(numbers.Real, 0, 1, closed="both")],
        "control_fraction": [Interval(numbers.Real, 0, 1, closed="right"), "array-like"],
        "control_label": "no_validation",
        "n_augmentations": [Interval(numbers.Integral, 1, None, closed="left")],
        "keep_original": ["boolean", StrOptions({"canonical"})],
        "reg_covar": [Interval(numbers.Real, 0, None, closed="neither")],
        "shrinkage": _SHRINKAGE,
        "random_state": ["random_state"],
    }
    __metadata_request__fit = {"batch": True}
    __metadata_request__fit_resample = {"batch": True}  # used once imblearn is imported

    def __init__(
        self,
        transforms=("center", "center_scale", "tvn"),
        *,
        transform_probs=None,
        drop_step_prob=0.5,
        control_fraction=(0.5, 1.0),
        control_label=None,
        n_augmentations=1,
        keep_original=True,
        reg_covar=0.5,
        shrinkage=None,
        random_state=None,
    ):
        self.transforms = transforms
        self.transform_probs = transform_probs
        self.drop_step_prob = drop_step_prob
        self.control_fraction = control_fraction
        self.control_label = control_label
        self.n_augmentations = n_augmentations
        self.keep_original = keep_original
        self.reg_covar = reg_covar
        self.shrinkage = shrinkage
        self.random_state = random_state

    # ------------------------------------------------------------ validation
    def _check_params(self):
        transforms = list(self.transforms)
        bad = [t for t in transforms if not isinstance(t, str) or t not in STEPS]
        if not transforms or bad:
            raise ValueError(
                f"transforms must be a non-empty sequence of {sorted(STEPS)}; got "
                f"{self.transforms!r}."
            )
        if self.transform_probs is None:
            probs = np.full(len(transforms), 1.0 / len(transforms))
        else:
            probs = np.asarray(self.transform_probs, dtype=np.float64).ravel()
            if probs.shape != (len(transforms),) or (probs < 0).any() or not probs.sum() > 0:
                raise ValueError(
                    f"transform_probs must hold {len(transforms)} non-negative numbers "
                    f"(one per transform, not all zero); got {self.transform_probs!r}."
                )
            probs = probs / probs.sum()
        frac = np.asarray(self.control_fraction, dtype=np.float64).ravel()
        frac = np.repeat(frac, 2) if frac.size == 1 else frac
        if frac.shape != (2,) or not (0 < frac[0] <= frac[1] <= 1):
            raise ValueError(
                "control_fraction must be a float in (0, 1] or a range (low, high) "
                f"with 0 < low <= high <= 1; got {self.control_fraction!r}."
            )
        return tuple(transforms), probs, frac

    def _check_data(self, X, y, batch, reset):
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_all_finite=False, reset=reset
        )
        check_finite_rows(X)
        _, controls = _check_y(self, y, X.shape[0])
        if not reset:
            _check_batch_consistency(self, batch)
        classes, codes = _encode_batches(batch, X.shape[0], None if reset else self.batches_)
        classes = classes if reset else self.batches_
        ctrl = _check_controls_per_batch(controls, codes, classes)
        return X, codes, classes, ctrl

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, *, batch=None):
        """Validate the data, index the controls and precompute global statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Uncorrected profiles, finite.
        y : array-like of shape (n_samples,)
            Sample labels; controls are ``y == control_label``.
        batch : array-like of shape (n_samples,), default=None
            Batch (plate) of every sample. None: one batch.

        Returns
        -------
        self : PEAAugmenter
            Fitted augmenter.
        """
        self._family = self._check_params()
        X, codes, self.batches_, ctrl = self._check_data(X, y, batch, reset=True)
        self.n_controls_ = ctrl.counts
        self.canonical_ = ControlNormalizer(
            "tvn",
            control_label=self.control_label,
            reg_covar=self.reg_covar,
            shrinkage=self.shrinkage,
            basis="feature",
        ).fit(X, y, batch=batch)
        full = self.canonical_._stats
        base = dict(basis="feature", coral=())
        self._global = {
            (True, True): C.TVNStats(full.center_scale, full.whitening, **base),
            (True, False): C.TVNStats(full.center_scale, None, **base),
            (False, False): C.TVNStats(None, None, **base),
        }
        if "tvn" in self._family[0] and self.drop_step_prob > 0:
            raw = C.fit_whitening(X[ctrl.order])
            self._global[(False, True)] = C.TVNStats(None, raw, **base)
        self._rng = _generator(self.random_state)
        return self

    def canonical_correction(self):
        """Return the canonical correction used at inference: :attr:`canonical_`.

        A fitted ``ControlNormalizer(method="tvn", basis="feature")`` (full
        TVN on all controls of the fit data, same ``control_label``,
        ``reg_covar`` and ``shrinkage``), whose output shares the feature
        basis of every :meth:`sample`.

        Returns
        -------
        normalizer : ControlNormalizer
            Fitted; apply it with ``normalizer.transform(X, batch=batch)``.
        """
        check_is_fitted(self)
        return self.canonical_

    # ---------------------------------------------------------------- sample
    def _draw(self, counts, rng):
        """Draw the per-batch plan: member, kept steps, control subsample positions."""
        transforms, probs, (lo, hi) = self._family
        n_batches = counts.size
        members = rng.choice(len(transforms), size=n_batches, p=probs)
        keep = rng.random((n_batches, 3)) >= self.drop_step_prob
        fracs = rng.uniform(lo, hi, size=n_batches)
        plan = []
        for b in range(n_batches):
            name = transforms[members[b]]
            n_steps = len(STEPS[name])
            kept = keep[b, :n_steps].copy()
            if not kept.any():
                kept[rng.integers(n_steps)] = True
            k = int(min(counts[b], max(2, round(fracs[b] * counts[b]))))
            subset = np.sort(rng.choice(counts[b], size=k, replace=False))
            steps = tuple(s for s, on in zip(STEPS[name], kept) if on)
            plan.append((name, steps, subset))
        return plan

    def sample(self, X, y, *, batch=None, random_state=None, return_plan=False):
        """Return one random PEA augmentation of ``X`` (same shape and row order).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Uncorrected profiles of batches seen in fit, finite.
        y : array-like of shape (n_samples,)
            Sample labels; controls are ``y == control_label``.
        batch : array-like of shape (n_samples,), default=None
            Batch of every sample; required when fit had ``batch``.
        random_state : int, RandomState, Generator or None, default=None
            Randomness of this draw; None advances the generator seeded in fit.
        return_plan : bool, default=False
            Also return, per batch, a dict with the drawn ``"transform"``,
            the kept ``"steps"`` and ``"n_controls_used"``.

        Returns
        -------
        X_aug : ndarray of shape (n_samples, n_features)
            The augmented profiles (dtype of ``X``).
        plan : list of dict
            Only with ``return_plan=True``.
        """
        check_is_fitted(self)
        X, codes, classes, ctrl = self._check_data(X, y, batch, reset=False)
        rng = self._rng if random_state is None else _generator(random_state)
        plan = self._draw(ctrl.counts, rng)
        out = self._apply(X, codes, ctrl, plan)
        if not return_plan:
            return out
        labels = [None] if classes is None else classes.tolist()
        info = [
            {"batch": lab, "transform": name, "steps": steps, "n_controls_used": sub.size}
            for lab, (name, steps, sub) in zip(labels, plan)
        ]
        return out, info

    def _apply(self, X, codes, ctrl, plan):
        n_batches = ctrl.n_groups
        groups = C.group_rows(codes, n_batches)
        sub_rows = [ctrl.rows(b)[sub] for b, (_, _, sub) in enumerate(plan)]
        out = np.empty_like(X)
        # center / center_scale members: group statistics of all subsamples at once
        simple = [b for b, (name, _, _) in enumerate(plan) if name != "tvn"]
        if simple:
            cs = C.fit_center_scale(X, C.Groups.of(sub_rows))
            mean, scale = cs.mean, cs.scale
            for b, (name, steps, _) in enumerate(plan):
                if "center" not in steps:
                    mean[b] = 0.0
                if "scale" not in steps:
                    scale[b] = 1.0
            stats = C.CenterScale(mean, scale, None)
            C.apply_center_scale_by_group(X, stats, groups, simple, out=out)
        # tvn members, grouped by which global steps they keep
        variants = {}
        for b, (name, steps, _) in enumerate(plan):
            if name == "tvn":
                key = ("center_scale" in steps, "whiten" in steps)
                variants.setdefault(key, []).append(b)
        for key, batches in variants.items():
            coral_rows = [None] * n_batches
            for b in batches:
                if "coral" in plan[b][1]:
                    coral_rows[b] = sub_rows[b]
            stats = C.fit_tvn_coral(
                X, self._global[key], codes, coral_rows, reg=self.reg_covar, shrinkage=self.shrinkage
            )
            every = len(batches) == n_batches  # same code path as canonical_.transform
            C.apply_tvn(X, stats, codes, groups, None if every else batches, out=out)
        return out

    # --------------------------------------------------------- fit_resample
    def fit_resample(self, X, y, *, batch=None):
        """Fit, then return ``X`` followed by ``n_augmentations`` augmented copies.

        ``keep_original`` sets what comes first: ``X`` as given (default),
        ``X`` through the canonical correction, or nothing.

        imbalanced-learn's sampler interface, so the augmenter can be a step
        of :class:`imblearn.pipeline.Pipeline` (applied during fit only).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Uncorrected profiles, finite.
        y : array-like of shape (n_samples,)
            Sample labels; controls are ``y == control_label``.
        batch : array-like of shape (n_samples,), default=None
            Batch of every sample.

        Returns
        -------
        X_resampled : ndarray or DataFrame of shape (n_samples * n_copies, n_features)
            Original rows first (unless ``keep_original=False``), then each
            augmented copy (same row order); ``n_copies`` is
            ``n_augmentations + 1``, or ``n_augmentations`` without originals.
        y_resampled : ndarray or Series of shape (n_samples * n_copies,)
            ``y`` of the source rows; ``sample_indices_`` gives the source rows.
        """
        self.fit(X, y, batch=batch)
        Xa = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        copies = [self.sample(X, y, batch=batch) for _ in range(self.n_augmentations)]
        if self.keep_original == "canonical":
            copies.insert(0, self.canonical_.transform(Xa, batch=batch).astype(Xa.dtype, copy=False))
        elif self.keep_original:
            copies.insert(0, Xa)
        n = Xa.shape[0]
        self.sample_indices_ = np.tile(np.arange(n), len(copies))
        X_res = np.concatenate(copies, axis=0)
        y_res = np.asarray(y)
        y_res = y_res.ravel()[self.sample_indices_] if y_res.ndim == 2 else y_res[self.sample_indices_]
        if hasattr(X, "columns"):
            import pandas as pd

            X_res = pd.DataFrame(X_res, columns=X.columns)
        if hasattr(y, "name") and hasattr(y, "iloc"):
            import pandas as pd

            y_res = pd.Series(y_res, name=y.name)
        return X_res, y_res

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
