"""Fits that used to end in a silently wrong result are errors or warnings."""

import inspect
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError as SklearnInvalidParameterError
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from helpers import SoftmaxNet
import sktorch
from sktorch import ImageClassifier, ImageSegmenter, TorchClassifier, TorchRegressor
from sktorch.exceptions import InvalidParameterError
from sktorch.losses import LOSS_TASKS, loss_task, register_loss

ESTIMATORS = [TorchClassifier, TorchRegressor, ImageClassifier, ImageSegmenter]


class LogSoftmaxNet(SoftmaxNet):
    def forward(self, x):
        return torch.log_softmax(self.linear(x), dim=1)


class AbsLoss(nn.Module):
    """A loss of the user's own, of no known task."""

    def forward(self, input, target):
        return (input - target.reshape(input.shape).to(input.dtype)).abs().mean()


def _exploding():
    """Data that make SGD at lr=1 overflow within the first epoch."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 3)) * 100
    return X, X.sum(axis=1) * 100


# ------------------------------------------------------------------ divergence
def test_a_diverging_fit_is_an_error_naming_epoch_batch_and_causes():
    X, y = _exploding()
    reg = TorchRegressor(optimizer="sgd", lr=1.0, max_epochs=3, batch_size=16, random_state=0)
    with pytest.raises(ValueError, match=r"diverged.* is inf at epoch 1, batch 3") as info:
        reg.fit(X, y)
    message = str(info.value)
    assert "lr=1.0" in message and "StandardScaler" in message
    assert "on_nonfinite_loss='warn'" in message


def test_on_nonfinite_loss_warn_warns_once_and_ignore_trains_on_silently():
    X, y = _exploding()
    params = dict(optimizer="sgd", lr=1.0, max_epochs=3, batch_size=16, random_state=0)
    with pytest.warns(RuntimeWarning, match="diverged") as record:
        warned = TorchRegressor(on_nonfinite_loss="warn", **params).fit(X, y)
    assert sum("diverged" in str(w.message) for w in record) == 1
    assert all(math.isnan(loss) for loss in warned.history_[:, "train_loss"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ignored = TorchRegressor(on_nonfinite_loss="ignore", **params).fit(X, y)
    assert len(ignored.history_) == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_on_nonfinite_loss_is_a_documented_parameter_of_every_estimator(cls):
    assert inspect.signature(cls).parameters["on_nonfinite_loss"].default == "raise"
    assert cls().get_params()["on_nonfinite_loss"] == "raise"
    assert "on_nonfinite_loss : {'raise', 'warn', 'ignore'}" in cls.__doc__


def test_on_nonfinite_loss_refuses_other_values(iris):
    X, y = iris
    with pytest.raises(SklearnInvalidParameterError, match="'on_nonfinite_loss' parameter"):
        TorchClassifier(on_nonfinite_loss="stop", max_epochs=1).fit(X, y)


@pytest.mark.parametrize("value", [1e39, -1e39])
def test_a_regression_target_beyond_float32_is_an_error_naming_y(value):
    X = np.random.RandomState(0).normal(size=(20, 2))
    y = np.ones(20)
    y[3] = value
    with pytest.raises(ValueError, match=r"^y holds values that float32 cannot represent"):
        TorchRegressor(max_epochs=1).fit(X, y)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_a_nonfinite_regression_target_is_an_error_naming_y(value):
    X = np.random.RandomState(0).normal(size=(20, 2))
    y = np.ones(20)
    y[3] = value
    with pytest.raises(ValueError, match=r"y"):
        TorchRegressor(max_epochs=1).fit(X, y)


# ---------------------------------------------------------- loss of the task
def test_a_classification_loss_on_a_regressor_is_an_error_naming_criterion(regression_data):
    X, Y = regression_data
    for criterion in ("cross_entropy", "nll", "bce", "focal", nn.CrossEntropyLoss):
        with pytest.raises(InvalidParameterError,
                           match=r"'criterion' parameter of TorchRegressor .* classification "
                                 r"loss.*one of \['huber', 'l1', 'mse', 'smooth_l1'\]"):
            TorchRegressor(criterion=criterion, max_epochs=1).fit(X, Y)


def test_a_regression_loss_on_a_classifier_is_an_error_naming_criterion(iris):
    X, y = iris
    for criterion in ("mse", "l1", nn.HuberLoss, nn.MSELoss()):
        with pytest.raises(InvalidParameterError,
                           match=r"'criterion' parameter of TorchClassifier .* regression "
                                 r"loss.*Use TorchRegressor"):
            TorchClassifier(criterion=criterion, max_epochs=1).fit(X, y)


def test_a_loss_of_unknown_task_stays_allowed(regression_data):
    X, Y = regression_data
    reg = TorchRegressor(criterion=AbsLoss, max_epochs=2, random_state=0).fit(X, Y)
    assert np.isfinite(reg.history_[:, "train_loss"]).all()
    assert loss_task(AbsLoss) is None


def test_register_loss_records_the_task(iris):
    class OnlyForRegression(AbsLoss):
        pass

    try:
        register_loss("abs_regression_only_test", OnlyForRegression, task="regression")
        assert loss_task(OnlyForRegression()) == "regression"
        with pytest.raises(InvalidParameterError, match="a regression loss"):
            TorchClassifier(criterion="abs_regression_only_test", max_epochs=1).fit(*iris)
    finally:
        sktorch.losses.LOSSES._entries.pop("abs_regression_only_test", None)
        LOSS_TASKS.pop(OnlyForRegression, None)
    with pytest.raises(ValueError, match="'task' argument of register_loss"):
        register_loss("never_registered", OnlyForRegression, task="ranking")


# ------------------------------------------- probabilities and logits losses
@pytest.mark.parametrize("criterion", ["cross_entropy", "focal", "dice_ce"])
def test_a_softmax_module_with_a_logits_loss_is_an_error(iris, criterion):
    X, y = iris
    with pytest.raises(ValueError, match=r"outputs probabilities.*Drop the softmax.*'nll'"):
        TorchClassifier(SoftmaxNet, criterion=criterion, max_epochs=1).fit(X, y)


def test_a_softmax_module_with_a_loss_on_probabilities_is_allowed(iris):
    X, y = iris
    clf = TorchClassifier(SoftmaxNet, criterion="focal", criterion__from_logits=False,
                          max_epochs=2, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    with torch.no_grad():
        own = clf.module_(torch.as_tensor(X)).double().numpy()
    np.testing.assert_allclose(proba, own, rtol=1e-6)


def test_softmax_module_with_nll_gives_the_modules_probabilities():
    # skorch's NeuralNetClassifier with its default NLLLoss takes the log of
    # a softmax module's output; trained alike, sktorch gives probabilities
    # as confident as skorch's, where a second softmax squashed them (a top
    # probability of at most 0.58 on digits, against skorch's 0.996).
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:300]).astype(np.float32)
    y = y[:300]
    clf = TorchClassifier(SoftmaxNet, criterion="nll", lr=0.05, max_epochs=6,
                          random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    with torch.no_grad():
        own = clf.module_(torch.as_tensor(X)).double().numpy()
    np.testing.assert_allclose(proba, own, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # NLL of the log of probabilities: a positive loss, not -p[y].
    assert min(clf.history_[:, "train_loss"]) > 0

    torch.manual_seed(0)
    reference = NeuralNetClassifier(
        SoftmaxNet, module__in_features=64, module__out_features=10,
        optimizer=torch.optim.Adam, lr=0.05, max_epochs=6, batch_size=32, train_split=None,
        verbose=0,
    ).fit(X, y)
    expected = reference.predict_proba(X).max(axis=1).mean()
    assert expected > 0.95
    assert proba.max(axis=1).mean() == pytest.approx(expected, abs=0.03)
    assert (clf.predict(X) == y).mean() > 0.95


def test_log_softmax_module_with_nll_still_works(iris):
    X, y = iris
    clf = TorchClassifier(LogSoftmaxNet, criterion="nll", lr=0.05, max_epochs=10,
                          random_state=0).fit(X, y)
    with torch.no_grad():
        own = clf.module_(torch.as_tensor(X)).exp().double().numpy()
    np.testing.assert_allclose(clf.predict_proba(X), own, rtol=1e-5)
    assert (clf.predict(X) == y).mean() > 0.8


def test_a_logits_module_with_nll_is_an_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"criterion='nll' of TorchClassifier needs a module "
                                         r"that outputs probabilities.*'cross_entropy'"):
        TorchClassifier(criterion="nll", max_epochs=1).fit(X, y)


def test_a_probability_module_round_trips_through_save_and_load(tmp_path, iris):
    X, y = iris
    clf = TorchClassifier(SoftmaxNet, criterion="nll", lr=0.05, max_epochs=3,
                          random_state=0).fit(X, y)
    sktorch.save(clf, tmp_path / "soft.sktorch")
    loaded = sktorch.load(tmp_path / "soft.sktorch", trusted=[SoftmaxNet])
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.net_.log_output


# ---------------------------------------------------------------- bools
def test_early_stopping_true_is_a_patience_of_ten_and_false_is_none(iris):
    X, y = iris
    clf = TorchClassifier(early_stopping=True, max_epochs=2, random_state=0).fit(X, y)
    assert dict(clf.net_.callbacks_)["early_stopping"].patience == 10
    assert "valid_loss" in clf.history_[-1]
    clf = TorchClassifier(early_stopping=False, max_epochs=2, random_state=0).fit(X, y)
    assert "early_stopping" not in dict(clf.net_.callbacks_)
    assert "valid_loss" not in clf.history_[-1]


@pytest.mark.parametrize("param", ["batch_size", "max_epochs", "accumulate_grad_batches",
                                   "devices", "lr", "max_grad_norm"])
def test_a_bool_is_not_a_count(iris, param):
    X, y = iris
    with pytest.raises(SklearnInvalidParameterError,
                       match=rf"'{param}' parameter .* Got True"):
        TorchClassifier(**{"max_epochs": 1, param: True}).fit(X, y)


# ---------------------------------------------------------------- convergence
def test_a_fit_ending_with_the_loss_still_falling_warns(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"max_epochs=3 while its training loss was "
                                                r"still falling"):
        TorchClassifier(max_epochs=3, random_state=0).fit(X, y)


def test_a_fit_whose_loss_stopped_falling_does_not_warn(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # A learning rate this small leaves the loss where it was.
        TorchClassifier(lr=1e-12, max_epochs=3, random_state=0).fit(X, y)
        # Stopped early: the epochs were not all used.
        TorchClassifier(lr=1e-12, max_epochs=30, early_stopping=2, random_state=0).fit(X, y)
        # One epoch per call, by design.
        clf = TorchClassifier(max_epochs=1, random_state=0)
        for _ in range(3):
            clf.partial_fit(X, y, classes=np.unique(y))


# ---------------------------------------------------------- deep errors
def test_a_schedule_option_of_the_wrong_value_is_an_error_naming_it(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError,
                       match=r"'lr_scheduler__step_size' parameter of TorchClassifier \(with "
                             r"lr_scheduler='step'\) must be an int in the range \[1, inf\)\. "
                             r"Got 0 instead"):
        TorchClassifier(lr_scheduler="step", lr_scheduler__step_size=0, max_epochs=2).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"'lr_scheduler__T_max' parameter"):
        TorchClassifier(lr_scheduler="cosine", lr_scheduler__T_max=0, max_epochs=2).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"'lr_scheduler__milestones' parameter"):
        TorchClassifier(lr_scheduler="multistep", lr_scheduler__milestones=[0, "a"],
                        max_epochs=2).fit(X, y)


def test_callbacks_that_are_not_callbacks_are_an_error_naming_the_entry(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError,
                       match=r"'callbacks' parameter of TorchClassifier must be a list of skorch "
                             r"callbacks.*Got 'x' at position 0 instead"):
        TorchClassifier(callbacks=["x"], max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"Got \('named', 3\) at position 1"):
        TorchClassifier(callbacks=[Callback(), ("named", 3)], max_epochs=1).fit(X, y)
    clf = TorchClassifier(callbacks=[Callback, ("named", Callback())], max_epochs=1).fit(X, y)
    assert "named" in dict(clf.net_.callbacks_)
