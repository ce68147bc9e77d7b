"""Options and helpers shared by the ``semiclip`` commands."""

from .._core import format_examples

NORMALIZE_CHOICES = ("auto", "tvn", "center", "center_scale", "none")

__all__ = [
    "NORMALIZE_CHOICES",
    "add_column_options",
    "add_model_options",
    "check_device",
    "control_spec",
    "dose_options",
    "hidden_sizes",
]


def add_column_options(p, *, batch_help="batch (plate) column"):
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


def control_spec(args, table):
    from ._tables import coerce_like

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


def dose_options(args):
    grid = getattr(args, "dose_grid", None)
    given = [f for f, v in (("--dose-decimals", args.dose_decimals),
                            ("--dose-factor", args.dose_factor), ("--dose-grid", grid))
             if v is not None]
    if args.dose_col is None:
        if given:
            raise ValueError(f"{'/'.join(given)} need{'s' if len(given) == 1 else ''} "
                             "--dose-col (the key column holding the dose).")
        return None
    if args.dose_col not in args.key_col:
        raise ValueError(
            f"--dose-col {args.dose_col!r} must be one of the --key-col columns "
            f"{args.key_col}: the rounded dose is part of the pairing key."
        )
    if len(given) != 1:
        raise ValueError("--dose-col needs exactly one of --dose-decimals N, --dose-factor F "
                         f"or --dose-grid D ...; got {' and '.join(given) or 'none'}.")
    if args.dose_decimals is not None:
        return args.dose_col, {"decimals": args.dose_decimals}
    if grid is not None:
        return args.dose_col, {"grid": [float(g) for g in grid]}
    return args.dose_col, {"factor": args.dose_factor, "anchor": args.dose_anchor}


def add_model_options(p):
    """``--allow-pickle`` of the commands that read a model file."""
    p.add_argument("--allow-pickle", action="store_true",
                   help="also read a pickle/joblib model (written by semiclip fit before the "
                        ".semiclip format). A pickle can run any code while it is read: "
                        "only for files you trust")


def hidden_sizes(text):
    """``"auto"``, ``()`` (linear) or a tuple of positive layer widths from ``text``."""
    text = str(text).strip()
    if text == "auto":
        return "auto"
    if text in ("", "none", "linear"):
        return ()
    usage = ("--hidden-layer-sizes must be 'auto', 'linear' or comma-separated positive "
             "integers such as 1024,1024")
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"{usage}; got {text!r}.") from None
    bad = [s for s in sizes if s < 1]
    if bad:
        raise ValueError(f"{usage}; got {text!r}, where {format_examples(bad)} "
                         f"{'is not a' if len(bad) == 1 else 'are not'} positive layer "
                         f"width{'' if len(bad) == 1 else 's'}.")
    return sizes


def check_device(text):
    """Refuse a device torch does not know, before any file is read."""
    import warnings

    from .._nn import resolve_device

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unavailable accelerator warns again in fit
        try:
            resolve_device(text)
        except (ValueError, TypeError, RuntimeError):
            raise ValueError(f"--device {text!r} is not a device: use auto, cpu, cuda, "
                             "cuda:N (e.g. cuda:1) or mps.") from None
    return text
