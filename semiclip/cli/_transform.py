"""``semiclip transform``: embed a transcriptomics table with a model from ``semiclip fit``.

The model file is read with :func:`semiclip.persistence.load_model` (no code
runs; a pickle only with ``--allow-pickle``); the output is checked before
the model is read and written whole (never over an input, an existing file
only with ``--overwrite``).
"""

import warnings

from ._files import check_outputs, read_model
from ._options import add_model_options

__all__ = ["add_parser", "corrected", "embed", "key_queries", "metadata_of", "provenance",
           "read_for_model", "run"]


def run(args):
    """The body of ``semiclip transform``."""
    from ._keys import read_text_columns
    from ._tables import read_input, table_format, write_embedding

    check_outputs([("--output", args.output, lambda p: table_format(p, "--output"))],
                  inputs=(("--tx", args.tx), ("--model", args.model)), overwrite=args.overwrite)
    loaded = read_model(args.model, allow_pickle=args.allow_pickle, command="transform")
    table = read_input(args.tx, "--tx", mod=args.tx_mod)
    data = read_for_model(loaded, table, args.tx, refit=args.refit_normalizer, keys=False)
    Z = embed(loaded, data, refit=args.refit_normalizer)
    est = loaded.estimator
    names = [str(n) for n in est.get_feature_names_out()]
    meta = metadata_of(table, data)
    text = ("csv", "tsv")
    if table_format(args.tx, "--tx") in text and table_format(args.output, "--output") in text:
        # text in, text out: every metadata value exactly as written in the file
        meta = read_text_columns(args.tx, meta, "--tx")
    write_embedding(meta, Z, names, args.output,
                    adata=table if hasattr(table, "obs") else None, X=data.X,
                    feature_names=data.feature_names, uns=provenance(loaded, args.model, names),
                    mudata=(args.tx, args.tx_mod))
    print(f"Wrote {Z.shape[0]} x {Z.shape[1]} embedding ({names[0]}..{names[-1]}) "
          f"to {args.output}", flush=True)
    return 0


def read_for_model(loaded, table, path, *, refit=False, keys=True):
    """The samples of ``table`` read as the model's column spec says.

    The key is optional, and read only when ``keys`` (or ``refit``, which
    finds the controls through it) asks for it: embedding needs the features
    and the batch only, so the pairing columns are then never looked at.
    ``table`` itself is never changed (the output keeps every value as read).
    """
    from ._keys import edit_key_columns
    from ._tables import columns_of, load_samples

    cols = loaded.columns
    present = set(columns_of(table))
    has_key = (keys or refit) and all(k in present for k in cols["key"])
    control, label = cols["control"], cols["control_label"]
    control_col = control[0] if isinstance(control, tuple) else control
    if refit and not has_key and (control_col is None or control_col not in present):
        raise ValueError(
            f"--refit-normalizer finds the controls through the key column(s) "
            f"{cols['key']} or the control column, which --tx lacks."
        )
    if not has_key and not (refit and control_col in present):
        control, label = None, None  # inference needs X (and the batch) only
    if has_key:
        table, _ = edit_key_columns(table, cols["key"],
                                    normalize_symbols=cols["normalize_symbols"],
                                    dose=cols["dose"], control=control, control_label=label)
    return load_samples(table, path, "--tx", key=cols["key"] if has_key else None,
                        batch=cols["batch"], control=control, control_label=label,
                        layer=cols["layer"], obsm=cols["obsm"], features=cols["feature_names"])


def key_queries(loaded, table, queries):
    """Keys typed on the command line (``--keys``) written as the model writes its keys.

    Each query holds the key columns' values joined by ``|``; the gene
    symbol and the dose go through the model's normalisation and dose grid,
    and every part is read like the table's column, so ``cmpd|3.33`` finds
    the samples keyed ``cmpd|3.333333333333333`` by a 3-fold grid.
    """
    import numpy as np

    from ..datasets import make_keys, normalize_gene_symbols, round_to_grid
    from ._tables import coerce_like

    cols = loaded.columns
    names = list(cols["key"])
    dose = cols["dose"]
    out = []
    for query in queries:
        parts = str(query).split("|") if len(names) > 1 else [query]
        if len(parts) != len(names):
            out.append(query)  # reported as not found, with the keys that exist
            continue
        values = []
        for name, part in zip(names, parts):
            value = coerce_like(part, table, name) if name in _columns(table) else part
            if name == names[0] and cols["normalize_symbols"] and isinstance(value, str) and \
                    value != cols["control_label"]:
                value = normalize_gene_symbols([value])[0]
            if dose is not None and name == dose[0]:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    number = None
                if number is not None and np.isfinite(number) and number >= 0:
                    value = float(round_to_grid([number], **dose[1])[0])
            values.append(value)
        out.append(values[0] if len(names) == 1 else
                   make_keys(*(np.array([v]) for v in values))[0])
    return out


def _columns(table):
    from ._tables import columns_of

    return set(columns_of(table))


def embed(loaded, data, *, refit=False):
    """The embedding of ``data`` through the model's correction and estimator."""
    import copy

    from sklearn.base import clone

    cols = loaded.columns
    est, normalizer = loaded.estimator, loaded.normalizer
    X, batch = data.X, data.batch
    correction = normalizer if normalizer is not None else getattr(est, "correction_", None)
    if correction is not None and batch is None:
        raise ValueError(
            f"the model batch-corrects on controls, so --tx needs its batch column "
            f"{cols['batch']!r}."
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        if refit and correction is not None:
            if not data.is_control.any():
                raise ValueError("--refit-normalizer needs control samples in --tx.")
            correction = clone(correction).fit(X, data.y, batch=batch)
            if normalizer is None:
                est = copy.copy(est)  # the loaded model keeps its own correction
                est.correction_ = correction
        if normalizer is not None:
            return est.transform(_apply_correction(correction, X, batch))
        if correction is not None:
            return est.transform(X, batch=batch)
        return est.transform(X)


def corrected(loaded, data):
    """``data.X`` as the encoder receives it (through the model's batch correction)."""
    est, normalizer = loaded.estimator, loaded.normalizer
    correction = normalizer if normalizer is not None else getattr(est, "correction_", None)
    if correction is None:
        return data.X
    if data.batch is None:
        raise ValueError(f"the model batch-corrects on controls, so --tx needs its batch column "
                         f"{loaded.columns['batch']!r}.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        return _apply_correction(correction, data.X, data.batch)


def metadata_of(table, data):
    """Every non-feature column of the input (``obs`` of an AnnData)."""
    if hasattr(table, "obs"):
        return table.obs
    features = set(str(f) for f in data.feature_names)
    return table[[c for c in table.columns if str(c) not in features]]


def provenance(loaded, model_path, names):
    """``uns["semiclip"]``: the model's parameters and provenance (JSON text where nested)."""
    import json
    import os

    params = {k: v for k, v in loaded.estimator.get_params(deep=False).items()}
    return {
        "model": os.path.basename(os.fspath(model_path)),
        "n_dims": len(names),
        "embedding_columns": list(names),
        "params": json.dumps(params, default=str, sort_keys=True),
        "provenance": json.dumps(loaded.manifest, default=str, sort_keys=True),
        "feature_names": [str(f) for f in loaded.columns["feature_names"]],
    }


def _apply_correction(correction, X, batch):
    try:
        return correction.transform(X, batch=batch)
    except ValueError as exc:
        if "batch" in str(exc):
            raise ValueError(
                f"{exc} The model's batch correction knows only the plates it was fitted "
                "on; pass --refit-normalizer to fit it on this file's own controls."
            ) from None
        raise


def add_parser(subparsers):
    """Register ``semiclip transform``."""
    tr = subparsers.add_parser(
        "transform", help="embed a transcriptomics table with a model from `semiclip fit`")
    tr.add_argument("-m", "--model", required=True, metavar="MODEL",
                    help="a .semiclip model file from `semiclip fit`")
    tr.add_argument("--tx", required=True, metavar="PATH",
                    help="samples with the columns the model was fitted on")
    tr.add_argument("--tx-mod", metavar="MOD",
                    help=".h5mu --tx: the transcriptomics modality; an .h5mu --output gets "
                         "obsm['X_semiclip'] in it (default: none)")
    tr.add_argument("--refit-normalizer", action="store_true",
                    help="fit the batch correction on this file's controls (new plates)")
    tr.add_argument("-o", "--output", required=True, metavar="PATH",
                    help="embedding file (.parquet, .csv, .tsv or .h5ad)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace an existing --output file (never an input file)")
    add_model_options(tr)
    tr.set_defaults(func=run)
    return tr
