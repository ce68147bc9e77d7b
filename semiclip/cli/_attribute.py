"""``semiclip attribute``: which genes drive the embedding, per key or per direction.

Reads a model from ``semiclip fit`` and a transcriptomics file the way
``semiclip transform`` does, computes gradient x input attributions
(:func:`semiclip.interpret.gradient_attributions`) through the model's batch
correction, and writes a tidy table: one row per (key or direction, gene)
with the gene symbol the model was fitted on, its score and its rank.

Per key (the default): every sample of a key is explained towards the mean
embedding of that key's samples, and the key's score of a gene is the mean
over its samples. With ``--direction-file``: every direction in the file is
explained on all samples (or those of ``--keys``), averaged.
"""

import numpy as np

from .._core import format_examples
from ._files import atomic_write, check_outputs, read_model
from ._options import add_model_options

__all__ = ["add_parser", "run"]


def run(args):
    """The body of ``semiclip attribute``."""
    from ._tables import read_input, table_format, write_table
    from ._transform import key_queries, read_for_model

    if args.top < 0:
        raise ValueError(f"--top must be 0 (every gene) or a positive number; got {args.top}.")
    inputs = (("--tx", args.tx), ("--model", args.model),
              ("--direction-file", args.direction_file))
    check_outputs([("--output", args.output,
                    lambda p: _table_only(table_format(p, "--output"), p)),
                   ("--plot", args.plot or None)], inputs=inputs, overwrite=args.overwrite)
    if args.plot:
        import matplotlib.figure  # noqa: F401  (missing: one error naming the extra, now)
    loaded = read_model(args.model, allow_pickle=args.allow_pickle, command="attribute")
    n_dims = int(loaded.estimator.get_feature_names_out().shape[0])
    directions = None
    if args.direction_file is not None:
        directions = _read_directions(args.direction_file, n_dims)
    table = read_input(args.tx, "--tx")
    data = read_for_model(loaded, table, args.tx)
    names = np.asarray([str(f) for f in loaded.columns["feature_names"]], dtype=object)
    flat = flat_genes(data, names, args.min_control_sd)
    _warn_flat(flat, names, args.exclude_flat_genes)
    queries = key_queries(loaded, table, args.keys) if args.keys else args.keys
    rows = _selected_rows(data, queries, need_keys=directions is None, typed=args.keys)
    if directions is None:
        labels, scores = _per_key(loaded, data, rows, names, args.batch_size)
        what = "key"
    else:
        labels, scores = _per_direction(loaded, data, rows, names, directions, args.batch_size)
        what = "direction"
    is_flat = np.zeros(names.size, dtype=bool)
    is_flat[flat.genes] = True
    if args.exclude_flat_genes and is_flat.any():
        scores, names, is_flat = scores[:, ~is_flat], names[~is_flat], is_flat[~is_flat]
    table = _tidy(what, labels, scores, names, args.top, is_flat)
    write_table(table, args.output, "--output")
    print(f"Wrote {len(table)} rows ({len(labels)} {what}(s) x "
          f"{table.shape[0] // max(len(labels), 1)} genes) to {args.output}", flush=True)
    if args.plot:
        _plot(labels, scores, names, args.top or 20, args.plot, what, is_flat, flat.threshold)
        print(f"Figure saved to {args.plot}", flush=True)
    return 0


#: genes whose control sd is below this fraction of the median gene's count as flat
FLAT_FRACTION = 0.2


class _Flat:
    def __init__(self, genes, sd, threshold, auto):
        self.genes, self.sd, self.threshold, self.auto = genes, sd, threshold, auto


def flat_genes(data, names, min_sd=None):
    """Genes (near) constant in the controls of some plate of ``--tx``.

    The batch correction divides each gene by its control spread; a gene
    (nearly) constant in the controls (a housekeeping gene, a saturated
    probe) turns one odd well into an enormous value that leads the
    attributions. Its spread is the smallest, over plates with two or more
    controls, of the controls' standard deviation; it is flat below
    ``min_sd`` (default: :data:`FLAT_FRACTION` x the median gene's).
    """
    none = _Flat(np.zeros(0, dtype=np.intp), np.zeros(names.size), 0.0, min_sd is None)
    if min_sd is not None and min_sd < 0:
        raise ValueError(f"--min-control-sd must be >= 0; got {min_sd}.")
    is_control = getattr(data, "is_control", None)
    if is_control is None or not is_control.any():
        return none
    X = np.asarray(data.X[is_control], dtype=np.float64)
    batch = (np.zeros(X.shape[0], dtype=np.intp) if data.batch is None
             else np.unique(np.asarray(data.batch)[is_control].astype(str),
                            return_inverse=True)[1])
    sds = [X[batch == b].std(axis=0, ddof=1) for b in np.unique(batch)
           if (batch == b).sum() >= 2]
    if not sds:
        return none
    with np.errstate(invalid="ignore"):
        sd = np.nanmin(np.vstack(sds), axis=0)
    threshold = FLAT_FRACTION * float(np.nanmedian(sd)) if min_sd is None else float(min_sd)
    genes = np.flatnonzero(~(sd > threshold) & np.isfinite(sd) | (sd == 0))
    return _Flat(genes, sd, threshold, min_sd is None)


def _warn_flat(flat, names, excluded):
    import warnings

    if not flat.genes.size:
        return
    order = flat.genes[np.argsort(flat.sd[flat.genes], kind="stable")]
    shown = ", ".join(f"{names[j]} (sd {flat.sd[j]:.3g})" for j in order[:8])
    more = f" and {order.size - 8} more" if order.size > 8 else ""
    rule = (f"{FLAT_FRACTION} x the median gene's control sd" if flat.auto
            else "--min-control-sd")
    then = ("they are left out of the table and the plot (--exclude-flat-genes)." if excluded
            else "pass --exclude-flat-genes to leave them out of the table and the plot "
                 "(--min-control-sd SD sets the threshold); the table marks them in the "
                 "column flat_in_controls.")
    warnings.warn(
        f"{order.size} gene(s) are (nearly) constant in the controls of a plate of --tx "
        f"(sd below {flat.threshold:.3g} = {rule}): {shown}{more}. The batch correction "
        "divides by that spread, so one odd well makes such a gene lead the attributions; "
        f"{then}",
        UserWarning,
        stacklevel=2,
    )


def _table_only(fmt, path):
    if fmt == "h5ad":
        raise ValueError(f"--output {str(path)!r}: attributions are a table; use .csv, .tsv "
                         "or .parquet.")


def _read_directions(path, n_dims):
    """``(names, matrix (n_directions, n_dims))`` from a .npy file or a table."""
    from pathlib import Path

    from ._tables import read_input

    if Path(path).suffix.lower() == ".npy":
        if not Path(path).is_file():
            raise FileNotFoundError(f"--direction-file: no file at {str(path)!r}.")
        matrix = np.load(path, allow_pickle=False)
        matrix = matrix[None, :] if matrix.ndim == 1 else matrix
        names = [f"direction{i}" for i in range(matrix.shape[0])]
    else:
        frame = read_input(path, "--direction-file")
        if hasattr(frame, "obs"):
            raise ValueError("--direction-file: use a .npy file or a table (.csv, .tsv, "
                             ".parquet), not .h5ad.")
        names = (frame.pop("direction").astype(str).tolist() if "direction" in frame.columns
                 else [f"direction{i}" for i in range(len(frame))])
        wrong = [c for c in frame.columns if frame[c].dtype.kind not in "biuf"]
        if wrong:
            raise ValueError(
                f"--direction-file ({path}): {len(wrong)} column(s) are not numbers: "
                f"{format_examples(wrong)}; the file holds one direction per row, its "
                "entries as numeric columns, and optionally a 'direction' column naming it."
            )
        matrix = frame.to_numpy(dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != n_dims:
        raise ValueError(
            f"--direction-file ({path}): a direction has {matrix.shape[-1]} entries but the "
            f"model's embedding has {n_dims} dimensions; give {n_dims} numbers per direction."
        )
    if not np.isfinite(matrix).all():
        raise ValueError(f"--direction-file ({path}): the directions contain NaN or inf.")
    return names, matrix


def _selected_rows(data, keys, *, need_keys, typed=None):
    """Rows explained: the non-control samples, or those of ``--keys``."""
    if data.y is None:
        if need_keys or keys:
            raise ValueError("--tx has no key column the model knows, so attributions per key "
                             "(or --keys) cannot group samples: pass --direction-file, or a "
                             "file with the key column(s).")
        return np.arange(data.X.shape[0])
    y = data.y.astype(str)
    if not keys:
        rows = np.flatnonzero(~data.is_control)
        if rows.size == 0:
            raise ValueError("--tx holds control samples only; nothing to explain.")
        return rows
    keys = [str(k) for k in keys]
    typed = keys if typed is None else [str(k) for k in typed]
    missing = [(t, k) for t, k in zip(typed, keys) if k not in set(y)]
    if missing:
        shown = [t if t == k else f"{t} (read as {k})" for t, k in missing]
        raise ValueError(
            f"--keys {', '.join(repr(s) for s in shown[:5])} not found in --tx ({len(missing)} "
            f"of {len(keys)}); its keys are e.g. "
            f"{format_examples(np.unique(y[~data.is_control]))}."
        )
    return np.flatnonzero(np.isin(y, keys))


def _inputs(loaded, data):
    """``X`` as the attributions take it, and the ``batch=`` they need (a PEA model)."""
    from ._transform import corrected

    est = loaded.estimator
    if loaded.normalizer is None and getattr(est, "correction_", None) is not None:
        return data.X, data.batch
    return corrected(loaded, data), None


def _per_key(loaded, data, rows, names, batch_size):
    """Mean attribution of each key's samples towards the key's mean embedding."""
    from ..interpret import gradient_attributions
    from ._transform import embed

    X, batch = _inputs(loaded, data)
    Z = embed(loaded, data)[rows].astype(np.float64)
    labels, codes = np.unique(data.y[rows].astype(str), return_inverse=True)
    counts = np.bincount(codes, minlength=labels.size).astype(np.float64)
    means = np.zeros((labels.size, Z.shape[1]))
    np.add.at(means, codes, Z)
    means /= counts[:, None]
    att = gradient_attributions(loaded.estimator, X[rows], direction=means[codes],
                                batch=None if batch is None else batch[rows],
                                feature_names=names, batch_size=batch_size)
    scores = np.zeros((labels.size, names.size))
    np.add.at(scores, codes, att.values.astype(np.float64))
    return labels.tolist(), scores / counts[:, None]


def _per_direction(loaded, data, rows, names, directions, batch_size):
    """Mean attribution of the selected samples towards each direction of the file."""
    from ..interpret import gradient_attributions

    labels, matrix = directions
    X, batch = _inputs(loaded, data)
    scores = np.vstack([
        gradient_attributions(loaded.estimator, X[rows], direction=v,
                              batch=None if batch is None else batch[rows],
                              feature_names=names, batch_size=batch_size).mean()
        for v in matrix  # one pass per direction; files hold a few
    ])
    return labels, scores.astype(np.float64)


def _tidy(what, labels, scores, names, top, is_flat):
    """One row per (key or direction, gene), ranked by ``|score|`` within each."""
    import pandas as pd

    n = names.size if top == 0 else min(top, names.size)
    order = np.argsort(-np.abs(scores), axis=1, kind="stable")[:, :n]
    columns = {
        what: np.repeat(np.asarray(labels, dtype=object), n),
        "rank": np.tile(np.arange(1, n + 1), len(labels)),
        "gene": names[order].ravel(),
        "score": np.take_along_axis(scores, order, axis=1).ravel(),
    }
    columns["flat_in_controls"] = is_flat[order].ravel()  # see flat_genes
    return pd.DataFrame(columns)


def _plot(labels, scores, names, top, path, what, is_flat, threshold, max_panels=6):
    from matplotlib.figure import Figure

    from ..plotting import plot_gene_attributions

    shown = min(len(labels), max_panels)
    marked = np.where(is_flat, names.astype(str) + " *", names.astype(str)).astype(object)
    # constrained layout leaves room for every panel's gene names (no overlap with the next)
    fig = Figure(figsize=(4.5 * shown, 0.3 * min(top, names.size) + 1.5), layout="constrained")
    for i, ax in enumerate(fig.subplots(1, shown, squeeze=False)[0]):
        plot_gene_attributions(scores[i], marked, top=top, ax=ax, title=f"{what} {labels[i]}")
        for label in ax.get_yticklabels():
            if label.get_text().endswith(" *"):
                label.set_color("C1")
    notes = []
    if len(labels) > shown:
        notes.append(f"first {shown} of {len(labels)} {what}s (all are in the table)")
    if is_flat.any():
        notes.append(f"* flat in the controls (sd < {threshold:.3g}): check before trusting")
    if notes:
        fig.suptitle("\n".join(notes))
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")


def add_parser(subparsers):
    """Register ``semiclip attribute``."""
    at = subparsers.add_parser(
        "attribute", help="gene attributions of a model from `semiclip fit`, as a tidy table",
        description="Gradient x input attributions with the model's gene symbols: per key "
                    "(each key's samples towards the key's mean embedding) or per direction "
                    "of --direction-file. Writes columns key|direction, rank, gene, score, "
                    "flat_in_controls.")
    at.add_argument("-m", "--model", required=True, metavar="MODEL",
                    help="a .semiclip model file from `semiclip fit`")
    at.add_argument("--tx", required=True, metavar="PATH",
                    help="samples with the columns the model was fitted on")
    at.add_argument("--keys", nargs="+", metavar="KEY",
                    help="explain only these keys (default: every non-control key)")
    at.add_argument("--direction-file", metavar="PATH",
                    help="explain these embedding directions instead: a .npy vector/matrix, "
                         "or a table with one direction per row (numeric columns, optional "
                         "'direction' name column)")
    at.add_argument("--top", type=int, default=20, metavar="N",
                    help="genes kept per key/direction, largest |score| first (0 = all; "
                         "default 20)")
    at.add_argument("--batch-size", type=int, default=1024, metavar="N",
                    help="samples differentiated at once (memory only)")
    at.add_argument("-o", "--output", required=True, metavar="PATH",
                    help="the table (.csv, .tsv or .parquet)")
    at.add_argument("--plot", metavar="PNG", help="bars of the top genes, one panel per "
                                                  "key/direction (the first 6)")
    at.add_argument("--exclude-flat-genes", action="store_true",
                    help="leave genes (nearly) constant in the controls out of the table and "
                         "the plot (they are always named in a warning)")
    at.add_argument("--min-control-sd", type=float, metavar="SD",
                    help="a gene is flat when its controls' sd (smallest over plates) is below "
                         f"SD (default: {FLAT_FRACTION} x the median gene's)")
    at.add_argument("--overwrite", action="store_true",
                    help="replace existing output files (never an input file)")
    add_model_options(at)
    at.set_defaults(func=run)
    return at
