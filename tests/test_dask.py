"""Grid search on a dask.distributed cluster through joblib (optional extra ``dask``).

One local cluster (2 worker processes, 1 thread each) serves both tests: the
"one dask worker per GPU" pattern on CPU (every fit in its own worker
process, its torch threads capped, CUDA never initialised in the parent) and
``GridSearchCV`` with ``joblib.parallel_backend("dask")``.
"""

import os

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline

from semiclip import SemiClippedTransformer

# short fits on purpose; the warning itself is tested in distill/test_transformer.py
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        worker_dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _pipe(**params):
    est = SemiClippedTransformer(encoder_dim=8, max_iter=2, early_stopping=False,
                                 control_label="control", random_state=0, **params)
    return make_pipeline(est, LogisticRegression(max_iter=100))


def _target(data):
    groups = dict(zip(data.perturbations, data.groups))
    return np.array([groups.get(k, -1) for k in data.y])


def _fit_and_report(X, y, bank):
    """Runs inside a worker: fit, and report where and with how many threads."""
    est = SemiClippedTransformer(encoder_dim=8, max_iter=2, early_stopping=False,
                                 control_label="control", random_state=0, device="cpu")
    est.fit(X, y, image_bank=bank)
    return os.getpid(), est.n_threads_, torch.get_num_threads(), est


@pytest.mark.slow
def test_one_fit_per_worker_process(client, tiny_data):
    futures = [
        client.submit(_fit_and_report, tiny_data.X, tiny_data.y, tiny_data.image_bank,
                      pure=False, workers=[w])
        for w in sorted(client.scheduler_info()["workers"])
    ]
    results = client.gather(futures)
    pids = {r[0] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    for _, used, after, est in results:
        assert used == 1  # one thread per worker (nanny sets OMP_NUM_THREADS=1)
        assert after == 1  # restored after fit
        assert est.transform(tiny_data.X).shape == (len(tiny_data.y), tiny_data.image_bank.n_dims)
    assert not torch.cuda.is_initialized()  # the parent never touched CUDA


@pytest.mark.slow  # a dask cluster and a grid search, end to end
def test_grid_search_with_dask_joblib_backend(client, tiny_data):
    search = GridSearchCV(
        _pipe(),
        {"semiclippedtransformer__temperature": [0.1, 0.5],
         "semiclippedtransformer__hidden_layer_sizes": [(), (8,)]},
        cv=GroupKFold(n_splits=2),
        n_jobs=2,
    )
    with joblib.parallel_backend("dask"):
        search.fit(tiny_data.X, _target(tiny_data), groups=tiny_data.y,
                   semiclippedtransformer__image_bank=tiny_data.image_bank,
                   semiclippedtransformer__keys=tiny_data.y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_[0].adapter_ is not None
