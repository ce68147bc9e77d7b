"""One machine, large data: on-disk X, partial_fit, prefetch, threads, pickle size, OOM."""

import pickle
import threading

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline

from semiclip import SemiClippedTransformer
from semiclip._nn import MemmapSource, Prefetcher, as_row_source, fit_decoder, thread_budget

from .._helpers import RaiseAfter

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _fit(X, data, **params):
    return SemiClippedTransformer(**params).fit(X, data.y, image_bank=data.image_bank)


@pytest.fixture
def params(fast_params):
    # a random start: an on-disk X and partial_fit have no ridge start to compare with
    return {**fast_params, "hidden_layer_sizes": (16,), "early_stopping": True,
            "validation_fraction": 0.25, "batch_size": 20, "init": "random"}


@pytest.fixture
def on_disk(tiny_data, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, tiny_data.X.astype(np.float32))  # a header: the data starts at an offset
    return np.load(path, mmap_mode="r")


# ------------------------------------------------------------ on-disk X
# a toy fit: its held-out judgement is tested in distill/test_selection.py
@pytest.mark.filterwarnings("ignore::semiclip.exceptions.GeneralizationWarning")
def test_memmap_fit_equals_in_memory_fit(tiny_data, on_disk, params):
    # same samples, same draws; only the float rounding of the encoding (per minibatch
    # on disk, all rows at once in memory) may differ
    X = np.asarray(on_disk).copy()
    mem = _fit(X, tiny_data, **params)
    disk = _fit(on_disk, tiny_data, **params)
    np.testing.assert_array_equal(disk.encoder_.components_, mem.encoder_.components_)
    np.testing.assert_allclose(disk.loss_curve_, mem.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(disk.validation_scores_, mem.validation_scores_, rtol=1e-5)
    Z = disk.transform(on_disk)
    assert type(Z) is np.ndarray
    np.testing.assert_allclose(Z, mem.transform(X), atol=1e-4)
    np.testing.assert_allclose(disk.inverse_transform(Z), mem.inverse_transform(Z), atol=1e-3)


@pytest.mark.parametrize("kind", ["none", "torch", "scaler"])
def test_memmap_with_other_encoders(tiny_data, on_disk, fast_params, kind):
    from sklearn.frozen import FrozenEstimator
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(on_disk).copy()
    torch.manual_seed(0)
    encoder = {
        "none": None,  # identity, on the device
        "torch": torch.nn.Sequential(torch.nn.Linear(30, 6), torch.nn.Tanh()),  # on the device
        "scaler": FrozenEstimator(StandardScaler().fit(X)),  # any transformer: in the reader
    }[kind]
    params = {**fast_params, "encoder": encoder, "hidden_layer_sizes": (8,), "init": "random"}
    mem, disk = _fit(X, tiny_data, **params), _fit(on_disk, tiny_data, **params)
    np.testing.assert_allclose(disk.loss_curve_, mem.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(disk.transform(on_disk), mem.transform(X), atol=1e-4)


@pytest.mark.parametrize(
    "view",
    ["whole", "row_slice", "row_step", "col_slice", "fortran", "float64_be"],
)
def test_memmap_rows_are_read_correctly(tmp_path, view):
    rng = np.random.default_rng(0)
    full = rng.standard_normal((50, 9))
    dtype = ">f8" if view == "float64_be" else np.float32
    order = "F" if view == "fortran" else "C"
    path = tmp_path / "m.dat"
    mm = np.memmap(path, dtype=dtype, mode="w+", shape=full.shape, order=order, offset=16)
    mm[:] = full
    mm.flush()
    mm = np.memmap(path, dtype=dtype, mode="r", shape=full.shape, order=order, offset=16)
    X = {"whole": mm, "row_slice": mm[7:], "row_step": mm[::3], "col_slice": mm[:, 2:7],
         "fortran": mm, "float64_be": mm}[view]
    source = as_row_source(X)
    assert isinstance(source, MemmapSource)
    assert source.uses_pread == (view != "fortran")  # contiguous rows are read with preadv
    rows = rng.integers(0, X.shape[0], size=30)  # unsorted, with repeats
    expected = np.asarray(X, dtype=np.float64)[rows].astype(np.float32)
    np.testing.assert_array_equal(source.take(rows), expected)
    chunks = [c for _, _, c in source.chunks(chunk_rows=4)]
    np.testing.assert_array_equal(np.concatenate(chunks), np.asarray(X, dtype=np.float32))
    source.close()


def test_memmap_nan_rows_are_named(tiny_data, tmp_path, fast_params):
    X = tiny_data.X.astype(np.float32)
    X[[3, 70]] = np.nan
    path = tmp_path / "X.npy"
    np.save(path, X)
    with pytest.raises(ValueError,
                       match=r"X contains NaN or inf in 2 row\(s\) \(row indices: 3, 70\)"):
        _fit(np.load(path, mmap_mode="r"), tiny_data, **fast_params)


def test_memmap_wrong_feature_count_at_transform(tiny_data, on_disk, fast_params):
    est = _fit(on_disk, tiny_data, **fast_params)
    with pytest.raises(ValueError,
                       match="X has 29 features, but SemiClippedTransformer is expecting 30"):
        est.transform(on_disk[:, :-1])


# a toy fit: its held-out judgement is tested in distill/test_selection.py
@pytest.mark.filterwarnings("ignore::semiclip.exceptions.GeneralizationWarning")
def test_backed_anndata_dense_and_sparse(tiny_data, tmp_path, params):
    ad = pytest.importorskip("anndata")
    X = tiny_data.X.astype(np.float32)
    ad.AnnData(X).write_h5ad(tmp_path / "dense.h5ad")
    backed = ad.read_h5ad(tmp_path / "dense.h5ad", backed="r")
    mem = _fit(X, tiny_data, **params)
    disk = _fit(backed.X, tiny_data, **params)
    np.testing.assert_allclose(disk.loss_curve_, mem.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(disk.transform(backed.X), mem.transform(X), atol=1e-4)
    backed.file.close()

    Xs = X.copy()
    Xs[np.abs(Xs) < 1.0] = 0
    ad.AnnData(sp.csr_matrix(Xs)).write_h5ad(tmp_path / "sparse.h5ad")
    backed = ad.read_h5ad(tmp_path / "sparse.h5ad", backed="r")
    mem = _fit(sp.csr_matrix(Xs), tiny_data, **params)  # sparse PCA in both cases
    disk = _fit(backed.X, tiny_data, **params)
    np.testing.assert_allclose(disk.encoder_.components_, mem.encoder_.components_, atol=1e-5)
    np.testing.assert_allclose(disk.transform(backed.X), mem.transform(sp.csr_matrix(Xs)),
                               atol=1e-3)
    backed.file.close()


def test_on_disk_pca_uses_a_random_subset_of_rows(tiny_data, on_disk, fast_params, monkeypatch):
    monkeypatch.setattr("semiclip._distill._on_disk.PCA_MAX_ROWS", 50)
    est = _fit(on_disk, tiny_data, **fast_params)
    assert est.encoder_.n_samples_ == 50
    with pytest.raises(ValueError, match="cannot be used with an augmenter or train_encoder"):
        _fit(on_disk, tiny_data, **{**fast_params, "train_encoder": True})


# ---------------------------------------------------------- partial_fit
def test_partial_fit_once_equals_one_constant_lr_epoch_of_fit(tiny_data, params):
    one = {**params, "early_stopping": False}
    a = SemiClippedTransformer(**one).partial_fit(tiny_data.X, tiny_data.y,
                                                   image_bank=tiny_data.image_bank)
    b = _fit(tiny_data.X, tiny_data, **{**one, "max_iter": 1, "lr_schedule": "constant"})
    np.testing.assert_array_equal(a.transform(tiny_data.X), b.transform(tiny_data.X))
    assert a.loss_curve_ == b.loss_curve_


def test_partial_fit_streams_chunks(tiny_data, params):
    X, y, bank = tiny_data.X, tiny_data.y, tiny_data.image_bank
    order = np.random.default_rng(0).permutation(len(y))
    chunks = np.array_split(order, 3)
    est = SemiClippedTransformer(**{**params, "solver": "sgd", "learning_rate_init": 0.05})
    with pytest.raises(ValueError, match="fit needs the teacher embeddings"):
        est.partial_fit(X[chunks[0]], y[chunks[0]])
    est.partial_fit(X[chunks[0]], y[chunks[0]], image_bank=bank)
    encoder, optimizer = est.encoder_, est._partial_optimizer
    first = [p.detach().clone() for p in est.adapter_.parameters()]
    for idx in chunks[1:]:
        est.partial_fit(X[idx], y[idx])  # the first call's bank is reused
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.validation_scores_ == []
    assert est.encoder_ is encoder and est._partial_optimizer is optimizer
    assert optimizer.param_groups[0]["lr"] == 0.05  # constant learning rate
    assert all("momentum_buffer" in s for s in optimizer.state.values())  # momentum kept
    assert any(not torch.equal(a, b) for a, b in zip(first, est.adapter_.parameters()))
    # the PCA is the one of the first chunk: same subspace as an SVD of that chunk
    Xc = X[chunks[0]] - X[chunks[0]].mean(axis=0)
    vt = np.linalg.svd(Xc, full_matrices=False)[2][:8]
    np.testing.assert_allclose(np.abs(vt @ est.encoder_.components_.T), np.eye(8), atol=1e-4)
    # pickling drops the optimizer and the bank; partial_fit then needs the bank again
    restored = pickle.loads(pickle.dumps(est))
    assert not hasattr(restored, "_partial_optimizer") and not hasattr(restored, "_partial_bank")
    with pytest.raises(ValueError, match="fit needs the teacher embeddings"):
        restored.partial_fit(X[chunks[0]], y[chunks[0]])
    restored.partial_fit(X[chunks[0]], y[chunks[0]], image_bank=bank)
    assert restored.n_iter_ == 4


# ------------------------------------------------------------- decoder
@pytest.mark.parametrize("sparse", [False, True])
def test_streamed_decoder_equals_closed_form_ridge(sparse):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((300, 5)).astype(np.float32) + 3.0
    X = rng.standard_normal((300, 7)) * (rng.random((300, 7)) < 0.3)
    Xin = sp.csr_matrix(X) if sparse else X
    chunks = [(Z[s : s + 64], Xin[s : s + 64]) for s in range(0, 300, 64)]
    dec = fit_decoder(chunks, alpha=2.0)
    Zc, Xc = Z - Z.mean(0), X - X.mean(0)  # reference: ridge on centred data, with intercept
    coef = np.linalg.solve(Zc.T @ Zc + 2.0 * np.eye(5), Zc.T @ Xc)
    expected = (Z - Z.mean(0)) @ coef + X.mean(0)
    np.testing.assert_allclose(dec.predict(Z), expected, atol=1e-5)


# ------------------------------------------------------------ prefetch
def test_prefetcher_order_errors_and_early_stop():
    assert list(Prefetcher(lambda: iter(range(20)), depth=2)) == list(range(20))
    assert list(Prefetcher(lambda: iter(range(5)), depth=0)) == list(range(5))

    def failing():
        yield 1
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        list(Prefetcher(failing, depth=2))
    before = threading.active_count()
    it = iter(Prefetcher(lambda: iter(range(10**6)), depth=2))
    assert next(it) == 0
    it.close()  # the consumer stops early: the producer thread ends
    assert threading.active_count() == before


def test_stream_with_several_readers_keeps_the_order(on_disk):
    from semiclip._nn import StreamFeatures, as_row_source

    source = as_row_source(on_disk)
    rows = np.random.default_rng(0).permutation(on_disk.shape[0])[:100]
    positions = np.random.default_rng(1).permutation(100)
    bounds = [(s, min(s + 7, 100)) for s in range(0, 100, 7)]
    expected = [np.asarray(on_disk)[rows[positions[a:b]]] for a, b in bounds]
    for readers in (1, 3):
        stream = StreamFeatures(source, rows, torch.device("cpu"))
        stream.readers = readers  # an accelerator's setting, on the CPU
        got = [t.numpy() for t in stream.batches(positions, bounds)]
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
    before = threading.active_count()
    it = stream.batches(positions, bounds)
    next(it)
    it.close()  # stopping early ends the reader pool and the prefetch thread
    assert threading.active_count() == before


def test_keyboard_interrupt_with_on_disk_x_stops_the_readers(tiny_data, on_disk, params):
    before = threading.active_count()
    with pytest.warns(UserWarning, match="interrupted"):
        est = _fit(on_disk, tiny_data, **{**params, "max_iter": 50, "callbacks": [RaiseAfter(7)]})
    assert threading.active_count() == before
    assert est.n_iter_ < 50 and est.transform(on_disk).shape[0] == on_disk.shape[0]


# ------------------------------------------------------------- threads
def test_concurrent_fits_in_threads_share_the_cores():
    cores = min(torch.get_num_threads(), __import__("joblib").cpu_count())
    main_before = torch.get_num_threads()
    barrier, seen = threading.Barrier(2), []

    def fit_like():
        torch.set_num_threads(cores)
        with thread_budget(None) as budget:
            barrier.wait()  # both fits are running now
            budget.rebalance()  # what the training loop does every epoch
            seen.append(torch.get_num_threads())
            barrier.wait()
        seen.append(("after", torch.get_num_threads()))

    threads = [threading.Thread(target=fit_like) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inside = [s for s in seen if not isinstance(s, tuple)]
    assert inside == [max(1, cores // 2)] * 2
    assert [s for s in seen if isinstance(s, tuple)] == [("after", cores)] * 2
    assert torch.get_num_threads() == main_before
    with thread_budget(1) as budget:
        assert torch.get_num_threads() == 1 and budget.n_threads == 1
    assert torch.get_num_threads() == main_before


@pytest.mark.slow  # worker processes of a grid search; ~5 s quiet, far more under load
def test_grid_search_workers_do_not_oversubscribe(tiny_data):
    import joblib

    before = torch.get_num_threads()
    groups = dict(zip(tiny_data.perturbations, tiny_data.groups))
    target = np.array([groups.get(k, -1) for k in tiny_data.y])
    pipe = make_pipeline(
        SemiClippedTransformer(encoder_dim=8, hidden_layer_sizes=(), max_iter=2,
                               early_stopping=False, control_label="control", random_state=0),
        LogisticRegression(max_iter=100),
    )
    res = cross_validate(pipe, tiny_data.X, target, groups=tiny_data.y, cv=GroupKFold(2),
                         n_jobs=2, return_estimator=True,
                         params={"semiclippedtransformer__image_bank": tiny_data.image_bank,
                                 "semiclippedtransformer__keys": tiny_data.y})
    used = [est[0].n_threads_ for est in res["estimator"]]
    assert all(2 * u <= max(2, joblib.cpu_count()) for u in used), used
    assert torch.get_num_threads() == before


# ---------------------------------------------------------- pickle size
def _arrays(obj, depth=0):
    """Every numpy array and tensor reachable from an object's state (a few levels)."""
    if depth > 4:
        return
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _arrays(v, depth + 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from _arrays(vars(obj), depth + 1)


# a toy fit: its held-out judgement is tested in distill/test_selection.py
@pytest.mark.filterwarnings("ignore::semiclip.exceptions.GeneralizationWarning")
def test_pickle_is_small_and_holds_no_data(small_data):
    X, y = small_data.X, small_data.y
    est = SemiClippedTransformer(encoder_dim=64, hidden_layer_sizes=(128,), max_iter=2,
                                 control_label="control", random_state=0)
    est.fit(X, y, image_bank=small_data.image_bank)
    blob = pickle.dumps(est)
    param_bytes = sum(p.numel() * p.element_size() for p in est.adapter_.parameters())
    encoder_bytes = len(pickle.dumps(est.encoder_))
    assert len(blob) <= 2 * (param_bytes + encoder_bytes), (len(blob), param_bytes, encoder_bytes)
    decoder_bytes = est.decoder_.coef.nbytes  # (n_dims, n_genes) float32
    assert len(blob) <= param_bytes + encoder_bytes + decoder_bytes + 32 * 1024  # nothing else
    state = pickle.loads(blob).__getstate__()
    for arr in _arrays(state):
        assert arr.shape[0] < X.shape[0] // 2, arr.shape  # no per-sample data
    assert b"cuda" not in blob.replace(b"'cuda'", b"")


# ----------------------------------------------------------------- OOM
def test_out_of_memory_names_a_smaller_batch_size(tiny_data, fast_params, monkeypatch):
    no_memory = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")
    with pytest.raises(torch.OutOfMemoryError,
                       match=r"ran out of memory while training with batch_size=32\. "
                             r"Try batch_size=16"):
        _fit(tiny_data.X, tiny_data, **{**fast_params, "batch_size": 32,
                                        "callbacks": [RaiseAfter(1, no_memory)]})
