"""Relationship sources of the recall: names, paths, arrays -> gene index pairs."""

from os import PathLike

import numpy as np

from .._core import format_examples


def is_source_list(relationships):
    if not isinstance(relationships, (list, tuple)) or not relationships:
        return False
    return all(isinstance(r, (str, PathLike)) for r in relationships) and not (
        np.asarray(relationships, dtype=object).ndim == 2
    )


def sources_of(relationships):
    if isinstance(relationships, dict):
        if not relationships:
            raise ValueError("relationships is an empty dict; give at least one source.")
        return {str(k): v for k, v in relationships.items()}
    if is_source_list(relationships):
        return {str(r): r for r in relationships}
    if isinstance(relationships, (str, PathLike)):
        return {str(relationships): relationships}
    return {"<array>": relationships}


def pairs_in_map(spec, names, key, data_dir):
    """Gene indices (i < j) of the source's pairs present in the map, plus counts."""
    from ..datasets import relationship_index

    db_genes, a, b = relationship_index(spec, data_dir=data_dir)
    if a.size == 0:
        raise ValueError(f"relationships {key!r} holds no gene pair (after cleaning).")
    pos = np.searchsorted(names, db_genes)
    present = names[np.minimum(pos, names.size - 1)] == db_genes
    if not present.any():
        hint = ""
        n_case = np.isin(np.char.upper(db_genes), np.char.upper(names)).sum()
        if n_case:
            hint = (
                f" {int(n_case)} genes match when case is ignored: the identifiers "
                "differ in case."
            )
        raise ValueError(
            f"No gene of the embedding is in relationships {key!r} (overlap 0 of "
            f"{names.size} embedding genes and {db_genes.size} database genes). "
            f"Embedding genes: {format_examples(names)}; database genes: "
            f"{format_examples(db_genes)}.{hint} Check that both use the same "
            "identifiers (HGNC symbols, same case; not Ensembl IDs vs symbols)."
        )
    in_map = np.where(present, pos, -1)
    i, j = in_map[a], in_map[b]
    keep = (i >= 0) & (j >= 0)
    i, j = i[keep], j[keep]
    return (
        np.minimum(i, j).astype(np.int64),
        np.maximum(i, j).astype(np.int64),
        int((~keep).sum()),
        int((~present).sum()),
    )
