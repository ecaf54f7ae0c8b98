"""skorch's customization points (get_loss, train_step...) overridden on a
subclass of an estimator, and subclasses that add hyperparameters."""

import numpy as np
import pytest
from sklearn.base import clone

from sktorch import TorchClassifier, TorchRegressor


class L2Classifier(TorchClassifier):
    """The docs' example (docs/training.md): a weight penalty added to the loss."""

    def __init__(self, alpha=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if training:
            loss = loss + self.alpha * sum(p.pow(2).sum() for p in self.module_.parameters())
        return loss


PARAMS = dict(module__hidden_sizes=(8,), max_epochs=2, batch_size=50, random_state=0)


def test_get_loss_override_changes_the_training_loss(iris):
    X, y = iris
    plain = TorchClassifier(**PARAMS).fit(X, y)
    # The penalty at the initial weights, which both fits start from.
    start = TorchClassifier(**{**PARAMS, "max_epochs": 1}, lr=1e-12).fit(X, y)
    penalty = sum(float(p.detach().double().pow(2).sum()) for p in start.module_.parameters())

    reg = L2Classifier(alpha=0.5, **PARAMS).fit(X, y)
    first_plain = plain.history_[0]["batches"][0]["train_loss"]
    first_reg = reg.history_[0]["batches"][0]["train_loss"]
    np.testing.assert_allclose(first_reg, first_plain + 0.5 * penalty, rtol=1e-5)
    assert not np.array_equal(reg.predict_proba(X), plain.predict_proba(X))
    # With no penalty, super().get_loss is exactly the loss sktorch computes.
    same = L2Classifier(alpha=0.0, **PARAMS).fit(X, y)
    np.testing.assert_array_equal(same.predict_proba(X), plain.predict_proba(X))
    assert same.history_[:, "train_loss"] == plain.history_[:, "train_loss"]


def test_get_loss_override_sees_validation_batches(iris):
    X, y = iris
    seen = []

    class Recording(TorchClassifier):
        def get_loss(self, y_pred, y_true, X=None, training=False):
            seen.append((training, tuple(y_pred.shape), X is not None))
            return super().get_loss(y_pred, y_true, X=X, training=training)

    Recording(max_epochs=1, batch_size=200, validation_fraction=0.2, random_state=0).fit(X, y)
    assert seen == [(True, (120, 3), True), (False, (30, 3), True)]


def test_train_step_and_validation_step_overrides(regression_data):
    X, Y = regression_data
    calls = {"train": 0, "train_single": 0, "valid": 0}

    class Counting(TorchRegressor):
        def train_step(self, batch, **fit_params):
            calls["train"] += 1
            return super().train_step(batch, **fit_params)

        def train_step_single(self, batch, **fit_params):
            calls["train_single"] += 1
            return super().train_step_single(batch, **fit_params)

        def validation_step(self, batch, **fit_params):
            calls["valid"] += 1
            return super().validation_step(batch, **fit_params)

    params = dict(max_epochs=2, batch_size=64, validation_fraction=0.2, random_state=0)
    counted = Counting(**params).fit(X, Y)
    # 192 training rows: 3 batches per epoch; 48 validation rows: 1.
    assert calls == {"train": 6, "train_single": 6, "valid": 2}
    plain = TorchRegressor(**params).fit(X, Y)
    np.testing.assert_array_equal(counted.predict(X), plain.predict(X))


def test_train_step_single_override_with_sktorch_step_is_an_error(iris):
    X, y = iris

    class Single(TorchClassifier):
        def train_step_single(self, batch, **fit_params):
            return super().train_step_single(batch, **fit_params)

    with pytest.raises(TypeError, match="overrides train_step_single.*max_grad_norm"):
        Single(max_epochs=1, max_grad_norm=1.0).fit(X, y)


def test_subclass_adding_parameters_is_a_scikit_learn_estimator(iris):
    X, y = iris
    est = L2Classifier(alpha=0.1, lr=0.01, module__hidden_sizes=(8,), max_epochs=1)
    params = est.get_params()
    assert params["alpha"] == 0.1 and params["lr"] == 0.01 and params["criterion"] == "cross_entropy"
    assert params["module__hidden_sizes"] == (8,)
    copy = clone(est)
    assert type(copy) is L2Classifier and copy.get_params() == params
    copy.set_params(alpha=0.2, max_epochs=2)
    assert (copy.alpha, copy.max_epochs, est.alpha, est.max_epochs) == (0.2, 2, 0.1, 1)
    copy.fit(X, y)
    assert len(copy.history_) == 2
    with pytest.raises(ValueError, match="Invalid parameter 'alpah'"):
        L2Classifier(alpah=0.1).fit(X, y)


def test_subclass_with_an_explicit_init(iris):
    X, y = iris

    class Explicit(TorchClassifier):
        def __init__(self, module="mlp", *, lr=1e-3, max_epochs=20, alpha=0.0, **kwargs):
            super().__init__(module, lr=lr, max_epochs=max_epochs, **kwargs)
            self.alpha = alpha

    est = Explicit(max_epochs=1, alpha=0.3, random_state=0)
    assert clone(est).get_params() == est.get_params()
    assert est.get_params()["random_state"] == 0
    est.fit(X, y)
    assert len(est.history_) == 1


def test_hooks_not_overridden_cost_nothing(iris):
    X, y = iris
    est = TorchClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert est.net_._hooks == frozenset()
    assert L2Classifier(max_epochs=1).fit(X, y).net_._hooks == {"get_loss"}
