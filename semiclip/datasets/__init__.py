"""Data sets: the synthetic weakly paired generator, shipped real data, adapters.

Names are imported lazily so that optional dependencies (pandas, anndata)
are only needed by the functions that use them.
"""

from importlib import import_module

_LAZY = {
    "make_weakly_paired": "._synthetic",
    "split_by_key": "._synthetic",
    "load_relationships": "._relationships",
    "load_ta_orf_l1000": "._real",
    "load_lincs_cellpainting": "._real",
    "from_dataframe": "._adapters",
    "from_anndata": "._adapters",
    "make_keys": "._keys",
    "normalize_gene_symbols": "._keys",
    "round_to_grid": "._keys",
    "match_report": "._keys",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semiclip.datasets' has no attribute {name!r}")


def __dir__():
    return __all__
