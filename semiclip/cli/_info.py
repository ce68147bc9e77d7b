"""``semiclip info``: the provenance of a model file (versions, parameters, data fingerprint)."""

import json

from ._files import printable, read_info
from ._options import add_model_options

__all__ = ["add_parser", "format_info", "run"]


def _value(v):
    if isinstance(v, dict) and v.get("json") is False and "repr" in v:
        return v["repr"]  # a parameter that is not a JSON value, shown by its repr
    return repr(tuple(v)) if isinstance(v, list) else repr(v)


def _column(v):
    if isinstance(v, list):  # key columns, [control column, values]
        return ", ".join(_column(x) for x in v)
    return str(v)


def _params(params):
    return [f"{k}={_value(v)}" for k, v in sorted(params.items())]


def _call(described):
    """``Class(a=1, b=2)`` as items for :func:`_fill`."""
    items = _params(described.get("params") or {}) or [""]
    items[0] = f"{described.get('class')}({items[0]}"
    items[-1] += ")"
    return items


def _fill(items, indent, width=100):
    """Items joined by ", ", wrapped between items (never inside one)."""
    lines, line = [], ""
    for i, item in enumerate(items):
        item += "," if i < len(items) - 1 else ""
        if line and indent + len(line) + 1 + len(item) > width:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


def format_info(path, manifest):
    """The readable block ``semiclip info`` prints for a manifest (printable text only)."""
    path, manifest = printable(str(path)), printable(manifest)
    est = manifest.get("estimator") or {}
    fitted = est.get("fitted") or {}
    norm = manifest.get("normalizer")
    fp = manifest.get("fingerprint") or {}
    cols = manifest.get("columns") or {}
    versions = manifest.get("versions")
    rows = [
        ("format", manifest.get("format")),
        ("created", manifest.get("created") or "unknown (a pickle records no time)"),
        ("estimator", f"{est.get('class')} ({fitted.get('n_features_in')} features -> "
                      f"{fitted.get('n_features_out')} dims, "
                      + ("closed-form ridge map)" if est.get("class") == "RidgeDistiller" else
                         f"{fitted.get('n_iter')} epochs, {fitted.get('n_paired_keys')} "
                         "paired keys)")),
        ("random_state", _value(est.get("random_state"))),
        ("held-out judgement", fitted.get("judgement") or "none recorded"),
        ("parameters", _params(est.get("params") or {})),
        ("normalizer", "none" if not norm else _call(norm)),
        ("columns", "; ".join(f"{k} {_column(cols[k])}" for k in
                              ("key", "batch", "control", "control_label", "dose")
                              if cols.get(k) is not None) or "none recorded"),
        ("training data", f"{'?' if fp.get('n_rows') is None else fp['n_rows']} rows x "
                          f"{fp.get('n_columns')} columns"),
        ("column spec", f"sha256 {fp.get('column_spec_sha256')}"),
        ("versions", [f"{k} {v}" for k, v in versions.items()] if versions
         else "unknown (a pickle records none)"),
    ]
    width = max(len(k) for k, _ in rows) + 2
    lines = [f"semiclip model file {path}"]
    for k, v in rows:
        text = _fill(v, width + 2) if isinstance(v, list) else str(v)
        lines.append(f"  {k + ':':<{width}}{text}")
    return "\n".join(lines)


def run(args):
    """The body of ``semiclip info``."""
    manifest = read_info(args.model, allow_pickle=args.allow_pickle, command="info")
    if args.json:
        print(json.dumps(manifest, indent=2), flush=True)
    else:
        print(format_info(args.model, manifest), flush=True)
    return 0


def add_parser(subparsers):
    """Register ``semiclip info``."""
    p = subparsers.add_parser(
        "info", help="show a model file's provenance (versions, parameters, data fingerprint)",
        description="Print what a model file of `semiclip fit` records: when and with which "
                    "versions it was written, the estimator's parameters and random_state, "
                    "the batch correction, the columns and a fingerprint of the training data. "
                    "Checks the manifest against the model the file holds; runs no code from the "
                    "file and prints control characters escaped.")
    p.add_argument("model", metavar="MODEL", help="a .semiclip model file")
    p.add_argument("--json", action="store_true", help="print the raw manifest (JSON)")
    add_model_options(p)
    p.set_defaults(func=run)
    return p
