"""Peak memory and time of ``load_model`` and ``semiclip info`` on crafted model files.

The files of issue 20 are built from an honest model (978 genes -> 64 dims,
with a TVN normaliser): a zip bomb (300 MiB of zeros in a small member), one
16 MiB member referenced 64 times, a 400 MiB ``manifest.json``, an ``.npy``
header declaring 8 TiB, ``n_threads=256``, an adapter of 60,000 layers, two
``manifest.json`` members and ANSI escapes in the manifest. Each read runs in
a fresh process that reports its peak resident memory (``ru_maxrss``) and
the growth over the memory it had after its imports, the peak of the memory
Python and numpy allocate during the read (``tracemalloc``), and the wall time
of the read alone. Run it with ``PYTHONPATH`` at another checkout to compare.

Examples
--------
::

    python benchmarks/bench_crafted_models.py            # prints a Markdown table
    python benchmarks/bench_crafted_models.py --dir /tmp/crafted
    PYTHONPATH=../old python benchmarks/bench_crafted_models.py --dir /tmp/crafted --reuse
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from semiclip.persistence import load_model
from semiclip.cli import main
# imported and warmed up before the baseline (a reader that has semiclip loaded)
import torch, sklearn.decomposition, semiclip, semiclip._distill, semiclip._correction
torch.nn.utils.skip_init(torch.nn.Linear, 2, 2)
import tracemalloc
kind, path = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t = time.perf_counter()
try:
    if kind == "load":
        est = load_model(path).estimator
        outcome = f"loaded (n_threads={est.n_threads})"
    else:
        import contextlib, io
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["info", path])
        outcome = f"exit {code}" + (f": {err.getvalue().strip()[:90]}" if code else "")
        if code == 0 and any(not c.isprintable() and c != "\n" for c in out.getvalue()):
            outcome += " (NON-PRINTABLE OUTPUT)"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
seconds = time.perf_counter() - t
traced = tracemalloc.get_traced_memory()[1]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_mib": peak / 1024,
                  "growth_mib": (peak - base) / 1024, "traced_mib": traced / 2**20}))
"""


def honest_model(path):
    from semiclip import ControlNormalizer, SemiClippedTransformer
    from semiclip.datasets import make_weakly_paired
    from semiclip.persistence import save_model

    data = make_weakly_paired(n_perturbations=60, n_genes=978, n_batches=2,
                              controls_per_batch=20, samples_per_perturbation=3, image_dim=32,
                              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = ControlNormalizer(method="tvn", control_label="control", basis="feature")
        Xc = norm.fit(data.X, data.y, batch=data.batch).transform(data.X, batch=data.batch)
        est = SemiClippedTransformer(encoder_dim=64, max_iter=1, control_label="control",
                                     random_state=0)
        est.fit(Xc, data.y, image_bank=data.image_bank)
    return save_model(path, est, normalizer=norm)


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, members, streams=()):
    """``members`` (bytes), then ``streams``: ``(name, head, n, fill, tail)``, the member
    ``head + fill * n + tail`` written in chunks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, blob in members.items() if isinstance(members, dict) else members:
                zf.writestr(name, blob)
            for name, head, n, fill, tail in streams:
                with zf.open(name, "w", force_zip64=True) as fh:
                    fh.write(head)
                    chunk = fill * (1 << 24)
                    for start in range(0, n, len(chunk)):
                        fh.write(chunk[:min(len(chunk), n - start)])
                    fh.write(tail)
    return path


def _npy_header(shape, descr="<f8"):
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (64 - (10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def _edit_state(members, edit):
    state = json.loads(members["state.json"])
    edit(state)
    return {**members, "state.json": json.dumps(state).encode()}


def _estimator_pairs(state):
    return state["estimator"]["state"]["$dict"]


def crafted_files(honest, d):
    members = _members(honest)
    n = sum(k.startswith("arrays/") for k in members)
    files = {"honest": honest}

    def refs(k):
        def edit(state):
            for pair in _estimator_pairs(state):
                if pair[0] == "validation_report_":
                    pair[1] = {"$dict": [[f"k{i}", {"$array": n}] for i in range(k)]}
        return edit

    files["zip bomb (300 MiB of zeros)"] = _write(
        d / "bomb.semiclip", _edit_state(members, refs(1)),
        [(f"arrays/{n}.npy", _npy_header(((300 << 20) // 8,)), 300 << 20, b"\0", b"")])
    sixty_four = refs(64)
    files["one 16 MiB member x 64 refs"] = _write(
        d / "refs.semiclip", _edit_state(members, sixty_four),
        [(f"arrays/{n}.npy", _npy_header(((16 << 20) // 8,)), 16 << 20, b"\0", b"")])
    manifest = members["manifest.json"]
    files["400 MiB manifest.json"] = _write(
        d / "manifest.semiclip", {k: v for k, v in members.items() if k != "manifest.json"},
        [("manifest.json", manifest[:-1], 400 << 20, b" ", b"}")])  # valid JSON: white space
    files["npy header of 8 TiB"] = _write(
        d / "header.semiclip", {**members, "arrays/0.npy": _npy_header((1 << 40,)) + bytes(8)})

    def threads(state):
        for pair in _estimator_pairs(state):
            if pair[0] == "n_threads":
                pair[1] = 256
    bundle = _edit_state(members, threads)
    m = json.loads(manifest)
    m["estimator"]["params"]["n_threads"] = 256
    files["n_threads=256"] = _write(d / "threads.semiclip",
                                    {**bundle, "manifest.json": json.dumps(m).encode()})

    def layers(state):
        adapter = state["estimator"]["adapter"]
        ref = adapter["weights"][0][1]
        adapter["sizes"] = [adapter["sizes"][0]] * 60_001
        adapter["weights"] = [[f"{2 * i}.{k}", ref] for i in range(60_000)
                              for k in ("weight", "bias")]
    files["60,000 adapter layers"] = _write(d / "layers.semiclip", _edit_state(members, layers))
    fake = dict(m, estimator=dict(m["estimator"], **{"class": "FakeModel"}))
    files["two manifest.json members"] = _write(
        d / "dup.semiclip", [*members.items(), ("manifest.json", json.dumps(fake).encode())])
    m2 = dict(json.loads(manifest), created="\x1b[2J\x1b]0;pwned\x07 2020")
    files["ANSI/OSC escapes in the manifest"] = _write(
        d / "ansi.semiclip", {**members, "manifest.json": json.dumps(m2).encode()})
    return files


def measure(kind, path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nan = float("nan")
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)],
                              capture_output=True, text=True, env=env, timeout=600)
    except subprocess.TimeoutExpired:
        return {"outcome": "still running after 600 s (stopped)", "seconds": nan,
                "peak_mib": nan, "growth_mib": nan, "traced_mib": nan}
    if done.returncode:
        return {"outcome": f"process exit {done.returncode}: {done.stderr[-200:]}",
                "seconds": float("nan"), "peak_mib": float("nan"), "growth_mib": float("nan"),
                "traced_mib": float("nan")}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="where the files are written (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the files already in --dir (e.g. with another checkout "
                             "of semiclip on PYTHONPATH, so both read the same files)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.dir or tmp)
        d.mkdir(parents=True, exist_ok=True)
        if args.reuse:
            files = json.loads((d / "files.json").read_text())
        else:
            files = crafted_files(honest_model(d / "honest.semiclip"), d)
            (d / "files.json").write_text(json.dumps({k: str(v) for k, v in files.items()}))
        print("| file | size | reader | time (s) | peak RSS (MiB) | RSS growth (MiB) "
              "| traced peak (MiB) | outcome |")
        print("|---|---:|---|---:|---:|---:|---:|---|")
        for name, path in files.items():
            for kind in ("load", "info"):
                r = measure(kind, path)
                size = os.path.getsize(path) / 1024
                outcome = r["outcome"].replace("|", "/").replace(str(path), "FILE")
                reader = "load_model" if kind == "load" else "semiclip info"
                print(f"| {name} | {size:,.0f} KiB | {reader} | {r['seconds']:.2f} "
                      f"| {r['peak_mib']:.0f} | {r['growth_mib']:.0f} | {r['traced_mib']:.1f} "
                      f"| {outcome} |", flush=True)


if __name__ == "__main__":
    main()
