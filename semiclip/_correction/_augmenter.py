"""PEAAugmenter: Perturbation Embedding Augmentation, random relaxations of batch correction."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._core.compat import IntegerInterval, Interval, StrOptions
from .._core.compat import fit_context as _fit_context
from ._checks import (
    SHRINKAGE,
    check_batch_consistency,
    check_controls,
    check_controls_per_batch,
    check_X,
    constant_features_note,
    encode_batches,
    fill_doc,
    warn_degenerate_controls,
)
from ._normalizer import ControlNormalizer, fit_statistics
from ._plan import PEAFamily, PEASampler
from ._tvn import TVNStats
from ._whitening import fit_whitening

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["PEAAugmenter"]


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    rs = check_random_state(random_state)
    return np.random.default_rng(rs.randint(0, 2**31 - 1, size=4))


@fill_doc
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
    [[reg_covar]]
    [[shrinkage]]
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
        "n_augmentations": [IntegerInterval(1, None, closed="left")],
        "keep_original": ["boolean", StrOptions({"canonical"})],
        "reg_covar": [Interval(numbers.Real, 0, None, closed="neither")],
        "shrinkage": SHRINKAGE,
        "random_state": ["random_state"],
    }
    __metadata_request__fit = {"batch": True}
    __metadata_request__fit_resample = {"batch": True}  # used once imblearn is imported

    def __init__(self, transforms: Sequence[str] = ("center", "center_scale", "tvn"), *,
                 transform_probs: ArrayLike | None = None, drop_step_prob: float = 0.5,
                 control_fraction: float | tuple[float, float] = (0.5, 1.0),
                 control_label: Any = None, n_augmentations: int = 1,
                 keep_original: bool | str = True, reg_covar: float = 0.5,
                 shrinkage: float | str | None = None,
                 random_state: int | np.random.RandomState | None = None) -> None:
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

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike, *, batch: ArrayLike | None = None) -> PEAAugmenter:
        """Validate the data, index the controls and precompute global statistics.

        Parameters
        ----------
        [[fit_data]]

        Returns
        -------
        self : PEAAugmenter
            Fitted augmenter.
        """
        self._family = PEAFamily.from_params(
            self.transforms, self.transform_probs, self.control_fraction, self.drop_step_prob
        )
        X = check_X(self, X, reset=True)
        _, controls = check_controls(self, y, X.shape[0])
        self.batches_, codes = encode_batches(batch, X.shape[0])
        ctrl = check_controls_per_batch(controls, codes, self.batches_)
        self.n_controls_ = ctrl.counts
        # the canonical TVN is PEA's own choice: its null components (fewer controls than
        # features) are expected and handled, so only constant features are worth a warning
        self.canonical_ = fit_statistics(ControlNormalizer(
            "tvn",
            control_label=self.control_label,
            reg_covar=self.reg_covar,
            shrinkage=self.shrinkage,
            basis="feature",
        ), X, y, batch=batch)
        full = self.canonical_.statistics_
        warn_degenerate_controls(type(self).__name__, constant_features_note(
            full.center_scale.degenerate, getattr(self, "feature_names_in_", None)))
        base = dict(basis="feature", coral=())
        self._global = {
            (True, True): TVNStats(full.center_scale, full.whitening, **base),
            (True, False): TVNStats(full.center_scale, None, **base),
            (False, False): TVNStats(None, None, **base),
        }
        if "tvn" in self._family.transforms and self.drop_step_prob > 0:
            raw = fit_whitening(X[ctrl.order])
            self._global[(False, True)] = TVNStats(None, raw, **base)
        self._rng = _generator(self.random_state)
        return self

    def canonical_correction(self) -> ControlNormalizer:
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
    def sampler(self, X: ArrayLike, y: ArrayLike, *, batch: ArrayLike | None = None) -> PEASampler:
        """The validated rows and fitted statistics that draws of ``X`` come from.

        :meth:`sample` validates its input on every call; a sampler does it
        once, for many draws of the same rows (the training loop of
        :class:`~semiclip.SemiClippedTransformer` draws one per epoch).

        Parameters
        ----------
        [[seen_data]]

        Returns
        -------
        sampler : PEASampler
            ``sampler.sample(rng)`` returns an augmented copy of ``X`` and its
            per-batch plan.
        """
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        _, controls = check_controls(self, y, X.shape[0])
        check_batch_consistency(self, batch)
        _, codes = encode_batches(batch, X.shape[0], self.batches_)
        ctrl = check_controls_per_batch(controls, codes, self.batches_)
        return PEASampler(X, codes, ctrl, self._family, self._global, self.reg_covar,
                          self.shrinkage)

    def sample(self, X: ArrayLike, y: ArrayLike, *, batch: ArrayLike | None = None,
               random_state: int | np.random.RandomState | np.random.Generator | None = None,
               return_plan: bool = False) -> np.ndarray | tuple[np.ndarray, list[dict[str, Any]]]:
        """Return one random PEA augmentation of ``X`` (same shape and row order).

        Parameters
        ----------
        [[seen_data]]
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
        sampler = self.sampler(X, y, batch=batch)
        rng = self._rng if random_state is None else _generator(random_state)
        out, plan = sampler.sample(rng)
        if not return_plan:
            return out
        labels = [None] if self.batches_ is None else self.batches_.tolist()
        info = [
            {"batch": lab, "transform": p.transform, "steps": p.steps,
             "n_controls_used": p.subset.size}
            for lab, p in zip(labels, plan)
        ]
        return out, info

    # --------------------------------------------------------- fit_resample
    def fit_resample(self, X: ArrayLike, y: ArrayLike, *, batch: ArrayLike | None = None
    ) -> tuple[np.ndarray | pd.DataFrame, np.ndarray | pd.Series]:
        """Fit, then return ``X`` followed by ``n_augmentations`` augmented copies.

        ``keep_original`` sets what comes first: ``X`` as given (default),
        ``X`` through the canonical correction, or nothing.

        imbalanced-learn's sampler interface, so the augmenter can be a step
        of :class:`imblearn.pipeline.Pipeline` (applied during fit only).

        Parameters
        ----------
        [[fit_data]]

        Returns
        -------
        X_resampled : ndarray or DataFrame of shape (n_samples * n_copies, n_features)
            Original rows first (unless ``keep_original=False``), then each
            augmented copy (same row order); ``n_copies`` is
            ``n_augmentations + 1``, or ``n_augmentations`` without originals.
            A DataFrame keeps the columns and the index of ``X``: row ``i``
            has the index label of its source row ``sample_indices_[i]``
            (labels repeat once per copy).
        y_resampled : ndarray or Series of shape (n_samples * n_copies,)
            ``y`` of the source rows; ``sample_indices_`` gives the source rows.
            A Series keeps the name and the index labels of ``y`` (as ``X``).
        """
        self.fit(X, y, batch=batch)
        sampler = self.sampler(X, y, batch=batch)
        Xa = sampler.X
        copies = [sampler.sample(self._rng)[0] for _ in range(self.n_augmentations)]
        if self.keep_original == "canonical":
            copies.insert(
                0, self.canonical_.transform(Xa, batch=batch).astype(Xa.dtype, copy=False)
            )
        elif self.keep_original:
            copies.insert(0, Xa)
        n = Xa.shape[0]
        self.sample_indices_ = np.tile(np.arange(n), len(copies))
        X_res = np.concatenate(copies, axis=0)
        y_res = np.asarray(y)
        y_res = (
            y_res.ravel()[self.sample_indices_] if y_res.ndim == 2 else y_res[self.sample_indices_]
        )
        if hasattr(X, "columns"):
            import pandas as pd

            X_res = pd.DataFrame(X_res, columns=X.columns, index=X.index[self.sample_indices_])
        if hasattr(y, "name") and hasattr(y, "iloc"):
            import pandas as pd

            y_res = pd.Series(y_res, name=y.name, index=y.index[self.sample_indices_])
        return X_res, y_res

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
