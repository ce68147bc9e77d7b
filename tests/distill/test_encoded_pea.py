"""The epoch-wise encoded PEA path equals encode(PEAAugmenter.sample(X)) for the same draw."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from semiclip import PEAAugmenter
from semiclip._distill import EncodedPEA, linear_encoder_map

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _plates(rng, n_batches=4, per_batch=90, d=40, n_ctrl=20):
    batch = np.repeat(np.arange(n_batches), per_batch)
    y = np.where(np.arange(batch.size) % per_batch < n_ctrl, "ctrl", "trt").astype(object)
    X = (rng.normal(size=(batch.size, 6)) @ rng.normal(size=(6, d))
         + rng.normal(size=(batch.size, d)))
    X = (X * rng.uniform(0.5, 2.0, (n_batches, d))[batch] + 20.0
         + 3.0 * rng.normal(size=(n_batches, d))[batch])
    perm = rng.permutation(batch.size)  # batches interleaved, not contiguous
    return X[perm].astype(np.float32), y[perm], np.char.add("p", batch[perm].astype(str))


@pytest.mark.parametrize(
    "params, n_ctrl",
    [
        (dict(), 20),  # default family, steps dropped at random: every code path
        (dict(transforms=("tvn",), drop_step_prob=0.0), 20),  # low-rank CORAL
        (dict(transforms=("tvn",), drop_step_prob=0.0, control_fraction=1.0), 60),  # dense CORAL
        (dict(transforms=("center_scale", "tvn"), shrinkage="ledoit-wolf"), 20),
        (dict(transforms=("center",)), 20),
    ],
)
@pytest.mark.parametrize("whiten", [False, True])
def test_encoded_samples_equal_encoded_augmentation(params, n_ctrl, whiten):
    rng = np.random.default_rng(3)
    X, y, batch = _plates(rng, n_ctrl=n_ctrl)
    aug = PEAAugmenter(control_label="ctrl", random_state=0, **params).fit(X, y, batch=batch)
    Xc = aug.canonical_.transform(X, batch=batch)
    pca = PCA(n_components=12, whiten=whiten, random_state=0).fit(Xc)
    sampler = EncodedPEA(aug.sampler(X, y, batch=batch), linear_encoder_map(pca))
    for seed in range(4):
        fast = sampler(np.random.default_rng(seed))
        ref = pca.transform(aug.sample(X, y, batch=batch, random_state=np.random.default_rng(seed))
                            .astype(np.float64))
        assert fast.dtype == np.float32 and fast.shape == ref.shape
        np.testing.assert_allclose(fast, ref, rtol=0, atol=2e-4 * np.abs(ref).max())


def test_wanted_rows_only_same_draws_as_all_rows():
    rng = np.random.default_rng(4)
    X, y, batch = _plates(rng)
    aug = PEAAugmenter(control_label="ctrl", random_state=0).fit(X, y, batch=batch)
    pca = PCA(n_components=10, random_state=0).fit(aug.canonical_.transform(X, batch=batch))
    wanted = rng.permutation(np.flatnonzero(y != "ctrl"))[:200]  # treated rows, shuffled
    full = EncodedPEA(aug.sampler(X, y, batch=batch), linear_encoder_map(pca))
    part = EncodedPEA(aug.sampler(X, y, batch=batch), linear_encoder_map(pca), rows=wanted)
    for seed in range(3):
        a = full(np.random.default_rng(seed))
        b = part(np.random.default_rng(seed))
        assert b.shape == (200, 10)
        np.testing.assert_allclose(b, a[wanted], rtol=0, atol=1e-5 * np.abs(a).max())
