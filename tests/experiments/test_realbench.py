"""The real-data benchmark: settings, tables with paired differences, the trade-off table, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from semiclip._experiments import (
    REAL_ROWS,
    graph_teacher,
    paired_differences,
    real_methods,
    real_table,
    tradeoff_table,
)
from semiclip.cli import main


def half_width(values):
    values = np.asarray(values, float)
    return stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)


def results_by_hand():
    return {
        "raw transcriptomics": [{"recall a": 0.1, "recall a chance": 0.05, "rsa": 0.2,
                                 "interpretability": 1.0, "fit_seconds": 0.0}] * 3,
        "ridge distillation baseline": [
            {"recall a": r, "rsa": s, "mrr": 0.5, "mrr chance": 0.1, "interpretability": 0.6,
             "fit_seconds": 1.0} for r, s in ((0.4, 0.5), (0.5, 0.6), (0.45, 0.7))],
        "better": [{"recall a": r, "rsa": s, "mrr": 0.6, "interpretability": 0.9,
                    "fit_seconds": 2.0} for r, s in ((0.5, 0.6), (0.6, 0.7), (0.55, 0.8))],
    }


def test_paired_differences_are_per_seed():
    res = results_by_hand()
    diff = paired_differences(res, "rsa")
    # better - ridge is 0.1 on every seed: no spread, the interval collapses on 0.1
    assert diff["better"][0] == pytest.approx(0.1)
    assert diff["better"][1] == pytest.approx(0.0, abs=1e-12)
    raw = np.array([0.2] * 3) - np.array([0.5, 0.6, 0.7])
    assert diff["raw transcriptomics"][0] == pytest.approx(raw.mean())
    assert diff["raw transcriptomics"][1] == pytest.approx(half_width(raw))


def test_real_table_cells_and_marks():
    text = real_table(results_by_hand())
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["method"] == ["recall a", "rsa", "mrr", "interpretability", "recall a - ridge",
                              "rsa - ridge", "mrr - ridge", "fit s"]
    r = [0.4, 0.5, 0.45]
    assert rows["ridge distillation baseline"][0] == f"{np.mean(r):.3f} ± {half_width(r):.3f}"
    assert rows["raw transcriptomics"][2] == "-"  # no cross-modal space, no MRR
    assert rows["better"][5].endswith("(>)")
    assert rows["raw transcriptomics"][5].endswith("(<)")
    assert rows["better"][4] == "+0.100 ± 0.000 (>)"
    assert "Chance: recall a 0.050, mrr 0.100." in text


def test_tradeoff_table_marks_the_weights_meeting_both_ratios():
    res = {
        "raw transcriptomics": [{"recall g": 0.1, "interpretability": 1.0}] * 2,
        "preservation_weight=0": [{"recall g": 0.60, "interpretability": 0.5}] * 2,
        "preservation_weight=1": [{"recall g": 0.56, "interpretability": 0.85}] * 2,
        "preservation_weight=10": [{"recall g": 0.40, "interpretability": 0.95}] * 2,
    }
    marks = {line.split("|")[1].strip(): line.split("|")[4].strip()
             for line in tradeoff_table(res).splitlines() if line.startswith("| pres")}
    # 0.56 >= 0.9 * 0.60 and 0.85 >= 0.8 * 1.0; w=0 fails interpretability, w=10 recall
    assert marks == {"preservation_weight=0": "", "preservation_weight=1": "*",
                     "preservation_weight=10": ""}


def test_graph_teacher_relates_linked_genes():
    genes = np.array(["a", "b", "c", "d", "e", "f"])
    emb, keys = graph_teacher(genes, [("a", "b"), ("b", "c"), ("a", "c")], dim=32, noise=0.0,
                              rows_per_key=2, random_state=0)
    assert emb.shape == (12, 32) and list(keys[:4]) == ["a", "a", "b", "b"]
    E = np.stack([emb[keys == g][0] for g in genes])
    cos = E @ E.T / np.outer(np.linalg.norm(E, axis=1), np.linalg.norm(E, axis=1))
    linked = np.mean([cos[0, 1], cos[1, 2], cos[0, 2]])
    unlinked = np.mean([cos[i, j] for i in range(3, 6) for j in range(6) if j != i])
    assert linked > 0.8 > 0.5 > abs(unlinked)


def test_real_rows_and_unknown_rows():
    assert list(real_methods(["raw", "structure"])) == [
        "raw transcriptomics", "Semi-Clipped, structure_weight='auto'"]
    with pytest.raises(ValueError, match=r"unknown real-data row\(s\) \['nope'\]"):
        real_methods(["nope"])
    assert len({r for r, _, _ in REAL_ROWS}) == len(REAL_ROWS)


@pytest.mark.slow  # the real-data benchmark through the CLI, end to end
def test_cli_real_on_ta_orf(tmp_path, capsys):
    out = tmp_path / "real.md"
    assert main(["benchmark", "--real", "--settings", "ta-orf", "--methods", "ridge",
                 "--seeds", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## ta-orf: TA-ORF L1000" in text
    assert "| ridge distillation baseline |" in text
    scores = json.loads(Path(f"{out}.json").read_text())["ta-orf"]
    assert [len(v) for v in scores.values()] == [2]
    assert "recall HuMAP" in text and "recall Reactome" in text and "rsa - ridge" in text
    assert main(["benchmark", "--real", "--settings", "nope", "--plot", ""]) == 2
    assert "--settings: unknown setting(s) nope" in capsys.readouterr().err


def test_paper_orderings_need_the_paired_interval_to_exclude_zero():
    from semiclip._experiments import ROWS, expected_order

    labels = dict(ROWS)
    ours, clip, kd = labels["semiclipped"], labels["clip"], labels["kd"]
    results = {  # ours - clip: +0.05 on every seed; ours - kd: +0.2, -0.1, +0.2 (mean > 0)
        ours: [{"recall": v} for v in (0.60, 0.50, 0.70)],
        clip: [{"recall": v} for v in (0.55, 0.45, 0.65)],
        kd: [{"recall": v} for v in (0.40, 0.60, 0.50)],
    }
    table = {k: {"recall": (np.mean([r["recall"] for r in v]), 0.0)} for k, v in results.items()}
    by_means = {c: ok for c, ok, _ in expected_order(table)}
    paired = {c: (ok, d) for c, ok, d in expected_order(table, results)}
    name_clip, name_kd = f"Semi-Clipped > {clip}", f"Semi-Clipped > {kd}"
    assert by_means[name_clip] and by_means[name_kd]
    assert paired[name_clip][0] is True
    diff = np.array([0.2, -0.1, 0.2])
    assert paired[name_kd][0] is False  # mean +0.1, but the interval includes 0
    assert f"paired difference {diff.mean():+.3f} ± {half_width(diff):.3f}" in paired[name_kd][1]


def test_new_plates_split_trains_and_scores_on_disjoint_plates():
    from semiclip._experiments import N_TRAIN_PLATES, prepare_heldout, prepare_new_plates
    from semiclip.datasets import make_weakly_paired

    data = make_weakly_paired(n_perturbations=40, n_genes=30, n_batches=12,
                              controls_per_batch=6, samples_per_perturbation=3, random_state=0)
    (tr, te, Xtr, Xte), norm = prepare_new_plates(data, seed=0)
    plates = np.unique(data.batch)
    assert set(data.batch[tr]) <= set(plates[:N_TRAIN_PLATES])
    assert set(data.batch[te]) <= set(plates[N_TRAIN_PLATES:])
    same_tr, same_te, _, _ = prepare_heldout(data, seed=0)  # the same keys are held out
    assert set(data.y[te]) <= set(data.y[same_te])
    assert not set(data.y[tr]) - {"control"} & set(data.y[te]) - {"control"}
    # the test correction is fitted on the new plates only: it does not know a training plate
    with pytest.raises(ValueError, match="batch"):
        norm.transform(data.X[tr][:5], batch=data.batch[tr][:5])
    assert Xtr.shape[0] == tr.sum() and Xte.shape[0] == te.sum()


def test_new_plates_rows_run_and_are_ordered():
    from semiclip._experiments import benchmark_methods, run_experiment

    methods = benchmark_methods(max_iter=2, rows=["newplates", "newplates_pea"])
    res = run_experiment(methods, seeds=(0,), data_params=dict(
        n_perturbations=40, n_genes=30, controls_per_batch=6, samples_per_perturbation=3,
        image_dim=8, latent_dim=4, nuisance_dim=4, program_size=10))
    assert list(res) == ["new plates: Semi-Clipped", "new plates: Semi-Clipped + PEA"]
    assert all(np.isfinite(r[0]["recall"]) for r in res.values())
