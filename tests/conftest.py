"""Shared fixtures: small weakly paired data sets with fixed seeds."""

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir():
    """``../shared/data`` beside the checkout; skip when absent.

    Only CORUM and SIGNOR need it: their licence (CC-BY-NC) keeps them out of
    the package. Every other real-data test reads the package's shipped copy.
    """
    if not SHARED_DATA.is_dir():
        pytest.skip("CORUM/SIGNOR are not shipped (CC-BY-NC); ../shared/data is not available")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ta_orf_frame():
    """The TA-ORF L1000 plates the package ships, as read by pandas (no semiclip loader)."""
    pd = pytest.importorskip("pandas")
    import semiclip.datasets

    path = (Path(semiclip.datasets.__file__).resolve().parent / "data" / "ta_orf_l1000"
            / "TA_OE005_U2OS_72H_L1000_level4.csv.gz")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def tiny_data():
    """40 perturbations x 30 genes: fast enough for many fits."""
    from semiclip.datasets import make_weakly_paired

    return make_weakly_paired(
        n_perturbations=40,
        n_genes=30,
        n_batches=3,
        controls_per_batch=6,
        samples_per_perturbation=3,
        image_dim=8,
        latent_dim=4,
        nuisance_dim=4,
        program_size=10,
        random_state=0,
    )


@pytest.fixture(scope="session")
def small_data():
    """The demo generator at reduced size (300 perturbations, 200 genes)."""
    from semiclip.datasets import make_weakly_paired

    return make_weakly_paired(n_perturbations=300, n_genes=200, image_dim=32, random_state=1)


@pytest.fixture
def fast_params():
    """Keyword arguments for a quick SemiClippedTransformer fit."""
    return dict(
        encoder_dim=8,
        hidden_layer_sizes=(),
        max_iter=3,
        early_stopping=False,
        control_label="control",
        random_state=0,
    )


def rng(seed=0):
    return np.random.default_rng(seed)
