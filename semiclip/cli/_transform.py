"""``semiclip transform``: embed a transcriptomics table with a model from ``semiclip fit``.

The model file is read with :func:`semiclip.persistence.load_model` (no code
runs; a pickle only with ``--allow-pickle``); the output is checked before
the model is read and written whole (never over an input, an existing file
only with ``--overwrite``).
"""

import warnings

from ._files import check_output, read_model
from ._options import add_model_options

__all__ = ["add_parser", "run"]


def run(args):
    """The body of ``semiclip transform``."""
    import copy

    from sklearn.base import clone

    from ._tables import edit_key_columns, load_samples, read_input, table_format, write_embedding

    check_output(args.output, "--output", inputs=(("--tx", args.tx), ("--model", args.model)),
                 overwrite=args.overwrite, check_format=lambda p: table_format(p, "--output"))
    loaded = read_model(args.model, allow_pickle=args.allow_pickle, command="transform")
    cols = loaded.columns
    table = read_input(args.tx, "--tx")
    edit_key_columns(table, cols["key"], normalize_symbols=cols["normalize_symbols"],
                     dose=cols["dose"], control_label=cols["control_label"])
    data = load_samples(table, args.tx, "--tx", key=cols["key"], batch=cols["batch"],
                        control=cols["control"], control_label=cols["control_label"],
                        layer=cols["layer"], obsm=cols["obsm"], exclude=cols["exclude"],
                        features=cols["feature_names"])
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
        if args.refit_normalizer and correction is not None:
            if not data.is_control.any():
                raise ValueError("--refit-normalizer needs control samples in --tx.")
            correction = clone(correction).fit(X, data.y, batch=batch)
            if normalizer is None:
                est = copy.copy(est)  # the loaded model keeps its own correction
                est.correction_ = correction
        if normalizer is not None:
            X = _apply_correction(correction, X, batch)
            Z = est.transform(X)
        elif correction is not None:
            Z = est.transform(X, batch=batch)
        else:
            Z = est.transform(X)
    names = [str(n) for n in est.get_feature_names_out()]
    used = cols["key"] + [c for c in (cols["batch"], _control_col(cols["control"])) if c]
    meta = data.metadata[[c for c in dict.fromkeys(used) if c in data.metadata.columns]]
    write_embedding(meta, Z, names, args.output)
    print(f"Wrote {Z.shape[0]} x {Z.shape[1]} embedding ({names[0]}..{names[-1]}) "
          f"to {args.output}", flush=True)
    return 0


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


def _control_col(control):
    return control[0] if isinstance(control, tuple) else control


def add_parser(subparsers):
    """Register ``semiclip transform``."""
    tr = subparsers.add_parser(
        "transform", help="embed a transcriptomics table with a model from `semiclip fit`")
    tr.add_argument("-m", "--model", required=True, metavar="MODEL",
                    help="a .semiclip model file from `semiclip fit`")
    tr.add_argument("--tx", required=True, metavar="PATH",
                    help="samples with the columns the model was fitted on")
    tr.add_argument("--refit-normalizer", action="store_true",
                    help="fit the batch correction on this file's controls (new plates)")
    tr.add_argument("-o", "--output", required=True, metavar="PATH",
                    help="embedding file (.parquet, .csv, .tsv or .h5ad)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace an existing --output file (never an input file)")
    add_model_options(tr)
    tr.set_defaults(func=run)
    return tr
