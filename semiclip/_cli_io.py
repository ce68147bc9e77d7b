"""``semiclip fit / transform / evaluate / benchmark``: the file-based commands.

``fit`` reads a transcriptomics table and an image-embedding table keyed the
same way, reports how the keys match, batch-corrects on the controls and fits
a :class:`~semiclip.SemiClippedTransformer`; the model file (joblib) is a dict
holding the fitted estimator, the batch correction and the column names, so
``transform`` reads new files the same way. ``evaluate`` scores any
embedding table with the EFAAR metrics. ``benchmark`` runs the paper's
comparison on synthetic data (:mod:`semiclip._benchmark`).
"""

import time
import warnings

MODEL_FORMAT = "semiclip-cli-model/1"
NORMALIZE_CHOICES = ("auto", "tvn", "center", "center_scale", "none")


# -- shared options ------------------------------------------------------------------
def _add_column_options(p, *, batch_help="batch (plate) column"):
    p.add_argument("--key-col", nargs="+", required=True, metavar="COL",
                   help="pairing-key column(s), e.g. perturbation [concentration]")
    p.add_argument("--batch-col", metavar="COL", help=batch_help)
    p.add_argument("--control-label", metavar="LABEL",
                   help="key of the control samples (e.g. DMSO); with --control-col: "
                        "the key given to the controls (default 'control')")
    p.add_argument("--control-col", metavar="COL",
                   help="column marking controls (boolean, or see --control-values)")
    p.add_argument("--control-values", nargs="+", metavar="VALUE",
                   help="values of --control-col that mark controls")
    p.add_argument("--layer", help=".h5ad: use adata.layers[LAYER] as features")
    p.add_argument("--obsm", help=".h5ad: use adata.obsm[OBSM] as features")
    p.add_argument("--exclude-cols", nargs="+", default=(), metavar="COL",
                   help="table columns that are neither features nor Metadata_ columns")


def _control_spec(args, table):
    from ._cli_tables import coerce_like

    if args.control_values and not args.control_col:
        raise ValueError("--control-values needs --control-col (the column holding them).")
    if args.control_col is None:
        label = coerce_like(args.control_label, table, args.key_col[0]) \
            if len(args.key_col) == 1 else args.control_label
        return None, label
    if args.control_values:
        values = [coerce_like(v, table, args.control_col) for v in args.control_values]
        return (args.control_col, values), args.control_label
    return args.control_col, args.control_label


def _dose_options(args):
    if args.dose_col is None:
        if args.dose_decimals is not None or args.dose_factor is not None:
            raise ValueError("--dose-decimals/--dose-factor need --dose-col.")
        return None
    if args.dose_col not in args.key_col:
        raise ValueError(
            f"--dose-col {args.dose_col!r} must be one of the --key-col columns "
            f"{args.key_col}: the rounded dose is part of the pairing key."
        )
    if (args.dose_decimals is None) == (args.dose_factor is None):
        raise ValueError("--dose-col needs exactly one of --dose-decimals N or --dose-factor F.")
    if args.dose_decimals is not None:
        return args.dose_col, {"decimals": args.dose_decimals}
    return args.dose_col, {"factor": args.dose_factor, "anchor": args.dose_anchor}


def _hidden(text):
    text = str(text).strip()
    if text == "auto":
        return "auto"
    if text in ("", "none", "linear"):
        return ()
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(
            f"--hidden-layer-sizes must be 'auto', 'linear' or comma-separated integers "
            f"such as 1024,1024; got {text!r}."
        ) from None


# -- fit -----------------------------------------------------------------------------
def _read_bank(args, dose, anchor):
    from ._bank import ImageBank
    from ._cli_tables import edit_key_columns, load_samples, read_input

    image_key = args.image_key_col or args.key_col
    if len(image_key) != len(args.key_col):
        raise ValueError(
            f"--image-key-col names {len(image_key)} column(s) but --key-col "
            f"{len(args.key_col)}; the two sides need the same key parts in the same order."
        )
    table = read_input(args.images, "--images")
    from ._cli_tables import check_columns

    check_columns(table, image_key, "--images", args.images, "key")
    image_dose = None
    if dose is not None:
        column = image_key[args.key_col.index(dose[0])]
        kwargs = dict(dose[1])
        if "factor" in kwargs:
            kwargs["anchor"] = anchor
        image_dose = (column, kwargs)
    edit_key_columns(table, image_key, normalize_symbols=args.normalize_symbols, dose=image_dose)
    data = load_samples(table, args.images, "--images", key=image_key, obsm=args.image_obsm,
                        exclude=args.image_exclude_cols)
    try:
        return ImageBank(data.X, data.y)
    except ValueError as exc:
        raise ValueError(f"--images ({args.images}): {exc}") from None


def _check_matching(y, bank, control_label, unpaired):
    from .datasets import match_report

    report = match_report(y, bank.keys, control_label=control_label)
    print(report, flush=True)
    if report.n_matched == 0:
        raise ValueError(
            "no pairing key of --tx occurs in --images, so nothing can be paired. Check that "
            "--key-col/--image-key-col name the same kind of key on both sides "
            "(see the examples above); --normalize-symbols fixes case and whitespace, "
            "--dose-col with --dose-decimals/--dose-factor fixes dose spellings."
        )
    unmatched = report.n_tx_rows - report.n_tx_rows_matched
    if unmatched and unpaired == "raise":
        raise ValueError(
            f"{unmatched} transcriptomics row(s) ({report.unmatched_tx_keys.size} key(s)) have "
            "no image embedding (see the report above). Pass --unpaired drop to train on the "
            f"{report.n_tx_rows_matched} matched rows only, or fix the keys."
        )
    return report


def _normalizer(method, data):
    from .normalize import ControlNormalizer

    has_controls = data.control_label is not None and bool(data.is_control.any())
    if method == "auto":
        method = "tvn" if has_controls else "none"
    if method == "none":
        return None
    if not has_controls:
        raise ValueError(
            f"--normalize {method} corrects each batch on its control samples, but --tx "
            "has none: pass --control-label (or --control-col), or --normalize none."
        )
    return ControlNormalizer(method, control_label=data.control_label, basis="feature")


def _fit(args):
    import joblib

    from ._cli_tables import check_columns, edit_key_columns, load_samples, read_input
    from .augment import PEAAugmenter
    from .transformer import SemiClippedTransformer

    dose = _dose_options(args)
    if not str(args.output):
        raise ValueError("--output must name the model file, e.g. model.joblib.")
    table = read_input(args.tx, "--tx")
    check_columns(table, args.key_col + [args.batch_col, args.control_col], "--tx", args.tx,
                  "key/batch/control")
    anchor = edit_key_columns(table, args.key_col, normalize_symbols=args.normalize_symbols,
                              dose=dose, control_label=args.control_label)
    control, control_label = _control_spec(args, table)
    data = load_samples(table, args.tx, "--tx", key=args.key_col, batch=args.batch_col,
                        control=control, control_label=control_label, layer=args.layer,
                        obsm=args.obsm, exclude=args.exclude_cols)
    if args.control_label is not None and data.control_label is None:
        raise ValueError(f"--control-label {args.control_label!r} matches no row of --tx.")
    bank = _read_bank(args, dose, anchor)
    _check_matching(data.y, bank, data.control_label, args.unpaired)

    X, batch = data.X, data.batch
    if args.pea and batch is None:
        raise ValueError("--pea corrects each plate on its own controls: pass --batch-col.")
    est = SemiClippedTransformer(
        loss=args.loss, encoder_dim=args.encoder_dim,
        hidden_layer_sizes=_hidden(args.hidden_layer_sizes), recipe=args.recipe,
        max_iter=args.max_iter if args.max_iter is not None else "auto",
        unpaired=args.unpaired, control_label=data.control_label, device=args.device,
        random_state=args.random_state, verbose=args.verbose,
    )
    normalizer = None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        if args.pea:
            if args.normalize not in ("auto", "tvn"):
                raise ValueError("--pea applies its own canonical TVN; drop --normalize.")
            est.set_params(augmenter=PEAAugmenter(random_state=args.random_state))
            est.fit(X, data.y, image_bank=bank, batch=batch)
        else:
            normalizer = _normalizer(args.normalize, data)
            if normalizer is not None:
                X = normalizer.fit_transform(X, data.y, batch=batch)
            est.fit(X, data.y, image_bank=bank)
    bundle = {
        "format": MODEL_FORMAT,
        "estimator": est,
        "normalizer": normalizer,
        "columns": {
            "key": list(args.key_col), "batch": args.batch_col, "control": control,
            "control_label": data.control_label, "layer": args.layer, "obsm": args.obsm,
            "exclude": list(args.exclude_cols), "normalize_symbols": args.normalize_symbols,
            "dose": None if dose is None else (dose[0], {**dose[1], "anchor": anchor}
                                               if "factor" in dose[1] else dose[1]),
        },
        "feature_names": [str(f) for f in data.feature_names],
    }
    joblib.dump(bundle, args.output)
    print(
        f"Fitted on {X.shape[0]} samples x {X.shape[1]} features "
        f"({est.n_paired_keys_} paired keys, {est.n_iter_} epochs, "
        f"{time.perf_counter() - start:.1f} s); model saved to {args.output}",
        flush=True,
    )
    return 0


# -- transform -----------------------------------------------------------------------
def load_model(path):
    """The dict saved by ``semiclip fit``, checked."""
    import joblib
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"--model: no file at {str(path)!r}.")
    try:
        bundle = joblib.load(path)
    except Exception as exc:
        raise ValueError(
            f"--model: cannot load {str(path)!r} ({type(exc).__name__}: {exc}); pass a file "
            "written by `semiclip fit`."
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"--model: {str(path)!r} is not a model written by `semiclip fit` (expected a "
            f"{MODEL_FORMAT!r} dict; got {type(bundle).__name__})."
        )
    return bundle


def _transform(args):
    import copy

    from sklearn.base import clone

    from ._cli_tables import (edit_key_columns, load_samples, output_path, read_input,
                              write_embedding)

    bundle = load_model(args.model)
    output_path(args.output)
    cols = bundle["columns"]
    table = read_input(args.tx, "--tx")
    edit_key_columns(table, cols["key"], normalize_symbols=cols["normalize_symbols"],
                     dose=cols["dose"], control_label=cols["control_label"])
    data = load_samples(table, args.tx, "--tx", key=cols["key"], batch=cols["batch"],
                        control=cols["control"], control_label=cols["control_label"],
                        layer=cols["layer"], obsm=cols["obsm"], exclude=cols["exclude"],
                        features=bundle["feature_names"])
    est, normalizer = bundle["estimator"], bundle["normalizer"]
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


# -- evaluate ------------------------------------------------------------------------
def _evaluate(args):
    from ._cli_evaluate import evaluate

    return evaluate(args)


# -- benchmark -----------------------------------------------------------------------
def _benchmark(args):
    from ._benchmark import run_benchmark_command

    return run_benchmark_command(args)


# -- registration --------------------------------------------------------------------
def add_io_commands(subparsers):
    """Register ``fit``, ``transform``, ``evaluate`` and ``benchmark`` on ``subparsers``."""
    fit = subparsers.add_parser(
        "fit", help="fit Semi-Clipped on a transcriptomics table and an image-embedding table",
        description="Fit a SemiClippedTransformer from files. Tables: CSV/TSV/Parquet in the "
                    "pycytominer convention (Metadata_ columns + numeric features) or .h5ad.")
    fit.add_argument("--tx", required=True, metavar="PATH", help="transcriptomics samples")
    fit.add_argument("--images", required=True, metavar="PATH",
                     help="image embeddings, one row per image/well, keyed like --tx")
    _add_column_options(fit)
    fit.add_argument("--image-key-col", nargs="+", metavar="COL",
                     help="key column(s) of --images (default: --key-col)")
    fit.add_argument("--image-obsm", help=".h5ad --images: use adata.obsm[OBSM]")
    fit.add_argument("--image-exclude-cols", nargs="+", default=(), metavar="COL")
    fit.add_argument("--normalize-symbols", action="store_true",
                     help="normalise gene symbols (case, whitespace) of the first key column "
                          "on both sides")
    fit.add_argument("--dose-col", metavar="COL", help="key column holding a concentration")
    fit.add_argument("--dose-decimals", type=int, metavar="N", help="round doses to N decimals")
    fit.add_argument("--dose-factor", type=float, metavar="F",
                     help="snap doses to a F-fold dilution series")
    fit.add_argument("--dose-anchor", type=float, metavar="A",
                     help="one dose of the series (default: the largest --tx dose)")
    fit.add_argument("--normalize", choices=NORMALIZE_CHOICES, default="auto",
                     help="batch correction of --tx before fitting (auto: tvn with controls)")
    fit.add_argument("--pea", action="store_true",
                     help="train with PEA augmentation (needs --batch-col and controls)")
    fit.add_argument("--loss", default="infonce",
                     choices=("infonce", "clip", "siglip", "kd", "kd_mse"))
    fit.add_argument("--encoder-dim", type=int, default=256)
    fit.add_argument("--hidden-layer-sizes", default="auto",
                     help="'auto', 'linear' or e.g. 1024,1024")
    fit.add_argument("--recipe", choices=("auto", "paper"), default="auto")
    fit.add_argument("--max-iter", type=int, help="maximum epochs (default: recipe)")
    fit.add_argument("--unpaired", choices=("raise", "drop"), default="raise",
                     help="samples whose key has no image embedding: error or leave out")
    fit.add_argument("--device", default="auto")
    fit.add_argument("--random-state", type=int, default=0)
    fit.add_argument("--verbose", type=int, default=1, help="progress bar (0 = off)")
    # scale options (e.g. --nproc for multi-process training) register here and are
    # read in _fit where the estimator is built
    fit.add_argument("-o", "--output", required=True, metavar="MODEL",
                     help="where to save the model (joblib)")
    fit.set_defaults(func=_fit)

    tr = subparsers.add_parser(
        "transform", help="embed a transcriptomics table with a model from `semiclip fit`")
    tr.add_argument("-m", "--model", required=True, metavar="MODEL")
    tr.add_argument("--tx", required=True, metavar="PATH",
                    help="samples with the columns the model was fitted on")
    tr.add_argument("--refit-normalizer", action="store_true",
                    help="fit the batch correction on this file's controls (new plates)")
    tr.add_argument("-o", "--output", required=True, metavar="PATH",
                    help="embedding file (.parquet, .csv, .tsv or .h5ad)")
    tr.set_defaults(func=_transform)

    ev = subparsers.add_parser(
        "evaluate", help="known-relationship recall per database and retrieval mAP",
        description="Score an embedding table (e.g. from `semiclip transform`) with the EFAAR "
                    "known-relationship recall and replicate-retrieval mAP.")
    ev.add_argument("--emb", required=True, metavar="PATH")
    _add_column_options(ev, batch_help="batch (plate) column: per-plate correction, and mAP "
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
    ev.set_defaults(func=_evaluate)

    from ._benchmark import add_benchmark_command

    add_benchmark_command(subparsers, _benchmark)
    return subparsers
