"""Validation metrics computed by scikit-learn scorers every epoch."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    make_scorer,
    mean_squared_error,
    r2_score,
)
from skorch.callbacks import Callback, EarlyStopping

from sktorch import TorchClassifier, TorchRegressor
from sktorch.callbacks._metrics import (
    Monitor,
    ValidationMetrics,
    metric_monitor,
    resolve_metrics,
)
from sktorch.exceptions import InvalidParameterError


class KeepValidation(Callback):
    """Keep the validation data of the fit, as the user's X and y."""

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.X_ = dataset_valid.X.cpu().numpy()
        self.y_ = net.decode_targets(dataset_valid.y)


def fit_with(estimator_cls, X, y, metrics, **params):
    params = {"max_epochs": 3, "validation_fraction": 0.25, "random_state": 0, **params}
    est = estimator_cls(callbacks=[("metrics", ValidationMetrics(metrics)),
                                   ("keep", KeepValidation())], **params)
    est.fit(X, y)
    keep = dict(est.net_.callbacks_)["keep"]
    return est, keep.X_, keep.y_


def test_classifier_metrics_equal_sklearn_on_the_validation_split(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]  # string labels
    clf, X_valid, y_valid = fit_with(
        TorchClassifier, X, names, ("accuracy", "f1_macro", "neg_log_loss"), lr=0.01)
    assert len(y_valid) == 38 and set(y_valid) <= set(names)
    history = clf.history_
    assert len(history[:, "valid_accuracy"]) == 3
    # The last epoch's scores are those of the fitted estimator.
    assert history[-1, "valid_accuracy"] == accuracy_score(y_valid, clf.predict(X_valid))
    assert history[-1, "valid_f1_macro"] == pytest.approx(
        f1_score(y_valid, clf.predict(X_valid), average="macro"), rel=1e-12)
    assert history[-1, "valid_neg_log_loss"] == pytest.approx(
        -log_loss(y_valid, clf.predict_proba(X_valid), labels=clf.classes_), rel=1e-6)


def test_regressor_metrics(regression_data):
    X, Y = regression_data
    reg, X_valid, Y_valid = fit_with(
        TorchRegressor, X, Y[:, 0], ("r2", "neg_mean_squared_error"), lr=0.01)
    assert Y_valid.shape == (60,)
    assert reg.history_[-1, "valid_r2"] == pytest.approx(
        r2_score(Y_valid, reg.predict(X_valid)), rel=1e-9)
    assert reg.history_[-1, "valid_neg_mean_squared_error"] == pytest.approx(
        -mean_squared_error(Y_valid, reg.predict(X_valid)), rel=1e-9)


def test_callable_scorers_get_the_estimator_and_the_users_labels(iris):
    X, y = iris
    labels = np.array(["a", "b", "c"])[y]
    seen = []

    def share_of_a(estimator, X, y):
        seen.append((estimator, X.shape, y.dtype.kind))
        return float(np.mean(estimator.predict(X) == "a"))

    clf, X_valid, _ = fit_with(TorchClassifier, X, labels, (
        share_of_a, ("macro_f1", make_scorer(f1_score, average="macro"))), max_epochs=2)
    assert [entry[0] for entry in seen] == [clf, clf]
    assert seen[0][1:] == ((38, 4), "U")
    assert clf.history_[-1, "valid_share_of_a"] == np.mean(clf.predict(X_valid) == "a")
    assert "valid_macro_f1" in clf.history_[-1]


def test_training_is_unchanged_by_the_metrics(iris):
    X, y = iris
    params = dict(module__dropout=0.3, max_epochs=3, validation_fraction=0.25, random_state=0)
    plain = TorchClassifier(**params).fit(X, y)
    scored = TorchClassifier(**params, callbacks=[ValidationMetrics(("accuracy", "neg_log_loss"))])
    scored.fit(X, y)
    assert scored.history_[:, "train_loss"] == plain.history_[:, "train_loss"]
    np.testing.assert_array_equal(scored.predict_proba(X), plain.predict_proba(X))


def test_dataframe_input_gives_no_feature_name_warnings(iris):
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Two epochs leave the loss falling; that warning is not the subject.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        clf, _, _ = fit_with(TorchClassifier, frame, y, ("accuracy",), max_epochs=2)
    assert len(clf.history_[:, "valid_accuracy"]) == 2


def test_early_stopping_on_a_metric(iris):
    X, y = iris
    monitor = metric_monitor("accuracy", metrics=("accuracy",))
    stop = EarlyStopping(monitor=monitor.key, lower_is_better=monitor.lower_is_better,
                         patience=2, threshold=0.0)
    clf = TorchClassifier(max_epochs=30, lr=0.05, validation_fraction=0.25, random_state=0,
                          callbacks=[("metrics", ValidationMetrics(("accuracy",))),
                                     ("early_stopping", stop)]).fit(X, y)
    scores = clf.history_[:, "valid_accuracy"]
    # It stopped two epochs after the best accuracy (greater is better).
    assert len(scores) < 30
    assert len(scores) - 1 - int(np.argmax(scores)) == 2


def test_unknown_scorer_name_lists_valid_ones_and_the_nearest(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, validation_fraction=0.2,
                          callbacks=[ValidationMetrics(("accuracy", "f1_macr"))])
    with pytest.raises(InvalidParameterError, match="unknown scorer name 'f1_macr'") as info:
        clf.fit(X, y)
    assert "Did you mean 'f1_macro'?" in str(info.value)
    assert "'balanced_accuracy'" in str(info.value)


def test_metrics_need_validation_data(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, callbacks=[ValidationMetrics(("accuracy",))])
    with pytest.raises(InvalidParameterError,
                       match=r"TorchClassifier computes the validation metrics \('accuracy',\) "
                             r"every epoch, but this fit holds out no validation data. Set "
                             r"validation_fraction"):
        clf.fit(X, y)


def test_a_failing_scorer_names_the_metric(cancer):
    X, y = cancer

    def broken(estimator, X, y):
        raise ZeroDivisionError("oops")

    clf = TorchClassifier(max_epochs=1, validation_fraction=0.2,
                          callbacks=[ValidationMetrics(("accuracy", broken))])
    with pytest.raises(ValueError, match=r"(?s)validation metric 'broken' failed at epoch 1.*oops"):
        clf.fit(X, y)


@pytest.mark.parametrize("metrics, message", [
    ((accuracy_score,), "takes \\(y_true, y_pred\\); a scorer takes \\(estimator, X, y\\)"),
    ((lambda est, X, y: 1.0,), "has no name to record it under"),
    (("accuracy", "accuracy"), "names the metric 'accuracy' twice"),
    ((("loss", lambda est, X, y: 1.0),), "'valid_loss' is the loss"),
    ((3,), "takes scorer names, callable scorers"),
    ({"acc", "f1"}, "must be a tuple of scikit-learn scorer names"),
    ((("mine", "acuracy"),), "Did you mean 'accuracy'"),
])
def test_invalid_metrics(metrics, message):
    with pytest.raises(InvalidParameterError, match=message):
        resolve_metrics(metrics)


def test_resolve_metrics_names():
    def my_metric(estimator, X, y):
        return 0.0

    resolved = resolve_metrics(("accuracy", my_metric, ("f2", make_scorer(f1_score)),
                                make_scorer(f1_score, average="macro")))
    assert list(resolved) == ["accuracy", "my_metric", "f2", "f1_score"]
    assert resolve_metrics({"acc": "accuracy"}) == {"acc": "accuracy"}
    assert resolve_metrics("r2") == {"r2": "r2"}
    assert resolve_metrics(None) == {}


def test_metric_monitor():
    def my_metric(estimator, X, y):
        return 0.0

    assert metric_monitor("accuracy") == Monitor("valid_accuracy", False)
    assert metric_monitor("valid_accuracy") == Monitor("valid_accuracy", False)
    assert metric_monitor("neg_log_loss") == Monitor("valid_neg_log_loss", False)
    assert metric_monitor("valid_loss") == Monitor("valid_loss", True)
    assert metric_monitor("train_loss") == Monitor("train_loss", True)
    assert metric_monitor(my_metric, metrics=(my_metric,)) == Monitor("valid_my_metric", False)
    assert metric_monitor("mine", metrics=(("mine", my_metric),)) == Monitor("valid_mine", False)
    with pytest.raises(InvalidParameterError, match="'early_stopping_monitor' parameter of "
                       "TorchClassifier is 'f1_macro', but that metric is not computed"):
        metric_monitor("f1_macro", metrics=("accuracy",), owner="TorchClassifier")
    with pytest.raises(InvalidParameterError, match="Did you mean 'accuracy'"):
        metric_monitor("acuracy")


def test_callback_is_clonable_and_picklable(iris):
    import pickle

    from sklearn.base import clone

    X, y = iris
    clf = TorchClassifier(max_epochs=1, validation_fraction=0.2,
                          callbacks=[("metrics", ValidationMetrics(("accuracy",)))])
    clone(clf)
    clf.fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    clone(clf).fit(X, y)
