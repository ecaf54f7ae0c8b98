"""trim_for_inference: smaller pickles and files, same predictions, no more training."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

import sktorch
from sktorch import TorchClassifier, TorchRegressor
from sktorch.exceptions import PersistenceError


@pytest.fixture
def fitted(iris):
    X, y = iris
    est = TorchClassifier(module__hidden_sizes=(32, 16), max_epochs=3, device="cpu",
                          lr_scheduler="step", random_state=0).fit(X, y)
    return est, X, y


def test_trim_keeps_predictions_and_shrinks_pickle_and_file(fitted, tmp_path):
    est, X, _ = fitted
    proba = est.predict_proba(X)
    pickled = len(pickle.dumps(est))
    sktorch.save(est, tmp_path / "full.sktorch")

    assert est.trim_for_inference() is est
    assert est._trimmed is True
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    net = est.net_
    assert net.optimizer_ is None and net.callbacks_ == [] and net.callbacks == []
    assert all(p.grad is None for p in est.module_.parameters())
    assert [row["epoch"] for row in est.history_] == [1, 2, 3]
    assert all("batches" not in row and "train_loss" in row for row in est.history_)

    assert len(pickle.dumps(est)) < 0.8 * pickled  # no optimizer state, no per-batch records
    sktorch.save(est, tmp_path / "trimmed.sktorch")
    sizes = {name: (tmp_path / f"{name}.sktorch").stat().st_size for name in ("full", "trimmed")}
    assert sizes["trimmed"] < sizes["full"]

    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(X), proba)
    loaded = sktorch.load(tmp_path / "trimmed.sktorch")
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    for copy in (restored, loaded):
        assert copy._trimmed and copy.net_.optimizer_ is None and copy.net_.callbacks_ == []


def test_training_a_trimmed_estimator_is_a_clear_error(fitted, tmp_path):
    est, X, y = fitted
    est.trim_for_inference()
    for call in (lambda: est.fit(X, y), lambda: est.partial_fit(X, y), lambda: est.lr_find(X, y)):
        with pytest.raises(RuntimeError, match="trimmed for inference.*clone"):
            call()
    with pytest.raises(PersistenceError, match="trimmed for inference"):
        sktorch.save(est, tmp_path / "m.sktorch", include_optimizer=True)
    sktorch.save(est, tmp_path / "m.sktorch")
    with pytest.raises(RuntimeError, match="trimmed for inference"):
        sktorch.load(tmp_path / "m.sktorch").partial_fit(X, y)
    # The way out the message gives works.
    assert clone(est).set_params(max_epochs=1).fit(X, y).predict(X).shape == y.shape


def test_trim_regressor(regression_data):
    X, Y = regression_data
    est = TorchRegressor(max_epochs=2, device="cpu", random_state=0).fit(X, Y)
    pred = est.predict(X)
    est.trim_for_inference()
    np.testing.assert_array_equal(est.predict(X), pred)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(X), pred)
