"""Data sets: the synthetic weakly paired generator, shipped real data, table adapters, keys.

Optional dependencies (pandas, anndata, mudata) are imported only inside the
functions that use them.
"""

from .._core import make_keys
from ._adapters import from_anndata, from_dataframe
from ._doses import round_to_grid
from ._matching import MatchReport, match_report, normalize_gene_symbols
from ._mudata import from_mudata, mudata_modality
from ._real import load_lincs_cellpainting, load_ta_orf_l1000
from ._relationships import load_relationships, relationship_index
from ._synthetic import make_weakly_paired, split_by_key

__all__ = [
    "MatchReport",
    "from_anndata",
    "from_dataframe",
    "from_mudata",
    "load_lincs_cellpainting",
    "load_relationships",
    "load_ta_orf_l1000",
    "make_keys",
    "make_weakly_paired",
    "match_report",
    "mudata_modality",
    "normalize_gene_symbols",
    "relationship_index",
    "round_to_grid",
    "split_by_key",
]
