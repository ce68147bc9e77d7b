"""The small weakly paired data set of the command-line tests, written as files."""

import pytest


@pytest.fixture(scope="module")
def data():
    from semiclip.datasets import make_weakly_paired

    return make_weakly_paired(n_perturbations=40, n_genes=30, n_batches=3,
                              controls_per_batch=8, samples_per_perturbation=3, image_dim=8,
                              latent_dim=4, nuisance_dim=4, program_size=10, random_state=0)


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    """tx.csv, img.csv (pycytominer style) and rel.csv (entity1, entity2)."""
    pd = pytest.importorskip("pandas")
    d = tmp_path_factory.mktemp("cli")
    genes = [f"g{j}" for j in range(data.X.shape[1])]
    tx = pd.DataFrame(data.X, columns=genes)
    tx.insert(0, "Metadata_gene", data.y)
    tx.insert(1, "Metadata_Plate", data.batch)
    tx.to_csv(d / "tx.csv", index=False)
    bank = data.image_bank
    img = pd.DataFrame(bank.embeddings, columns=[f"e{j}" for j in range(bank.n_dims)])
    img.insert(0, "Metadata_gene", bank.keys)
    img.to_csv(d / "img.csv", index=False)
    pd.DataFrame(data.relationships, columns=["entity1", "entity2"]).to_csv(d / "rel.csv",
                                                                           index=False)
    return d
