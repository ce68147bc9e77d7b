"""The command line's safety: model files that run no code, ``semiclip info``, outputs that never
destroy inputs or leave partial files, and one-line errors for bad arguments."""

import hashlib
import json
import os
import pickle
import re
import warnings
import zipfile

import joblib
import numpy as np
import pytest

from semiclip.cli import main

from ._common import COLS, FIT_PARAMS

#: the tag of the joblib bundles `semiclip fit` wrote before the zip format (written out here,
#: not read from the package, so that a changed tag fails these tests)
_LEGACY_FORMAT = "semiclip-cli-model/1"

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

pd = pytest.importorskip("pandas")


class Evil:
    """Unpickling it creates ``marker`` (``open(marker, "w")``): proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _fit_args(files, out, *extra):
    return ["fit", "--tx", str(files / "tx.csv"), "--images", str(files / "img.csv"), *COLS,
            *FIT_PARAMS, *extra, "-o", str(out)]


def _one_error_line(err, command):
    """The error: one line (warning lines aside)."""
    lines = [w for w in err.strip().splitlines()
             if not w.startswith(f"semiclip {command}: warning:")]
    assert len(lines) == 1 and lines[0].startswith(f"semiclip {command}: error:"), err
    return lines[0]


@pytest.fixture(scope="module")
def model(files, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.semiclip"
    assert main(_fit_args(files, path)) == 0
    return path


def _rewrite(path, out, member, edit):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[member] = json.dumps(edit(json.loads(members[member]))).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return out


# ------------------------------------------------------------------ the model file
def test_fit_writes_a_file_that_runs_no_code_and_transform_reads_it(data, files, model,
                                                                    tmp_path):
    from semiclip.persistence import load_model

    with zipfile.ZipFile(model) as zf:
        names = zf.namelist()
    assert {"manifest.json", "state.json"} <= set(names)
    assert all(n.endswith(".npy") for n in names if n.startswith("arrays/"))
    loaded = load_model(model)
    assert loaded.columns["feature_names"] == [f"g{j}" for j in range(30)]
    assert loaded.estimator.training_params_["max_iter"] == 3
    emb = tmp_path / "emb.parquet"
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(emb)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = loaded.normalizer.transform(data.X, batch=data.batch)
    Z = pd.read_parquet(emb).filter(like="semiclippedtransformer").to_numpy()
    np.testing.assert_array_equal(Z, loaded.estimator.transform(X))


def test_info_prints_versions_and_fingerprint(data, model, capsys):
    import scipy
    import sklearn
    import torch

    import semiclip

    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    for name, version in (("semiclip", semiclip.__version__), ("numpy", np.__version__),
                          ("scipy", scipy.__version__), ("scikit-learn", sklearn.__version__),
                          ("torch", torch.__version__)):
        assert f"{name} {version}" in out, name
    spec = {"features": [f"g{j}" for j in range(30)], "key": ["Metadata_gene"],
            "batch": "Metadata_Plate", "control": None}
    sha = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    assert sha.hexdigest() in out
    assert f"{data.X.shape[0]} rows x 30 columns" in out
    assert "SemiClippedTransformer" in out and re.search(r"random_state:\s+0\n", out)
    assert "ControlNormalizer" in out
    assert main(["info", str(model), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    with zipfile.ZipFile(model) as zf:
        assert manifest == json.loads(zf.read("manifest.json"))
    assert manifest["fingerprint"]["column_spec_sha256"] == sha.hexdigest()


@pytest.mark.parametrize("write, message", [
    (None, r"no file at"),
    (lambda p: p.write_text("just text"), r"not a semiclip model file"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), r"damaged"),
    (lambda p: joblib.dump({"a": 1}, p), r"pickle.*--allow-pickle"),
])
def test_info_errors_are_one_line(tmp_path, capsys, write, message):
    path = tmp_path / "m.semiclip"
    if write is not None:
        write(path)
    assert main(["info", str(path)]) == 2
    assert re.search(message, _one_error_line(capsys.readouterr().err, "info"))


# ------------------------------------------------------------------ files that run code
def test_a_malicious_pickle_is_refused_without_running_it(files, tmp_path, capsys):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.joblib"
    joblib.dump(Evil(marker), evil)
    for argv in (["transform", "-m", str(evil), "--tx", str(files / "tx.csv"), "-o",
                  str(tmp_path / "e.csv")], ["info", str(evil)]):
        assert main(argv) == 2
        line = _one_error_line(capsys.readouterr().err, argv[0])
        assert "can run any code" in line and "--allow-pickle" in line
        assert not marker.exists()
    assert not (tmp_path / "e.csv").exists()


def test_a_model_naming_an_untrusted_class_is_refused(files, model, tmp_path, capsys,
                                                      monkeypatch):
    marker = tmp_path / "marker"
    (tmp_path / "evilmod2.py").write_text(f"open({str(marker)!r}, 'w')\nclass Evil: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def edit(state):
        state["normalizer"] = {"$object": "evilmod2.Evil", "state": {"$dict": []}}
        return state

    bad = _rewrite(model, tmp_path / "bad.semiclip", "state.json", edit)
    assert main(["transform", "-m", str(bad), "--tx", str(files / "tx.csv"), "-o",
                 str(tmp_path / "e.csv")]) == 2
    line = _one_error_line(capsys.readouterr().err, "transform")
    assert "'evilmod2.Evil', which is not a type a semiclip model file may hold" in line
    assert not marker.exists()


def test_allow_pickle_reads_models_of_the_previous_version(files, model, tmp_path, capsys):
    from semiclip.persistence import load_model

    new = load_model(model)
    columns = {k: v for k, v in new.columns.items() if k != "feature_names"}
    old = tmp_path / "old.joblib"  # what `semiclip fit` wrote before
    joblib.dump({"format": _LEGACY_FORMAT, "estimator": new.estimator,
                 "normalizer": new.normalizer, "columns": columns,
                 "feature_names": new.columns["feature_names"]}, old)
    args = ["transform", "-m", str(old), "--tx", str(files / "tx.csv")]
    assert main(args + ["-o", str(tmp_path / "a.parquet")]) == 2
    assert "--allow-pickle" in _one_error_line(capsys.readouterr().err, "transform")
    assert main(args + ["--allow-pickle", "-o", str(tmp_path / "a.parquet")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"semiclip transform: warning: .*a pickle can run any code", err)
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o",
                 str(tmp_path / "b.parquet")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"),
                                  pd.read_parquet(tmp_path / "b.parquet"))
    capsys.readouterr()
    assert main(["info", str(old), "--allow-pickle"]) == 0
    captured = capsys.readouterr()
    assert _LEGACY_FORMAT in captured.out and "warning:" in captured.err


# ------------------------------------------------------------------ damaged model files
def _legacy(tmp_path, model, **changes):
    from semiclip.persistence import load_model

    new = load_model(model)
    bundle = {"format": _LEGACY_FORMAT, "estimator": new.estimator, "normalizer": None,
              "columns": dict(new.columns), "feature_names": new.columns["feature_names"]}
    bundle.update(changes)
    bundle = {k: v for k, v in bundle.items() if v is not _DROP}
    joblib.dump(bundle, tmp_path / "legacy.joblib")
    return tmp_path / "legacy.joblib"


_DROP = object()


def test_a_model_with_missing_fields_is_one_error(files, model, tmp_path, capsys):
    from semiclip.persistence import load_model, save_model

    tx = ["--tx", str(files / "tx.csv"), "-o", str(tmp_path / "e.csv")]
    legacy = _legacy(tmp_path, model, columns=_DROP)
    assert main(["transform", "-m", str(legacy), "--allow-pickle", *tx]) == 2
    assert "has the tag 'semiclip-cli-model/1' but no 'columns'" in _one_error_line(
        capsys.readouterr().err, "transform")
    saved = save_model(tmp_path / "api.semiclip", load_model(model).estimator)  # no column spec
    assert main(["transform", "-m", str(saved), *tx]) == 2
    assert re.search(r"no column spec.*semiclip fit",
                     _one_error_line(capsys.readouterr().err, "transform"))
    cols = load_model(model).columns

    def drop_key(state):
        state["columns"]["$dict"] = [p for p in state["columns"]["$dict"] if p[0] != "key"]
        return state

    bad = _rewrite(model, tmp_path / "nokey.semiclip", "state.json", drop_key)
    assert "key" in cols
    assert main(["transform", "-m", str(bad), *tx]) == 2  # the manifest still names the key
    assert "manifest.json does not describe the model it holds: columns.key" in _one_error_line(
        capsys.readouterr().err, "transform")
    bad = _rewrite(bad, tmp_path / "nokey2.semiclip", "manifest.json", lambda m: {
        **m, "columns": {k: v for k, v in m["columns"].items() if k != "key"}})
    assert main(["transform", "-m", str(bad), *tx]) == 2
    assert re.search(r"column spec lacks 'key'", _one_error_line(capsys.readouterr().err,
                                                                "transform"))
    bad = _rewrite(model, tmp_path / "noest.semiclip", "state.json",
                   lambda s: {"columns": s["columns"]})
    assert main(["transform", "-m", str(bad), *tx]) == 2
    assert "damaged (no 'estimator'" in _one_error_line(capsys.readouterr().err, "transform")
    assert not (tmp_path / "e.csv").exists()


def test_a_model_holding_the_wrong_estimator_is_one_error(files, model, tmp_path, capsys):
    from semiclip import ControlNormalizer

    tx = ["--tx", str(files / "tx.csv"), "-o", str(tmp_path / "e.csv")]
    legacy = _legacy(tmp_path, model, estimator=ControlNormalizer())
    assert main(["transform", "-m", str(legacy), "--allow-pickle", *tx]) == 2
    assert "holds a ControlNormalizer as its estimator, not a SemiClippedTransformer" in \
        _one_error_line(capsys.readouterr().err, "transform")

    def swap(state):
        state["estimator"] = state["normalizer"]
        return state

    bad = _rewrite(model, tmp_path / "swapped.semiclip", "state.json", swap)
    assert main(["transform", "-m", str(bad), *tx]) == 2
    assert "holds a ControlNormalizer as its estimator" in _one_error_line(
        capsys.readouterr().err, "transform")


# ------------------------------------------------------------------ outputs
def test_fit_checks_its_output_before_reading_or_training(files, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    for out, message in ((tmp_path / "adir", r"is a directory"),
                         (tmp_path / "m.joblib", r"\.semiclip"),
                         (tmp_path / "nope" / "m.semiclip", r"directory .* does not exist"),
                         ("", r"must name")):
        assert main(_fit_args(files, out)) == 2
        captured = capsys.readouterr()
        assert re.search(message, _one_error_line(captured.err, "fit"))
        assert captured.out == ""  # no match report: nothing was read, nothing trained
    assert not (tmp_path / "m.joblib").exists()


def test_transform_refuses_a_directory_output(files, model, tmp_path, capsys):
    (tmp_path / "adir.csv").mkdir()
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o",
                 str(tmp_path / "adir.csv")]) == 2
    assert "is a directory" in _one_error_line(capsys.readouterr().err, "transform")


def test_outputs_never_replace_inputs(files, model, tmp_path, capsys, monkeypatch):
    import shutil

    tx = tmp_path / "tx.csv"
    shutil.copy(files / "tx.csv", tx)
    before = tx.read_bytes()
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "--tx", "tx.csv", "--images", str(files / "img.csv"), *COLS, *FIT_PARAMS,
           "--overwrite", "-o"]
    for argv, flag in ((fit + ["./tx.csv"], "--tx"),
                       (fit + [str(files / "img.csv")], "--images"),
                       (["transform", "-m", str(model), "--tx", "tx.csv", "--overwrite", "-o",
                         str(tx)], "--tx"),
                       (["transform", "-m", str(model), "--tx", "tx.csv", "--overwrite", "-o",
                         str(model)], "--model")):
        assert main(argv) == 2
        line = _one_error_line(capsys.readouterr().err, argv[0])
        assert f"is the {flag} input" in line, line
    os.symlink(tx, tmp_path / "link.csv")  # another name of the same file
    assert main(["transform", "-m", str(model), "--tx", "tx.csv", "--overwrite", "-o",
                 "link.csv"]) == 2
    assert "is the --tx input" in capsys.readouterr().err
    assert tx.read_bytes() == before


def test_existing_outputs_need_overwrite(files, model, tmp_path, capsys):
    out = tmp_path / "m.semiclip"
    out.write_bytes(b"precious")
    assert main(_fit_args(files, out)) == 2
    captured = capsys.readouterr()
    assert "exists; pass --overwrite" in _one_error_line(captured.err, "fit")
    assert captured.out == "" and out.read_bytes() == b"precious"
    assert main(_fit_args(files, out, "--overwrite")) == 0
    assert zipfile.is_zipfile(out)

    emb = tmp_path / "emb.csv"
    emb.write_text("precious")
    args = ["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o", str(emb)]
    assert main(args) == 2
    assert "exists; pass --overwrite" in _one_error_line(capsys.readouterr().err, "transform")
    assert emb.read_text() == "precious"
    assert main(args + ["--overwrite"]) == 0
    assert "semiclippedtransformer0" in emb.read_text()


def _half_then_fail(real):
    def write(self, path, *args, **kwargs):
        with open(path, "w") as fh:
            fh.write("Metadata_gene,half a row")
        raise OSError("No space left on device")
    return write


def test_no_partial_files_when_writing_fails(files, model, tmp_path, capsys, monkeypatch):
    emb = tmp_path / "emb.csv"
    monkeypatch.setattr(pd.DataFrame, "to_csv", _half_then_fail(pd.DataFrame.to_csv))
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(emb)]) == 2
    assert "No space left on device" in _one_error_line(capsys.readouterr().err, "transform")
    assert list(tmp_path.iterdir()) == []  # no emb.csv, no temporary file
    emb.write_text("old")
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(emb), "--overwrite"]) == 2
    assert emb.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    monkeypatch.undo()

    calls = []

    def failing_save(fh, arr, **kwargs):
        calls.append(1)
        fh.write(b"\x93NUMPY half")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "save", failing_save)
    out = tmp_path / "m.semiclip"
    assert main(_fit_args(files, out)) == 2
    assert calls and "No space left" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.csv"]


def test_evaluate_outputs_are_written_whole(files, model, tmp_path, capsys, monkeypatch):
    emb = tmp_path / "emb.parquet"
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"),
                 "-o", str(emb)]) == 0
    ev = ["evaluate", "--emb", str(emb), *COLS, "--relationships", str(files / "rel.csv")]
    assert main(ev + ["--out", str(emb)]) == 2
    assert "is the --emb input" in _one_error_line(capsys.readouterr().err, "evaluate")
    monkeypatch.setattr(pd.DataFrame, "to_csv", _half_then_fail(pd.DataFrame.to_csv))
    assert main(ev + ["--out", str(tmp_path / "res.csv")]) == 2
    capsys.readouterr()
    import matplotlib.figure

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _half_then_fail(None))
    assert main(ev + ["--plot", str(tmp_path / "bars.png")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.parquet"]


# ------------------------------------------------------------------ argument errors
@pytest.mark.parametrize("sizes, shown", [("0", "0"), ("-3", "-3"), ("1024,-1", "-1"),
                                          ("10,zero", "'10,zero'")])
def test_hidden_layer_sizes_are_checked_first(files, tmp_path, capsys, sizes, shown):
    assert main(_fit_args(files, tmp_path / "m.semiclip", "--hidden-layer-sizes", sizes)) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err, "fit")
    assert "--hidden-layer-sizes" in line and shown in line and "positive" in line
    assert captured.out == ""


def test_a_bogus_device_is_checked_first(files, tmp_path, capsys):
    assert main(_fit_args(files, tmp_path / "m.semiclip", "--device", "bogus")) == 2
    captured = capsys.readouterr()
    assert "--device 'bogus'" in _one_error_line(captured.err, "fit")
    assert captured.out == ""


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_demo_needs_a_seed(capsys, seeds):
    assert main(["demo", "--seeds", seeds, "--plot", ""]) == 2
    captured = capsys.readouterr()
    assert f"--seeds must be >= 1; got {seeds}" in _one_error_line(captured.err, "demo")
    assert captured.out == ""


# ------------------------------------------------------------------ crafted files (issue 20)
ESCAPES = "\x1b[2J\x1b[1A\x1b]0;fake\x07\r\u202e\n"


def test_info_prints_only_printable_text(model, tmp_path, capsys):
    def inject(m):
        return {**m, "created": "2020" + ESCAPES, "versions": {
            **m["versions"], "torch" + ESCAPES: "9" + ESCAPES}}

    bad = _rewrite(model, tmp_path / "ansi.semiclip", "manifest.json", inject)
    assert main(["info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert not [c for c in out if not c.isprintable() and c != "\n"], repr(out)
    assert r"2020\x1b[2J\x1b[1A\x1b]0;fake\x07\r\u202e\n" in out  # shown, escaped
    assert main(["info", str(bad), "--json"]) == 0
    assert "\x1b" not in capsys.readouterr().out  # JSON escapes them itself
    bad = _rewrite(model, tmp_path / "ansi2.semiclip", "manifest.json",
                   lambda m: {**m, "format": "x\x1b[2J"})
    assert main(["info", str(bad)]) == 2
    assert "\x1b" not in capsys.readouterr().err


@pytest.mark.parametrize("edit", [
    lambda m: {**m, "estimator": {**m["estimator"], "params": []}},
    lambda m: {**m, "normalizer": {"class": 1, "params": {}}},
    lambda m: {**m, "fingerprint": {**m["fingerprint"], "column_spec_sha256": None}},
])
def test_info_on_a_manifest_of_wrong_types_is_one_line(model, tmp_path, capsys, edit):
    bad = _rewrite(model, tmp_path / "types.semiclip", "manifest.json", edit)
    assert main(["info", str(bad)]) == 2
    assert "damaged (its manifest.json gives" in _one_error_line(capsys.readouterr().err,
                                                                 "info")


def test_the_pickle_warning_is_printed_before_unpickling(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "exits.pkl"
    path.write_bytes(pickle.dumps(_Exits()))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "semiclip", "info", str(path),
                           "--allow-pickle"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 7  # the pickle ran and ended the process...
    assert "semiclip info: warning: reading" in done.stderr  # ...after the warning was out
    assert "a pickle can run any code" in done.stderr


class _Exits:
    def __reduce__(self):
        return (os._exit, (7,))


# ------------------------------------------------------------------ outputs (issue 20)
def test_every_output_is_checked_against_every_input_and_output(files, model, tmp_path,
                                                                 capsys):
    import shutil

    emb, rel = tmp_path / "emb.csv", tmp_path / "rel.csv"
    shutil.copy(files / "rel.csv", rel)
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o",
                 str(emb)]) == 0
    before = rel.read_bytes()
    ev = ["evaluate", "--emb", str(emb), *COLS, "--relationships", str(rel)]
    tx = ["-m", str(model), "--tx", str(files / "tx.csv")]
    for argv, flag, other in (
            (ev + ["--out", str(rel)], "--out", "is the --relationships input"),
            (ev + ["--plot", str(rel)], "--plot", "is the --relationships input"),
            (ev + ["--out", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.md")], "--plot",
             "is also the --out output"),
            (["attribute", *tx, "-o", str(tmp_path / "a.csv"), "--plot",
              str(tmp_path / "a.csv")], "--plot", "is also the --output output")):
        assert main(argv) == 2
        line = _one_error_line(capsys.readouterr().err, argv[0])
        assert line.startswith(f"semiclip {argv[0]}: error: {flag} ") and other in line, line
    assert rel.read_bytes() == before
    assert not (tmp_path / "r.md").exists() and not (tmp_path / "a.csv").exists()


def test_evaluate_needs_overwrite_to_replace_its_output(files, model, tmp_path, capsys):
    emb, out = tmp_path / "emb.csv", tmp_path / "results.md"
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o",
                 str(emb)]) == 0
    out.write_text("precious")
    ev = ["evaluate", "--emb", str(emb), *COLS, "--relationships", str(files / "rel.csv"),
          "--out", str(out)]
    assert main(ev) == 2
    assert "--out" in _one_error_line(capsys.readouterr().err, "evaluate")
    assert out.read_text() == "precious"
    assert main(ev + ["--overwrite"]) == 0
    assert out.read_text() != "precious"


def test_concurrent_writers_of_one_name_one_wins(files, model, tmp_path, monkeypatch, capsys):
    """Three `transform -o same.csv` at once, no --overwrite: all pass the up-front check
    (a barrier holds them there), then exactly one creates the file; the others fail."""
    import threading

    from semiclip.cli import _files

    barrier, real = threading.Barrier(3, timeout=60), _files.check_output

    def check_then_wait(*args, **kwargs):
        out = real(*args, **kwargs)
        barrier.wait()
        return out

    monkeypatch.setattr(_files, "check_output", check_then_wait)
    out, codes = tmp_path / "same.csv", []

    def run():
        codes.append(main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o",
                           str(out)]))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    err = capsys.readouterr().err
    assert sorted(codes) == [0, 2, 2], err
    assert err.count("exists (it appeared while this command ran); pass --overwrite") == 2, err
    assert [p.name for p in tmp_path.iterdir()] == ["same.csv"]  # no temporary left


def test_stale_temporaries_of_killed_writers_are_removed(files, model, tmp_path):
    import subprocess
    import sys
    import time

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = [tmp_path / f".tmp-semiclip-{dead}-0123abcd-emb.csv",  # its writer is gone
             tmp_path / ".tmp-89abcdef-emb.csv"]  # earlier naming, two hours old
    keep = [tmp_path / f".tmp-semiclip-{os.getpid()}-0123abcd-emb.csv",  # a live writer
            tmp_path / ".tmp-notours-emb.csv"]  # not our naming
    for p in stale + keep:
        p.write_bytes(b"x" * 100)
    old = time.time() - 7200
    os.utime(stale[1], (old, old))
    os.utime(keep[1], (old, old))
    assert main(["transform", "-m", str(model), "--tx", str(files / "tx.csv"), "-o",
                 str(tmp_path / "emb.csv")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["emb.csv", *(p.name for p in keep)])
