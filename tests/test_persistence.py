"""A fitted estimator pickles, and loads in a fresh process to predict the same."""

import pickle

import numpy as np
import pytest
from helpers import TwoLayerNet, run_python

from sktorch import TorchClassifier, TorchRegressor

LOAD_AND_PREDICT = """
import pickle, numpy as np
with open("model.pkl", "rb") as f:
    est = pickle.load(f)
X = np.load("X.npy")
np.save("pred.npy", est.predict(X))
if hasattr(est, "predict_proba"):
    np.save("proba.npy", est.predict_proba(X))
"""


@pytest.mark.parametrize(
    "make_estimator",
    [
        lambda: TorchClassifier(module__hidden_sizes=(16, 8), module__dropout=0.1, max_epochs=3,
                                validation_fraction=0.2, random_state=0),
        lambda: TorchClassifier(module=TwoLayerNet, module__width=7, early_stopping=2, max_epochs=5,
                                random_state=0),
    ],
    ids=["mlp", "user-module"],
)
def test_classifier_pickle_loads_in_fresh_process(tmp_path, iris, make_estimator):
    X, y = iris
    labels = np.array(["a", "b", "c"])[y]
    est = make_estimator().fit(X, labels)
    assert est.net_.train_split is None  # no validation data rides along in the pickle
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    run_python(LOAD_AND_PREDICT, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy", allow_pickle=True), est.predict(X))
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), est.predict_proba(X))


def test_regressor_pickle_loads_in_fresh_process(tmp_path, regression_data):
    X, Y = regression_data
    est = TorchRegressor(max_epochs=3, random_state=0).fit(X, Y[:, 0])
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    run_python(LOAD_AND_PREDICT, cwd=tmp_path)
    pred = np.load(tmp_path / "pred.npy")
    assert pred.shape == (len(X),)
    np.testing.assert_array_equal(pred, est.predict(X))


def test_unpickled_estimator_keeps_training(iris):
    X, y = iris
    est = TorchClassifier(max_epochs=2, warm_start=True, random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    est.fit(X, y)
    restored.fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), restored.predict_proba(X))
    assert len(restored.history_) == 4


def test_unfitted_estimator_round_trips():
    est = TorchClassifier(module__hidden_sizes=(3,), lr=0.1)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()
