"""Which rows of ``semiclip benchmark`` order as the paper says, and under which settings.

Runs several data-generator / hyper-parameter settings of the benchmark,
every (setting, seed) in its own process, and prints one Markdown table per
setting (mean ± 95 % t-interval over seeds, held-out known-relationship
recall, retrieval mAP and interpretability), plus the paper's orderings.

Settings:

- ``default``: the benchmark's rows at demo size (600 perturbations);
- ``quick``: what ``semiclip benchmark --quick`` runs (300 perturbations,
  <= 60 epochs), with more seeds;
- ``mlp_ablation``: frozen encoder + the paper's (1024, 1024) adapter vs the
  same with ``train_encoder=True``, default and paper recipes;
- ``strong_batch``: plate effects x3 and 16 controls per plate, where batch
  correction matters (PEA vs no PEA);
- ``more_keys``: 1,500 perturbations (1,000 training keys);
- ``pea_variants``: PEA restricted to control subsampling (one transform,
  no dropped steps) vs the default family;
- ``new_plates`` / ``new_plates_strong``: a harder protocol for PEA. Train
  on the training keys of plates 0-7, evaluate the held-out keys on plates
  8-11, which the model never saw: their batch correction is fitted on
  their own controls (as for a new experiment), so the student meets a
  correction it was not trained on.

Usage::

    python benchmarks/bench_ordering.py [--settings default,quick] [--seeds 5]
        [--workers 8] [--out results.jsonl]

Each finished (setting, seed) is appended to ``--out`` as one JSON line, so
a run cut short keeps what it finished; ``--tables results.jsonl`` prints
the tables of such a file without running anything.
"""

import argparse
import json
import os
import time
import warnings


def _pea(**params):
    from semiclip import PEAAugmenter

    return lambda seed: {"augmenter": PEAAugmenter(random_state=seed, **params)}


def _settings():
    from semiclip._experiments import ROWS

    all_rows = [r for r, _ in ROWS] + ["paper"]
    mlp = {"hidden_layer_sizes": (1024, 1024)}
    return {
        "default": {"data": {"n_perturbations": 600}, "rows": all_rows},
        "quick": {"data": {"n_perturbations": 300}, "rows": [r for r, _ in ROWS],
                  "max_iter": 60},
        # candidate --quick settings: as many keys as the demo, fewer samples
        # per key, fewer genes and epochs
        "quick_600x3_300g": {"data": {"n_perturbations": 600, "samples_per_perturbation": 3,
                                      "n_genes": 300}, "rows": [r for r, _ in ROWS],
                             "max_iter": 30},
        "quick_600x3_500g": {"data": {"n_perturbations": 600, "samples_per_perturbation": 3,
                                      "n_genes": 500}, "rows": [r for r, _ in ROWS],
                             "max_iter": 40},
        "quick_600x3_400g_30": {"data": {"n_perturbations": 600, "samples_per_perturbation": 3,
                                         "n_genes": 400}, "rows": [r for r, _ in ROWS],
                                "max_iter": 30},
        "quick_600x3_500g_30": {"data": {"n_perturbations": 600, "samples_per_perturbation": 3,
                                         "n_genes": 500}, "rows": [r for r, _ in ROWS],
                                "max_iter": 30},
        "quick_600x3_400g_40": {"data": {"n_perturbations": 600, "samples_per_perturbation": 3,
                                         "n_genes": 400}, "rows": [r for r, _ in ROWS],
                                "max_iter": 40},
        "quick_360x5_300g": {"data": {"n_perturbations": 360, "n_genes": 300},
                             "rows": [r for r, _ in ROWS], "max_iter": 30},
        "mlp_ablation": {
            "data": {"n_perturbations": 600},
            "rows": ["raw", "semiclipped"],
            "custom": {
                "MLP adapter, frozen encoder": mlp,
                "MLP adapter, encoder fine-tuned": {**mlp, "train_encoder": True},
                "paper recipe, frozen encoder": {"recipe": "paper"},
                "paper recipe, encoder fine-tuned": {"recipe": "paper", "train_encoder": True},
            },
        },
        "strong_batch": {
            "data": {"n_perturbations": 600, "batch_strength": 3.0, "controls_per_batch": 16},
            "rows": ["raw", "semiclipped", "pea", "ridge"],
        },
        "more_keys": {"data": {"n_perturbations": 1500},
                      "rows": ["raw", "kd", "clip", "siglip", "semiclipped", "ridge"]},
        "pea_variants": {
            "data": {"n_perturbations": 600},
            "rows": ["semiclipped", "pea"],
            "custom": {
                "PEA, TVN only + control subsampling": _pea(transforms=("tvn",),
                                                           drop_step_prob=0.0),
                "PEA, control subsampling 0.2-0.5": _pea(transforms=("tvn",), drop_step_prob=0.0,
                                                         control_fraction=(0.2, 0.5)),
            },
        },
        "new_plates": {
            "data": {"n_perturbations": 600}, "protocol": "new_plates",
            "rows": ["raw", "semiclipped", "pea"],
            "custom": {"PEA, TVN only + control subsampling": _pea(transforms=("tvn",),
                                                                  drop_step_prob=0.0)},
        },
        "new_plates_strong": {
            "data": {"n_perturbations": 600, "batch_strength": 3.0, "controls_per_batch": 16},
            "protocol": "new_plates",
            "rows": ["raw", "semiclipped", "pea"],
            "custom": {"PEA, TVN only + control subsampling": _pea(transforms=("tvn",),
                                                                  drop_step_prob=0.0)},
        },
    }


def _heldout_new_plates(method, data, *, seed=0, test_size=1 / 3, n_train_plates=8):
    """Train on training keys of the first plates; score held-out keys on the others.

    The held-out plates are corrected by a TVN fitted on their own controls;
    models trained with PEA get that correction as their ``correction_``.
    """
    import copy

    import numpy as np

    from semiclip import ControlNormalizer
    from semiclip._experiments import EVAL_NORMALIZE, score_embedding
    from semiclip.datasets import split_by_key

    ctl = data.control_label
    tr_key, te_key = split_by_key(data.y, test_size=test_size, control_label=ctl,
                                  random_state=seed)
    plates = np.unique(data.batch)
    train_plates = np.isin(data.batch, plates[:n_train_plates])
    tr, te = tr_key & train_plates, te_key & ~train_plates
    X, y, b = data.X, data.y, data.batch

    def tvn():
        return ControlNormalizer("tvn", control_label=ctl, basis="feature")

    Xtr = tvn().fit_transform(X[tr], y[tr], batch=b[tr])
    test_norm = tvn().fit(X[te], y[te], batch=b[te])
    Xte = test_norm.transform(X[te], batch=b[te])
    start = time.perf_counter()
    if isinstance(method, str):
        Z = Xte
    else:
        est = method(seed)
        if getattr(est, "augmenter", None) is not None:
            est.fit(X[tr], y[tr], image_bank=data.image_bank, batch=b[tr])
            est = copy.copy(est)
            est.correction_ = test_norm
            Z = est.transform(X[te], batch=b[te])
        else:
            est.fit(Xtr, y[tr], image_bank=data.image_bank)
            Z = est.transform(Xte)
    scores = score_embedding(np.asarray(Z), Xte, y[te], b[te], data.relationships, ctl,
                             EVAL_NORMALIZE)
    scores["fit_seconds"] = time.perf_counter() - start
    return scores


def _job(setting, seed, threads, smoke=False):
    import torch

    torch.set_num_threads(threads)
    from semiclip import SemiClippedTransformer
    from semiclip._experiments import benchmark_methods, run_experiment

    spec = _settings()[setting]
    max_iter = spec.get("max_iter", "auto")
    if smoke:  # tiny sizes, to check the script itself
        spec = {**spec, "data": {**spec["data"], "n_perturbations": 60}}
        max_iter = 2
    methods = benchmark_methods(max_iter=max_iter, rows=spec["rows"])
    for label, params in spec.get("custom", {}).items():
        methods[label] = (lambda p: lambda s: SemiClippedTransformer(
            control_label="control", max_iter=max_iter, random_state=s,
            **(p(s) if callable(p) else p)))(params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.get("protocol") == "new_plates":
            from semiclip.datasets import make_weakly_paired

            data = make_weakly_paired(random_state=seed, **spec["data"])
            results = {name: [_heldout_new_plates(m, data, seed=seed)]
                       for name, m in methods.items()}
        else:
            results = run_experiment(methods, seeds=(seed,), data_params=spec["data"])
    return {"setting": setting, "seed": seed, "notes": [],
            "seconds": time.perf_counter() - start,
            "results": {k: v[0] for k, v in results.items()}}


def print_tables(lines):
    from semiclip._experiments import BASELINE, expected_order, markdown_table, summarize

    by_setting = {}
    for rec in lines:
        by_setting.setdefault(rec["setting"], []).append(rec)
    for setting, recs in by_setting.items():
        results = {}
        for rec in sorted(recs, key=lambda r: r["seed"]):
            for label, scores in rec["results"].items():
                results.setdefault(label, []).append(scores)
        table = summarize(results)
        seeds = sorted(r["seed"] for r in recs)
        print(f"\n## {setting}: {_settings()[setting]['data']}, seeds {seeds}, "
              f"{max(r['seconds'] for r in recs):.0f} s per seed (max)\n")
        print(markdown_table(table, baseline=BASELINE if BASELINE in table else None))
        for claim, ok, detail in expected_order(table):
            print(f"  [{'ok' if ok else 'NOT REPRODUCED'}] {claim}: {detail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="default,quick,mlp_ablation,strong_batch,more_keys,"
                        "pea_variants,new_plates,new_plates_strong")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--out", default="bench_ordering.jsonl")
    parser.add_argument("--tables", help="only print the tables of this JSON-lines file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (checks the script)")
    args = parser.parse_args(argv)
    if args.tables:
        with open(args.tables) as fh:
            print_tables([json.loads(line) for line in fh if line.strip()])
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    jobs = [(s, seed) for seed in range(args.seeds) for s in args.settings.split(",")]
    done = []
    ctx = mp.get_context("spawn")  # CUDA-safe
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool, \
            open(args.out, "a") as fh:
        futures = {pool.submit(_job, s, seed, args.threads, args.smoke): (s, seed)
                   for s, seed in jobs}
        for fut in as_completed(futures):
            try:
                rec = fut.result()
            except Exception as exc:  # report and go on with the other jobs
                print(f"{futures[fut]} failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            done.append(rec)
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(f"done {rec['setting']} seed {rec['seed']} ({rec['seconds']:.0f} s)", flush=True)
    print_tables(done)


if __name__ == "__main__":
    main()
