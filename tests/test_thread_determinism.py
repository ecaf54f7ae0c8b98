"""Fits in threads (joblib's threading backend, Dask workers with several
threads) give the same results as one after the other: torch's global random
state, which dropout, weight initialization, shuffling and augmentation draw
from, is one per process and fits must not share it. See docs/scaling.md."""

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV, cross_validate

from sktorch import ImageClassifier, ImageSegmenter, TorchClassifier, TorchRegressor
from sktorch.transforms import GaussianNoise, SaltAndPepperNoise


def _images(n, size=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, size, size)).astype(np.float32)
    return X, (X.mean(axis=(1, 2)) > 0.5).astype(np.int64)


def _cases():
    rng = np.random.default_rng(0)
    X_tab = rng.normal(size=(64, 4)).astype(np.float32)
    y_class = (X_tab[:, 0] + X_tab[:, 1] > 0).astype(np.int64)
    y_reg = X_tab @ np.array([1.0, -2.0, 0.5, 0.0], np.float32)
    X_img, y_img = _images(32)
    masks = (X_img > 0.5).astype(np.int64)
    common = dict(max_epochs=2, batch_size=8, random_state=0)
    return {
        "TorchClassifier": (
            TorchClassifier(module__hidden_sizes=(16,), module__dropout=0.5,
                            augment=GaussianNoise, augment__std=0.3, augment__clip=False,
                            **common),
            X_tab, y_class, "predict_proba"),
        "TorchRegressor": (
            TorchRegressor(module__hidden_sizes=(16,), module__dropout=0.5,
                           augment=GaussianNoise, augment__std=0.3, augment__clip=False,
                           **common),
            X_tab, y_reg, "predict"),
        "ImageClassifier": (
            ImageClassifier("cnn", module__width=4, module__dropout=0.5,
                            augment=SaltAndPepperNoise, augment__amount=0.1, **common),
            X_img, y_img, "predict_proba"),
        "ImageSegmenter": (
            ImageSegmenter(module__depth=1, module__width=4, module__dropout=0.5,
                           augment=SaltAndPepperNoise, augment__amount=0.1, **common),
            X_img, masks, "predict_proba"),
    }


CASES = _cases()


def _cross_validate(estimator, X, y, n_jobs):
    return cross_validate(estimator, X, y, cv=2, n_jobs=n_jobs, return_estimator=True,
                          error_score="raise")


@pytest.mark.parametrize("name", sorted(CASES))
def test_threaded_cross_validation_matches_one_job(name):
    estimator, X, y, method = CASES[name]
    one = _cross_validate(estimator, X, y, n_jobs=1)
    with parallel_backend("threading", n_jobs=2):
        threaded = _cross_validate(estimator, X, y, n_jobs=2)
    np.testing.assert_array_equal(one["test_score"], threaded["test_score"])
    outputs = [[getattr(fold, method)(X) for fold in result["estimator"]]
               for result in (one, threaded)]
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)
    # Dropout and augmentation drew: the folds differ from one another.
    assert not np.array_equal(outputs[0][0], outputs[0][1])


def test_random_test_time_views_in_a_thread_leave_other_fits_alone(iris):
    # Scoring one fold predicts with random test-time views while the other
    # fold trains: those draws must not come from the training fit's stream.
    X, y = iris
    estimator = TorchClassifier(module__hidden_sizes=(16,), module__dropout=0.5, max_epochs=3,
                                batch_size=8, tta=GaussianNoise(std=0.5, clip=False),
                                random_state=0)
    one = _cross_validate(estimator, X, y, n_jobs=1)
    with parallel_backend("threading", n_jobs=2):
        threaded = _cross_validate(estimator, X, y, n_jobs=2)
    for a, b in zip(one["estimator"], threaded["estimator"]):
        for fold in (a, b):
            fold.set_params(tta=None)
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_dask_worker_with_two_threads_matches_one_job(iris):
    # The setup of sktorch.parallel's example: one in-process worker, two threads.
    distributed = pytest.importorskip("distributed")
    from sktorch.parallel import dask_backend

    X, y = iris
    grid = {"lr": [1e-2, 3e-2]}

    def search():
        estimator = TorchClassifier(module__hidden_sizes=(16,), module__dropout=0.5,
                                    augment=GaussianNoise, augment__std=0.3, augment__clip=False,
                                    max_epochs=2, batch_size=8, random_state=0)
        return GridSearchCV(estimator, grid, cv=2, scoring="neg_log_loss", error_score="raise")

    one = search().fit(X, y)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster):
        with dask_backend():
            on_dask = search().fit(X, y)
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(one.cv_results_[key], on_dask.cv_results_[key])
    np.testing.assert_array_equal(one.best_estimator_.predict_proba(X),
                                  on_dask.best_estimator_.predict_proba(X))
