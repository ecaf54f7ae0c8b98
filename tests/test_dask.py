"""Grid search on a Dask cluster: the same results as one process, every
component crossing process boundaries by pickle, one device and one share of
the cores per worker, and a dead worker failing the search instead of hanging
it. See docs/scaling.md."""

import logging
import os
import threading

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from skorch.callbacks import Callback

from sktorch import ImageClassifier, TorchClassifier
from sktorch.transforms import GaussianNoise

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
joblib = pytest.importorskip("joblib")
from sktorch.parallel import dask_backend  # noqa: E402

# Seconds a failed search may take before the test calls it a hang.
DEATH_TIMEOUT = 60


def _local_cluster(n_workers=2, threads_per_worker=1):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                                    dashboard_address=":0", silence_logs=logging.ERROR)


@pytest.fixture(scope="module")
def client():
    with _local_cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def _search_results(search_factory, X, y, client=None):
    if client is None:
        return search_factory().fit(X, y)
    with joblib.parallel_backend("dask"):
        return search_factory().fit(X, y)


def _assert_same_search(one, many, X):
    n_splits = one.n_splits_
    for key in ["mean_test_score"] + [f"split{i}_test_score" for i in range(n_splits)]:
        np.testing.assert_array_equal(one.cv_results_[key], many.cv_results_[key])
    assert one.cv_results_["params"] == many.cv_results_["params"]
    assert one.best_params_ == many.best_params_
    np.testing.assert_array_equal(one.best_estimator_.predict_proba(X),
                                  many.best_estimator_.predict_proba(X))


def test_grid_search_on_dask_matches_one_process(client, iris):
    X, y = iris
    grid = {"criterion": ["cross_entropy", "focal"], "augment__std": [0.05, 0.2]}

    def search():
        estimator = TorchClassifier(module__hidden_sizes=(8,), max_epochs=2, lr_scheduler="cosine",
                                    augment=GaussianNoise, augment__clip=False, random_state=0)
        return GridSearchCV(estimator, grid, cv=3, scoring="neg_log_loss", error_score="raise")

    one = _search_results(search, X, y)
    on_dask = _search_results(search, X, y, client)
    _assert_same_search(one, on_dask, X)
    # The scores differ between candidates: the grid did reach the workers.
    assert len(set(on_dask.cv_results_["mean_test_score"])) == 4


def test_randomized_image_search_on_dask_matches_one_process(client):
    digits = load_digits()
    X, y = (digits.images[:120] / 16.0).astype(np.float32), digits.target[:120]

    def search():
        estimator = ImageClassifier("cnn", module__width=8, augment="salt_and_pepper",
                                    max_epochs=2, random_state=0)
        return RandomizedSearchCV(estimator, {"augment__amount": [0.0, 0.02, 0.1], "lr": [1e-3, 3e-3]},
                                  n_iter=2, cv=2, random_state=0, error_score="raise")

    one = _search_results(search, X, y)
    on_dask = _search_results(search, X, y, client)
    _assert_same_search(one, on_dask, X)


def _worker_view():
    from sktorch._utils._device import resolve_device

    return {"device": str(resolve_device("auto", "TorchClassifier")),
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
            "torch_threads": torch.get_num_threads()}


def test_each_worker_resolves_its_own_device_and_thread_share(client):
    views = client.run(_worker_view)
    assert len(views) == 2
    for view in views.values():
        # No GPU is faked: 'auto' is whatever this worker's torch sees, and
        # the worker inherits CUDA_VISIBLE_DEVICES, the one-GPU-per-worker knob.
        expected = "cuda" if torch.cuda.is_available() else "cpu"
        assert view["device"] == expected
        assert view["CUDA_VISIBLE_DEVICES"] == os.environ.get("CUDA_VISIBLE_DEVICES")
        # distributed's nanny starts workers with OMP_NUM_THREADS and
        # MKL_NUM_THREADS at 1 (distributed.nanny.pre-spawn-environ), which
        # torch honours.
        assert view["OMP_NUM_THREADS"] == view["MKL_NUM_THREADS"] == "1"
        assert view["torch_threads"] == 1


class ExitInDaskWorker(Callback):
    """Kill the process at the first epoch, when it is a Dask worker."""

    def on_epoch_begin(self, net, **kwargs):
        try:
            distributed.get_worker()
        except ValueError:
            return
        os._exit(1)


def test_a_dead_worker_fails_the_search(iris):
    X, y = iris
    search = GridSearchCV(TorchClassifier(max_epochs=2, random_state=0, callbacks=[ExitInDaskWorker()]),
                          {"lr": [1e-3, 1e-2]}, cv=2, error_score="raise")
    outcome = {}

    def run():
        try:
            with dask_backend():
                search.fit(X, y)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = error

    # A task whose worker dies is retried on another worker allowed-failures
    # times (3 by default); 0 fails it at the first death.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            _local_cluster(n_workers=1, threads_per_worker=2) as cluster, distributed.Client(cluster):
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        # The deadline is the search's alone: the cluster's shutdown, which
        # follows, may take seconds more on a loaded machine.
        thread.join(DEATH_TIMEOUT)
        assert not thread.is_alive(), f"the search did not fail within {DEATH_TIMEOUT} s"
    assert isinstance(outcome.get("error"), distributed.KilledWorker), outcome
    assert "died" in str(outcome["error"])
