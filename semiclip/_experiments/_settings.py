"""Held-out settings: real L1000 with a knowledge-derived teacher, consensus profiles, the demo.

A *setting* is everything a benchmark row needs for one seed, already split
by key: training and held-out profiles (batch-corrected on the training
controls), their keys and plates, the teacher bank, and what the held-out
keys are scored against (relationship databases, teacher centroids).

- :func:`ta_orf_knowledge`: the shipped TA-ORF L1000 plates (222 over-expressed
  genes, ~4 wells each, 3 plates). No image data exist for them, so the
  teacher is built from knowledge: a graph embedding of one relationship
  database (smoothed random features, :func:`graph_teacher`) plus noise,
  four rows per gene. Recall is scored on the *other* databases, on genes
  held out of training: the teacher carries relationships the
  transcriptomics only hint at, as morphology does.
- :func:`demo_setting`: the data of ``semiclip demo``
  (:func:`~semiclip.datasets.make_weakly_paired` defaults, many samples per
  key on 12 plates), a third of the keys held out, as in
  :func:`~semiclip._experiments.run_heldout`.
- :func:`consensus`: :func:`~semiclip.datasets.make_weakly_paired` reduced to
  one consensus profile per perturbation (the mean of its TVN-corrected
  samples), a few hundred keys: the regime of compound screens with one
  signature per compound and dose.
- :func:`consensus_weak`: the same with 240 keys (160 in training) and a
  weaker transcriptomic signal (``tx_signal=0.25``): the small, weak regime
  where a contrastive adapter started at random falls far below ridge.
- :func:`ta_orf_cross_plate`: real data on both sides. The TA-ORF L1000
  plates, one plate (``X1``, TVN on its controls) as the teacher bank and
  the other two plates as the student; half of the genes held out. The
  "teacher" is the same assay measured in another experiment, so what
  carries to new genes is the biology the plates share.
"""

import warnings

import numpy as np
from sklearn.utils import Bunch

__all__ = ["REAL_SETTINGS", "SETTING_TITLES", "consensus", "consensus_weak", "demo_setting",
           "graph_teacher", "ta_orf_cross_plate", "ta_orf_knowledge"]

#: relationship database the TA-ORF teacher is built from; recall is scored on the others
TEACHER_SOURCE = "StringDB"
SCORE_SOURCES = ("HuMAP", "Reactome")


def graph_teacher(genes, pairs, *, dim=64, smoothing=5.0, noise=0.5, rows_per_key=4,
                  random_state=0):
    """Teacher rows from a gene graph: smoothed random features plus noise.

    ``E = (I + smoothing * L)^-1 R`` with ``L`` the normalised Laplacian of
    the graph of ``pairs`` among ``genes`` and ``R`` standard normal
    (``len(genes) x dim``): related genes get similar rows, isolated genes
    their own random direction. Rows are scaled to unit norm and every gene
    gets ``rows_per_key`` rows ``E_g + noise * N(0, I / dim)``.

    Returns ``(embeddings, keys)`` for :class:`~semiclip.ImageBank`.
    """
    rng = np.random.default_rng(random_state)
    genes = np.asarray(genes)
    index = {g: i for i, g in enumerate(genes.tolist())}
    n = genes.size
    A = np.zeros((n, n))
    for a, b in pairs:
        if a in index and b in index and a != b:
            A[index[a], index[b]] = A[index[b], index[a]] = 1.0
    degree = A.sum(axis=1)
    inv = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    L = np.eye(n) - inv[:, None] * A * inv[None, :]
    E = np.linalg.solve(np.eye(n) + smoothing * L, rng.standard_normal((n, dim)))
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    rows = np.repeat(np.arange(n), rows_per_key)
    emb = E[rows] + noise * rng.standard_normal((rows.size, dim)) / np.sqrt(dim)
    return emb.astype(np.float32), genes[rows]


def _split_and_correct(X, y, batch, control_label, seed, test_size, method):
    """Split the keys, fit the correction on the training controls, apply it to both sides."""
    from .._correction import ControlNormalizer
    from ..datasets import split_by_key

    tr, te = split_by_key(y, test_size=test_size, control_label=control_label, random_state=seed)
    norm = ControlNormalizer(method, control_label=control_label, basis="feature")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        Xtr = norm.fit_transform(X[tr], y[tr], batch=batch[tr])
        Xte = norm.transform(X[te], batch=batch[te])
    return tr, te, Xtr, Xte


def ta_orf_knowledge(seed=0, *, test_size=0.5, teacher_source=TEACHER_SOURCE,
                     score_sources=SCORE_SOURCES):
    """The TA-ORF L1000 knowledge-teacher setting for one seed (see the module docstring).

    Half of the genes are held out (``test_size``): with a third, the
    held-out genes of HuMAP would form about seven annotated pairs.
    """
    from .. import ImageBank
    from ..datasets import load_relationships, load_ta_orf_l1000

    tx = load_ta_orf_l1000()
    X = tx.X.astype(np.float64)
    genes = np.unique(tx.y[~tx.is_control])
    emb, keys = graph_teacher(genes, load_relationships(teacher_source, genes=genes),
                              random_state=seed)
    tr, te, Xtr, Xte = _split_and_correct(X, tx.y, tx.batch, tx.control_label, seed,
                                          test_size, "tvn")
    pairs = {s: load_relationships(s, genes=genes) for s in score_sources}
    return Bunch(name="TA-ORF L1000, knowledge teacher", X=X, y=tx.y, batch=tx.batch,
                 control_label=tx.control_label, image_bank=ImageBank(emb, keys),
                 train=tr, test=te, X_train=Xtr, X_test=Xte, relationships=pairs,
                 replicates=True)


def consensus(seed=0, *, n_perturbations=400, n_genes=978, test_size=1 / 3, tx_signal=0.35):
    """One consensus profile per key of ``make_weakly_paired`` (see the module docstring)."""
    from .. import ImageBank
    from .._correction import ControlNormalizer
    from ..datasets import make_weakly_paired, split_by_key

    data = make_weakly_paired(n_perturbations=n_perturbations, n_genes=n_genes,
                              tx_signal=tx_signal, random_state=seed)
    # TVN on all controls (the consensus step precedes any split), then the mean per key
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        Xc = ControlNormalizer("tvn", control_label="control", basis="feature").fit_transform(
            data.X.astype(np.float64), data.y, batch=data.batch)
    keep = ~data.is_control
    keys, inverse = np.unique(data.y[keep], return_inverse=True)
    sums = np.zeros((keys.size, Xc.shape[1]))
    np.add.at(sums, inverse, Xc[keep])
    Xk = sums / np.bincount(inverse)[:, None]
    ktr, kte = split_by_key(keys, test_size=test_size, random_state=seed)
    return Bunch(name="make_weakly_paired, consensus profiles", X=Xk, y=keys.astype(object),
                 batch=np.zeros(keys.size, dtype=int), control_label=None,
                 image_bank=ImageBank(data.image_bank.embeddings, data.image_bank.keys),
                 train=ktr, test=kte, X_train=Xk[ktr], X_test=Xk[kte],
                 relationships={"groups": data.relationships}, replicates=False)


def demo_setting(seed=0, *, test_size=1 / 3):
    """The ``semiclip demo`` data of one seed, split by key, TVN-corrected on training controls."""
    from .. import ImageBank
    from ..datasets import make_weakly_paired

    data = make_weakly_paired(random_state=seed)
    tr, te, Xtr, Xte = _split_and_correct(data.X.astype(np.float64), data.y, data.batch,
                                          data.control_label, seed, test_size, "tvn")
    return Bunch(name="make_weakly_paired, demo", X=data.X, y=data.y, batch=data.batch,
                 control_label=data.control_label,
                 image_bank=ImageBank(data.image_bank.embeddings, data.image_bank.keys),
                 train=tr, test=te, X_train=Xtr, X_test=Xte,
                 relationships={"groups": data.relationships}, replicates=True)


def consensus_weak(seed=0):
    """:func:`consensus` on 240 keys (160 trained on) with ``tx_signal=0.25``."""
    return consensus(seed, n_perturbations=240, tx_signal=0.25)


def ta_orf_cross_plate(seed=0, *, teacher_plate=0, test_size=0.5,
                       score_sources=SCORE_SOURCES):
    """TA-ORF L1000: one plate as the teacher, the two others as the student (module docstring)."""
    from .. import ImageBank
    from .._correction import ControlNormalizer
    from ..datasets import load_relationships, load_ta_orf_l1000

    tx = load_ta_orf_l1000()
    X = tx.X.astype(np.float64)
    plates = np.unique(tx.batch)
    on_teacher = tx.batch == plates[teacher_plate]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero variance in the controls")
        T = ControlNormalizer("tvn", control_label=tx.control_label, basis="feature") \
            .fit_transform(X[on_teacher], tx.y[on_teacher], batch=tx.batch[on_teacher])
    teach = ~tx.is_control[on_teacher]
    bank = ImageBank(T[teach].astype(np.float32), tx.y[on_teacher][teach])
    student = ~on_teacher
    Xs, ys, bs = X[student], tx.y[student], tx.batch[student]
    # student keys without a teacher row cannot be paired: they stay as controls-free extras
    keep = tx.is_control[student] | np.isin(ys, bank.unique_keys)
    Xs, ys, bs = Xs[keep], ys[keep], bs[keep]
    tr, te, Xtr, Xte = _split_and_correct(Xs, ys, bs, tx.control_label, seed, test_size, "tvn")
    genes = np.unique(ys[ys != tx.control_label])
    pairs = {s: load_relationships(s, genes=genes) for s in score_sources}
    return Bunch(name="TA-ORF L1000, cross-plate teacher", X=Xs, y=ys, batch=bs,
                 control_label=tx.control_label, image_bank=bank, train=tr, test=te,
                 X_train=Xtr, X_test=Xte, relationships=pairs, replicates=True)


#: name -> setting function of ``semiclip benchmark --real``
REAL_SETTINGS = {"ta-orf": ta_orf_knowledge, "consensus": consensus, "demo": demo_setting,
                 "consensus-weak": consensus_weak, "ta-orf-plates": ta_orf_cross_plate}
#: name -> what the setting is, for tables
SETTING_TITLES = {
    "ta-orf": "TA-ORF L1000 (222 ORFs x ~4 wells, 978 genes, 3 plates), teacher built from "
              "StringDB, recall on HuMAP and Reactome, half of the genes held out",
    "consensus": "make_weakly_paired, one consensus profile per key (400 keys), a third held out",
    "demo": "make_weakly_paired demo data (600 keys x 5 samples, 12 plates), a third held out",
    "consensus-weak": "make_weakly_paired consensus profiles, 240 keys (160 trained on), "
                      "tx_signal 0.25, a third held out",
    "ta-orf-plates": "TA-ORF L1000, plate X1 (TVN) as the teacher, plates X2 and X3 as the "
                     "student (~215 ORFs), recall on HuMAP and Reactome, half of the genes held "
                     "out",
}
