"""``semiclip evaluate``: EFAAR recall per relationship source and replicate mAP of a table.

Compound screens without relationship databases get mAP only (``--relationships none``,
or automatically when no key is a gene of the shipped databases).

Reads an embedding table (e.g. written by ``semiclip transform``),
batch-corrects it on its controls (center-scale per plate by default; see the
user guide on when TVN hurts learned embeddings) and prints a Markdown table.
``--ceiling`` adds each score's split-half ceiling (the reproducibility of the
profiles themselves) and where the score sits between chance and ceiling;
two tables (``--emb A --emb B`` or ``--baseline``) add the paired difference
A - B with its bootstrap interval over perturbations. ``--images`` (the
teacher table, read as ``semiclip fit`` reads it) adds the cross-modal scores:
RSA with the teacher (any width) and cross-modal MRR (an embedding in the
teacher's space). With one plate in ``--batch-col``, mAP scores replicates
within it (and says so).
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
    """The body of ``semiclip evaluate``: recall per source and mAP of one or two embedding tables.

    Two tables (``--emb A --emb B`` or ``--baseline B``) add the paired per-key
    difference A - B of every score, with its bootstrap interval.
    """
    from ._tables import write_table

    sources, auto = _sources(args.relationships)
    if sources and len(args.key_col) != 1:
        raise ValueError(
            f"--key-col names {len(args.key_col)} columns, but recall needs one, the perturbed "
            "gene; for a compound screen (e.g. compound and dose) pass --relationships none "
            "to score replicate mAP only."
        )
    embs = list(args.emb) + ([args.baseline] if args.baseline else [])
    if len(embs) > 2:
        raise ValueError(f"evaluate compares two embeddings at most; got {len(embs)} "
                         f"(--emb {' --emb '.join(map(str, args.emb))}"
                         f"{' --baseline ' + str(args.baseline) if args.baseline else ''}).")
    # checked before any work (against every input and each other); written whole at the end
    check_outputs([("--out", args.out or None), ("--plot", args.plot or None)],
                  inputs=(*(("--emb", e) for e in embs),
                          *(("--relationships", r) for r in args.relationships or ()),
                          *((("--images", args.images),) if args.images else ())),
                  overwrite=args.overwrite)
    bank = _teacher(args) if args.images else None
    scored = [_score(args, path, sources, auto, bank) for path in embs]
    names = ["A", "B"] if len(scored) == 2 else [None]
    all_rows, all_lines = [], []
    for name, path, sc in zip(names, embs, scored):
        lines = _table(sc["rows"], args.ceiling)
        if name is not None:
            print(f"{name} = {path}")
        print(sc["header"])
        print("\n".join(lines), flush=True)
        all_lines += ([f"{name} = {path}", ""] if name else []) + lines + [""]
        all_rows += [dict(r, embedding=str(path)) if name else r for r in sc["rows"]]
    if len(scored) == 2:
        diff_rows = _paired_rows(*scored, args.random_state)
        lines = ["| metric | source | A - B | 95 % interval (paired) | A | B | n shared |",
                 "|---|---|---|---|---|---|---|"]
        for r in diff_rows:
            lines.append(f"| {r['metric']} | {r['source']} | {r['value']:+.4f} | "
                         f"{_interval_text(r)} | {r['a']:.4f} | {r['b']:.4f} | {r['n']} |")
        print("Paired difference A - B on the perturbations both scored (bootstrap over "
              "perturbations, the same draws for A and B):")
        print("\n".join(lines), flush=True)
        all_lines += lines
        all_rows += diff_rows
    if args.out:
        import pandas as pd

        if str(args.out).lower().endswith(".md"):
            with atomic_write(args.out) as tmp:
                tmp.write_text("\n".join(all_lines).rstrip() + "\n", encoding="utf-8")
        else:
            write_table(pd.DataFrame(all_rows), args.out, "--out")
        print(f"Results saved to {args.out}")
    recalls = [sc["recall"] for sc in scored]
    if args.plot and recalls[0]:
        first = next(iter(recalls[0].values()))
        from ..plotting import plot_recall_bars

        bars = recalls[0] if len(recalls) == 1 else dict(zip(embs, recalls))
        with atomic_write(args.plot) as tmp:  # each bar with the interval the table prints
            plot_recall_bars(bars, chance=first.chance, path=tmp)
        print(f"Figure saved to {args.plot}")
    elif args.plot:
        print("No figure: --plot draws recall per database, and none was scored.")
    return 0


def _teacher(args):
    """The ``--images`` bank, its keys spelled as the scored genes are (``--normalize-symbols``,
    ``--strip-variant``)."""
    from .._core import ImageBank
    from ._fit import read_bank

    bank = read_bank(args, None, None)
    if not args.normalize_symbols:
        return bank
    keys = np.asarray(bank.keys, dtype=object)
    return ImageBank(bank.embeddings, _gene_symbols(keys, keys == args.control_label, args))


def _gene_symbols(keys, is_control, args):
    """``keys`` with the gene symbols normalised (``--strip-variant``), controls as they are."""
    from ..datasets import normalize_gene_symbols

    return np.where(is_control, keys, normalize_gene_symbols(
        keys.astype(str).astype(object), strip_variant=args.strip_variant))


def _cross_modal(Z, genes, bank, path, seed):
    """``(rows, results)`` of the cross-modal scores of one embedding against ``bank``."""
    from ..metrics import cross_modal_retrieval, representational_similarity

    rows, results = [], {}
    try:
        rsa = representational_similarity(Z, genes, bank, **seed)
    except ValueError as exc:
        print(f"--emb ({path}): no RSA with --images: {exc}")
        return rows, results
    results["RSA"] = rsa
    rows.append(_row("RSA", "teacher (--images)", rsa.correlation, rsa.n_keys, rsa))
    if Z.shape[1] != bank.n_dims:
        print(f"--emb ({path}): no cross-modal MRR: it ranks the teacher's rows by the "
              f"embedding's own coordinates, so it needs an embedding in the teacher's space "
              f"({bank.n_dims} dimensions); this one has {Z.shape[1]} (RSA compares "
              "similarities and needs none).")
        return rows, results
    cm = cross_modal_retrieval(Z, genes, bank, top_k=(1,), **seed)
    results["MRR"] = cm
    row = _row("MRR", "teacher (--images)", cm.mrr, cm.n_keys, cm)
    row["chance"] = float(cm.mrr_chance)
    rows.append(row)
    return rows, results


def _score(args, path, sources, auto, bank=None):
    """Read one embedding table, batch-correct it and score it: rows, results, header line."""
    from .._correction import ControlNormalizer
    from ..metrics import mean_average_precision
    from ._tables import check_columns, load_samples, read_input

    table = read_input(path, "--emb")
    check_columns(table, args.key_col + [args.batch_col, args.control_col], "--emb", path,
                  "key/batch/control")
    control, control_label = control_spec(args, table)
    if args.features_prefix:
        if hasattr(table, "obs"):
            raise ValueError("--features-prefix applies to tables; use --obsm for .h5ad.")
        features = [c for c in table.columns if str(c).startswith(args.features_prefix)]
        if not features:
            raise ValueError(f"--emb ({path}): no column starts with "
                             f"{args.features_prefix!r}.")
    else:
        features = _embedding_features(table)
    obsm = args.obsm
    if (hasattr(table, "obsm") and obsm is None and args.layer is None
            and "X_semiclip" in table.obsm):  # written by semiclip transform
        obsm = "X_semiclip"
    data = load_samples(table, path, "--emb", key=args.key_col, batch=args.batch_col,
                        control=control, control_label=control_label, layer=args.layer,
                        obsm=obsm, features=features, exclude=args.exclude_cols)
    Z, genes, batch = data.X.astype(np.float64), data.y, data.batch
    if args.normalize_symbols:
        genes = _gene_symbols(genes, data.is_control, args)
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
    plates = None if batch is None else np.unique(batch[trt].astype(str))
    one_plate = plates is not None and plates.size == 1
    if one_plate:  # positives from another plate need two plates: score within the plate
        print(f"--emb ({path}): one plate ({plates[0]}) in --batch-col {args.batch_col}: mAP "
              "scores replicates within it (positives from another plate need 2 or more "
              "plates).")
    mp = mean_average_precision(Z[trt], genes[trt],
                                groups=None if batch is None or one_plate else batch[trt],
                                **seed)
    ceilings = _ceilings(Z[trt], genes[trt], recall, args) if args.ceiling else {}
    rows = [_row("recall", name, r.recall, r.n_pairs, r, ceilings.get("recall"))
            for name, r in recall.items()]
    where = " (same plate)" if one_plate else " (other plate)" if batch is not None else ""
    rows.append(_row("mAP", "replicates" + where, mp.map, int(np.sum(trt)), mp,
                     ceilings.get("mAP")))
    cross = {}
    if bank is not None:
        more, cross = _cross_modal(Z[trt], genes[trt], bank, path, seed)
        rows += more
    n_keys = np.unique(genes[trt].astype(str)).size
    if recall:
        first = next(iter(recall.values()))
        header = (f"{first.n_genes} genes; batch correction: {method}; recall thresholds "
                  f"{first.thresholds} (n = annotated pairs evaluated; mAP: n = queries)")
    else:
        header = (f"{n_keys} keys; batch correction: {method}; mAP only{note} (n = queries; "
                  "chance = the mAP of a random embedding)")
    if args.ceiling:
        header += ("\nceiling = split-half reproducibility of these profiles (replicates of "
                   "each key in two random halves, one half scored against the other); "
                   "position = (value - chance) / (ceiling - chance)")
    if cross:
        header += ("\nRSA: Spearman correlation of the key means' pairwise cosine similarities "
                   "with the teacher's (n = shared keys); MRR: each key's teacher among all "
                   "shared keys' (n = keys; chance = a random ranking)")
    return {"rows": rows, "recall": recall, "map": mp, "header": header, "cross": cross}


def _ceilings(Z, genes, recall, args):
    """The split-half ceiling of each metric scored, or a note why it cannot be estimated."""
    from ..metrics import split_half_ceiling

    out = {}
    for metric in (["recall"] if recall else []) + ["mAP"]:
        first = next(iter(recall.values())) if recall else None
        try:
            out[metric] = split_half_ceiling(
                Z, genes, metric=metric, random_state=args.random_state,
                thresholds=first.thresholds if first is not None else (0.05, 0.95))
        except ValueError as exc:
            print(f"--ceiling: no {metric} ceiling: {exc}")
    return out


def _table(rows, with_ceiling):
    head = "| metric | source | value | 95 % interval | n | chance |"
    rule = "|---|---|---|---|---|---|"
    if with_ceiling:
        head += " ceiling (95 % interval) | position |"
        rule += "---|---|"
    lines = [head, rule]
    for r in rows:
        chance = "" if np.isnan(r["chance"]) else f"{r['chance']:.3f}"
        line = (f"| {r['metric']} | {r['source']} | {r['value']:.4f} | {_interval_text(r)} | "
                f"{r['n']} | {chance} |")
        if with_ceiling:
            if np.isnan(r["ceiling"]):
                line += " | |"
            else:
                pos = "" if np.isnan(r["position"]) else f"{r['position']:.2f}"
                line += (f" {r['ceiling']:.4f} ({r['ceiling_low']:.4f} to "
                         f"{r['ceiling_high']:.4f}) | {pos} |")
        lines.append(line)
    return lines


def _interval_text(r):
    return "" if np.isnan(r["ci_low"]) else f"{r['ci_low']:.4f} to {r['ci_high']:.4f}"


def _paired_rows(a, b, random_state):
    """Paired differences A - B of the recall per source, the mAP and the cross-modal scores."""
    from ..metrics import paired_difference

    pairs = [("recall", name, ra, b["recall"][name]) for name, ra in a["recall"].items()
             if name in b["recall"]]
    map_source = next(r["source"] for r in a["rows"] if r["metric"] == "mAP")
    pairs.append(("mAP", map_source, a["map"], b["map"]))
    pairs += [(metric, "teacher (--images)", result, b["cross"][metric])
              for metric, result in a["cross"].items() if metric in b["cross"]]
    rows = []
    for metric, source, ra, rb in pairs:
        try:
            d = paired_difference(ra, rb, random_state=random_state)
        except ValueError as exc:
            print(f"no paired difference of {metric} {source}: {exc}")
            continue
        rows.append({"metric": f"{metric} A - B", "source": source, "value": d.difference,
                     "n": d.n, "a": d.value_a, "b": d.value_b, "ci_low": d.ci_low,
                     "ci_high": d.ci_high, "chance": float("nan")})
    return rows


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


def _row(metric, source, value, n, result, ceiling=None):
    """One result row; intervals where the metrics provide them (NaN otherwise)."""
    nan = float("nan")
    row = {"metric": metric, "source": source, "value": value, "n": n,
           "chance": float(getattr(result, "chance", nan)),
           "ci_low": float(getattr(result, "ci_low", nan)),
           "ci_high": float(getattr(result, "ci_high", nan)),
           "ceiling": nan, "ceiling_low": nan, "ceiling_high": nan, "position": nan}
    if ceiling is not None:
        row.update(ceiling=ceiling.ceiling, ceiling_low=ceiling.ci_low,
                   ceiling_high=ceiling.ci_high,
                   position=ceiling.position(value, chance=row["chance"]))
    return row


def add_parser(subparsers):
    """Register ``semiclip evaluate``."""
    ev = subparsers.add_parser(
        "evaluate", help="known-relationship recall per database and retrieval mAP",
        description="Score an embedding table (e.g. from `semiclip transform`) with the EFAAR "
                    "known-relationship recall and replicate-retrieval mAP.")
    ev.add_argument("--emb", required=True, metavar="PATH", action="append",
                    help="embedding table (.csv, .parquet, .h5ad); twice (--emb A --emb B) for "
                         "the paired difference A - B of every score")
    ev.add_argument("--baseline", metavar="PATH",
                    help="a second table to compare with: the same as a second --emb")
    ev.add_argument("--images", metavar="PATH",
                    help="the teacher's embedding table (as for `semiclip fit`): adds RSA with "
                         "the teacher and, for an embedding in its space, cross-modal MRR")
    ev.add_argument("--image-key-col", nargs="+", metavar="COL",
                    help="key column(s) of --images (default: --key-col)")
    ev.add_argument("--image-obsm", help=".h5ad --images: use adata.obsm[OBSM]")
    ev.add_argument("--image-exclude-cols", nargs="+", default=(), metavar="COL",
                    help="columns of --images that are neither features nor Metadata_ columns")
    ev.add_argument("--image-embedding-col", metavar="COL",
                    help="--images holds one vector per row in this list column")
    ev.add_argument("--ceiling", action="store_true",
                    help="add the split-half ceiling of each score (the best score on this "
                         "data) and where the value sits between chance and ceiling")
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
    ev.set_defaults(func=run, image_mod=None, tx=None)
    return ev
