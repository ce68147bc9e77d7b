"""``semiclip evaluate`` on shipped data: ceiling, paired comparison, one plate, intervals."""

import re
import warnings

import numpy as np
import pytest

from semiclip.cli import main

pd = pytest.importorskip("pandas")

COLS = ["--key-col", "Metadata_gene", "--batch-col", "Metadata_Plate", "--control-col",
        "Metadata_pert_type", "--control-values", "ctl_vector", "ctl_untrt"]


@pytest.fixture(scope="module")
def ta_orf(tmp_path_factory):
    """The shipped TA-ORF plates (first 100 genes) as CSV, and a noisier copy."""
    from semiclip.datasets import load_ta_orf_l1000

    d = tmp_path_factory.mktemp("ta_eval")
    frame = load_ta_orf_l1000(as_frame=True).frame
    meta = [c for c in frame.columns if str(c).startswith("Metadata_")]
    genes = [c for c in frame.columns if c not in meta][:100]
    frame = frame[meta + genes]
    frame.to_csv(d / "a.csv", index=False)
    noisy = frame.copy()
    noisy[genes] = noisy[genes] + np.random.default_rng(0).normal(
        scale=2 * frame[genes].to_numpy().std(), size=noisy[genes].shape)
    noisy.to_csv(d / "b.csv", index=False)
    return d, frame, genes


def _cells(out, metric, nth=0):
    rows = [line for line in out.splitlines() if line.startswith(f"| {metric} |")]
    return [c.strip() for c in rows[nth].split("|")[1:-1]]


def test_ceiling_beside_every_score(ta_orf, capsys):
    from semiclip import ControlNormalizer
    from semiclip.metrics import split_half_ceiling

    d, frame, genes = ta_orf
    assert main(["evaluate", "--emb", str(d / "a.csv"), *COLS, "--relationships", "HuMAP",
                 "--ceiling"]) == 0
    out = capsys.readouterr().out
    assert "ceiling = split-half reproducibility" in out
    for metric in ("recall", "mAP"):
        cells = _cells(out, metric)
        value, chance = float(cells[2]), float(cells[5])
        ceiling = float(cells[6].split()[0])
        # position by hand from the printed (rounded) numbers
        assert float(cells[7]) == pytest.approx((value - chance) / (ceiling - chance), abs=0.02)
    # the printed mAP ceiling is the public function's on the same corrected profiles
    ctl = frame["Metadata_pert_type"].isin(["ctl_vector", "ctl_untrt"]).to_numpy()
    y = np.where(ctl, "ctl", frame["Metadata_gene"].astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z = ControlNormalizer("center_scale", control_label="ctl", basis="feature").fit_transform(
            frame[genes].to_numpy(np.float64), y, batch=frame["Metadata_Plate"].to_numpy())
    ref = split_half_ceiling(Z[~ctl], y[~ctl], random_state=0)
    assert _cells(out, "mAP")[6].startswith(f"{ref.ceiling:.4f} ({ref.ci_low:.4f} to")


def test_paired_comparison_of_two_embeddings(ta_orf, tmp_path, capsys):
    d, _, _ = ta_orf
    args = ["evaluate", *COLS, "--relationships", "HuMAP"]
    assert main([*args, "--emb", str(d / "a.csv"), "--emb", str(d / "b.csv"),
                 "--out", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert "Paired difference A - B" in out
    diff = _cells(out, "mAP A - B")
    a, b = float(diff[4]), float(diff[5])
    assert float(diff[2]) == pytest.approx(a - b, abs=2e-4)
    low, high = map(float, re.findall(r"-?\d\.\d+", diff[3]))
    assert low < float(diff[2]) < high and low > 0  # noise added to B: A is better
    assert a == pytest.approx(float(_cells(out, "mAP", 0)[2]), abs=1e-4)  # same labels
    table = pd.read_csv(tmp_path / "r.csv")
    assert set(table["metric"]) >= {"recall A - B", "mAP A - B"}
    # --baseline is a second --emb
    assert main([*args, "--emb", str(d / "a.csv"), "--baseline", str(d / "b.csv")]) == 0
    assert _cells(capsys.readouterr().out, "mAP A - B") == diff
    assert main([*args, "--emb", str(d / "a.csv"), "--emb", str(d / "b.csv"),
                 "--baseline", str(d / "a.csv")]) == 2
    assert "evaluate compares two embeddings at most; got 3" in capsys.readouterr().err


def test_one_plate_scores_replicates_within_it(ta_orf, tmp_path, capsys):
    d, frame, _ = ta_orf
    plate = frame["Metadata_Plate"].iloc[0]
    frame[frame["Metadata_Plate"] == plate].to_csv(tmp_path / "one.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # never a raw UserWarning
        assert main(["evaluate", "--emb", str(tmp_path / "one.csv"), *COLS,
                     "--relationships", "none"]) == 0
    out = capsys.readouterr().out
    assert f"one plate ({plate}) in --batch-col Metadata_Plate: mAP scores replicates within" \
        in out
    cells = _cells(out, "mAP")
    assert cells[1] == "replicates (same plate)" and cells[2] != "nan"
    assert 0 < float(cells[2]) <= 1


def test_recall_bars_draw_the_printed_interval():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    from semiclip.metrics import known_relationship_recall
    from semiclip.plotting import plot_recall_bars

    rng = np.random.default_rng(0)
    genes = np.repeat([f"g{i}" for i in range(20)], 2)
    pairs = [[f"g{i}", f"g{i + 1}"] for i in range(19)]
    res = known_relationship_recall(rng.normal(size=(40, 4)), genes, relationships=pairs,
                                    normalize=None, random_state=0)
    ax = plot_recall_bars({"db": res})
    (bars,) = [c for c in ax.containers if hasattr(c, "errorbar")]
    (segment,) = bars.errorbar.lines[2][0].get_segments()
    assert segment[:, 1] == pytest.approx([res.ci_low, res.ci_high])
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_images_add_rsa_and_mrr_and_their_paired_differences(ta_orf, tmp_path, capsys):
    """--images (the teacher's table) adds RSA (any width) and cross-modal MRR (an embedding
    in the teacher's space), each the public metric's on the same rows, and their paired
    differences; an embedding of another width gets RSA and a note instead of MRR."""
    from semiclip.metrics import (
        cross_modal_retrieval,
        paired_difference,
        representational_similarity,
    )

    d, frame, genes = ta_orf
    rng = np.random.default_rng(1)
    meta = ["Metadata_gene", "Metadata_Plate", "Metadata_pert_type"]
    ctl = frame["Metadata_pert_type"].isin(["ctl_vector", "ctl_untrt"]).to_numpy()
    profiles = frame[genes].to_numpy()
    W = rng.normal(size=(len(genes), 8))
    names = frame["Metadata_gene"].astype(str).to_numpy()
    keys = np.unique(names[~ctl])[:30]  # a teacher of 30 genes: only they are cross-scored
    means = np.array([profiles[names == k].mean(axis=0) for k in keys])
    teacher = pd.DataFrame(means @ W + rng.normal(scale=20.0, size=(keys.size, 8)),
                           columns=[f"t{i}" for i in range(8)])
    teacher.insert(0, "Metadata_gene", keys)
    teacher.to_csv(tmp_path / "img.csv", index=False)
    emb = frame[meta].copy()
    A = profiles @ W
    for i in range(8):
        emb[f"e{i}"] = A[:, i]
    emb.to_csv(tmp_path / "emb.csv", index=False)
    assert main(["evaluate", "--emb", str(tmp_path / "emb.csv"), "--baseline",
                 str(d / "a.csv"), "--images", str(tmp_path / "img.csv"), *COLS,
                 "--relationships", "none", "--normalize", "none"]) == 0
    out = capsys.readouterr().out
    assert "no cross-modal MRR" in out and "needs an embedding in the teacher's space" in out
    trt = ~ctl
    T, tk = teacher[[f"t{i}" for i in range(8)]].to_numpy(), keys
    ra = representational_similarity(A[trt], names[trt], T, tk, random_state=0)
    rb = representational_similarity(profiles[trt], names[trt], T, tk, random_state=0)
    cm = cross_modal_retrieval(A[trt], names[trt], T, tk, top_k=(1,), random_state=0)
    rsa_a, rsa_b = _cells(out, "RSA", 0), _cells(out, "RSA", 1)
    assert float(rsa_a[2]) == pytest.approx(ra.correlation, abs=1e-4)
    assert rsa_a[3] == f"{ra.ci_low:.4f} to {ra.ci_high:.4f}"
    assert float(rsa_b[2]) == pytest.approx(rb.correlation, abs=1e-4)
    mrr = _cells(out, "MRR")
    assert float(mrr[2]) == pytest.approx(cm.mrr, abs=1e-4)
    assert float(mrr[5]) == pytest.approx(cm.mrr_chance, abs=1e-3)
    assert len([line for line in out.splitlines() if line.startswith("| MRR |")]) == 1
    diff = paired_difference(ra, rb, random_state=0)
    paired = _cells(out, "RSA A - B")
    assert float(paired[2]) == pytest.approx(diff.difference, abs=1e-4)
    assert paired[3] == f"{diff.ci_low:.4f} to {diff.ci_high:.4f}"
    assert float(rsa_a[2]) > float(rsa_b[2])  # the teacher is a map of these profiles
