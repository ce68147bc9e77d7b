"""``semiclip fit``: a SemiClippedTransformer from a transcriptomics table and an image table.

Reads a transcriptomics table and an image-embedding table keyed the same
way, reports how the keys match, batch-corrects on the controls and fits a
:class:`~semiclip.SemiClippedTransformer`; the model file (``.semiclip``, see
:mod:`semiclip.persistence`: it runs no code when read) holds the fitted
estimator, the batch correction, the column spec and the provenance, so that
``semiclip transform`` reads new files the same way. The output path is
checked before anything is read or trained.
"""

import contextlib
import io
import time
import warnings

from ._files import check_outputs, model_suffix
from ._options import (
    NORMALIZE_CHOICES,
    add_column_options,
    check_device,
    control_spec,
    dose_options,
    hidden_sizes,
)

__all__ = ["add_parser", "read_bank", "run"]


def read_bank(args, dose, anchor):
    """The ``--images`` table as an ImageBank (``dose``: the dose-snapping of --tx's keys)."""
    from .._core import ImageBank
    from ._keys import edit_key_columns
    from ._tables import load_samples, read_input

    image_key = args.image_key_col or args.key_col
    if len(image_key) != len(args.key_col):
        raise ValueError(
            f"--image-key-col names {len(image_key)} column(s) but --key-col "
            f"{len(args.key_col)}; the two sides need the same key parts in the same order."
        )
    table = read_input(args.images or args.tx, "--images", mod=args.image_mod)
    from ._tables import check_columns

    check_columns(table, image_key, "--images", args.images, "key")
    image_dose = None
    if dose is not None:
        column = image_key[args.key_col.index(dose[0])]
        kwargs = dict(dose[1])
        if "factor" in kwargs:
            kwargs["anchor"] = anchor
        image_dose = (column, kwargs)
    # image rows of the tx control label (e.g. DMSO at dose -666) keep their dose as written
    table, _ = edit_key_columns(table, image_key, normalize_symbols=args.normalize_symbols,
                                dose=image_dose, control_label=args.control_label)
    data = load_samples(table, args.images, "--images", key=image_key, obsm=args.image_obsm,
                        exclude=args.image_exclude_cols, embedding=args.image_embedding_col,
                        exclude_flag="--image-exclude-cols")
    try:
        return ImageBank(data.X, data.y)
    except ValueError as exc:
        raise ValueError(f"--images ({args.images}): {exc}") from None


def _check_matching(y, bank, control_label, unpaired):
    from ..datasets import match_report

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
            f"{report.n_tx_rows_matched} matched rows only, or fix the keys"
            + (" (their doses differ only by rounding: --dose-col with --dose-factor or "
               "--dose-grid snaps both sides)." if report.n_fixable_by_dose else ".")
        )
    return report


def _normalizer(method, data):
    from .._correction import ControlNormalizer

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


def run(args):
    """The body of ``semiclip fit``."""
    # everything the arguments alone can refuse, before any file is read
    output = _check_output(args)
    sizes = hidden_sizes(args.hidden_layer_sizes)
    check_device(args.device)
    dose = dose_options(args)
    if args.pea and args.normalize not in ("auto", "tvn"):
        raise ValueError("--pea applies its own canonical TVN; drop --normalize.")
    if args.pea and args.method == "ridge":
        raise ValueError("--pea augments Semi-Clipped's training; --method ridge fits a "
                         "closed-form map: drop one of them.")

    from .._correction import PEAAugmenter
    from .._distill import RidgeDistiller, SemiClippedTransformer
    from ..persistence import data_fingerprint, save_model
    from ._keys import edit_key_columns
    from ._tables import check_columns, load_samples, read_input

    if args.images is None and not (str(args.tx).lower().endswith(".h5mu") and args.image_mod):
        raise ValueError("--images is required, unless --tx is an .h5mu file and --image-mod "
                         "names its image modality.")
    table = read_input(args.tx, "--tx", mod=args.tx_mod)
    check_columns(table, args.key_col + [args.batch_col, args.control_col], "--tx", args.tx,
                  "key/batch/control")
    control, control_label = control_spec(args, table)
    table, anchor = edit_key_columns(table, args.key_col,
                                     normalize_symbols=args.normalize_symbols, dose=dose,
                                     control=control, control_label=control_label)
    groups, extra = _validation_groups(args, table)
    data = load_samples(table, args.tx, "--tx", key=args.key_col, batch=args.batch_col,
                        control=control, control_label=control_label, layer=args.layer,
                        obsm=args.obsm, exclude=[*args.exclude_cols, *extra])
    if args.control_label is not None and data.control_label is None:
        raise ValueError(f"--control-label {args.control_label!r} matches no row of --tx.")
    bank = read_bank(args, dose, anchor)
    report = _check_matching(data.y, bank, data.control_label, args.unpaired)

    X, batch = data.X, data.batch
    if args.pea and batch is None:
        raise ValueError("--pea corrects each plate on its own controls: pass --batch-col.")
    if args.method == "ridge":  # the linear floor: PCA of the input, ridge onto the centroids
        est = RidgeDistiller(encoder_dim=args.encoder_dim, unpaired=args.unpaired,
                             control_label=data.control_label, random_state=args.random_state)
    else:
        est = _semiclipped(SemiClippedTransformer, args, sizes, data)
    normalizer = None
    start = time.perf_counter()
    # the estimator's own judgement line (stdout, verbose) is printed below with the CLI's label
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        if args.pea:
            est.set_params(augmenter=PEAAugmenter(random_state=args.random_state))
            est.fit(X, data.y, image_bank=bank, batch=batch, groups=groups)
        else:
            normalizer = _normalizer(args.normalize, data)
            if normalizer is not None:
                X = normalizer.fit_transform(X, data.y, batch=batch)
            est.fit(X, data.y, image_bank=bank, groups=groups)
    columns = {
        "key": list(args.key_col), "batch": args.batch_col, "control": control,
        "control_label": data.control_label, "layer": args.layer, "obsm": args.obsm,
        "exclude": list(args.exclude_cols), "normalize_symbols": args.normalize_symbols,
        "dose": None if dose is None else (dose[0], {**dose[1], "anchor": anchor}
                                           if "factor" in dose[1] else dose[1]),
        "feature_names": [str(f) for f in data.feature_names],
    }
    _check_output(args)  # a file may have appeared meanwhile
    save_model(output, est, normalizer=normalizer, columns=columns,
               fingerprint=data_fingerprint(X.shape[0], columns["feature_names"], columns))
    how = ("ridge map" if args.method == "ridge" else f"{est.n_iter_} epochs")
    print(
        f"Fitted on {X.shape[0]} samples x {X.shape[1]} features "
        f"({getattr(est, 'n_paired_keys_', report.n_matched)} paired keys, {how}, "
        f"{time.perf_counter() - start:.1f} s); model saved to {args.output}",
        flush=True,
    )
    report = getattr(est, "validation_report_", None)  # a RidgeDistiller has none
    print("semiclip fit: held-out judgement: " + (
        report["summary"] if report is not None else
        "none (no held-out perturbations: early stopping is off or there are too few keys)"),
        flush=True)
    return 0


def _semiclipped(cls, args, sizes, data):
    return cls(
        loss=args.loss, encoder_dim=args.encoder_dim,
        structure_weight=_weight(args.structure_weight, "--structure-weight", auto=True),
        preservation_weight=_weight(args.preservation_weight, "--preservation-weight"),
        hidden_layer_sizes=sizes, recipe=args.recipe, init=args.init,
        max_iter=args.max_iter if args.max_iter is not None else "auto",
        unpaired=args.unpaired, control_label=data.control_label, device=args.device,
        random_state=args.random_state, verbose=args.verbose,
    )


def _validation_groups(args, table):
    """``(groups or None, columns to exclude from the features)`` of --validation-group-col.

    Without it the held-out perturbations are the first --key-col (the part of the joined
    key before its first "|", the estimator's default).
    """
    col = getattr(args, "validation_group_col", None)
    if col is None:
        return None, []
    from ._tables import check_columns, is_anndata

    check_columns(table, [col], "--tx", args.tx, "--validation-group-col")
    frame = table.obs if is_anndata(table) else table
    extra = [] if is_anndata(table) or col in args.key_col else [col]
    return frame[col].to_numpy(), extra


def _check_output(args):
    return check_outputs([("--output", args.output, model_suffix)],
                         inputs=(("--tx", args.tx), ("--images", args.images)),
                         overwrite=args.overwrite)[0]


def add_parser(subparsers):
    """Register ``semiclip fit``."""
    fit = subparsers.add_parser(
        "fit", help="fit Semi-Clipped on a transcriptomics table and an image-embedding table",
        description="Fit a SemiClippedTransformer from files. Tables: CSV/TSV/Parquet in the "
                    "pycytominer convention (Metadata_ columns + numeric features) or .h5ad.")
    fit.add_argument("--tx", required=True, metavar="PATH", help="transcriptomics samples")
    fit.add_argument("--images", metavar="PATH",
                     help="image embeddings, one row per image/well, keyed like --tx (not "
                          "needed with an .h5mu --tx and --image-mod)")
    fit.add_argument("--tx-mod", metavar="MOD",
                     help=".h5mu --tx: the transcriptomics modality (default: none)")
    fit.add_argument("--image-mod", metavar="MOD",
                     help=".h5mu: the image modality, keyed by --image-key-col (default: none)")
    add_column_options(fit)
    fit.add_argument("--image-key-col", nargs="+", metavar="COL",
                     help="key column(s) of --images (default: --key-col)")
    fit.add_argument("--image-obsm", help=".h5ad --images: use adata.obsm[OBSM]")
    fit.add_argument("--image-exclude-cols", nargs="+", default=(), metavar="COL",
                     help="columns of --images that are neither features nor Metadata_ "
                          "columns")
    fit.add_argument("--image-embedding-col", metavar="COL",
                     help="--images holds one vector per row in this list column (e.g. a "
                          "Parquet 'pheno_embedding' column) instead of numeric columns")
    fit.add_argument("--normalize-symbols", action="store_true",
                     help="normalise gene symbols (case, whitespace) of the first key column "
                          "on both sides")
    fit.add_argument("--dose-col", metavar="COL", help="key column holding a concentration")
    fit.add_argument("--dose-decimals", type=int, metavar="N", help="round doses to N decimals")
    fit.add_argument("--dose-factor", type=float, metavar="F",
                     help="snap doses to a F-fold dilution series")
    fit.add_argument("--dose-anchor", type=float, metavar="A",
                     help="one dose of the series (default: the largest --tx dose)")
    fit.add_argument("--dose-grid", type=float, nargs="+", metavar="D",
                     help="snap doses to the nearest of these concentrations (log scale)")
    fit.add_argument("--normalize", choices=NORMALIZE_CHOICES, default="auto",
                     help="batch correction of --tx before fitting (auto: tvn with controls)")
    fit.add_argument("--pea", action="store_true",
                     help="train with PEA augmentation (needs --batch-col and controls)")
    fit.add_argument("--method", choices=("semiclip", "ridge"), default="semiclip",
                     help="semiclip: a SemiClippedTransformer; ridge: a RidgeDistiller (PCA of "
                          "the input, then a ridge map onto each key's mean image embedding), "
                          "the linear floor to compare with; same inputs and outputs. The "
                          "training options below apply to semiclip only")
    fit.add_argument("--loss", default="infonce",
                     choices=("infonce", "clip", "siglip", "soft_infonce", "kd", "kd_mse"),
                     help="training objective: infonce (contrastive, the paper's), clip "
                          "(symmetric InfoNCE), siglip (pairwise sigmoid), soft_infonce (the "
                          "teacher's similarities as soft targets), kd (cosine feature "
                          "distillation), kd_mse (mean squared error distillation)")
    fit.add_argument("--structure-weight", default="0", metavar="W",
                     help="weight of the teacher-structure term, or 'auto' (chosen on held-out "
                          "keys among 0, 1, 10); default 0")
    fit.add_argument("--preservation-weight", default="0", metavar="W",
                     help="weight of the input-preservation term (1 - CKA); default 0")
    fit.add_argument("--validation-group-col", metavar="COL",
                     help="column of the perturbation that held-out sets hold out whole "
                          "(default: the first --key-col)")
    fit.add_argument("--encoder-dim", type=int, default=256, metavar="N",
                     help="dimensions of the frozen PCA encoder of the input (also the "
                          "ridge method's)")
    fit.add_argument("--hidden-layer-sizes", default="auto",
                     help="adapter layers: 'auto', 'linear' or e.g. 1024,1024")
    fit.add_argument("--recipe", choices=("auto", "paper"), default="auto",
                     help="where 'auto' settings come from: auto (defaults that also work on "
                          "a few hundred keys) or paper (the published recipe: 1024-1024 "
                          "adapter, SGD, 150 epochs)")
    fit.add_argument("--init", choices=("auto", "ridge", "random"), default="auto",
                     help="where the adapter starts: auto (the ridge map, fine-tuned for the "
                          "epochs held-out perturbations choose), ridge, or random (the start "
                          "before the ridge start)")
    fit.add_argument("--max-iter", type=int, help="maximum epochs (default: recipe)")
    fit.add_argument("--unpaired", choices=("raise", "drop"), default="raise",
                     help="samples whose key has no image embedding: error or leave out")
    fit.add_argument("--device", default="auto",
                     help="auto, cpu, cuda, cuda:N or mps (default auto)")
    fit.add_argument("--random-state", type=int, default=0, metavar="SEED",
                     help="seed of the encoder, the held-out split and the training")
    fit.add_argument("--verbose", type=int, default=1, help="progress bar (0 = off)")
    # scale options (e.g. --nproc for multi-process training) register here and are
    # read in _fit where the estimator is built
    fit.add_argument("-o", "--output", required=True, metavar="MODEL",
                     help="where to save the model (a .semiclip file; it runs no code when "
                          "read)")
    fit.add_argument("--overwrite", action="store_true",
                     help="replace an existing --output file (never an input file)")
    fit.set_defaults(func=run)
    return fit


def _weight(text, flag, auto=False):
    """A term weight from the command line: a number >= 0 (or 'auto' where allowed)."""
    if auto and text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        allowed = "a number >= 0" + (" or 'auto'" if auto else "")
        raise ValueError(f"{flag} must be {allowed}; got {text!r}.")
    return value
