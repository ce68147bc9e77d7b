"""``semiclip --version`` and ``semiclip <command> --help`` start lean.

Each runs in a fresh interpreter and must not import torch, pandas,
matplotlib, scikit-learn or the experiments: the command modules import
those inside ``run``. The help of ``semiclip benchmark`` writes out the
experiments' row ids and sizes (importing them would load scikit-learn);
the last tests check those against the experiments themselves.
"""

import re
import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "matplotlib", "sklearn", "semiclip._experiments")
_PROBE = """
import runpy, sys
for args in {runs!r}:
    sys.argv = ["semiclip", *args]
    code = None
    try:
        runpy.run_module("semiclip", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in sys.modules if m in {heavy!r})
    print("RUN", " ".join(args), "EXIT", code, "HEAVY", ",".join(heavy), file=sys.stderr)
"""


def _run(*runs):
    """Run ``semiclip ARGS`` for each ``ARGS`` of ``runs`` in one fresh interpreter.

    Returns the output and, per run, ``(exit code, heavy modules loaded so
    far)``: sys.modules only grows, so a run that loads a heavy module shows
    it from that run on.
    """
    code = _PROBE.format(runs=[list(r) for r in runs], heavy=set(HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("RUN ")]
    assert len(lines) == len(runs), out.stderr
    results = []
    for line in lines:
        exit_code, _, heavy = line.partition(" EXIT ")[2].partition(" HEAVY ")
        results.append((exit_code, [m for m in heavy.split(",") if m]))
    return out.stdout, results


def test_version_imports_nothing_heavy():
    out, [(exit_code, heavy)] = _run(["--version"])
    assert out.startswith("semiclip ") and exit_code == "0"
    assert heavy == []


def test_every_command_help_imports_nothing_heavy():
    usage, _ = _run(["--help"])
    commands = re.search(r"\{([a-z_,-]+)\}", usage).group(1).split(",")
    assert {"fit", "transform", "benchmark", "demo", "info"} <= set(commands)
    runs = [["--help"]] + [[command, "--help"] for command in commands]
    out, results = _run(*runs)
    assert out.count("usage: semiclip") == len(runs)
    for args, (exit_code, heavy) in zip(runs, results):
        assert exit_code == "0" and heavy == [], (args, exit_code, heavy)


# ------------------------------------------- the written-out benchmark help
def _benchmark_help():
    from semiclip.cli import main

    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])


def test_benchmark_help_names_every_row_and_setting(capsys, monkeypatch):
    from semiclip._experiments import EXTRA_ROWS, FULL, QUICK, REAL_ROWS, REAL_SETTINGS, ROWS

    monkeypatch.setenv("COLUMNS", "1000")  # no line breaks inside the lists
    _benchmark_help()
    text = " ".join(capsys.readouterr().out.split())
    methods = re.search(r"comma-separated row ids: (\S+?); with --real: (\S+)", text)
    assert methods.group(1).split(",") == [r for r, _ in ROWS + EXTRA_ROWS]
    assert methods.group(2).split(",") == [r for r, _, _ in REAL_ROWS]
    settings = re.search(r"settings among (\S+) \(default: all\)", text)
    assert settings.group(1).split(",") == list(REAL_SETTINGS)
    quick = (f"{QUICK['seeds']} seeds, {QUICK['n_perturbations']} perturbations x "
             f"{QUICK['samples_per_perturbation']} samples, {QUICK['n_genes']} genes, "
             f"<= {QUICK['max_iter']} epochs, {QUICK['n_jobs']} seeds at a time")
    assert quick in text
    for flag, value in (("seeds", FULL["seeds"]), ("synthetic data", FULL["n_perturbations"]),
                        ("genes of the synthetic data", FULL["n_genes"])):
        assert f"{flag} (default {value})" in text, flag


def test_fit_help_offers_every_registered_loss(capsys, monkeypatch):
    """The CLI lists its --loss choices without importing torch; they must be the registry's."""
    from semiclip._nn import LOSSES
    from semiclip.cli import main

    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    choices = re.search(r"--loss \{([^}]+)\}", text).group(1).split(",")
    assert sorted(choices) == sorted(LOSSES)

