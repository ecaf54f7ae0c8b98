"""The same random_state gives the same model: twice in one process, in
another process, and inside a parallel grid search."""

import numpy as np
from helpers import run_python
from sklearn.model_selection import GridSearchCV

from sktorch import TorchClassifier

PARAMS = dict(module__hidden_sizes=(32, 16), module__dropout=0.2, max_epochs=3,
              validation_fraction=0.2, random_state=42)


def test_two_fits_are_identical(iris):
    X, y = iris
    a = TorchClassifier(**PARAMS).fit(X, y)
    b = TorchClassifier(**PARAMS).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.history_[:, "valid_loss"] == b.history_[:, "valid_loss"]
    c = TorchClassifier(**{**PARAMS, "random_state": 43}).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_fit_in_another_process_is_identical(tmp_path, iris):
    X, y = iris
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    run_python(
        "import numpy as np\n"
        "from sktorch import TorchClassifier\n"
        "X, y = np.load('X.npy'), np.load('y.npy')\n"
        f"est = TorchClassifier(**{PARAMS!r}).fit(X, y)\n"
        "np.save('proba.npy', est.predict_proba(X))\n",
        cwd=tmp_path,
    )
    here = TorchClassifier(**PARAMS).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), here)


def test_grid_search_in_two_workers_matches_one(iris):
    X, y = iris
    grid = {"lr": [1e-3, 1e-2], "module__hidden_sizes": [(8,), (16, 8)]}
    results = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(TorchClassifier(max_epochs=2, random_state=0), grid, cv=3,
                              scoring="neg_log_loss", n_jobs=n_jobs, error_score="raise").fit(X, y)
        results[n_jobs] = search
    for split in range(3):
        key = f"split{split}_test_score"
        np.testing.assert_array_equal(results[1].cv_results_[key], results[2].cv_results_[key])
    np.testing.assert_array_equal(results[1].best_estimator_.predict_proba(X),
                                  results[2].best_estimator_.predict_proba(X))
