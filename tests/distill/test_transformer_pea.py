"""SemiClippedTransformer with a PEAAugmenter: the training/inference contract."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.pipeline import make_pipeline

from semiclip import ControlNormalizer, PEAAugmenter, SemiClippedTransformer

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = dict(encoder_dim=8, hidden_layer_sizes=(), max_iter=4, early_stopping=False,
              control_label="control", random_state=0)


def test_fresh_augmentation_every_epoch_and_canonical_tvn_at_inference(tiny_data, monkeypatch):
    from semiclip._correction import PEAFamily

    calls = []
    original = PEAFamily.draw

    def spy(self, counts, rng):
        calls.append(rng.bit_generator.state["state"]["state"])
        return original(self, counts, rng)

    monkeypatch.setattr(PEAFamily, "draw", spy)  # both the encoded and the generic path
    est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **PARAMS)
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
    assert len(calls) == 4 and len(set(calls)) == 4  # one fresh draw per epoch
    # the canonical correction is TVN on all training controls, in the feature basis
    # 18 controls cannot whiten 30 genes: the normalizer says so (PEA's own TVN is quiet)
    with pytest.warns(UserWarning, match="zero variance in the controls"):
        ref = ControlNormalizer("tvn", control_label="control", basis="feature").fit(
            tiny_data.X, tiny_data.y, batch=tiny_data.batch)
    Xc = ref.transform(tiny_data.X, batch=tiny_data.batch)
    np.testing.assert_allclose(est.correction_.transform(tiny_data.X, batch=tiny_data.batch), Xc,
                               atol=1e-5)
    # transform = canonical correction -> PCA encoder -> linear adapter, in float64 numpy
    W = est.adapter_[0].weight.detach().numpy().astype(np.float64)
    b = est.adapter_[0].bias.detach().numpy().astype(np.float64)
    expected = est.encoder_.transform(Xc) @ W.T + b
    np.testing.assert_allclose(est.transform(tiny_data.X, batch=tiny_data.batch), expected,
                               atol=1e-4)


def test_routes_agree_when_pea_is_effectively_off(tiny_data):
    """Pipeline(ControlNormalizer(tvn), SemiClipped) ~ SemiClipped(augmenter=identity-PEA)."""
    off = PEAAugmenter(transforms=("tvn",), drop_step_prob=0.0, control_fraction=1.0,
                       random_state=0)
    params = {**PARAMS, "max_iter": 30, "learning_rate_init": 1e-2}
    aug = SemiClippedTransformer(augmenter=off, **params)
    aug.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
    norm = ControlNormalizer("tvn", control_label="control", basis="feature")
    pipe = make_pipeline(norm, SemiClippedTransformer(**params))
    with pytest.warns(UserWarning, match="zero variance in the controls"):
        pipe.fit(tiny_data.X, tiny_data.y, controlnormalizer__batch=tiny_data.batch,
                 semiclippedtransformer__image_bank=tiny_data.image_bank)
    Za = aug.transform(tiny_data.X, batch=tiny_data.batch)
    Zp = pipe[-1].transform(norm.transform(tiny_data.X, batch=tiny_data.batch))
    # same encoder (PCA of the same corrected data) ...
    np.testing.assert_allclose(np.abs(aug.encoder_.components_),
                               np.abs(pipe[-1].encoder_.components_), atol=1e-4)
    # ... and embeddings that agree up to the training noise of shuffling
    trt = ~tiny_data.is_control

    def key_similarity(Z):
        keys = np.unique(tiny_data.y[trt])
        M = np.stack([Z[trt][tiny_data.y[trt] == k].mean(0) for k in keys])
        M /= np.linalg.norm(M, axis=1, keepdims=True)
        return (M @ M.T)[np.triu_indices(len(keys), 1)]

    assert np.corrcoef(key_similarity(Za), key_similarity(Zp))[0, 1] > 0.9


def test_metadata_routing_with_an_augmenter(tiny_data):
    est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **PARAMS)
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(est)
        pipe.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
        Z = pipe.transform(tiny_data.X, batch=tiny_data.batch)
    assert Z.shape == (tiny_data.X.shape[0], tiny_data.image_bank.n_dims)


def test_augmenter_bad_input(tiny_data):
    est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **PARAMS)
    with pytest.raises(ValueError, match=r"fit\(..., batch=...\) is required with an augmenter"):
        est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    no_label = SemiClippedTransformer(augmenter=PEAAugmenter(), **{**PARAMS, "control_label": None})
    with pytest.raises(ValueError, match="control_label is required with an augmenter"):
        no_label.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank,
                     batch=tiny_data.batch)
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
    with pytest.raises(ValueError, match=r"transform\(X, batch=...\) is required"):
        est.transform(tiny_data.X)
    with pytest.raises(ValueError, match="never seen in fit"):
        est.transform(tiny_data.X[:3], batch=np.array(["plate_99"] * 3))
    one_control = tiny_data.y.copy().astype(object)
    first = np.flatnonzero((tiny_data.batch == "plate_00") & tiny_data.is_control)
    one_control[first[1:]] = tiny_data.perturbations[0]
    with pytest.raises(ValueError, match="plate_00"):
        SemiClippedTransformer(augmenter=PEAAugmenter(), **PARAMS).fit(
            tiny_data.X, one_control, image_bank=tiny_data.image_bank, batch=tiny_data.batch)


@pytest.mark.slow
def test_pea_does_not_break_learning(small_data):
    """With PEA the held-out recall stays close to (or above) the no-PEA value.

    A broken integration (e.g. augmentations in another coordinate basis
    than the canonical input) collapses it.
    """
    from semiclip.datasets import split_by_key

    from .._reference import slow_recall

    d = small_data
    tr, te = split_by_key(d.y, control_label="control", random_state=0)
    te_trt = te & ~d.is_control
    kw = dict(control_label="control", random_state=0)
    pea = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **kw)
    pea.fit(d.X[tr], d.y[tr], image_bank=d.image_bank, batch=d.batch[tr])
    norm = ControlNormalizer("tvn", control_label="control", basis="feature")
    Xtr = norm.fit_transform(d.X[tr], d.y[tr], batch=d.batch[tr])
    plain = SemiClippedTransformer(**kw).fit(Xtr, d.y[tr], image_bank=d.image_bank)
    Xte = d.X[te_trt]
    r_pea = slow_recall(pea.transform(Xte, batch=d.batch[te_trt]), d.y[te_trt], d.relationships)
    r_plain = slow_recall(plain.transform(norm.transform(Xte, batch=d.batch[te_trt])),
                          d.y[te_trt], d.relationships)
    r_raw = slow_recall(norm.transform(Xte, batch=d.batch[te_trt]), d.y[te_trt], d.relationships)
    assert r_pea > 0.8 * r_plain and r_pea > 1.4 * r_raw


def test_augmentation_is_drawn_in_the_loop_on_the_cpu(tiny_data):
    """A drawing thread only competes for the cores on the CPU (accelerators draw ahead)."""
    class SeeData:
        def on_train_begin(self, trainer):
            self.ahead = trainer.data.epoch_features_ahead

    seen = SeeData()
    est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), callbacks=[seen],
                                 **{**PARAMS, "device": "cpu"})
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
    assert seen.ahead is False


@pytest.mark.parametrize("extra", [dict(encoder=None), dict(train_encoder=True)])
def test_raw_profile_path_when_the_encoder_is_not_composed(tiny_data, extra):
    """Without a frozen PCA encoder PEA augments the raw profiles every epoch, then encodes."""
    est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **{**PARAMS, **extra})
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
    from semiclip._distill import epoch_features

    train = np.flatnonzero(~tiny_data.is_control)
    feats = epoch_features(est.augmenter_, est.encoder_, tiny_data.X, tiny_data.y,
                           tiny_data.batch, train, tiny_data.is_control, raw=est.train_encoder)
    got = feats(np.random.default_rng(5))
    aug = est.augmenter_.sample(tiny_data.X.astype(np.float32), tiny_data.y, batch=tiny_data.batch,
                                random_state=np.random.default_rng(5))[train]
    # the rows passed are the training rows plus the controls: the same draws as on all rows;
    # both encoders here are the identity on these features (None, or the raw profiles)
    np.testing.assert_allclose(got, aug, rtol=1e-5, atol=1e-5)
    Z = est.transform(tiny_data.X, batch=tiny_data.batch)
    assert Z.shape == (tiny_data.X.shape[0], tiny_data.image_bank.n_dims) and np.isfinite(Z).all()


def test_a_refit_without_augmenter_forgets_the_old_correction(tiny_data):
    """Refitting with ``augmenter=None`` is a plain fit: no stale batch correction applied."""
    est = SemiClippedTransformer(augmenter=PEAAugmenter(random_state=0), **PARAMS)
    est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank, batch=tiny_data.batch)
    est.set_params(augmenter=None).fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    fresh = SemiClippedTransformer(**PARAMS).fit(tiny_data.X, tiny_data.y,
                                                 image_bank=tiny_data.image_bank)
    # a stale correction would demand batch= here, or change the embedding
    np.testing.assert_array_equal(est.transform(tiny_data.X), fresh.transform(tiny_data.X))
