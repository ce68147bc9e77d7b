"""Synthetic weakly paired transcriptomics / image-embedding data with ground truth."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils import Bunch, check_random_state

from .._core import ImageBank
from .._core.compat import Interval, validate_params

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def _group_sizes(n_perturbations, n_groups, rng):
    """Uneven group sizes (complexes are small, pathways large), each >= 2."""
    weights = rng.gamma(shape=2.0, scale=1.0, size=n_groups)
    sizes = np.maximum(2, np.floor(weights / weights.sum() * n_perturbations)).astype(int)
    while sizes.sum() > n_perturbations:
        sizes[np.argmax(sizes)] -= 1
    return sizes


def _count(low):
    return [Interval(numbers.Integral, low, None, closed="left")]


_REAL = [Interval(numbers.Real, None, None, closed="neither")]  # any finite number


# The noise and strength factors multiply draws, so any real number is accepted
# as before; NaN, infinities and non-numbers, which gave NaN data or a numpy
# traceback, are refused naming the parameter. plate_layout and plate_gain keep
# their own messages.
@validate_params(
    {"n_perturbations": _count(1), "n_genes": _count(1), "n_groups": [None, *_count(1)],
     "samples_per_perturbation": _count(0), "n_batches": _count(1),
     "controls_per_batch": _count(0), "image_dim": _count(1),
     "images_per_perturbation": _count(0), "latent_dim": _count(1), "nuisance_dim": _count(1),
     "group_strength": [Interval(numbers.Real, 0, 1, closed="both")], "tx_signal": _REAL,
     "tx_nuisance": _REAL, "tx_noise": _REAL, "image_noise": _REAL, "batch_strength": _REAL,
     "program_size": _count(0), "plate_layout": "no_validation", "plate_gain": "no_validation",
     "control_label": "no_validation", "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def make_weakly_paired(n_perturbations: int = 600, n_genes: int = 978, *,
                       n_groups: int | None = None, samples_per_perturbation: int = 5,
                       n_batches: int = 12, controls_per_batch: int = 48, image_dim: int = 128,
                       images_per_perturbation: int = 3, latent_dim: int = 16,
                       nuisance_dim: int = 24, group_strength: float = 0.6, tx_signal: float = 0.35,
                       tx_nuisance: float = 1.0, tx_noise: float = 1.0, image_noise: float = 1.0,
                       batch_strength: float = 1.0, program_size: int = 60,
                       plate_layout: str = "random", plate_gain: float = 0.0,
                       control_label: str = "control",
                       random_state: int | np.random.RandomState | None = None) -> Bunch:
    """Generate a weakly paired data set with known gene-gene relationships.

    Perturbations (gene knock-outs) belong to groups (complexes/pathways);
    perturbations of one group share most of a latent biological state. Two
    views of that state are generated in *separate experiments*, sharing only
    the perturbation key:

    - **transcriptomics** ``X``: many noisy samples per perturbation over
      ``n_genes`` genes, spread over plates (batches) with additive and
      low-rank plate effects and ``controls_per_batch`` control wells per
      plate. The latent state reaches the genes through sparse gene programs
      (``gene_programs``), but weakly (``tx_signal``): each perturbation also
      has a strong perturbation-specific effect unrelated to its group
      (``tx_nuisance``, e.g. off-target or fitness effects), so raw profiles
      carry the relationships only faintly;
    - **image embeddings** (the teacher bank): a few samples per perturbation
      of a nonlinear function of the same latent state, with no nuisance and
      no plate effects (like an already batch-corrected foundation-model
      embedding), so the relationships are clear.

    Learning a map from transcriptomics to the image space therefore has
    something real to gain (reading the group programs while ignoring the
    nuisance), which raw profiles and unsupervised PCA cannot do.

    Parameters
    ----------
    n_perturbations : int, default=600
        Number of perturbations (keys).
    n_genes : int, default=978
        Transcriptomics features (L1000 has 978 landmark genes).
    n_groups : int, default=None
        Number of groups; ``n_perturbations // 8`` by default. Sizes are
        uneven, each at least 2.
    samples_per_perturbation : int, default=5
        Transcriptomics replicates of each perturbation, spread over plates.
    n_batches : int, default=12
        Plates.
    controls_per_batch : int, default=48
        Control wells per plate (label ``control_label``).
    image_dim : int, default=128
        Teacher embedding dimension.
    images_per_perturbation : int, default=3
        Teacher rows per perturbation.
    latent_dim, nuisance_dim : int, default=16, 24
        Dimensions of the shared biological state and of the
        perturbation-specific nuisance.
    group_strength : float in [0, 1], default=0.6
        Share of a perturbation's latent state that comes from its group.
    tx_signal, tx_nuisance, tx_noise : float, default=0.35, 1.0, 1.0
        Per-gene standard deviations of the relationship signal, of the
        perturbation-specific nuisance and of the per-sample noise in ``X``.
    image_noise : float, default=1.0
        Per-sample noise of the teacher embeddings (relative to unit signal).
    batch_strength : float, default=1.0
        Scale of the plate effects (additive offset plus low-rank structured
        noise) in ``X``.
    program_size : int, default=60
        Genes in the sparse program of each latent dimension.
    plate_layout : {"random", "by_perturbation"}, default="random"
        ``"random"``: every replicate lands on a random plate.
        ``"by_perturbation"``: all replicates of a perturbation share one
        plate, as in screens with a fixed plate map; residual plate effects
        are then confounded with perturbations.
    plate_gain : float, default=0.0
        Standard deviation (>= 0) of multiplicative plate effects: every
        value of gene ``g`` on plate ``b`` (controls included) is multiplied
        by ``exp(plate_gain * e[b, g])``, ``e ~ N(0, 1)`` (a per-plate,
        per-gene gain, e.g. a detection efficiency). Unlike the additive
        effects, a gain also rescales the perturbation effects (a treatment
        x plate interaction) and survives per-plate centering. Per-plate
        center-scaling on the controls removes it up to estimation noise;
        TVN only partly (its per-batch CORAL is a regularised inverse
        square root of the plate's control covariance, estimated from fewer
        controls than genes). The gains are drawn after everything else, so
        for a given ``random_state`` the data are those of ``plate_gain=0``
        with ``X`` multiplied by the gains (in float64, before the cast to
        float32); ``0`` draws nothing and leaves the output unchanged.
    control_label : str, default="control"
        Key of control samples.
    random_state : int, RandomState instance or None, default=None
        Seed of every draw; pass an int for the same data on every call.

    Returns
    -------
    data : Bunch
        ``X`` (n_samples, n_genes) float32; ``y`` keys (``"P0000"``... and
        ``control_label``); ``batch`` plate names; ``is_control``;
        ``image_bank`` (:class:`~semiclip.ImageBank`); ``relationships``
        (n_pairs, 2) sorted key pairs sharing a group (the ground truth);
        ``perturbations`` and ``groups`` (group of each perturbation);
        ``gene_programs`` (n_genes, latent_dim) loadings;
        ``driver_genes`` (n_groups, 20) indices of the genes each group moves
        most in ``X``; ``feature_names``; ``control_label``; ``plate_gains``
        (n_batches, n_genes), the gains of ``plate_gain`` (ones when 0), row
        ``b`` for plate ``"plate_{b:02d}"``.

    Examples
    --------
    >>> from semiclip.datasets import make_weakly_paired
    >>> data = make_weakly_paired(n_perturbations=60, n_genes=50, random_state=0)
    >>> data.X.shape[1], data.image_bank.n_dims
    (50, 128)
    >>> bool(data.is_control.any()), data.relationships.shape[1]
    (True, 2)
    """
    if not (np.isfinite(plate_gain) and plate_gain >= 0):
        raise ValueError(
            f"plate_gain must be a finite number >= 0 (0 disables the gains); got {plate_gain!r}."
        )
    rng = check_random_state(random_state)
    n_groups = max(2, n_perturbations // 8) if n_groups is None else int(n_groups)
    if n_perturbations < 2 * n_groups:
        raise ValueError(
            f"n_perturbations={n_perturbations} is too small for n_groups={n_groups}: "
            "every group needs at least 2 perturbations."
        )
    sizes = _group_sizes(n_perturbations, n_groups, rng)
    groups = np.repeat(np.arange(n_groups), sizes)
    groups = np.concatenate([groups, rng.randint(n_groups, size=n_perturbations - groups.size)])
    groups = groups[rng.permutation(n_perturbations)]
    keys = np.array([f"P{i:04d}" for i in range(n_perturbations)])

    # Latent biology: group state + individual state.
    g = rng.standard_normal((n_groups, latent_dim))
    e = rng.standard_normal((n_perturbations, latent_dim))
    u = np.sqrt(group_strength) * g[groups] + np.sqrt(1 - group_strength) * e

    # Transcriptomics: sparse gene programs (weak) + dense nuisance (strong).
    programs = np.zeros((n_genes, latent_dim))
    for j in range(latent_dim):
        support = rng.choice(n_genes, size=min(program_size, n_genes), replace=False)
        programs[support, j] = rng.standard_normal(support.size)
    signal = u @ programs.T
    signal *= tx_signal / max(signal.std(), 1e-12)
    nuisance_loadings = rng.standard_normal((n_genes, nuisance_dim)) / np.sqrt(nuisance_dim)
    nuisance = rng.standard_normal((n_perturbations, nuisance_dim)) @ nuisance_loadings.T
    nuisance *= tx_nuisance / max(nuisance.std(), 1e-12)
    profile = signal + nuisance

    n_trt = n_perturbations * samples_per_perturbation
    pert_of_sample = np.repeat(np.arange(n_perturbations), samples_per_perturbation)
    if plate_layout == "by_perturbation":
        plate_of_sample = rng.randint(n_batches, size=n_perturbations)[pert_of_sample]
    elif plate_layout == "random":
        plate_of_sample = rng.randint(n_batches, size=n_trt)
    else:
        raise ValueError(
            f"plate_layout must be 'random' or 'by_perturbation'; got {plate_layout!r}."
        )
    ctrl_plate = np.repeat(np.arange(n_batches), controls_per_batch)

    offsets = rng.standard_normal((n_batches, n_genes)) * batch_strength
    rank = 4
    plate_dirs = rng.standard_normal((n_batches, rank, n_genes)) / np.sqrt(n_genes) * 8.0

    def plate_noise(plates):
        z = rng.standard_normal((plates.size, rank))
        structured = np.einsum("nr,nrg->ng", z, plate_dirs[plates]) * batch_strength
        return offsets[plates] + structured + rng.standard_normal((plates.size, n_genes)) * tx_noise

    X_trt = profile[pert_of_sample] + plate_noise(plate_of_sample)
    X_ctl = plate_noise(ctrl_plate)
    X = np.vstack([X_trt, X_ctl])
    y = np.concatenate(
        [keys[pert_of_sample], np.full(ctrl_plate.size, control_label, dtype=object)]
    )
    y = y.astype(str)
    plates = np.concatenate([plate_of_sample, ctrl_plate])
    batch = np.array([f"plate_{p:02d}" for p in range(n_batches)])[plates]
    order = rng.permutation(X.shape[0])
    X, y, batch = X[order], y[order], batch[order]

    # Teacher: a nonlinear view of the latent state, clean, a few rows per key.
    hidden = 2 * latent_dim
    A1 = rng.standard_normal((latent_dim, hidden)) / np.sqrt(latent_dim)
    A2 = rng.standard_normal((hidden, image_dim)) / np.sqrt(hidden)
    img_mean = np.tanh(u @ A1) @ A2
    img_mean /= img_mean.std()
    img_rows = np.repeat(np.arange(n_perturbations), images_per_perturbation)
    img = img_mean[img_rows] + image_noise * rng.standard_normal((img_rows.size, image_dim))
    bank = ImageBank(img.astype(np.float32), keys[img_rows])

    # Multiplicative plate effects, drawn last so that the rest is unchanged.
    gains = np.ones((n_batches, n_genes))
    if plate_gain > 0:
        gains = np.exp(plate_gain * rng.standard_normal((n_batches, n_genes)))
        X *= gains[plates[order]]
    X = X.astype(np.float32)

    # Ground truth: all pairs within a group; genes each group drives in X.
    same = groups[:, None] == groups[None, :]
    iu, ju = np.nonzero(np.triu(same, k=1))
    relationships = np.stack([keys[iu], keys[ju]], axis=1)
    group_effect = g @ programs.T  # (n_groups, n_genes)
    driver_genes = np.argsort(-np.abs(group_effect), axis=1)[:, :20]

    return Bunch(
        X=X,
        y=y,
        batch=batch,
        is_control=y == control_label,
        image_bank=bank,
        relationships=relationships,
        perturbations=keys,
        groups=groups,
        gene_programs=programs,
        driver_genes=driver_genes,
        feature_names=np.array([f"G{j:04d}" for j in range(n_genes)], dtype=object),
        control_label=control_label,
        plate_gains=gains,
    )


@validate_params(
    # any number: the range keeps its own message ("test_size=1.5 leaves no key ...")
    {"y": ["array-like"], "test_size": _REAL,
     "control_label": "no_validation", "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def split_by_key(y: ArrayLike, *, test_size: float = 1 / 3, control_label: Any = None,
                 random_state: int | np.random.RandomState | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split samples by key: no key in both parts; controls go to both.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Keys.
    test_size : float in (0, 1), default=1/3
        Fraction of (non-control) keys held out.
    control_label : optional
        Controls are placed in both parts (they are needed for batch
        correction on both sides).
    random_state : int, RandomState instance or None, default=None
        Seed of the draw of held-out keys; pass an int for a reproducible split.

    Returns
    -------
    train, test : ndarray of bool, shape (n_samples,)
        Masks of the training and held-out samples: no non-control key is
        in both, and every control is in both.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array(["a", "a", "b", "c", "ctl"])
    >>> train, test = split_by_key(y, test_size=0.34, control_label="ctl", random_state=0)
    >>> bool(train[-1] and test[-1]), bool((train & test)[:4].any())
    (True, False)
    """
    rng = check_random_state(random_state)
    y = np.asarray(y)
    is_ctl = y == control_label if control_label is not None else np.zeros(len(y), bool)
    uniq = np.unique(y[~is_ctl])
    n_test = int(round(test_size * uniq.size))
    if not 0 < n_test < uniq.size:
        raise ValueError(
            f"test_size={test_size} leaves no key on one side ({uniq.size} keys); "
            "use a value strictly between 1/n_keys and 1 - 1/n_keys."
        )
    test_keys = rng.permutation(uniq)[:n_test]
    test = np.isin(y, test_keys)
    return (~test) | is_ctl, test | is_ctl
