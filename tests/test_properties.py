"""Adversarial suite over the public entry points: properties (hypothesis) and bad inputs.

Properties: retrieval mAP and known-relationship recall do not depend on the
row order, the label names or the scale of the embedding, and score a
constant embedding at chance; equal key values give equal keys; missing or
mixed labels are named. Bad inputs: every entry of ``BAD`` ends in a clear
error (our message: it names the argument) or a warning, never in a
traceback from inside numpy, torch or pandas.
"""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from semiclip import ControlNormalizer, ImageBank, PEAAugmenter, RidgeDistiller
from semiclip import SemiClippedTransformer as S
from semiclip.datasets import (
    make_keys,
    make_weakly_paired,
    match_report,
    normalize_gene_symbols,
    round_to_grid,
    split_by_key,
)
from semiclip.metrics import known_relationship_recall, mean_average_precision

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ metrics
@st.composite
def labelled_embeddings(draw, ties=False):
    """``(X, labels)``: 3-6 labels with 2-4 replicates, 3-6 dimensions.

    (In 2 dimensions every correlation is +-1 mathematically, so all
    similarities tie and only rounding orders them: no scale property holds.)
    """
    n_labels = draw(st.integers(3, 6))
    reps = draw(st.integers(2, 4))
    dim = draw(st.integers(3, 6))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_labels * reps, dim))
    if ties:  # small integers: many exactly equal similarities
        X = rng.integers(-1, 2, size=X.shape).astype(np.float64)
        X[np.all(X == 0, axis=1), 0] = 1.0
    labels = np.repeat([f"g{i}" for i in range(n_labels)], reps)
    return X, labels


def _map(X, labels, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicated rows in the tie examples
        return mean_average_precision(X, labels, **kw).map


@FAST
@given(labelled_embeddings(ties=True), st.integers(0, 2**16))
def test_map_does_not_depend_on_row_order_or_label_names(data, seed):
    X, labels = data
    perm = np.random.default_rng(seed).permutation(len(labels))
    renamed = np.array([f"renamed_{v[::-1]}" for v in labels])
    ref = _map(X, labels)
    assert _map(X[perm], labels[perm]) == pytest.approx(ref, rel=1e-12)
    assert _map(X, renamed) == pytest.approx(ref, rel=1e-12)


@FAST
@given(labelled_embeddings(), st.sampled_from([-600, -200, -3, 0, 5, 300]),
       st.sampled_from(["cosine", "correlation", "euclidean"]))
def test_map_does_not_depend_on_the_scale(data, exponent, distance):
    X, labels = data
    ref = _map(X, labels, distance=distance)
    assert _map(X * 2.0**exponent, labels, distance=distance) == pytest.approx(ref, rel=1e-9)
    if distance != "euclidean":  # each row on its own scale
        scales = 10.0 ** np.linspace(-150, 150, len(labels))
        assert _map(X * scales[:, None], labels, distance=distance) == pytest.approx(ref, rel=1e-9)


@FAST
@given(st.integers(2, 5), st.integers(2, 4), st.sampled_from([0.0, 1.0, -3.5]))
def test_a_constant_embedding_scores_chance(n_labels, reps, value):
    labels = np.repeat(np.arange(n_labels), reps)
    X = np.full((labels.size, 3), value)
    with pytest.warns(UserWarning, match="identical|zero"):
        res = mean_average_precision(X, labels)
    # every ranking of the candidates is equally likely: the expected AP of a random order
    n_pos, n_cand = reps - 1, labels.size - 1
    harmonic = sum(1.0 / k for k in range(1, n_cand + 1))
    chance = ((n_pos - 1) / (n_cand - 1) * (n_cand - harmonic) + harmonic) / n_cand
    assert res.map == pytest.approx(chance, rel=1e-9)


@pytest.fixture(scope="module")
def small():
    return make_weakly_paired(n_perturbations=40, n_genes=20, n_batches=2, controls_per_batch=6,
                              samples_per_perturbation=2, image_dim=8, random_state=0)


@FAST
@given(st.integers(0, 2**16), st.sampled_from([1e-150, 1.0, 3.0, 1e150]))
def test_recall_does_not_depend_on_row_order_or_scale(small, seed, scale):
    trt = ~small.is_control
    X, genes = small.X[trt].astype(np.float64), small.y[trt]
    perm = np.random.default_rng(seed).permutation(len(genes))
    kw = dict(relationships=small.relationships, normalize=None)
    ref = known_relationship_recall(X, genes, **kw).recall
    assert known_relationship_recall(X[perm] * scale, genes[perm], **kw).recall == ref


# --------------------------------------------------------------------- keys
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@FAST
@given(st.lists(finite, min_size=1, max_size=20))
def test_equal_doses_give_equal_keys_and_round_trip(doses):
    doses = np.array(doses)
    keys = make_keys(np.array(["G"] * doses.size), doses)
    for i in range(doses.size):
        for j in range(doses.size):
            assert (keys[i] == keys[j]) == (doses[i] == doses[j])  # -0.0 == 0.0 too
        assert float(keys[i].split("|")[1]) == doses[i]


@FAST
@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=2, max_size=12),
       st.data(), st.sampled_from(["none", "nan", "pd.NA"]))
def test_a_missing_label_is_named_by_its_row(labels, data, kind):
    pd = pytest.importorskip("pandas")
    missing = {"none": None, "nan": float("nan"), "pd.NA": pd.NA}[kind]
    row = data.draw(st.integers(0, len(labels) - 1))
    y = np.array(labels, dtype=object)
    y[row] = missing
    X = np.random.default_rng(0).normal(size=(len(labels), 3))
    with pytest.raises(ValueError, match=rf"missing.* {row}\b"):
        mean_average_precision(X, y)


@FAST
@given(st.lists(st.one_of(st.integers(0, 5), st.text(alphabet="xy", min_size=1, max_size=2)),
                min_size=2, max_size=12).filter(
    lambda v: {type(x) for x in v} == {int, str}))
def test_mixed_label_types_are_named(labels):
    y = np.array(labels, dtype=object)
    with pytest.raises(TypeError, match="mixes value types"):
        ImageBank(np.ones((len(labels), 2)), y)


# ------------------------------------------------------------- bad inputs
@pytest.fixture(scope="module")
def tiny():
    return make_weakly_paired(n_perturbations=30, n_genes=20, n_batches=3, controls_per_batch=6,
                              samples_per_perturbation=3, image_dim=8, latent_dim=4,
                              nuisance_dim=4, program_size=8, random_state=0)


FP = dict(encoder_dim=4, hidden_layer_sizes=(), max_iter=2, early_stopping=False,
          control_label="control", random_state=0)


def _fit(d, **kw):
    return S(**{**FP, **kw}).fit(d.X, d.y, image_bank=d.image_bank)


def _with(X, row, value):
    X = np.array(X, dtype=np.float64)
    X[row, 0] = value
    return X


#: name -> (call(d), exception or warning class, pattern of our message)
BAD = {
    # SemiClippedTransformer parameters
    "loss": (lambda d: _fit(d, loss="mse"), ValueError, "'loss' parameter"),
    "hidden width 0": (lambda d: _fit(d, hidden_layer_sizes=(0,)), ValueError,
                       "positive integers"),
    "hidden width 2.7": (lambda d: _fit(d, hidden_layer_sizes=(2.7,)), ValueError,
                         "2.7 at position 0"),
    "hidden width -3": (lambda d: _fit(d, hidden_layer_sizes=(8, -3)), ValueError,
                        "-3 at position 1"),
    "batch_size True": (lambda d: _fit(d, batch_size=True), ValueError, "'batch_size' parameter"),
    "max_iter True": (lambda d: _fit(d, max_iter=True), ValueError, "'max_iter' parameter"),
    "batch_size 1": (lambda d: _fit(d, batch_size=1), ValueError, "batch_size=1 cannot train"),
    "temperature 0": (lambda d: _fit(d, temperature=0), ValueError, "'temperature' parameter"),
    "learning rate nan": (lambda d: _fit(d, learning_rate_init=float("nan")), ValueError,
                          "'learning_rate_init' parameter"),
    "device": (lambda d: _fit(d, device="bogus"), ValueError, "device='bogus'"),
    "callbacks": (lambda d: _fit(d, callbacks=["x"]), TypeError, "callbacks must be objects"),
    "unfitted encoder": (lambda d: _fit(d, encoder=__import__("sklearn").decomposition.PCA(2)),
                         ValueError, "encoder PCA is not fitted"),
    "too few validation keys": (lambda d: _fit(d, early_stopping=True, validation_fraction=0.01),
                                ValueError, "early_stopping needs at least 2 validation keys"),
    # X
    "X 1-D": (lambda d: S(**FP).fit(d.X[:, 0], d.y, image_bank=d.image_bank), ValueError,
              "Expected 2D array"),
    "X 3-D": (lambda d: S(**FP).fit(d.X[:, :, None], d.y, image_bank=d.image_bank), ValueError,
              "dim 3"),
    "X no column": (lambda d: S(**FP).fit(d.X[:, :0], d.y, image_bank=d.image_bank), ValueError,
                    "0 feature"),
    "X complex": (lambda d: S(**FP).fit(d.X.astype(complex), d.y, image_bank=d.image_bank),
                  ValueError, "Complex data not supported"),
    "X NaN": (lambda d: S(**FP).fit(_with(d.X, 7, np.nan), d.y, image_bank=d.image_bank),
              ValueError, r"X contains NaN or inf in 1 row\(s\) \(row indices: 7\)"),
    "X beyond float32": (lambda d: S(**FP).fit(_with(d.X, 4, 1e39), d.y, image_bank=d.image_bank),
                         ValueError, "beyond float32's range"),
    "X other width at transform": (lambda d: _fit(d).transform(d.X[:, :-1]), ValueError,
                                   "X has 19 features"),
    "not fitted": (lambda d: S().transform(d.X), Exception, "is not fitted yet"),
    # keys, batch, bank
    "y missing": (lambda d: S(**FP).fit(d.X, None, image_bank=d.image_bank), ValueError,
                  "requires y to be passed"),
    "y 2-D": (lambda d: S(**FP).fit(d.X, np.c_[d.y, d.y], image_bank=d.image_bank), ValueError,
              "y must be 1-D"),
    "y short": (lambda d: S(**FP).fit(d.X, d.y[:-1], image_bank=d.image_bank), ValueError,
                "y has 107 entries but X has 108 rows"),
    "y mixed types": (lambda d: S(**FP).fit(d.X, np.array([1, "a"] * 54, dtype=object),
                                          image_bank=d.image_bank),
                      TypeError, "y mixes value types"),
    "y None label": (lambda d: S(**FP).fit(d.X, np.r_[d.y[:-1].astype(object), None],
                                          image_bank=d.image_bank), ValueError, "missing labels"),
    "keys not in bank": (lambda d: S(**FP).fit(d.X, d.y, image_bank=ImageBank(np.ones((2, 8)),
                                                                           ["q", "r"])),
                         ValueError, "have no row in image_bank"),
    "one paired key": (lambda d: S(**FP).fit(d.X[d.y == d.y[0]], d.y[d.y == d.y[0]],
                                            image_bank=d.image_bank),
                       ValueError, "at least 2 distinct paired keys"),
    "bank array": (lambda d: S(**FP).fit(d.X, d.y, image_bank=d.image_bank.embeddings), TypeError,
                   "image_bank must be an ImageBank"),
    "bank all zero": (lambda d: S(**FP).fit(d.X, d.y, image_bank=ImageBank(
        np.zeros_like(d.image_bank.embeddings), d.image_bank.keys)), ValueError, "is zero"),
    "bank keys short": (lambda d: ImageBank(np.ones((3, 2)), ["a", "b"]), ValueError,
                        "ImageBank keys has 2 entries but embeddings has 3 rows"),
    "bank NaN": (lambda d: ImageBank(_with(np.ones((3, 2)), 1, np.inf), list("abc")), ValueError,
                 "ImageBank embeddings contains NaN or inf"),
    "batch short": (lambda d: S(**FP, augmenter=PEAAugmenter()).fit(
        d.X, d.y, image_bank=d.image_bank, batch=d.batch[:-1]),
                    ValueError, "batch has 107 entries"),
    "batch unseen": (lambda d: ControlNormalizer(control_label="control").fit(
        d.X, d.y, batch=d.batch).transform(d.X[:2], batch=["zz", "zz"]), ValueError,
                     "never seen in fit: 'zz'"),
    "batch forgotten": (lambda d: ControlNormalizer(control_label="control").fit(
        d.X, d.y, batch=d.batch).transform(d.X), ValueError, "batch is required"),
    "no control label": (lambda d: ControlNormalizer().fit(d.X, d.y), ValueError,
                         "needs control_label"),
    "control label absent": (lambda d: ControlNormalizer(control_label="DMSO").fit(d.X, d.y),
                             ValueError, "No control samples"),
    "PEA probs inf": (lambda d: PEAAugmenter(transform_probs=[1, np.inf, 1],
                                             control_label="control").fit(d.X, d.y, batch=d.batch),
                      ValueError, "transform_probs must be finite"),
    "PEA transforms": (lambda d: PEAAugmenter(("foo",), control_label="control").fit(
        d.X, d.y, batch=d.batch), ValueError, "transforms must be a non-empty sequence"),
    "ridge boolean dim": (lambda d: RidgeDistiller(encoder_dim=True).fit(
        d.X, d.y, image_bank=d.image_bank), ValueError, "'encoder_dim' parameter"),
    # metrics
    "mAP one label": (lambda d: mean_average_precision(d.X[:5], ["a"] * 5), ValueError,
                      "labels has one value"),
    "mAP labels short": (lambda d: mean_average_precision(d.X, d.y[:-1]), ValueError,
                         "labels has 107 entries"),
    "mAP distance": (lambda d: mean_average_precision(d.X, d.y, distance="manhattan"), ValueError,
                     "distance must be one of"),
    "mAP NaN": (lambda d: mean_average_precision(_with(d.X, 3, np.nan), d.y), ValueError,
                "embeddings contains NaN or inf"),
    "mAP collapsed": (lambda d: mean_average_precision(np.ones_like(d.X), d.y), UserWarning,
                      "identical"),
    "recall unknown source": (lambda d: known_relationship_recall(d.X, d.y, relationships="NOPE",
                                                                  normalize=None),
                              FileNotFoundError, "not a known source name"),
    "recall no overlap": (lambda d: known_relationship_recall(
        d.X, d.y, relationships=[["z1", "z2"]], normalize=None),
                          ValueError, "No gene of the embedding is in relationships"),
    # key helpers
    "make_keys separator": (lambda d: make_keys(["a|b"], ["c"]), ValueError, "separator '|'"),
    "make_keys lengths": (lambda d: make_keys(["a", "b"], ["c"]), ValueError, "differ in length"),
    "round_to_grid decimals": (lambda d: round_to_grid([1.0], decimals=2.7), TypeError,
                               "decimals must be an integer"),
    "round_to_grid negative": (lambda d: round_to_grid([-1.0], decimals=2), ValueError,
                               "doses must be finite and >= 0"),
    "gene symbols not str": (lambda d: normalize_gene_symbols([1, 2]), TypeError,
                             "symbols must be strings"),
    "match_report mixed": (lambda d: match_report(np.array([1, "a"], dtype=object), ["a"]),
                           TypeError, "tx_keys mixes value types"),
    "split size": (lambda d: split_by_key(d.y, test_size=1.5), ValueError, "test_size=1.5"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_ends_in_a_clear_error_or_warning(tiny, name):
    call, kind, pattern = BAD[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        if issubclass(kind, Warning):
            with pytest.warns(kind, match=pattern):
                call(tiny)
        else:
            with pytest.raises(kind, match=pattern) as info:
                call(tiny)
            assert "\n" not in str(info.value).strip() or name in ("X 1-D", "X complex")


def test_the_catalogue_is_large():
    assert len(BAD) >= 40


# ------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def table(tmp_path_factory, tiny):
    pd = pytest.importorskip("pandas")
    d = tmp_path_factory.mktemp("props")
    tx = pd.DataFrame(tiny.X, columns=[f"g{j}" for j in range(tiny.X.shape[1])])
    tx.insert(0, "Metadata_gene", tiny.y)
    tx.insert(1, "Metadata_Plate", tiny.batch)
    tx.to_csv(d / "tx.csv", index=False)
    img = pd.DataFrame(tiny.image_bank.embeddings)
    img.columns = [f"e{j}" for j in range(img.shape[1])]
    img.insert(0, "Metadata_gene", tiny.image_bank.keys)
    img.to_csv(d / "img.csv", index=False)
    return d


CLI_BAD = {
    "missing --tx file": (["--tx", "{d}/nope.csv"], "no file at"),
    "unknown suffix": (["--tx", "{d}/tx.xlsx"], "cannot tell the format"),
    "missing key column": (["--key-col", "Metadata_nope"], "column(s) 'Metadata_nope' not found"),
    "missing batch column": (["--batch-col", "Metadata_nope"], "'Metadata_nope' not found"),
    "hidden sizes": (["--hidden-layer-sizes", "8,-3"], "hidden-layer-sizes"),
    "device": (["--device", "bogus"], "bogus"),
    "output is a directory": (["-o", "{d}"], "directory"),
    "output is the input": (["-o", "{d}/tx.csv"], ""),
}


@pytest.mark.parametrize("name", sorted(CLI_BAD))
def test_cli_bad_paths_and_columns_exit_2_with_one_line(table, name, capsys):
    from semiclip.cli import main

    args = {"--tx": f"{table}/tx.csv", "--images": f"{table}/img.csv",
            "--key-col": "Metadata_gene", "--batch-col": "Metadata_Plate",
            "--control-label": "control", "-o": f"{table}/m.semiclip"}
    extra, pattern = CLI_BAD[name]
    for flag, value in zip(extra[::2], extra[1::2]):
        args[flag] = value.format(d=table)
    argv = ["fit", "--max-iter", "1", "--verbose", "0"]
    for flag, value in args.items():
        argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semiclip fit: error:") and len(err.splitlines()) == 1, err
    assert re.search(re.escape(pattern), err), err


# ------------------------------------------------------------------ model files (issue 20)
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A small fitted model (with a normaliser and a PEA augmenter) as the members of its
    file, its transform input and the names of its estimator's attributes."""
    import json
    import zipfile

    from semiclip.persistence import save_model

    data = make_weakly_paired(20, 10, n_batches=2, controls_per_batch=4, image_dim=4,
                              program_size=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = ControlNormalizer(control_label="control").fit(data.X, data.y, batch=data.batch)
        est = S(encoder_dim=4, max_iter=1, control_label="control", random_state=0,
                augmenter=PEAAugmenter(random_state=0))
        est.fit(data.X, data.y, image_bank=data.image_bank, batch=data.batch)
    path = save_model(tmp_path_factory.mktemp("fuzz") / "m.semiclip", est, normalizer=norm)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    state = json.loads(members["state.json"])
    names = sorted(k for k, _ in state["estimator"]["state"]["$dict"])
    return members, names, data


def _json_values(n_arrays):
    """Values of a state tree: plain JSON, tagged containers, array references, objects."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-2**70, 2**70),
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
        st.sampled_from([{"$float": "nan"}, {"$float": "inf"}]),
        st.integers(-1, n_arrays).map(lambda i: {"$array": i}),
        st.integers(0, n_arrays - 1).map(lambda i: {"$scalar": i}),
        st.sampled_from(["semiclip.nn.History", "semiclip.ImageBank", "sklearn.decomposition.PCA",
                         "semiclip.nn.LinearDecoder"]).map(
            lambda name: {"$object": name, "state": {"$dict": []}}))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(lambda v: {"$tuple": v}),
        st.lists(st.tuples(st.text(max_size=4), inner).map(list), max_size=3).map(
            lambda pairs: {"$dict": pairs})), max_leaves=6)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
# a fuzzed PCA state may lose scikit-learn's version stamp: scikit-learn's own warning is right
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.InconsistentVersionWarning")
def test_fuzzed_attribute_values_load_as_a_working_model_or_one_value_error(saved_model, data):
    """Any attribute of the saved estimator set to any value of the file's tree (the manifest's
    parameters follow): ``load_model`` gives a model that transforms, or one ValueError."""
    import json
    import tempfile
    import zipfile
    from pathlib import Path

    from semiclip.persistence import load_model, model_info

    members, names, weak = saved_model
    n_arrays = sum(n.startswith("arrays/") for n in members)
    name = data.draw(st.sampled_from(names), label="attribute")
    value = data.draw(_json_values(n_arrays), label="value")
    state = json.loads(members["state.json"])
    pairs = state["estimator"]["state"]["$dict"]
    state["estimator"]["state"]["$dict"] = [[k, value if k == name else v] for k, v in pairs]
    manifest = json.loads(members["manifest.json"])
    if name in manifest["estimator"]["params"]:
        manifest["estimator"]["params"][name] = value
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.semiclip"
        with zipfile.ZipFile(path, "w") as zf:
            for member, blob in {**members, "state.json": json.dumps(state).encode(),
                                 "manifest.json": json.dumps(manifest).encode()}.items():
                zf.writestr(member, blob)
        try:
            info = model_info(path)
        except ValueError as exc:
            assert str(exc).startswith(repr(str(path))), exc
        else:
            assert info["estimator"]["class"] == "SemiClippedTransformer"
        try:
            loaded = load_model(path)
        except ValueError as exc:
            assert str(exc).startswith(repr(str(path))), exc
            return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = loaded.normalizer.transform(weak.X, batch=weak.batch)
        Z = loaded.estimator.transform(X, batch=weak.batch)
    assert Z.shape == (weak.X.shape[0], loaded.estimator.get_feature_names_out().size)
    assert np.isfinite(Z).all()
