"""Gene attributions: exactness on linear models, and recovery of known driver genes."""

import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from semiclip import SemiClippedTransformer
from semiclip.interpret import decoder_attributions, gradient_attributions

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def linear_model(tiny_data):
    return SemiClippedTransformer(encoder_dim=8, hidden_layer_sizes=(), max_iter=3,
                                  early_stopping=False, control_label="control",
                                  random_state=0).fit(tiny_data.X, tiny_data.y,
                                                      image_bank=tiny_data.image_bank)


def test_gradient_x_input_is_exact_for_a_linear_model(linear_model, tiny_data):
    # f(x) = A (C (x - mu)) + c  =>  d(v.f)/dx = C^T A^T v, independent of x
    est = linear_model
    v = np.random.default_rng(0).standard_normal(8)
    C = est.encoder_.components_.astype(np.float64)
    A = est.adapter_[0].weight.detach().numpy().astype(np.float64)
    grad = C.T @ A.T @ v
    X = tiny_data.X[:6]
    base = X.mean(0)
    att = gradient_attributions(est, X, direction=v, baseline=base)
    np.testing.assert_allclose(att.values, (X - base) * grad, rtol=1e-4, atol=1e-4)
    # completeness for a linear map: attributions sum to s(x) - s(baseline)
    s = est.transform(X) @ v - est.transform(base[None, :]) @ v
    np.testing.assert_allclose(att.values.sum(1), s, rtol=1e-3, atol=1e-3)


def test_mlp_gradients_match_finite_differences(tiny_data):
    est = SemiClippedTransformer(encoder_dim=8, hidden_layer_sizes=(16,), max_iter=2,
                                 early_stopping=False, control_label="control",
                                 random_state=0).fit(tiny_data.X, tiny_data.y,
                                                     image_bank=tiny_data.image_bank)
    v = np.random.default_rng(1).standard_normal(8)
    x = tiny_data.X[:1].astype(np.float64)
    att = gradient_attributions(est, x, direction=v)
    eps = 1e-2
    for g in (0, 5, 17):
        xp, xm = x.copy(), x.copy()
        xp[0, g] += eps
        xm[0, g] -= eps
        fd = (est.transform(xp.astype(np.float32)) @ v
              - est.transform(xm.astype(np.float32)) @ v) / (2 * eps)
        assert att.values[0, g] == pytest.approx(x[0, g] * fd[0], rel=2e-2, abs=2e-3)


def test_decoder_attributions_equal_inverse_transform_difference(linear_model):
    v = np.random.default_rng(2).standard_normal(8).astype(np.float32)
    att = decoder_attributions(linear_model, direction=v)
    z0 = np.zeros((1, 8), np.float32)
    expected = linear_model.inverse_transform(z0 + v) - linear_model.inverse_transform(z0)
    np.testing.assert_allclose(att.values, expected[0], atol=1e-4)
    assert att.values.shape == (30,) and att.method == "decoder"


def test_probe_attributions_recover_ground_truth_driver_genes():
    from semiclip.datasets import make_weakly_paired

    d = make_weakly_paired(n_perturbations=200, n_genes=300, n_groups=10, tx_signal=1.0,
                           tx_nuisance=0.5, random_state=0)
    group = dict(zip(d.perturbations, d.groups))
    trt = ~d.is_control
    target = np.array([group[k] for k in d.y[trt]])
    pipe = make_pipeline(SemiClippedTransformer(control_label="control", random_state=0),
                         LogisticRegression(max_iter=2000))
    pipe.fit(d.X[trt], target, semiclippedtransformer__image_bank=d.image_bank,
             semiclippedtransformer__keys=d.y[trt])
    enrichments = []
    for k in range(3):
        rows = d.X[trt][target == k]
        att = gradient_attributions(pipe, rows, target=k, baseline=d.X[d.is_control].mean(0))
        names, _ = att.top(20)
        top = {int(n[1:]) for n in names}
        enrichments.append(len(top & set(d.driver_genes[k].tolist())) / 20)
    # chance overlap of two random 20-gene sets out of 300 is 20/300 ~ 0.07
    assert np.mean(enrichments) > 0.3


def test_attributions_bad_input(linear_model, tiny_data):
    with pytest.raises(ValueError, match="direction has 3 entries"):
        gradient_attributions(linear_model, tiny_data.X[:2], direction=np.ones(3))
    with pytest.raises(ValueError, match="Give a direction"):
        gradient_attributions(linear_model, tiny_data.X[:2])
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 30\)"):
        gradient_attributions(linear_model, tiny_data.X[:2, :5], direction=np.ones(8))
    bad = tiny_data.X[:2].copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        gradient_attributions(linear_model, bad, direction=np.ones(8))


def test_to_frame_and_feature_names(linear_model, tiny_data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(tiny_data.X, columns=tiny_data.feature_names)
    est = SemiClippedTransformer(**linear_model.get_params()).fit(
        frame, tiny_data.y, image_bank=tiny_data.image_bank)
    att = gradient_attributions(est, tiny_data.X[:3], direction=np.ones(8))
    out = att.to_frame()
    assert list(out.columns) == list(tiny_data.feature_names) and out.shape == (3, 30)


def test_attributions_bad_baseline_and_batch_size(linear_model, tiny_data):
    X = tiny_data.X[:4]
    v = np.ones(8)
    with pytest.raises(ValueError, match=r"baseline has 5 entries but X has 30 genes \(columns\)"):
        gradient_attributions(linear_model, X, direction=v, baseline=np.zeros(5))
    with pytest.raises(ValueError, match="baseline contains NaN or inf"):
        gradient_attributions(linear_model, X, direction=v, baseline=np.full(30, np.nan))
    for bad in (0, -2, True, 2.5):
        with pytest.raises(ValueError, match=rf"batch_size must be a positive integer; got "
                                             rf"{bad!r}"):
            gradient_attributions(linear_model, X, direction=v, batch_size=bad)
    # a batch size that does not divide the rows gives the same values as one batch
    np.testing.assert_allclose(
        gradient_attributions(linear_model, X, direction=v, batch_size=3).values,
        gradient_attributions(linear_model, X, direction=v).values, rtol=1e-6, atol=1e-7)


def test_binary_probe_target_must_be_a_class(linear_model, tiny_data):
    y = tiny_data.y
    paired = y != "control"
    classes = np.unique(y[paired])[:2]
    rows = np.isin(y, classes)
    probe = LogisticRegression().fit(linear_model.transform(tiny_data.X[rows]), y[rows])
    pipe = make_pipeline(linear_model, probe)  # both steps fitted, nothing refitted
    with pytest.raises(ValueError, match=rf"target='nope' is not a class of the probe; classes "
                                         rf"are \['{classes[0]}', '{classes[1]}'\]"):
        gradient_attributions(pipe, tiny_data.X[:2], target="nope")
    a = gradient_attributions(pipe, tiny_data.X[:2], target=classes[0]).values
    b = gradient_attributions(pipe, tiny_data.X[:2], target=classes[1]).values
    np.testing.assert_allclose(a, -b, rtol=1e-6)  # the two classes of one score


def test_attributions_name_values_beyond_float32_range(linear_model, tiny_data):
    X = tiny_data.X[:4].astype(np.float64)
    X[2, 3] = 1e39  # finite here, inf once cast to float32
    msg = r"X has values beyond float32's range .*\(row indices: 2\)"
    with pytest.raises(ValueError, match=msg):
        gradient_attributions(linear_model, X, direction=np.ones(8))


# -- gene names, whichever way the model was fitted -------------------------------------
def test_names_come_from_a_dataframe_x_or_feature_names(linear_model, tiny_data):
    pd = pytest.importorskip("pandas")
    names = [f"GENE{j}" for j in range(30)]
    X = tiny_data.X[:3]
    v = np.ones(8)
    assert getattr(linear_model, "feature_names_in_", None) is None  # fitted on an array
    by_frame = gradient_attributions(linear_model, pd.DataFrame(X, columns=names), direction=v)
    by_arg = gradient_attributions(linear_model, X, direction=v, feature_names=names)
    assert by_frame.feature_names.tolist() == names == by_arg.feature_names.tolist()
    np.testing.assert_array_equal(by_frame.values, by_arg.values)
    assert decoder_attributions(linear_model, direction=v,
                                feature_names=names).feature_names.tolist() == names
    with pytest.raises(ValueError, match="feature_names has 2 entries but X has 30 genes"):
        gradient_attributions(linear_model, X, direction=v, feature_names=["a", "b"])


def test_dataframe_columns_must_match_the_fitted_names(tiny_data, linear_model):
    pd = pytest.importorskip("pandas")
    names = [f"GENE{j}" for j in range(30)]
    est = SemiClippedTransformer(**linear_model.get_params()).fit(
        pd.DataFrame(tiny_data.X, columns=names), tiny_data.y, image_bank=tiny_data.image_bank)
    swapped = pd.DataFrame(tiny_data.X[:2], columns=names[1::-1] + names[2:])
    with pytest.raises(ValueError, match=re.escape("X's columns differ from the feature names the "
                                                   "estimator was fitted on at 2 position(s) "
                                                   "(e.g. position 0: 'GENE1' instead of "
                                                   "'GENE0')")):
        gradient_attributions(est, swapped, direction=np.ones(8))


def test_one_direction_per_sample_equals_one_call_per_sample(linear_model, tiny_data):
    X = tiny_data.X[:5]
    V = np.random.default_rng(3).standard_normal((5, 8))
    together = gradient_attributions(linear_model, X, direction=V, batch_size=2).values
    apart = np.vstack([gradient_attributions(linear_model, X[i:i + 1], direction=V[i]).values
                       for i in range(5)])
    np.testing.assert_allclose(together, apart, rtol=1e-6, atol=1e-7)
    # and the closed form of a linear model: (x - 0) * C^T A^T v_i
    C = linear_model.encoder_.components_.astype(np.float64)
    A = linear_model.adapter_[0].weight.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(together, X * (V @ A @ C), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=re.escape("direction has shape (4, 8); pass one "
                                                   "direction of 8 entries, or one per sample, "
                                                   "shape (5, 8)")):
        gradient_attributions(linear_model, X, direction=V[:4])


def test_batch_applies_the_canonical_correction_of_a_pea_model(tiny_data):
    from semiclip import PEAAugmenter

    d = tiny_data
    est = SemiClippedTransformer(encoder_dim=8, hidden_layer_sizes=(), max_iter=2,
                                 control_label="control", random_state=0,
                                 augmenter=PEAAugmenter(random_state=0))
    est.fit(d.X, d.y, image_bank=d.image_bank, batch=d.batch)
    v = np.ones(8)
    corrected = est.correction_.transform(d.X[:6], batch=d.batch[:6])
    np.testing.assert_array_equal(
        gradient_attributions(est, d.X[:6], direction=v, batch=d.batch[:6]).values,
        gradient_attributions(est, corrected, direction=v).values)


def test_batch_without_a_correction_is_refused(linear_model, tiny_data):
    with pytest.raises(ValueError, match="batch= applies the canonical batch correction"):
        gradient_attributions(linear_model, tiny_data.X[:2], direction=np.ones(8),
                              batch=tiny_data.batch[:2])


@pytest.fixture(scope="module")
def ta_orf():
    """The shipped TA-ORF table through the docs' recipe, with a random teacher per gene."""
    pytest.importorskip("pandas")
    from semiclip import ImageBank
    from semiclip.datasets import from_dataframe, load_ta_orf_l1000

    table = load_ta_orf_l1000(as_frame=True).frame
    tx = from_dataframe(table, key="Metadata_gene", batch="Metadata_Plate",
                        control=("Metadata_pert_type", ["ctl_vector", "ctl_untrt"]),
                        as_frame=True)
    genes = np.unique(tx.y[~tx.is_control].astype(str))
    bank = ImageBank(np.random.default_rng(0).standard_normal((genes.size, 4)), genes)
    return table, tx, bank


# a toy fit: its held-out judgement is tested in distill/test_selection.py
@pytest.mark.filterwarnings("ignore::semiclip.exceptions.GeneralizationWarning")
def test_the_from_dataframe_recipe_gives_gene_symbols(ta_orf):
    table, tx, bank = ta_orf
    est = SemiClippedTransformer(encoder_dim=4, hidden_layer_sizes=(), max_iter=1,
                                 control_label=tx.control_label, random_state=0)
    est.fit(tx.data, tx.y, image_bank=bank)
    symbols = list(table.columns[7:])  # the published column names
    assert est.feature_names_in_.tolist() == symbols
    att = gradient_attributions(est, tx.data.iloc[:4], direction=np.ones(4))
    assert att.feature_names.tolist() == symbols
    names, _ = att.top(5)
    assert set(names) <= set(symbols) and not any(re.fullmatch(r"x\d+", n) for n in names)
    assert att.to_series().index.tolist() == symbols
    assert decoder_attributions(est, direction=np.ones(4)).feature_names.tolist() == symbols


def test_a_pea_model_fitted_on_a_dataframe_warns_nothing_about_feature_names(tiny_data):
    pd = pytest.importorskip("pandas")
    import warnings

    from semiclip import PEAAugmenter

    d = tiny_data
    frame = pd.DataFrame(d.X, columns=[f"GENE{j}" for j in range(d.X.shape[1])])
    est = SemiClippedTransformer(encoder_dim=8, hidden_layer_sizes=(), max_iter=2,
                                 control_label="control", random_state=0,
                                 augmenter=PEAAugmenter(random_state=0))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*feature names")
        warnings.filterwarnings("ignore", category=UserWarning, message="^(?!.*feature names)")
        est.fit(frame, d.y, image_bank=d.image_bank, batch=d.batch)
        Z = est.transform(frame, batch=d.batch)
        att = gradient_attributions(est, frame.iloc[:4], direction=np.ones(8), batch=d.batch[:4])
    # an array without names, given to a model fitted on names: scikit-learn says so
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(Z, est.transform(d.X, batch=d.batch))
    assert att.feature_names.tolist() == list(frame.columns)
