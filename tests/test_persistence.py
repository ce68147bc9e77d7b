"""Model files that run no code when read: semiclip.persistence.

Round trips are checked against the fitted estimator itself (bit for bit),
the fingerprint against a hash recomputed here with hashlib, and the refusals
against files crafted to run code: a marker file shows whether any ran.
"""

import hashlib
import io
import json
import pickle
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pytest

from semiclip import ControlNormalizer, PEAAugmenter, SemiClippedTransformer
from semiclip.persistence import (
    LoadedModel,
    atomic_write,
    data_fingerprint,
    load_model,
    model_info,
    save_model,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _fit(data, X=None, **params):
    X = data.X if X is None else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SemiClippedTransformer(encoder_dim=8, max_iter=2, control_label="control",
                                     random_state=0, verbose=0, **params)
        if params.get("augmenter") is not None:
            return est.fit(X, data.y, image_bank=data.image_bank, batch=data.batch)
        return est.fit(X, data.y, image_bank=data.image_bank)


@pytest.fixture(scope="module")
def plain(tiny_data):
    return _fit(tiny_data)


@pytest.fixture(scope="module")
def pea(tiny_data):
    return _fit(tiny_data, augmenter=PEAAugmenter(random_state=0))


class Evil:
    """Unpickling it opens (creates) ``marker``: any code at all would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _drop_attribute(state, name):
    pairs = state["estimator"]["state"]["$dict"]
    state["estimator"]["state"]["$dict"] = [p for p in pairs if p[0] != name]
    return state


def _rewrite(path, member, edit, raw=None):
    """Rewrite one JSON member of a model zip with ``edit(dict) -> dict`` (then ``raw``
    text replacements)."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    text = json.dumps(edit(json.loads(members[member])))
    for old, new in (raw or {}).items():
        text = text.replace(old, new)
    members[member] = text.encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)


# ------------------------------------------------------------------ round trips
def test_round_trip_is_bit_identical(plain, tiny_data, tmp_path):
    path = tmp_path / "m.semiclip"
    save_model(path, plain)
    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel)
    est = loaded.estimator
    assert type(est) is SemiClippedTransformer and est is not plain
    np.testing.assert_array_equal(est.transform(tiny_data.X), plain.transform(tiny_data.X))
    Z = plain.transform(tiny_data.X[:5])
    np.testing.assert_array_equal(est.inverse_transform(Z), plain.inverse_transform(Z))
    assert est.loss_curve_ == plain.loss_curve_ and est.n_iter_ == plain.n_iter_
    assert est.training_params_ == plain.training_params_
    assert est.get_params() == plain.get_params()
    assert loaded.normalizer is None and loaded.columns is None


def test_round_trip_with_a_normalizer(tiny_data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = ControlNormalizer("tvn", control_label="control", basis="feature")
        X = norm.fit_transform(tiny_data.X, tiny_data.y, batch=tiny_data.batch)
    est = _fit(tiny_data, X)
    columns = {"key": ["Metadata_gene"], "batch": "Metadata_Plate", "control": None,
               "dose": ("Metadata_dose", {"decimals": 2}), "feature_names": ["a", "b"]}
    save_model(tmp_path / "m.semiclip", est, normalizer=norm, columns=columns)
    loaded = load_model(tmp_path / "m.semiclip")
    assert loaded.columns == columns  # tuples stay tuples
    assert isinstance(loaded.columns["dose"], tuple)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = loaded.normalizer.transform(tiny_data.X, batch=tiny_data.batch)
    np.testing.assert_array_equal(again, X)
    np.testing.assert_array_equal(loaded.estimator.transform(again), est.transform(X))


def test_round_trip_with_pea_keeps_the_generator(pea, tiny_data, tmp_path):
    save_model(tmp_path / "m.semiclip", pea)
    est = load_model(tmp_path / "m.semiclip").estimator
    np.testing.assert_array_equal(est.transform(tiny_data.X, batch=tiny_data.batch),
                                  pea.transform(tiny_data.X, batch=tiny_data.batch))
    old, new = pea.augmenter_.__getstate__(), est.augmenter_.__getstate__()
    assert isinstance(new["_rng"], np.random.Generator)
    assert new["_rng"].bit_generator.state == old["_rng"].bit_generator.state
    assert set(new["_global"]) == set(old["_global"])  # tuple keys
    for key in old["_global"]:
        assert all(isinstance(k, bool) for k in key)


def test_round_trip_of_a_random_state_instance_and_object_arrays(tiny_data, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(tiny_data.X, columns=[f"g{j}" for j in range(tiny_data.X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SemiClippedTransformer(encoder_dim=4, max_iter=1, control_label="control",
                                     random_state=np.random.RandomState(3))
        est.fit(frame, tiny_data.y, image_bank=tiny_data.image_bank)
    save_model(tmp_path / "m.semiclip", est)
    got = load_model(tmp_path / "m.semiclip").estimator
    assert got.feature_names_in_.dtype == object
    assert list(got.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(got.random_state.get_state()[1],
                                  est.random_state.get_state()[1])
    np.testing.assert_array_equal(got.transform(frame), est.transform(frame))
    info = model_info(tmp_path / "m.semiclip")
    assert info["estimator"]["params"]["random_state"] == {
        "repr": repr(est.random_state), "json": False}


# ------------------------------------------------------------------ provenance
def test_manifest_holds_versions_params_and_fingerprint(plain, tmp_path):
    import platform

    import scipy
    import sklearn
    import torch

    import semiclip

    columns = {"key": ["Metadata_gene"], "batch": "Metadata_Plate",
               "control": ("Metadata_type", ["ctl"])}
    fp = data_fingerprint(144, ["g0", "g1"], columns)
    spec = {"features": ["g0", "g1"], "key": ["Metadata_gene"], "batch": "Metadata_Plate",
            "control": ["Metadata_type", ["ctl"]]}
    expected = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"))
                              .encode("utf-8")).hexdigest()
    assert fp == {"n_rows": 144, "n_columns": 2, "column_spec_sha256": expected}
    with pytest.raises(ValueError, match="describes 2 columns but the estimator was fitted on "
                                         "30 features"):
        save_model(tmp_path / "m.semiclip", plain, columns=columns, fingerprint=fp)
    fp = data_fingerprint(144, [f"g{i}" for i in range(30)], columns)
    save_model(tmp_path / "m.semiclip", plain, columns=columns, fingerprint=fp)
    info = model_info(tmp_path / "m.semiclip")
    assert info["format"] == "semiclip-model/1"  # written out: a changed tag fails
    assert info["versions"] == {
        "semiclip": semiclip.__version__, "python": platform.python_version(),
        "numpy": np.__version__, "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__, "torch": torch.__version__}
    assert info["fingerprint"] == fp
    assert info["estimator"]["class"] == "SemiClippedTransformer"
    assert info["estimator"]["random_state"] == 0
    params = info["estimator"]["params"]
    assert params["encoder_dim"] == 8 and params["control_label"] == "control"
    assert params["image_bank"] is None
    assert info["created"].endswith("+00:00")
    json.dumps(info, allow_nan=False)  # plain JSON
    with zipfile.ZipFile(tmp_path / "m.semiclip") as zf:
        assert json.loads(zf.read("manifest.json")) == info


def test_non_json_params_are_marked(pea, tmp_path):
    save_model(tmp_path / "m.semiclip", pea)
    params = model_info(tmp_path / "m.semiclip")["estimator"]["params"]
    assert params["augmenter"] == {"repr": repr(pea.augmenter), "json": False}


def test_default_fingerprint_uses_the_estimator(plain, tmp_path):
    save_model(tmp_path / "m.semiclip", plain)
    fp = model_info(tmp_path / "m.semiclip")["fingerprint"]
    spec = {"features": None, "key": None, "batch": None, "control": None}
    assert fp == {"n_rows": None, "n_columns": 30, "column_spec_sha256": hashlib.sha256(
        json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()}


# ------------------------------------------------------------------ what is refused
def test_a_malicious_pickle_is_refused_before_unpickling(tmp_path):
    proof = tmp_path / "proof"
    joblib.dump(Evil(proof), tmp_path / "proof.joblib")
    joblib.load(tmp_path / "proof.joblib")
    assert proof.exists()  # the file really runs code when unpickled

    marker = tmp_path / "marker"
    for dump in (joblib.dump, lambda o, p: p.write_bytes(pickle.dumps(o))):
        dump(Evil(marker), tmp_path / "evil.joblib")
        for read in (load_model, model_info):
            with pytest.raises(ValueError, match=r"pickle.*allow_pickle=True"):
                read(tmp_path / "evil.joblib")
            assert not marker.exists()


def test_allow_pickle_warns_and_reads_legacy_models(plain, tiny_data, tmp_path):
    bundle = {"format": "semiclip-cli-model/1", "estimator": plain, "normalizer": None,
              "columns": {"key": ["Metadata_gene"], "batch": None}, "feature_names": ["g0"]}
    joblib.dump(bundle, tmp_path / "old.joblib")
    with pytest.warns(UserWarning, match=r"a pickle can run any code"):
        loaded = load_model(tmp_path / "old.joblib", allow_pickle=True)
    np.testing.assert_array_equal(loaded.estimator.transform(tiny_data.X),
                                  plain.transform(tiny_data.X))
    assert loaded.columns == {"key": ["Metadata_gene"], "batch": None, "feature_names": ["g0"]}
    assert loaded.manifest["format"] == "semiclip-cli-model/1"
    joblib.dump(plain, tmp_path / "est.joblib")  # a bare estimator pickled from Python
    with pytest.warns(UserWarning, match="allow_pickle"):
        info = model_info(tmp_path / "est.joblib", allow_pickle=True)
    assert info["estimator"]["class"] == "SemiClippedTransformer"
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"holds a dict"):
        joblib.dump({"something": 1}, tmp_path / "other.joblib")
        load_model(tmp_path / "other.joblib", allow_pickle=True)


def test_an_untrusted_class_in_the_file_is_never_imported(plain, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w')\nclass Evil: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "m.semiclip"
    save_model(path, plain)

    def name_evil(state):
        state["estimator"]["$object"] = "evilmod.Evil"
        return state

    _rewrite(path, "state.json", name_evil)
    with pytest.raises(ValueError, match=r"'evilmod\.Evil', which is not a type a semiclip "
                                         r"model file may hold"):
        load_model(path)
    assert not marker.exists() and "evilmod" not in sys.modules

    save_model(path, plain)

    def deep_evil(state):  # the same deep inside: the decoder is a trusted slot
        pairs = state["estimator"]["state"]["$dict"]
        for pair in pairs:
            if pair[0] == "decoder_":
                pair[1] = {"$object": "os.system", "state": {"$dict": []}}
        return state

    _rewrite(path, "state.json", deep_evil)
    with pytest.raises(ValueError, match=r"'os\.system'"):
        load_model(path)


def test_saving_an_untrusted_object_says_to_use_pickle(tiny_data, tmp_path):
    from sklearn.decomposition import PCA
    from sklearn.frozen import FrozenEstimator

    enc = FrozenEstimator(PCA(4).fit(tiny_data.X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SemiClippedTransformer(encoder=enc, max_iter=1, control_label="control",
                                     random_state=0)
        est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)
    with pytest.raises(TypeError, match=r"estimator\.encoder is a \S*FrozenEstimator.*pickle"):
        save_model(tmp_path / "m.semiclip", est)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left
    with pytest.raises(TypeError, match=r"SemiClippedTransformer.*got ControlNormalizer"):
        save_model(tmp_path / "m.semiclip", ControlNormalizer())
    with pytest.raises(ValueError, match=r"not fitted"):
        save_model(tmp_path / "m.semiclip", SemiClippedTransformer())


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), r"damaged"),
    (lambda p: p.write_text("hello"), r"not a semiclip model file"),
    (lambda p: zipfile.ZipFile(p, "w").close(), r"no manifest\.json"),
    (lambda p: _rewrite(p, "manifest.json", lambda m: {**m, "format": "other/1"}),
     r"format 'other/1'"),
    (lambda p: _rewrite(p, "manifest.json", lambda m: {**m, "format": "semiclip-model/9"}),
     r"newer semiclip"),
    (lambda p: _rewrite(p, "state.json", lambda s: {"normalizer": None}),
     r"no 'estimator'"),
    (lambda p: _rewrite(p, "state.json", lambda s: {**s, "estimator": {
        "$object": "semiclip.ControlNormalizer", "state": {"$dict": []}}}),
     r"holds a ControlNormalizer as its estimator, not a SemiClippedTransformer"),
    (lambda p: _rewrite(p, "state.json", lambda s: {**s, "estimator": {"$nope": 1}}),
     r"damaged"),
    (lambda p: _rewrite(p, "state.json", lambda s: _drop_attribute(s, "encoder_")),
     r"damaged \(its SemiClippedTransformer lacks the fitted attribute\(s\) encoder_\)"),
    (lambda p: _rewrite(p, "state.json", lambda s: _drop_attribute(s, "_history_")),
     r"lacks the fitted attribute\(s\) n_iter_, loss_curve_"),
    (lambda p: _rewrite(p, "state.json", lambda s: {**s, "columns": "NESTED"},
                        raw={'"NESTED"': '{"$tuple": [' * 5000 + "null" + "]}" * 5000}),
     r"damaged \(state\.json is nested too deeply"),
])
def test_damaged_and_foreign_files_are_one_clear_error(plain, tmp_path, damage, message):
    path = tmp_path / "m.semiclip"
    save_model(path, plain)
    damage(path)
    with pytest.raises(ValueError, match=message):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_model(tmp_path / "missing.semiclip")


def test_missing_adapter_arrays_are_damage(plain, tmp_path):
    path = tmp_path / "m.semiclip"
    save_model(path, plain)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "arrays/0.npy"}
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    with pytest.raises(ValueError, match=r"damaged.*arrays/0\.npy"):
        load_model(path)


def test_object_arrays_in_the_file_are_not_unpickled(plain, tmp_path):
    path = tmp_path / "m.semiclip"
    save_model(path, plain)
    buf = io.BytesIO()
    np.save(buf, np.array([Evil(tmp_path / "marker")], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["arrays/0.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    with pytest.raises(ValueError, match="damaged"):
        load_model(path)
    assert not (tmp_path / "marker").exists()


# ------------------------------------------------------------------ atomic writes
def test_a_failed_save_leaves_no_file_and_keeps_the_old_one(plain, tmp_path, monkeypatch):
    path = tmp_path / "m.semiclip"
    path.write_bytes(b"old model")
    calls = []

    def failing_save(fh, arr, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise OSError("disk full")
        return real_save(fh, arr, **kwargs)

    real_save = np.save
    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, plain)
    assert len(calls) == 3
    assert path.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.semiclip"]


def test_atomic_write_renames_only_when_complete(tmp_path):
    target = tmp_path / "out.csv.gz"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith("out.csv.gz")
        tmp.write_text("x")
        assert not target.exists()
    assert target.read_text() == "x"
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv.gz"]


# ------------------------------------------------------------------ crafted files (issue 20)
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, members, extra=()):
    """Write ``members`` (then the ``(name, bytes)`` pairs of ``extra``) as a deflated zip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, blob in [*members.items(), *extra]:
                zf.writestr(name, blob)
    return path


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _set_attribute(state, name, node):
    pairs = state["estimator"]["state"]["$dict"]
    assert name in [p[0] for p in pairs]
    state["estimator"]["state"]["$dict"] = [[k, node if k == name else v] for k, v in pairs]
    return state


def _set_in_both(path, param, value):
    """Set an estimator parameter in state.json and manifest.json alike."""
    _rewrite(path, "state.json", lambda s: _set_attribute(s, param, value))
    _rewrite(path, "manifest.json", lambda m: {**m, "estimator": {
        **m["estimator"], "params": {**m["estimator"]["params"], param: value}}})


def test_sizes_are_bounded_from_the_zip_directory_before_reading(plain, tmp_path,
                                                                 monkeypatch):
    import semiclip._persistence_archive as archive

    path = save_model(tmp_path / "m.semiclip", plain)
    members = _members(path)
    monkeypatch.setattr(archive, "MIN_BUDGET", 1 << 20)  # the 32x rule decides at this size
    # 8 MiB of zeros deflate to ~8 KiB: more than 32 times the file's size
    bomb = _write(tmp_path / "bomb.semiclip", members,
                  [("arrays/999.npy", _npy(np.zeros(1 << 20)))])
    with pytest.raises(ValueError, match=r"damaged \(its members expand to 8,\d{3},\d{3} "
                                         r"bytes, more than 32 times the file's"):
        load_model(bomb)
    with pytest.raises(ValueError, match=r"more than 32 times"):
        model_info(bomb)
    # a header that does not match its member's size; one declaring 8 TiB in 8 bytes
    lying = _npy(np.zeros(1)).replace(b"(1,)", b"(9,)")
    with pytest.raises(ValueError, match=r"arrays/0\.npy declares the shape \(9,\) of float64 "
                                         r"\(72 bytes\) but holds 8"):
        load_model(_write(tmp_path / "lying.semiclip", {**members, "arrays/0.npy": lying}))
    # a state tree far larger than what its manifest describes (e.g. 60,000 adapter layers)
    padded = {**members, "state.json": members["state.json"] + b" " * (1 << 20)}
    with pytest.raises(ValueError, match=r"state\.json holds [\d,]+ bytes, more than 1 MiB \+ "
                                         r"twice its manifest's"):
        load_model(_write(tmp_path / "state.semiclip", padded))
    with pytest.raises(ValueError, match=r"declares the shape \(1099511627776,\) of float64 "
                                         r"\(8,796,093,022,208 bytes\) but holds 8"):
        load_model(_write(tmp_path / "huge.semiclip", {**members, "arrays/0.npy": _big_header()}))


def _big_header():
    """An .npy member whose header declares 2**40 float64 values (8 TiB), holding 8 bytes."""
    import struct

    dict_text = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    dict_text += " " * (64 - (10 + len(dict_text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(dict_text)) + dict_text.encode() + \
        b"\0" * 8


@pytest.mark.parametrize("extra, message", [
    ([("manifest.json", b"{}")], r"two members named 'manifest\.json'"),
    ([("notes.txt", b"hi")], r"an unexpected member 'notes\.txt'"),
    ([("arrays/../x.npy", b"")], r"an unexpected member"),
])
def test_duplicate_and_unknown_members_are_refused(plain, tmp_path, extra, message):
    path = save_model(tmp_path / "m.semiclip", plain)
    _write(path, _members(path), extra)
    with pytest.raises(ValueError, match=message):
        load_model(path)
    with pytest.raises(ValueError, match=message):
        model_info(path)


def test_an_encrypted_member_is_one_clear_error(plain, tmp_path):
    path = save_model(tmp_path / "m.semiclip", plain)
    blob = bytearray(path.read_bytes())
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        at = blob.index(magic)
        blob[at + offset] |= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"damaged \(manifest\.json is encrypted\)"):
        load_model(path)


def test_each_array_is_decoded_once_and_shared(plain, tmp_path):
    path = save_model(tmp_path / "m.semiclip", plain)
    # the estimator's paired keys and the encoder's mean read the same member: one array
    # (the report keeps its summary: the manifest's judgement must still describe the model)
    summary = (plain.validation_report_ or {}).get("summary")

    def share(state):
        est = dict(state["estimator"]["state"]["$dict"])
        ref = est["_paired_keys"]
        return _set_attribute(state, "validation_report_",
                              {"$dict": [["a", ref], ["b", ref], ["summary", summary]]})

    _rewrite(path, "state.json", share)
    report = load_model(path).estimator.validation_report_
    assert report["a"] is report["b"]


def test_an_adapter_repeating_one_array_or_too_deep_is_refused(plain, tmp_path):
    path = save_model(tmp_path / "m.semiclip", plain)
    state = json.loads(_members(path)["state.json"])
    adapter = state["estimator"]["adapter"]
    weight = adapter["weights"][0][1]
    for n, message in ((60_000, r"state\.json holds [\d,]+ bytes, more than 1 MiB"),
                       (100, r"layer sizes are not 2 to 65 positive integers")):
        deep = {"sizes": [adapter["sizes"][0]] * (n + 1), "weights": [
            [f"{2 * i}.{kind}", weight] for i in range(n) for kind in ("weight", "bias")]}
        _rewrite(path, "state.json", lambda s, deep=deep: {
            **s, "estimator": {**s["estimator"], "adapter": deep}})
        with pytest.raises(ValueError, match=message):
            load_model(path)
    twice = {"sizes": [adapter["sizes"][0]] * 3, "weights": [
        [f"{2 * i}.{kind}", weight] for i in range(2) for kind in ("weight", "bias")]}
    _rewrite(path, "state.json", lambda s: {**s, "estimator": {**s["estimator"],
                                                               "adapter": twice}})
    with pytest.raises(ValueError, match=r"not one distinct array per layer"):
        load_model(path)


def test_a_thread_count_never_comes_from_the_file(plain, tmp_path):
    path = save_model(tmp_path / "m.semiclip", plain)
    _set_in_both(path, "n_threads", 256)
    est = load_model(path).estimator
    assert est.n_threads is None  # the reader's default: torch's current setting


@pytest.mark.parametrize("param, value, message", [
    ("temperature", -1.0, r"invalid parameter: The 'temperature' parameter"),
    ("loss", "nope", r"invalid parameter: The 'loss' parameter"),
    ("max_iter", "5", r"invalid parameter: The 'max_iter' parameter"),
])
def test_restored_parameters_are_validated_by_the_estimator(plain, tmp_path, param, value,
                                                            message):
    path = save_model(tmp_path / "m.semiclip", plain)
    _set_in_both(path, param, value)
    with pytest.raises(ValueError, match=message):
        load_model(path)


@pytest.mark.parametrize("attribute, node, message", [
    ("encoder_", 5, r"encoder_ is a int, not PCA or IncrementalPCA or NoneType"),
    ("n_features_in_", "30", r"n_features_in_ is a str, not int"),
    ("device_", 3, r"device_ is a int, not str"),
    ("_history_", None, r"lacks the fitted attribute\(s\) n_iter_, loss_curve_"),
    ("n_features_in_", 7, r"does not transform a row of zeros"),
])
def test_wrong_typed_attributes_are_damage(plain, tmp_path, attribute, node, message):
    path = save_model(tmp_path / "m.semiclip", plain)
    _rewrite(path, "state.json", lambda s: _set_attribute(s, attribute, node))
    with pytest.raises(ValueError, match=message):
        load_model(path)


@pytest.mark.parametrize("edit, message", [
    (lambda m: {**m, "created": 5}, r"'created' as int 5, not a string or null"),
    (lambda m: {**m, "versions": ["1"]}, r"'versions' as list"),
    (lambda m: {**m, "versions": {"numpy": 2}}, r"the version of 'numpy' as int"),
    (lambda m: {**m, "estimator": []}, r"'estimator' as list"),
    (lambda m: {**m, "estimator": {**m["estimator"], "params": []}}, r"'estimator.params'"),
    (lambda m: {**m, "estimator": {**m["estimator"], "class": 3}}, r"'estimator.class'"),
    (lambda m: {**m, "estimator": {**m["estimator"], "fitted": {"n_iter": "2"}}},
     r"'estimator.fitted.n_iter' as str"),
    (lambda m: {**m, "normalizer": "x"}, r"'normalizer' as str"),
    (lambda m: {**m, "columns": []}, r"'columns' as list"),
    (lambda m: {**m, "fingerprint": {**m["fingerprint"], "n_rows": "5"}},
     r"'fingerprint.n_rows' as str"),
    (lambda m: {**m, "fingerprint": 7}, r"'fingerprint' as int"),
])
def test_wrong_json_types_in_the_manifest_are_one_clear_error(plain, tmp_path, edit, message):
    path = save_model(tmp_path / "m.semiclip", plain)
    _rewrite(path, "manifest.json", edit)
    for read in (load_model, model_info):
        with pytest.raises(ValueError, match=r"damaged \(its manifest\.json gives " + message):
            read(path)


@pytest.mark.parametrize("edit, message", [
    (lambda m: {**m, "estimator": {**m["estimator"], "fitted": {
        **m["estimator"]["fitted"], "n_features_in": 978}}},
     r"estimator\.fitted\.n_features_in is 978 in the manifest, 30 in the model"),
    (lambda m: {**m, "estimator": {**m["estimator"], "params": {
        **m["estimator"]["params"], "loss": "clip"}}},
     r"estimator\.params\.loss is 'clip' in the manifest, 'infonce' in the model"),
    (lambda m: {**m, "fingerprint": {**m["fingerprint"], "n_columns": 978}},
     r"gives 978 training columns but the model reads 30"),
])
def test_the_manifest_must_describe_the_model_it_holds(plain, tmp_path, edit, message):
    path = save_model(tmp_path / "m.semiclip", plain)
    _rewrite(path, "manifest.json", edit)
    for read in (load_model, model_info):
        with pytest.raises(ValueError, match=message):
            read(path)


def _old_module_pickle(obj):
    """``obj`` pickled as semiclip wrote it before the layers became private packages."""
    blob = pickle.dumps(obj, protocol=0)  # GLOBAL opcodes: module names as plain text
    for new, old in ((b"semiclip._distill.", b"semiclip.distill."),
                     (b"semiclip._correction.", b"semiclip.correction."),
                     (b"semiclip._nn.", b"semiclip.nn."),
                     (b"semiclip._core._bank", b"semiclip._bank")):
        blob = blob.replace(b"c" + new, b"c" + old)
    assert b"semiclip.distill._transformer" in blob and b"semiclip._distill" not in blob
    return blob


def test_allow_pickle_migrates_models_of_earlier_versions(plain, tiny_data, tmp_path):
    path = tmp_path / "old.pkl"
    path.write_bytes(_old_module_pickle(plain))
    with pytest.raises(ValueError, match=r"looks like a pickle.*allow_pickle=True"):
        load_model(path)  # protocol 0: no magic bytes, still named as a pickle
    with pytest.warns(UserWarning, match="a pickle can run any code"):
        loaded = load_model(path, allow_pickle=True)
    np.testing.assert_array_equal(loaded.estimator.transform(tiny_data.X),
                                  plain.transform(tiny_data.X))
    converted = save_model(tmp_path / "new.semiclip", loaded.estimator)  # and convert it
    np.testing.assert_array_equal(load_model(converted).estimator.transform(tiny_data.X),
                                  plain.transform(tiny_data.X))


def test_each_array_is_stored_once_and_caches_are_not_stored(plain, tiny_data, tmp_path):
    """A TVN normaliser holds its whitening's components twice (``components_``) and caches
    two more d x d matrices after a transform: the file holds one d x d array."""
    norm = ControlNormalizer(method="tvn", control_label="control", basis="feature")
    with pytest.warns(UserWarning, match="zero variance in the controls"):  # 18 controls, 30 d
        Xc = norm.fit(tiny_data.X, tiny_data.y, batch=tiny_data.batch).transform(
            tiny_data.X, batch=tiny_data.batch)  # fills the cached matrices
    path = save_model(tmp_path / "m.semiclip", plain, normalizer=norm)
    d = tiny_data.X.shape[1]
    with zipfile.ZipFile(path) as zf:
        square = [n for n in zf.namelist() if n.startswith("arrays/")
                  and np.lib.format.read_array(io.BytesIO(zf.read(n))).shape == (d, d)]
    assert len(square) == 1
    loaded = load_model(path).normalizer
    np.testing.assert_array_equal(loaded.transform(tiny_data.X, batch=tiny_data.batch), Xc)
    assert loaded.components_ is loaded.statistics_.whitening.components  # shared again
