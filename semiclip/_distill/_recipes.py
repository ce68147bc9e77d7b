"""Resolution of ``"auto"`` hyper-parameters from a recipe and the data size."""

import numbers

import numpy as np

__all__ = [
    "LARGE_KEYS",
    "MIN_STEPS_PER_EPOCH",
    "PAPER",
    "check_hidden_layer_sizes",
    "resolve_recipe",
]

PAPER = {
    "hidden_layer_sizes": (1024, 1024),
    "solver": "sgd",
    "batch_size": 1024,
    "max_iter": 150,
    "learning_rate_init": 1e-3,
    "weight_decay": 1e-4,
    "early_stopping": False,
}

# Below this many paired keys a linear adapter generalises better than the
# paper's 1024-1024 MLP (measured on make_weakly_paired, see the benchmarks).
LARGE_KEYS = 2000
MIN_STEPS_PER_EPOCH = 8


def _auto(n_samples, n_keys):
    large = n_keys >= LARGE_KEYS
    return {
        "hidden_layer_sizes": (1024, 1024) if large else (),
        "solver": "adam",
        "batch_size": int(min(1024, max(32, n_samples // MIN_STEPS_PER_EPOCH))),
        "max_iter": 200,
        "learning_rate_init": 1e-3,
        "weight_decay": 1e-4,
        "early_stopping": n_keys >= 20,
    }


def resolve_recipe(est, *, n_samples, n_keys):
    """Return the effective hyper-parameters of ``est`` (no ``"auto"`` left).

    Explicit parameter values win; ``"auto"`` ones come from the recipe:
    the paper's fixed values for ``recipe="paper"``, data-size dependent
    values for ``recipe="auto"``.
    """
    base = dict(PAPER) if est.recipe == "paper" else _auto(n_samples, n_keys)
    resolved = {}
    for name, default in base.items():
        value = getattr(est, name)
        if isinstance(value, str) and value == "auto":
            value = default
        if name == "hidden_layer_sizes":
            value = check_hidden_layer_sizes(value)
        resolved[name] = value
    return resolved


def check_hidden_layer_sizes(sizes):
    """``sizes`` as a tuple of int; a ValueError naming every entry that is not a positive int.

    Floats (``2.7`` would silently become 2), booleans, strings and widths
    below 1 are refused; numpy integers are accepted.
    """
    entries = list(np.asarray(sizes, dtype=object).ravel())
    bad = [(i, h) for i, h in enumerate(entries)
           if isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral) or h < 1]
    if bad:
        shown = ", ".join(f"{h.item() if isinstance(h, np.generic) else h!r} at position {i}"
                          for i, h in bad[:5])
        more = f", ... ({len(bad)} in total)" if len(bad) > 5 else ""
        raise ValueError(
            f"hidden_layer_sizes must hold positive integers (the width of every hidden "
            f"layer); got {shown}{more} in {tuple(entries)!r}. Use e.g. "
            "hidden_layer_sizes=(1024, 1024), () for a linear adapter, or 'auto'."
        )
    return tuple(int(h) for h in entries)
