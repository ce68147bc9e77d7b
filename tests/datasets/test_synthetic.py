"""make_weakly_paired and split_by_key: structure, ground truth, and the signal it promises."""

import numpy as np
import pytest

from semiclip.datasets import make_weakly_paired, split_by_key

from .._reference import center_plates_on_controls, slow_center_scale, slow_recall


def test_shapes_controls_and_keys():
    d = make_weakly_paired(n_perturbations=50, n_genes=40, n_batches=4, controls_per_batch=5,
                           samples_per_perturbation=3, image_dim=16, images_per_perturbation=2,
                           random_state=0)
    assert d.X.shape == (50 * 3 + 4 * 5, 40) and d.X.dtype == np.float32
    assert d.y.shape == d.batch.shape == d.is_control.shape == (d.X.shape[0],)
    np.testing.assert_array_equal(d.is_control, d.y == "control")
    # five controls on every plate
    plates, counts = np.unique(d.batch[d.is_control], return_counts=True)
    assert plates.size == 4 and np.all(counts == 5)
    # every perturbation has its transcriptomics replicates and its teacher rows
    keys, counts = np.unique(d.y[~d.is_control], return_counts=True)
    np.testing.assert_array_equal(keys, d.perturbations)
    assert np.all(counts == 3)
    assert d.image_bank.n_dims == 16 and d.image_bank.n_embeddings == 100
    np.testing.assert_array_equal(d.image_bank.unique_keys, d.perturbations)


def test_relationships_are_exactly_the_within_group_pairs():
    d = make_weakly_paired(n_perturbations=40, n_genes=20, random_state=3)
    group = dict(zip(d.perturbations, d.groups))
    expected = {
        (a, b) for i, a in enumerate(d.perturbations) for b in d.perturbations[i + 1:]
        if group[a] == group[b]
    }
    got = {tuple(p) for p in d.relationships}
    assert got == expected
    assert all(a < b for a, b in got)
    assert np.all(np.bincount(d.groups) >= 2)


def test_reproducible_with_random_state():
    a = make_weakly_paired(n_perturbations=30, n_genes=20, random_state=7)
    b = make_weakly_paired(n_perturbations=30, n_genes=20, random_state=7)
    c = make_weakly_paired(n_perturbations=30, n_genes=20, random_state=8)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.image_bank.embeddings, b.image_bank.embeddings)
    assert not np.allclose(a.X, c.X)


def test_driver_genes_are_moved_by_their_group():
    d = make_weakly_paired(n_perturbations=200, n_genes=300, tx_noise=0.1, batch_strength=0.0,
                           random_state=0)
    trt = ~d.is_control
    group = dict(zip(d.perturbations, d.groups))
    g = np.array([group[k] for k in d.y[trt]])
    X = d.X[trt] - d.X[trt].mean(0)
    for k in range(3):
        effect = np.abs(X[g == k].mean(0))
        drivers = d.driver_genes[k]
        others = np.setdiff1d(np.arange(300), drivers)
        assert effect[drivers].mean() > 1.5 * effect[others].mean()


def test_teacher_carries_relationships_that_raw_transcriptomics_carries_weakly():
    d = make_weakly_paired(n_perturbations=300, n_genes=300, random_state=0)
    keys = d.image_bank.keys
    teacher = slow_recall(d.image_bank.embeddings, keys, d.relationships)
    X = center_plates_on_controls(d.X, d.batch, d.is_control)
    raw = slow_recall(X[~d.is_control], d.y[~d.is_control], d.relationships)
    assert teacher > 0.4 and raw < 0.25 and teacher > 2 * raw


def test_group_count_validation():
    with pytest.raises(ValueError, match="every group needs at least 2 perturbations"):
        make_weakly_paired(n_perturbations=10, n_groups=8)


def test_split_by_key():
    y = np.array(["a", "a", "b", "b", "c", "d", "ctl", "ctl"])
    train, test = split_by_key(y, test_size=0.5, control_label="ctl", random_state=0)
    assert set(y[train & ~(y == "ctl")]).isdisjoint(set(y[test & ~(y == "ctl")]))
    assert train[y == "ctl"].all() and test[y == "ctl"].all()
    assert len(set(y[test]) - {"ctl"}) == 2
    with pytest.raises(ValueError, match="leaves no key on one side"):
        split_by_key(y, test_size=0.01, control_label="ctl")


def test_plate_layout_by_perturbation_keeps_replicates_on_one_plate():
    d = make_weakly_paired(n_perturbations=30, n_genes=20, plate_layout="by_perturbation",
                           random_state=0)
    trt = ~d.is_control
    plates_per_key = {k: set(d.batch[trt][d.y[trt] == k]) for k in d.perturbations}
    assert all(len(p) == 1 for p in plates_per_key.values())
    r = make_weakly_paired(n_perturbations=30, n_genes=20, random_state=0)
    assert max(len(set(r.batch[r.y == k])) for k in r.perturbations) > 1
    with pytest.raises(ValueError, match="plate_layout must be"):
        make_weakly_paired(n_perturbations=30, n_genes=20, plate_layout="grid")


def test_plate_gain_multiplies_each_plate_gene_by_its_gain():
    kw = dict(n_perturbations=40, n_genes=30, n_batches=4, controls_per_batch=6, random_state=0)
    base = make_weakly_paired(**kw)
    d = make_weakly_paired(plate_gain=0.5, **kw)
    # everything but X is the plate_gain=0 data set; X is that X times the plate's gains
    np.testing.assert_array_equal(d.y, base.y)
    np.testing.assert_array_equal(d.batch, base.batch)
    np.testing.assert_array_equal(d.image_bank.embeddings, base.image_bank.embeddings)
    np.testing.assert_array_equal(base.plate_gains, np.ones((4, 30)))
    assert d.plate_gains.shape == (4, 30) and np.all(d.plate_gains > 0)
    plate = np.array([int(b.removeprefix("plate_")) for b in d.batch])
    expected = base.X.astype(np.float64) * d.plate_gains[plate]  # hand computation, row by row
    np.testing.assert_allclose(d.X, expected, rtol=1e-6, atol=1e-6)
    # the gains are log-normal with the requested spread, and differ between plates
    log_g = np.log(d.plate_gains)
    assert 0.4 < log_g.std() < 0.6 and abs(log_g.mean()) < 0.1
    assert not np.allclose(d.plate_gains[0], d.plate_gains[1])
    # a multiplicative effect: per-plate center-scaling on the controls removes it exactly,
    # per-plate centering does not
    def per_plate(data, scale):
        return slow_center_scale(data.X.astype(np.float64), data.y, data.batch, "control", scale)

    np.testing.assert_allclose(per_plate(d, True), per_plate(base, True), rtol=1e-4, atol=1e-4)
    assert np.abs(per_plate(d, False) - per_plate(base, False)).max() > 0.5
    with pytest.raises(ValueError, match="plate_gain must be a finite number >= 0"):
        make_weakly_paired(plate_gain=-0.1, **kw)


@pytest.mark.parametrize("param, value", [
    ("group_strength", 1.5),  # was NaN data (the square root of a negative share)
    ("tx_noise", float("nan")),  # was NaN data
    ("n_batches", 0),  # was numpy's "high <= 0" traceback
    ("n_genes", "978"),
])
def test_bad_generator_parameters_are_refused_by_name(param, value):
    from semiclip._core.compat import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=rf"The '{param}' parameter of "
                                                    rf"make_weakly_paired must be"):
        make_weakly_paired(**{"n_perturbations": 30, "n_genes": 20, param: value})


def test_validation_keeps_what_was_accepted():
    """Negative factors flip a sign (as before); numpy integers are counts."""
    data = make_weakly_paired(n_perturbations=np.int64(30), n_genes=20, tx_signal=-1.0,
                              random_state=0)
    assert np.isfinite(data.X).all() and data.X.shape[1] == 20


def test_split_test_size_not_a_number_is_refused_by_name():
    """A string was repeated (``"0.3" * n``) into a raw TypeError of round()."""
    from semiclip._core.compat import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'test_size' parameter of split_by_key"):
        split_by_key(["a", "b", "c"], test_size="0.3")
    with pytest.raises(ValueError, match="test_size=1.5 leaves no key"):  # its own message
        split_by_key(["a", "b", "c"], test_size=1.5)
