"""``semiclip evaluate``: EFAAR recall per relationship source and replicate mAP of a table.

Compound screens without relationship databases get mAP only (``--relationships none``,
or automatically when no key is a gene of the shipped databases).

Reads an embedding table (e.g. written by ``semiclip transform``),
batch-corrects it on its controls (center-scale per plate by default; see the
user guide on when TVN hurts learned embeddings) and prints a Markdown table.
"""

import warnings

import numpy as np

from ._files import atomic_write, check_outputs
from ._options import NORMALIZE_CHOICES, add_column_options, control_spec

__all__ = ["add_parser", "run"]


def _embedding_features(table):
    """Embedding columns written by ``transform`` (``semiclippedtransformer0``...), if any."""
    import re

    if hasattr(table, "obs"):
        return None
    pattern = re.compile(r"^(semiclippedtransformer|ridgedistiller)\d+$")
    found = [c for c in table.columns if pattern.match(str(c))]
    return found or None


def run(args):
    """The body of ``semiclip evaluate``: recall per source and mAP of an embedding table."""
    from .._correction import ControlNormalizer
    from ..metrics import mean_average_precision
    from ._tables import check_columns, load_samples, read_input, write_table

    sources, auto = _sources(args.relationships)
    if sources and len(args.key_col) != 1:
        raise ValueError(
            f"--key-col names {len(args.key_col)} columns, but recall needs one, the perturbed "
            "gene; for a compound screen (e.g. compound and dose) pass --relationships none "
            "to score replicate mAP only."
        )
    # checked before any work (against every input and each other); written whole at the end
    check_outputs([("--out", args.out or None), ("--plot", args.plot or None)],
                  inputs=(("--emb", args.emb),
                          *(("--relationships", r) for r in args.relationships or ())),
                  overwrite=args.overwrite)
    table = read_input(args.emb, "--emb")
    check_columns(table, args.key_col + [args.batch_col, args.control_col], "--emb", args.emb,
                  "key/batch/control")
    control, control_label = control_spec(args, table)
    if args.features_prefix:
        if hasattr(table, "obs"):
            raise ValueError("--features-prefix applies to tables; use --obsm for .h5ad.")
        features = [c for c in table.columns if str(c).startswith(args.features_prefix)]
        if not features:
            raise ValueError(f"--emb ({args.emb}): no column starts with "
                             f"{args.features_prefix!r}.")
    else:
        features = _embedding_features(table)
    obsm = args.obsm
    if (hasattr(table, "obsm") and obsm is None and args.layer is None
            and "X_semiclip" in table.obsm):  # written by semiclip transform
        obsm = "X_semiclip"
    data = load_samples(table, args.emb, "--emb", key=args.key_col, batch=args.batch_col,
                        control=control, control_label=control_label, layer=args.layer,
                        obsm=obsm, features=features, exclude=args.exclude_cols)
    Z, genes, batch = data.X.astype(np.float64), data.y, data.batch
    if args.normalize_symbols:
        from ..datasets import normalize_gene_symbols

        genes = np.where(data.is_control, genes,
                         normalize_gene_symbols(genes.astype(str).astype(object),
                                                strip_variant=args.strip_variant))
    method = args.normalize
    has_controls = bool(data.is_control.any())
    if method == "auto":
        method = "center_scale" if has_controls else "none"
    if method != "none":
        if not has_controls:
            raise ValueError(f"--normalize {method} needs control samples: pass "
                             "--control-label or --control-col, or --normalize none.")
        label = -1
        y = np.unique(genes.astype(str), return_inverse=True)[1].astype(np.int64)
        y[data.is_control] = label
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*zero variance in the controls")
            Z = ControlNormalizer(method, control_label=label, basis="feature").fit_transform(
                Z, y, batch=batch)
    seed = {"random_state": args.random_state}  # the bootstrap intervals, reproducible
    recall, note = _recall(Z, genes, sources, auto, data, args.data_dir, seed)
    trt = ~data.is_control
    mp = mean_average_precision(Z[trt], genes[trt],
                                groups=None if batch is None else batch[trt], **seed)
    rows = [_row("recall", name, r.recall, r.n_pairs, r) for name, r in recall.items()]
    rows.append(_row("mAP", "replicates" + (" (other plate)" if batch is not None else ""),
                     mp.map, int(np.sum(trt)), mp))
    lines = ["| metric | source | value | 95 % interval | n | chance |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        chance = "" if np.isnan(r["chance"]) else f"{r['chance']:.3f}"
        interval = ("" if np.isnan(r["ci_low"]) else
                    f"{r['ci_low']:.4f} to {r['ci_high']:.4f}")
        lines.append(f"| {r['metric']} | {r['source']} | {r['value']:.4f} | {interval} | "
                     f"{r['n']} | {chance} |")
    n_keys = np.unique(genes[trt].astype(str)).size
    if recall:
        first = next(iter(recall.values()))
        print(f"{first.n_genes} genes; batch correction: {method}; recall thresholds "
              f"{first.thresholds} (n = annotated pairs evaluated; mAP: n = queries)")
    else:
        print(f"{n_keys} keys; batch correction: {method}; mAP only{note} (n = queries; "
              "chance = the mAP of a random embedding)")
    print("\n".join(lines), flush=True)
    if args.out:
        import pandas as pd

        if str(args.out).lower().endswith(".md"):
            with atomic_write(args.out) as tmp:
                tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            write_table(pd.DataFrame(rows), args.out, "--out")
        print(f"Results saved to {args.out}")
    if args.plot and recall:
        first = next(iter(recall.values()))
        from ..plotting import plot_recall_bars

        with atomic_write(args.plot) as tmp:
            plot_recall_bars({name: r.recall for name, r in recall.items()},
                             chance=first.chance, path=tmp)
        print(f"Figure saved to {args.plot}")
    elif args.plot:
        print("No figure: --plot draws recall per database, and none was scored.")
    return 0


_DEFAULT_SOURCES = ("HuMAP", "Reactome", "StringDB")


def _sources(given):
    """``(sources, auto)``: the databases asked for; ``auto`` when none was named."""
    if given is None:
        return list(_DEFAULT_SOURCES), True
    if [str(g).lower() for g in given] == ["none"]:
        return [], False
    if any(str(g).lower() == "none" for g in given):
        raise ValueError("--relationships none means mAP only; do not combine it with "
                         f"sources ({' '.join(given)}).")
    return list(given), False


def _recall(Z, genes, sources, auto, data, data_dir, seed):
    """Recall per source; with the default sources, none when no key is a gene of theirs."""
    from ..metrics import known_relationship_recall

    if not sources:
        return {}, " (--relationships none)"
    try:
        return known_relationship_recall(Z, genes, relationships=list(sources),
                                         is_control=data.is_control, normalize=None,
                                         data_dir=data_dir, **seed), ""
    except ValueError as exc:
        if auto and "No gene of the embedding is in relationships" in str(exc):
            return {}, (": no key is a gene of the shipped HuMAP, Reactome or StringDB (a "
                        "compound screen?); name --relationships to score recall")
        raise


def _row(metric, source, value, n, result):
    """One result row; intervals where the metrics provide them (NaN otherwise)."""
    return {"metric": metric, "source": source, "value": value, "n": n,
            "chance": float(getattr(result, "chance", float("nan"))),
            "ci_low": float(getattr(result, "ci_low", float("nan"))),
            "ci_high": float(getattr(result, "ci_high", float("nan")))}


def add_parser(subparsers):
    """Register ``semiclip evaluate``."""
    ev = subparsers.add_parser(
        "evaluate", help="known-relationship recall per database and retrieval mAP",
        description="Score an embedding table (e.g. from `semiclip transform`) with the EFAAR "
                    "known-relationship recall and replicate-retrieval mAP.")
    ev.add_argument("--emb", required=True, metavar="PATH")
    add_column_options(ev, batch_help="batch (plate) column: per-plate correction, and mAP "
                                       "positives from another plate")
    ev.add_argument("--relationships", nargs="+", default=None, metavar="SOURCE",
                    help="CORUM, HuMAP, Reactome, SIGNOR, StringDB or CSV paths, or 'none' "
                         "for mAP only (default: the shipped HuMAP Reactome StringDB; mAP "
                         "only when no key is a gene of theirs, e.g. compounds)")
    ev.add_argument("--data-dir", help="directory holding CORUM.txt/SIGNOR.txt")
    ev.add_argument("--normalize", choices=NORMALIZE_CHOICES, default="auto",
                    help="batch correction on controls before scoring "
                         "(auto: center_scale with controls; see the docs on TVN)")
    ev.add_argument("--features-prefix", help="embedding columns start with this prefix")
    ev.add_argument("--normalize-symbols", action="store_true",
                    help="normalise gene symbols before looking them up")
    ev.add_argument("--strip-variant", action="store_true",
                    help="with --normalize-symbols: BRAF_V600E -> BRAF")
    ev.add_argument("--random-state", type=int, default=0,
                    help="seed of the bootstrap intervals (default 0)")
    ev.add_argument("--out", metavar="PATH", help="save the results (.md, .csv, .parquet)")
    ev.add_argument("--plot", metavar="PNG", help="recall bars per database")
    ev.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out or --plot file")
    ev.set_defaults(func=run)
    return ev
