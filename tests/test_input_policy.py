"""Inputs that must not silently corrupt (issue 20): duplicate feature names, relationship
values with spaces or control bytes, one float32-range policy, and three small refusals."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from semiclip import ImageBank, SemiClippedTransformer
from semiclip.datasets import from_anndata, from_dataframe, load_relationships, round_to_grid

pd = pytest.importorskip("pandas")


# ------------------------------------------------------------------ duplicate gene names
def _adata(names, var=None):
    anndata = pytest.importorskip("anndata")
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    obs = pd.DataFrame({"Metadata_gene": ["a", "b", "c", "d"]}, index=[f"c{i}" for i in range(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata warns about non-unique names itself
        return anndata.AnnData(X, obs=obs, var=pd.DataFrame(var, index=names))


def test_duplicate_gene_names_in_anndata_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"adata\.var_names has duplicated feature names "
                                         r"'TP53'.*var_names_make_unique"):
        from_anndata(_adata(["TP53", "MDM2", "TP53"]), key="Metadata_gene")
    adata = _adata(["g0", "g1", "g2"], {"symbol": ["A", "A", "B"]})
    with pytest.raises(ValueError, match=r"adata\.var\['symbol'\] has duplicated feature names "
                                         r"'A'"):
        from_anndata(adata, key="Metadata_gene", var_column="symbol")
    ok = from_anndata(_adata(["g0", "g1", "g2"]), key="Metadata_gene")
    assert list(ok.feature_names) == ["g0", "g1", "g2"]


# ------------------------------------------------------------------ relationship files
def test_relationship_values_are_stripped_like_the_header(tmp_path):
    path = tmp_path / "rel.csv"
    path.write_text("entity1, entity2\nTP53, MDM2\n  BRCA1 ,BARD1\n")
    pairs = load_relationships(path)
    assert sorted(map(tuple, pairs.tolist())) == [("BARD1", "BRCA1"), ("MDM2", "TP53")]


@pytest.mark.parametrize("value, byte", [(b"MD\x00M2", "0x00"), (b"MD\x1b[2JM2", "0x1b")])
def test_control_bytes_in_a_relationship_file_are_refused(tmp_path, value, byte):
    path = tmp_path / "rel.csv"
    path.write_bytes(b"entity1,entity2\nTP53,BRCA1\nTP53," + value + b"\n")
    with pytest.raises(ValueError, match=rf"holds the control byte {byte} at offset \d+ "
                                         r"\(line 3, header included\)"):
        load_relationships(path)


# ------------------------------------------------------------------ the float32 policy
POLICY = r"semiclip computes in float32"


def test_values_beyond_float32_are_refused_by_every_entry_point():
    X = np.ones((3, 2))
    X[1, 0] = 1e39  # finite in float64, inf in float32
    frame = pd.DataFrame(X, columns=["g0", "g1"]).assign(Metadata_gene=["a", "b", "c"])
    with pytest.raises(ValueError, match=rf"ImageBank embeddings has values beyond float32's "
                                         rf"range .* in 1 row\(s\) \(row indices: 1\)\. {POLICY}"):
        ImageBank(X, ["a", "b", "c"])
    with pytest.raises(ValueError, match=rf"features has values beyond float32's range.*{POLICY}"):
        from_dataframe(frame, key="Metadata_gene")
    with pytest.raises(ValueError, match=rf"X has values beyond float32's range.*{POLICY}"):
        SemiClippedTransformer().fit(X, ["a", "b", "c"], image_bank=ImageBank(np.eye(3),
                                                                           ["a", "b", "c"]))


def test_rows_that_would_become_zero_in_float32_are_refused():
    X = np.ones((3, 2))
    X[2] = 1e-200  # not zero, but all zero in float32
    frame = pd.DataFrame(X, columns=["g0", "g1"]).assign(Metadata_gene=["a", "b", "c"])
    with pytest.raises(ValueError, match=rf"1 row\(s\) \(row indices: 2\) whose values are all "
                                         rf"below float32's smallest value.*{POLICY}"):
        from_dataframe(frame, key="Metadata_gene")
    X[2] = [1e-200, 1.0]  # one value lost to rounding in a row that keeps its scale: fine
    frame = pd.DataFrame(X, columns=["g0", "g1"]).assign(Metadata_gene=["a", "b", "c"])
    assert from_dataframe(frame, key="Metadata_gene").X[2].tolist() == [0, 1]


@pytest.mark.filterwarnings("ignore")
def test_a_default_fit_with_one_huge_finite_value_trains():
    from semiclip.datasets import make_weakly_paired

    data = make_weakly_paired(24, 10, n_batches=2, controls_per_batch=4, image_dim=4,
                              program_size=5, random_state=0)
    X = data.X.astype(np.float64)
    X[3, 2] = 1e20  # within float32's range; its square is not
    est = SemiClippedTransformer(control_label="control", random_state=0, max_iter=3)
    est.fit(X, data.y, image_bank=data.image_bank)  # the held-out ridge floor ran (>= 20 keys)
    assert est.validation_report_["n_keys"] >= 2 and np.isfinite(
        est.validation_report_["floor_mrr"])
    assert np.isfinite(est.transform(X)).all()


# ------------------------------------------------------------------ three small refusals
def test_round_to_grid_refuses_an_infinite_factor():
    with pytest.raises(ValueError, match=r"factor must be > 1 and finite.*got inf"):
        round_to_grid([1.0, 3.0], factor=np.inf)


class NoColumns(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return np.zeros((np.asarray(X).shape[0], 0))


@pytest.mark.filterwarnings("ignore")
def test_an_encoder_with_no_output_columns_is_a_clear_error(tiny_data):
    est = SemiClippedTransformer(encoder=NoColumns().fit(tiny_data.X), max_iter=1,
                                 control_label="control", random_state=0)
    with pytest.raises(ValueError, match=r"encoder returned 0 columns.*at least one output"):
        est.fit(tiny_data.X, tiny_data.y, image_bank=tiny_data.image_bank)


def test_bank_codes_of_mixed_key_types_name_them():
    bank = ImageBank(np.eye(3), ["a", "b", "c"])
    with pytest.raises(TypeError, match=r"keys mixes value types \(int: 1 value, e\.g\. 1; "
                                        r"str: 1 value, e\.g\. 'a'\)"):
        bank.codes(np.array([1, "a"], dtype=object))
    np.testing.assert_array_equal(bank.codes(["c", "z"]), [2, -1])
