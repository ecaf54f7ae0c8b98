"""Parallel grid-search workers train on their share of the cores."""

import os

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from sktorch import TorchClassifier


def _torch_threads(estimator, X, y):
    return float(torch.get_num_threads())


def test_grid_search_workers_do_not_oversubscribe(iris):
    X, y = iris
    search = GridSearchCV(TorchClassifier(max_epochs=1, random_state=0), {"lr": [1e-3, 1e-2]},
                          cv=2, n_jobs=2, scoring=_torch_threads, error_score="raise").fit(X, y)
    share = max(1, os.cpu_count() // 2)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], [share, share])
