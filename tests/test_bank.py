"""ImageBank validation and lookups, and the vectorised weak-pair sampler."""

import copy
import pickle
import re

import numpy as np
import pytest

from semiclip import ImageBank
from semiclip._core import PairSampler
from semiclip._core.compat import check_method_params, num_samples


def make_bank(seed=0):
    rng = np.random.default_rng(seed)
    keys = np.array(["a", "a", "a", "b", "c", "c"])
    return ImageBank(rng.standard_normal((6, 4)), keys)


def test_bank_basic_properties():
    bank = make_bank()
    assert (bank.n_embeddings, bank.n_dims, bank.n_keys) == (6, 4, 3)
    assert bank.embeddings.dtype == np.float32
    assert not bank.embeddings.flags.writeable
    assert list(bank.unique_keys) == ["a", "b", "c"]


def test_bank_is_not_array_like_so_cv_never_slices_it():
    bank = make_bank()
    for attr in ("__len__", "shape", "__array__"):
        assert not hasattr(bank, attr)
    with pytest.raises(TypeError):
        num_samples(bank)
    X = np.zeros((10, 2))
    routed = check_method_params(X, {"image_bank": bank, "w": np.arange(10)}, indices=[0, 1])
    assert routed["image_bank"] is bank
    assert routed["w"].shape == (2,)


def test_codes_against_dictionary_reference():
    bank = make_bank()
    query = np.array(["c", "zzz", "a", "b", "a", "q"])
    reference = {"a": 0, "b": 1, "c": 2}
    expected = [reference.get(k, -1) for k in query]
    np.testing.assert_array_equal(bank.codes(query), expected)


def test_integer_keys_and_mixed_query_types():
    bank = ImageBank(np.ones((3, 2)), np.array([10, 20, 20]))
    np.testing.assert_array_equal(bank.codes(np.array([20, 10, 30])), [1, 0, -1])


def test_centroids_against_loop():
    bank = make_bank()
    expected = np.stack(
        [bank.embeddings[bank.keys == k].astype(np.float64).mean(0) for k in bank.unique_keys]
    )
    np.testing.assert_allclose(bank.centroids(), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "emb, keys, exc, match",
    [
        (np.ones(4), ["a"] * 4, ValueError, "must be 2-D"),
        (np.ones((2, 2, 2)), ["a"] * 2, ValueError, "must be 2-D"),
        (np.ones((0, 3)), [], ValueError, "at least one row"),
        (np.array([[1.0, np.nan], [0, 0], [np.inf, 1]]), ["a", "b", "c"], ValueError,
         r"NaN or inf in 2 row\(s\) \(row indices: 0, 2\)"),
        (np.ones((3, 2)), ["a", "b"], ValueError,
         r"ImageBank keys has 2 entries but embeddings has 3 rows; pass exactly one key per "
         r"row of embeddings"),
        (np.ones((3, 2)), None, ValueError, "ImageBank keys is required: pass one key per row "
         r"of embeddings \(a 1-D array of length 3\)"),
        (np.array([["x", "y"]]), ["a"], TypeError, "must be numeric"),
        (np.ones((2, 2)), np.array([["a", "b"], ["c", "d"]]), ValueError, "must be 1-D"),
    ],
)
def test_bank_bad_input(emb, keys, exc, match):
    with pytest.raises(exc, match=match):
        ImageBank(emb, keys)


def test_bank_pickle_and_deepcopy():
    bank = make_bank()
    restored = pickle.loads(pickle.dumps(bank))
    np.testing.assert_array_equal(restored.codes(["b", "x"]), [1, -1])
    np.testing.assert_array_equal(restored.embeddings, bank.embeddings)
    assert copy.deepcopy(bank) is bank  # immutable: shared, not copied, by clone()


def test_sampler_draws_rows_of_the_same_key_uniformly():
    bank = make_bank()
    codes = bank.codes(np.array(["a", "b", "c"] * 2000))
    sampler = PairSampler(bank, codes, target="sample")
    rng = np.random.default_rng(0)
    rows = sampler.draw(np.arange(codes.size), rng)
    # every drawn row carries the sample's key
    np.testing.assert_array_equal(bank.keys[rows], bank.unique_keys[codes])
    # rows of key "a" (3 rows) are drawn ~uniformly: 4000 draws over 3 rows... per key
    counts = np.bincount(rows[codes == 0], minlength=6)[:3]
    assert counts.sum() == 2000
    assert np.all(np.abs(counts - 2000 / 3) < 5 * np.sqrt(2000 / 3))
    # a fresh draw differs (pairs are redrawn each epoch)
    rows2 = sampler.draw(np.arange(codes.size), rng)
    assert np.any(rows2[codes == 0] != rows[codes == 0])


def test_sampler_centroid_target_returns_key_codes():
    bank = make_bank()
    codes = np.array([2, 0, 1, 0])
    sampler = PairSampler(bank, codes, target="centroid")
    np.testing.assert_array_equal(sampler.draw(np.array([3, 0]), np.random.default_rng(0)), [0, 2])
    # the table rows are the keys' mean embeddings, computed by a loop
    expected = np.stack([bank.embeddings[bank.keys == k].astype(np.float64).mean(0)
                         for k in bank.unique_keys])
    np.testing.assert_allclose(sampler.table, expected, rtol=1e-6)


def test_grouped_rows_against_loop():
    bank = ImageBank(np.arange(12.0).reshape(6, 2), ["b", "a", "b", "c", "a", "b"])
    order, starts, counts = bank.grouped_rows()
    for k, key in enumerate(bank.unique_keys):
        rows = order[starts[k] : starts[k] + counts[k]]
        np.testing.assert_array_equal(rows, np.flatnonzero(bank.keys == key))  # original order
    assert not order.flags.writeable


def test_bank_copies_the_caller_keys():
    keys = np.array(["a", "a", "b"])
    bank = ImageBank(np.eye(3), keys)
    keys[0] = "z"  # an edit after construction must not leak into the bank
    assert bank.keys.tolist() == ["a", "a", "b"]
    np.testing.assert_array_equal(bank.codes(["a", "z"]), [0, -1])


def test_sampler_rejects_unpaired():
    with pytest.raises(ValueError, match="unpaired"):
        PairSampler(make_bank(), np.array([0, -1]))


def test_bank_length_message_names_no_x_or_y():
    with pytest.raises(ValueError) as info:
        ImageBank(np.ones((3, 2)), ["a", "b"])
    words = re.findall(r"\w+", str(info.value))
    assert "X" not in words and "y" not in words
