"""``semiclip evaluate``: EFAAR recall per relationship source and replicate mAP of a table.

Reads an embedding table (e.g. written by ``semiclip transform``),
batch-corrects it on its controls (center-scale per plate by default; see the
user guide on when TVN hurts learned embeddings) and prints a Markdown table.
"""

import warnings

import numpy as np

from ._files import atomic_write, check_output
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
    from ..correction import ControlNormalizer
    from ..metrics import known_relationship_recall, mean_average_precision
    from ._tables import check_columns, load_samples, read_input, write_table

    if len(args.key_col) != 1:
        raise ValueError("evaluate: --key-col takes one column, the perturbed gene.")
    for flag in ("out", "plot"):  # checked before any work; written whole at the end
        if getattr(args, flag):
            check_output(getattr(args, flag), f"--{flag}", inputs=(("--emb", args.emb),))
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
    data = load_samples(table, args.emb, "--emb", key=args.key_col, batch=args.batch_col,
                        control=control, control_label=control_label, layer=args.layer,
                        obsm=args.obsm, features=features, exclude=args.exclude_cols)
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
    sources = args.relationships
    recall = known_relationship_recall(Z, genes, relationships=list(sources),
                                       is_control=data.is_control, normalize=None,
                                       data_dir=args.data_dir)
    trt = ~data.is_control
    mp = mean_average_precision(Z[trt], genes[trt],
                                groups=None if batch is None else batch[trt])
    rows = [{"metric": "recall", "source": name, "value": r.recall, "n": r.n_pairs,
             "chance": r.chance} for name, r in recall.items()]
    rows.append({"metric": "mAP", "source": "replicates" + (" (other plate)" if batch is not None
                                                             else ""),
                 "value": mp.map, "n": int(np.sum(trt)), "chance": np.nan})
    lines = ["| metric | source | value | n | chance |", "|---|---|---|---|---|"]
    for r in rows:
        chance = "" if np.isnan(r["chance"]) else f"{r['chance']:.3f}"
        lines.append(f"| {r['metric']} | {r['source']} | {r['value']:.4f} | {r['n']} | {chance} |")
    first = next(iter(recall.values()))
    print(f"{first.n_genes} genes; batch correction: {method}; recall thresholds "
          f"{first.thresholds} (n = annotated pairs evaluated; mAP: n = queries)")
    print("\n".join(lines), flush=True)
    if args.out:
        import pandas as pd

        if str(args.out).lower().endswith(".md"):
            with atomic_write(args.out) as tmp:
                tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            write_table(pd.DataFrame(rows), args.out, "--out")
        print(f"Results saved to {args.out}")
    if args.plot:
        from ..plotting import plot_recall_bars

        with atomic_write(args.plot) as tmp:
            plot_recall_bars({name: r.recall for name, r in recall.items()},
                             chance=first.chance, path=tmp)
        print(f"Figure saved to {args.plot}")
    return 0


def add_parser(subparsers):
    """Register ``semiclip evaluate``."""
    ev = subparsers.add_parser(
        "evaluate", help="known-relationship recall per database and retrieval mAP",
        description="Score an embedding table (e.g. from `semiclip transform`) with the EFAAR "
                    "known-relationship recall and replicate-retrieval mAP.")
    ev.add_argument("--emb", required=True, metavar="PATH")
    add_column_options(ev, batch_help="batch (plate) column: per-plate correction, and mAP "
                                       "positives from another plate")
    ev.add_argument("--relationships", nargs="+", default=["HuMAP", "Reactome", "StringDB"],
                    metavar="SOURCE",
                    help="CORUM, HuMAP, Reactome, SIGNOR, StringDB or CSV paths "
                         "(default: the shipped HuMAP Reactome StringDB)")
    ev.add_argument("--data-dir", help="directory holding CORUM.txt/SIGNOR.txt")
    ev.add_argument("--normalize", choices=NORMALIZE_CHOICES, default="auto",
                    help="batch correction on controls before scoring "
                         "(auto: center_scale with controls; see the docs on TVN)")
    ev.add_argument("--features-prefix", help="embedding columns start with this prefix")
    ev.add_argument("--normalize-symbols", action="store_true",
                    help="normalise gene symbols before looking them up")
    ev.add_argument("--strip-variant", action="store_true",
                    help="with --normalize-symbols: BRAF_V600E -> BRAF")
    ev.add_argument("--out", metavar="PATH", help="save the results (.md, .csv, .parquet)")
    ev.add_argument("--plot", metavar="PNG", help="recall bars per database")
    ev.set_defaults(func=run)
    return ev
