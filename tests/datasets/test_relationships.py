"""Tests for semiclip.datasets.load_relationships (EFAAR relationship files)."""

import csv
import gzip
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest

from semiclip.datasets import load_relationships
from semiclip.datasets._relationships import clean_pairs

SHIPPED = ["HuMAP", "Reactome", "StringDB"]
DATA = Path(__file__).resolve().parents[2] / "semiclip" / "datasets" / "data" / "annotations"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _reference_clean(rows):
    """EFAAR's filter_relationships, written with Python sets and sorted()."""
    out = set()
    for a, b in rows:
        a, b = sorted([a, b])
        if a != b:
            out.add((a, b))
    return sorted(out)


def _write(path, text, compress=False):
    data = text.encode()
    if compress:
        data = gzip.compress(data)
    Path(path).write_bytes(data)
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sources_are_canonical(name):
    pairs = load_relationships(name)
    assert pairs.ndim == 2 and pairs.shape[1] == 2 and pairs.shape[0] > 10_000
    assert (pairs[:, 0] < pairs[:, 1]).all()  # sorted pairs, no self pair
    assert len({tuple(p) for p in pairs.tolist()}) == pairs.shape[0]  # no duplicate
    assert pairs.tolist() == sorted(pairs.tolist())


#: SHA-256 of the EFAAR files' pairs after _reference_clean ("a\tb" lines), recorded from the
#: raw files in ../shared/data, so the shipped copies are checked without them
EFAAR_CLEAN_SHA256 = {
    "HuMAP": "98a5e47c297e7f5dbfb8db0628c5ddf113321152f9d137641766cabc3c6a2cc1",
    "Reactome": "50a1482cefbecca444d56d8759f9d1ce375d0da863348145ec8d781523835cc4",
    "StringDB": "dc019999bd92e06b625a8b1f015faaa9d139fb92740aa635f10a3fdbc981e671",
}


def _digest(pairs):
    return hashlib.sha256("\n".join(f"{a}\t{b}" for a, b in pairs).encode()).hexdigest()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_copy_equals_efaar_file(name):
    got = load_relationships(name)
    assert _digest(got.tolist()) == EFAAR_CLEAN_SHA256[name]
    raw_file = SHARED / "annotations" / f"{name}.txt"
    if raw_file.exists():  # the raw EFAAR file too, when it sits beside the checkout
        with open(raw_file, newline="") as fh:
            expected = _reference_clean(list(csv.reader(fh))[1:])
        assert [tuple(p) for p in got.tolist()] == expected
        assert _digest(expected) == EFAAR_CLEAN_SHA256[name]
        raw = load_relationships(name, data_dir=raw_file.parent)
        assert np.array_equal(raw, got)


@pytest.mark.parametrize("name", ["CORUM", "SIGNOR", "corum"])
def test_non_commercial_sources_need_a_path(name):
    with pytest.raises(FileNotFoundError, match=r"CC-BY-NC 4\.0 .*not ship.*data_dir="):
        load_relationships(name)


def test_non_commercial_sources_from_dir_or_path(shared_data_dir):
    annotations = shared_data_dir / "annotations"
    by_dir = load_relationships("CORUM", data_dir=annotations)
    by_path = load_relationships(annotations / "CORUM.txt")
    with open(annotations / "CORUM.txt", newline="") as fh:
        expected = _reference_clean(list(csv.reader(fh))[1:])
    assert [tuple(p) for p in by_dir.tolist()] == expected
    assert np.array_equal(by_dir, by_path)
    assert load_relationships("SIGNOR", data_dir=str(annotations)).shape[0] > 1000


def test_data_dir_without_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"holds no CORUM\.txt"):
        load_relationships("CORUM", data_dir=tmp_path)
    # a shipped source falls back to the packaged copy
    assert np.array_equal(load_relationships("Reactome", data_dir=tmp_path),
                          load_relationships("Reactome"))


def test_user_file_is_cleaned_like_efaar(tmp_path):
    text = "entity1,entity2\nB,A\nA,B\nC,C\nD,A\nA,D\nB,C\n"
    path = _write(tmp_path / "mine.csv", text)
    expected = [["A", "B"], ["A", "D"], ["B", "C"]]
    assert load_relationships(path).tolist() == expected
    assert load_relationships(str(path)).tolist() == expected
    gz = _write(tmp_path / "mine.csv.gz", text, compress=True)
    assert load_relationships(gz).tolist() == expected


def test_user_file_other_layouts(tmp_path):
    # extra columns, entity2 before entity1, tab separated
    tsv = _write(tmp_path / "x.tsv", "entity2\tscore\tentity1\nB\t0.5\tA\nZ\t0.1\tY\n")
    assert load_relationships(tsv).tolist() == [["A", "B"], ["Y", "Z"]]
    # any two-column header
    two = _write(tmp_path / "two.csv", "gene_a,gene_b\nTP53,MDM2\n")
    assert load_relationships(two).tolist() == [["MDM2", "TP53"]]
    # gene names that pandas would read as missing values stay names
    na = _write(tmp_path / "na.csv", "entity1,entity2\nNA,NULL\n")
    assert load_relationships(na).tolist() == [["NA", "NULL"]]


def test_genes_filter():
    pairs = load_relationships("Reactome", genes=["SEC13", "GORASP1", "NOT_A_GENE"])
    assert pairs.tolist() == [["GORASP1", "SEC13"]]
    all_pairs = load_relationships("Reactome")
    keep = np.isin(all_pairs, ["SEC13", "GORASP1"]).all(axis=1)
    assert np.array_equal(all_pairs[keep], pairs)


def test_file_change_is_picked_up(tmp_path):
    path = _write(tmp_path / "r.csv", "entity1,entity2\nA,B\n")
    assert load_relationships(path).tolist() == [["A", "B"]]
    _write(path, "entity1,entity2\nA,C\nC,D\n")
    os.utime(path, ns=(10**18, 10**18))  # a different modification time
    assert load_relationships(path).tolist() == [["A", "C"], ["C", "D"]]


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a known source name"):
        load_relationships(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="is a directory; pass a source name with data_dir"):
        load_relationships(tmp_path)
    bad_header = _write(tmp_path / "h.csv", "a,b,c\nX,Y,Z\n")
    with pytest.raises(ValueError, match="header row naming the columns 'entity1' and 'entity2'"):
        load_relationships(bad_header)
    empty = _write(tmp_path / "e.csv", "entity1,entity2\nA,B\nC,\n")
    with pytest.raises(ValueError, match=r"1 line\(s\) with an empty gene name \(data lines 2"):
        load_relationships(empty)


def test_clean_pairs_checks_shape_and_missing():
    assert clean_pairs([["b", "a"], ["a", "b"], ["c", "c"]]).tolist() == [["a", "b"]]
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2\); got an array of shape \(3,\)"):
        clean_pairs(["a", "b", "c"])
    with pytest.raises(ValueError, match=r"missing gene names \(None/NaN\) in 1 pair"):
        clean_pairs(np.array([["a", None], ["a", "b"]], dtype=object))


def test_licence_file_attributes_shipped_sources():
    text = (DATA / "LICENSE").read_text()
    assert "CC-BY 4.0" in text and "CC0" in text
    for name in SHIPPED:
        assert f"{name}.txt.gz" in text
        assert (DATA / f"{name}.txt.gz").is_file()
    assert not list(DATA.glob("CORUM*")) and not list(DATA.glob("SIGNOR*"))


@pytest.mark.parametrize("compress", [False, True])
def test_file_not_in_utf8_names_the_file_and_the_encoding(tmp_path, compress):
    path = tmp_path / ("latin1.csv.gz" if compress else "latin1.csv")
    data = "entity1,entity2\nTP53,MDM2\nCAF\xc9,A\n".encode("latin-1")
    path.write_bytes(gzip.compress(data) if compress else data)
    expected = (f"{str(path)!r} is not UTF-8 text: byte 0xc9 at offset 29 (line 3) cannot be "
                "decoded. Relationship files are read as UTF-8")
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_relationships(path)
    # the recall metric reads it the same way
    from semiclip.metrics import known_relationship_recall

    with pytest.raises(ValueError, match=re.escape(expected)):
        known_relationship_recall(np.eye(3), ["TP53", "MDM2", "A"], relationships=path,
                                  normalize=None)


def test_file_not_in_utf8_header(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes("g\xe8ne1,entity2\nA,B\n".encode("latin-1"))
    with pytest.raises(ValueError, match=re.escape(f"{str(path)!r} is not UTF-8 text: byte 0xe8 "
                                                   "at offset 1")):
        load_relationships(path)


def test_utf8_file_with_a_byte_order_mark(tmp_path):
    path = _write(tmp_path / "bom.csv", "\ufeffentity2,score,entity1\nB,1,A\n")
    assert load_relationships(path).tolist() == [["A", "B"]]


def test_clean_pairs_pandas_missing_values():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match=r"missing gene names \(None/NaN\) in 2 pair\(s\) "
                                         r"\(rows 0, 2\)"):
        clean_pairs(np.array([["a", pd.NA], ["a", "b"], [pd.NaT, "c"]], dtype=object))
