"""fit(X, y, X_val=..., y_val=...): a validation set given, as scikit-learn's gradient boosting takes one."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

import sktorch
from sktorch import TorchClassifier, TorchRegressor


@pytest.fixture
def halves(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    return X[::2], labels[::2], X[1::2], labels[1::2]


def test_the_given_set_is_what_is_validated_and_every_row_trains(halves):
    X, y, X_val, y_val = halves
    est = TorchClassifier(max_epochs=3, early_stopping=5, metrics=("accuracy",),
                          random_state=0).fit(X, y, X_val=X_val, y_val=y_val)
    # No row of X was held out.
    sizes = [b["train_batch_size"] for b in est.history_[-1, "batches"] if "train_batch_size" in b]
    assert sum(sizes) == len(X)
    assert est.history_[-1, "valid_accuracy"] == pytest.approx(
        accuracy_score(y_val, est.predict(X_val)))
    valid_rows = sum(b["valid_batch_size"] for b in est.history_[-1, "batches"]
                     if "valid_batch_size" in b)
    assert valid_rows == len(X_val)


def test_the_validation_loss_is_that_of_the_given_set(regression_data):
    X, Y = regression_data
    est = TorchRegressor(max_epochs=2, lr=1e-30, optimizer="sgd", random_state=0)
    est.fit(X[:200], Y[:200], X_val=X[200:], y_val=Y[200:])
    mse = float(((est.predict(X[200:]) - Y[200:]) ** 2).mean())
    assert est.history_[-1, "valid_loss"] == pytest.approx(mse, rel=1e-5)


def test_validation_weights_weigh_the_validation_loss(regression_data):
    X, Y = regression_data
    weights = np.r_[np.zeros(20), np.ones(20)]
    est = TorchRegressor(max_epochs=1, lr=1e-30, optimizer="sgd", random_state=0)
    est.fit(X[:200], Y[:200], X_val=X[200:], y_val=Y[200:], sample_weight_val=weights)
    mse = float(((est.predict(X[220:]) - Y[220:]) ** 2).mean())
    assert est.history_[-1, "valid_loss"] == pytest.approx(mse, rel=1e-5)


def test_a_saved_estimator_validated_on_a_given_set_loads(halves, tmp_path):
    X, y, X_val, y_val = halves
    est = TorchClassifier(max_epochs=2, metrics=("accuracy",), random_state=0)
    est.fit(X, y, X_val=X_val, y_val=y_val)
    sktorch.save(est, tmp_path / "m.sktorch")
    loaded = sktorch.load(tmp_path / "m.sktorch")
    np.testing.assert_array_equal(loaded.predict_proba(X_val), est.predict_proba(X_val))


@pytest.mark.parametrize("kwargs, params, match", [
    (lambda v: dict(X_val=v[2]), {}, "got X_val but not both X_val and y_val"),
    (lambda v: dict(y_val=v[3]), {}, "got y_val but not both"),
    (lambda v: dict(X_val=v[2], y_val=np.array(["tulip"] * len(v[3]))), {},
     r"validation targets y_val of TorchClassifier do not fit.*\['tulip'\]"),
    (lambda v: dict(X_val=v[2][:, :3], y_val=v[3]), {},
     "validation inputs X_val of TorchClassifier do not fit.*3 features"),
    (lambda v: dict(X_val=v[2], y_val=v[3]), {"validation_fraction": 0.2},
     r"validation_fraction=0.2: use one"),
    (lambda v: dict(X_val=v[2], y_val=v[3], sample_weight_val=-np.ones(len(v[3]))), {},
     "'sample_weight_val' argument of TorchClassifier holds negative weights"),
])
def test_bad_validation_sets_are_clear_errors(halves, kwargs, params, match):
    X, y = halves[:2]
    with pytest.raises(ValueError, match=match):
        TorchClassifier(max_epochs=1, **params).fit(X, y, **kwargs(halves))
