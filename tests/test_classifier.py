import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from torch import nn

from sktorch import TorchClassifier
from sktorch.exceptions import InvalidParameterError


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["setosa", "versicolor", "virginica"]),
        np.array([3, 7, 42]),
        np.array(["low", "mid", "high"], dtype=object),
    ],
)
def test_any_label_type_round_trips(iris, labels):
    X, y = iris
    y_labels = labels[y]
    clf = TorchClassifier(lr=0.01, max_epochs=15, random_state=0).fit(X, y_labels)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.dtype == y_labels.dtype
    assert set(pred) <= set(labels)
    assert (pred == y_labels).mean() > 0.9


def test_boolean_labels(cancer):
    X, y = cancer
    clf = TorchClassifier(max_epochs=3, random_state=0).fit(X, y.astype(bool))
    np.testing.assert_array_equal(clf.classes_, [False, True])
    assert clf.predict(X).dtype == bool
    assert clf.score(X, y.astype(bool)) > 0.9


def test_predict_proba_is_a_distribution_matching_predict(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_fitted_attributes(iris):
    X, y = iris
    clf = TorchClassifier(module__hidden_sizes=(7, 5), max_epochs=3, random_state=0).fit(X, y)
    assert clf.n_features_in_ == 4
    assert clf.n_outputs_ == 3
    assert isinstance(clf.module_, nn.Module)
    widths = [(m.in_features, m.out_features) for m in clf.module_.modules() if isinstance(m, nn.Linear)]
    assert widths == [(4, 7), (7, 5), (5, 3)]
    assert len(clf.history_) == 3
    losses = clf.history_[:, "train_loss"]
    assert all(np.isfinite(losses))
    assert not hasattr(clf, "feature_names_in_")


def test_binary_cross_entropy_uses_one_sigmoid_output(cancer):
    X, y = cancer
    labels = np.array(["no", "yes"])[y]
    clf = TorchClassifier(criterion="bce", max_epochs=3, random_state=0).fit(X, labels)
    assert clf.n_outputs_ == 1
    assert clf.module_.layers[-1].out_features == 1
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with torch.no_grad():
        logit = clf.module_(torch.as_tensor(X[:5], dtype=torch.float32)).double()
    np.testing.assert_allclose(proba[:5, 1], torch.sigmoid(logit).numpy().ravel(), rtol=1e-6)
    assert clf.score(X, labels) > 0.9


def test_binary_loss_with_three_classes_is_an_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"binary loss.*3 classes.*cross_entropy"):
        TorchClassifier(criterion="bce").fit(X, y)


def test_dataframe_with_numeric_and_bool_columns(cancer):
    X, y = cancer
    df = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    df["flag"] = X[:, 4] > 0
    df["count"] = (X[:, 5] > 0).astype(np.int64)
    clf = TorchClassifier(max_epochs=2, random_state=0).fit(df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d", "flag", "count"])
    as_array = df.to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(clf.predict_proba(df), clf.predict_proba(pd.DataFrame(as_array, columns=df.columns)))
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        clf.predict(df[df.columns[::-1]])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict(as_array)


def test_list_and_tensor_inputs_match_arrays(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict_proba(X.tolist()), expected)
    tensor = torch.tensor(X, requires_grad=True)
    np.testing.assert_array_equal(clf.predict_proba(tensor), expected)
    clf_t = TorchClassifier(max_epochs=2, random_state=0).fit(torch.tensor(X), torch.tensor(y))
    np.testing.assert_array_equal(clf_t.predict_proba(X), expected)
    np.testing.assert_array_equal(clf_t.classes_, [0, 1, 2])


def test_float64_and_int_inputs_are_cast(iris):
    X, y = iris
    a = TorchClassifier(max_epochs=2, random_state=0).fit(X.astype(np.float64), y)
    b = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = TorchClassifier(max_epochs=1, random_state=0).fit((X * 10).astype(np.int64), y)
    assert c.predict_proba((X * 10).astype(np.int32)).shape == (len(X), 3)


class _WidthNet(nn.Module):
    """Takes in_features/out_features: the estimator fills them in."""

    def __init__(self, in_features, out_features, width=6):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.net(x)


class _FixedNet(nn.Module):
    """Knows nothing of the data: the user sets its sizes."""

    def __init__(self, n_in=4, n_out=3):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.linear(x)


def test_module_class_gets_sizes_from_data(iris):
    X, y = iris
    clf = TorchClassifier(module=_WidthNet, module__width=9, max_epochs=1, random_state=0).fit(X, y)
    assert clf.module_.net[0].in_features == 4
    assert clf.module_.net[0].out_features == 9
    assert clf.module_.net[2].out_features == 3


def test_user_sizes_win_over_filled_in_ones(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"output of shape \(2, 5\).*needs shape \(2, 3\)"):
        TorchClassifier(module=_WidthNet, module__out_features=5, max_epochs=1).fit(X, y)


def test_module_without_size_arguments(iris):
    X, y = iris
    clf = TorchClassifier(module=_FixedNet, max_epochs=1, random_state=0).fit(X, y)
    assert clf.predict(X).shape == (len(X),)
    with pytest.raises(ValueError, match=r"returned an output of shape \(2, 2\).*3 classes"):
        TorchClassifier(module=_FixedNet, module__n_out=2).fit(X, y)
    with pytest.raises(ValueError, match=r"failed on a batch of shape \(2, 4\)"):
        TorchClassifier(module=_FixedNet, module__n_in=6).fit(X, y)


def test_module_instance_weights_are_the_starting_point(iris):
    X, y = iris
    torch.manual_seed(123)
    instance = _FixedNet()
    before = {k: v.clone() for k, v in instance.state_dict().items()}
    clf = TorchClassifier(module=instance, optimizer="sgd", lr=1e-9, max_epochs=1,
                          random_state=0).fit(X, y)
    # The user's instance is copied, never trained in place ...
    for key, value in instance.state_dict().items():
        assert torch.equal(value, before[key])
    # ... and the fitted module starts from its weights, not fresh ones.
    for key, value in clf.module_.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=1e-6)
    assert clf.module_ is not instance


def test_module_instance_rejects_module_options(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="module instance"):
        TorchClassifier(module=_FixedNet(), module__n_out=3).fit(X, y)


def test_criterion_options_reach_the_loss(iris):
    X, y = iris
    params = dict(lr=0.01, max_epochs=30, random_state=0)
    plain = TorchClassifier(**params).fit(X, y)
    smooth = TorchClassifier(criterion__label_smoothing=0.3, **params).fit(X, y)
    assert smooth.net_.criterion_.label_smoothing == 0.3
    # Smoothed targets put 0.8 on the true class: the model learns to stop there.
    assert plain.predict_proba(X).max(axis=1).mean() > 0.9
    assert smooth.predict_proba(X).max(axis=1).mean() < 0.85


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", torch.optim.RMSprop, "lbfgs"])
def test_optimizers_by_name_or_class(iris, optimizer):
    X, y = iris
    clf = TorchClassifier(optimizer=optimizer, lr=0.05, max_epochs=2, random_state=0,
                          optimizer__weight_decay=1e-4 if optimizer != "lbfgs" else None,
                          ) if optimizer != "lbfgs" else TorchClassifier(
        optimizer="lbfgs", lr=0.5, batch_size=150, max_epochs=3, random_state=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.6
    if optimizer != "lbfgs":
        assert clf.net_.optimizer_.defaults["weight_decay"] == 1e-4


def test_optimizer_instance_is_rejected(iris):
    X, y = iris
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="'optimizer' parameter"):
        TorchClassifier(optimizer=opt).fit(X, y)


def test_validation_fraction_records_valid_loss(iris):
    X, y = iris
    clf = TorchClassifier(validation_fraction=0.2, max_epochs=3, random_state=0).fit(X, y)
    assert len(clf.history_) == 3
    assert all(np.isfinite(clf.history_[:, "valid_loss"]))
    # 20% of 150 held out: 120 training rows per epoch.
    assert sum(clf.history_[0, "batches", :, "train_batch_size"]) == 120
    assert sum(clf.history_[0, "batches", :, "valid_batch_size"]) == 30
    assert "valid_loss" not in TorchClassifier(max_epochs=1).fit(X, y).history_[0]


def test_validation_fraction_too_large_for_tiny_data():
    X = np.eye(2, dtype=np.float32)
    with pytest.raises(ValueError, match="validation_fraction"):
        TorchClassifier(validation_fraction=0.9).fit(X, [0, 1])


class _RecordWeights(Callback):
    def initialize(self):
        self.states_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.states_.append({k: v.clone() for k, v in net.module_.state_dict().items()})


def test_early_stopping_stops_and_restores_best_weights(iris):
    X, y = iris
    rng = np.random.RandomState(0)
    y_noisy = rng.permutation(y)  # nothing to learn: validation loss soon rises
    clf = TorchClassifier(module__hidden_sizes=(64,), lr=0.05, max_epochs=60, early_stopping=3,
                          random_state=0, callbacks=[("record", _RecordWeights())])
    clf.fit(X, y_noisy)
    valid = clf.history_[:, "valid_loss"]
    assert len(valid) < 60
    best = int(np.argmin(valid))
    assert len(valid) - 1 - best >= 3  # stopped after `patience` epochs without improvement
    recorded = dict(clf.net_.callbacks_)["record"].states_
    for key, value in clf.module_.state_dict().items():
        assert torch.equal(value, recorded[best][key])
    assert not torch.equal(clf.module_.state_dict()["layers.0.weight"], recorded[-1]["layers.0.weight"])


def test_warm_start_continues_training(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, warm_start=True, random_state=0).fit(X, y)
    first = clf.history_[:, "train_loss"]
    weights = clf.module_.layers[0].weight.detach().clone()
    clf.fit(X, y)
    assert len(clf.history_) == 4
    assert clf.history_[2, "train_loss"] < first[0]
    assert not torch.equal(weights, clf.module_.layers[0].weight)
    cold = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    cold.fit(X, y)
    assert len(cold.history_) == 2


def test_warm_start_rejects_new_labels_and_widths(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, warm_start=True, random_state=0).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match=r"labels \[2\].*not fitted on"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :3], y)


def test_partial_fit_trains_one_epoch_per_call(iris):
    X, y = iris
    clf = TorchClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_outputs_ == 3 and len(clf.history_) == 1
    for _ in range(3):
        clf.partial_fit(X, y)
    assert len(clf.history_) == 4
    assert clf.history_[-1, "train_loss"] < clf.history_[1, "train_loss"]
    with pytest.raises(ValueError, match="not in `classes`"):
        TorchClassifier().partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :2], y)


class _CountEpochs(Callback):
    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_callbacks_pass_through_and_are_copied(iris):
    X, y = iris
    counter = _CountEpochs()
    clf = TorchClassifier(max_epochs=3, callbacks=[("count", counter)], random_state=0).fit(X, y)
    assert dict(clf.net_.callbacks_)["count"].epochs == 3
    assert counter.epochs == 0  # the hyperparameter itself is not trained
    assert clf.callbacks[0][1] is counter


def test_callback_options_are_routed(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, random_state=0, validation_fraction=0.2,
                          callbacks=[("record", _RecordWeights())],
                          callbacks__epoch_table__floatfmt=".2f", verbose=1).fit(X, y)
    assert dict(clf.net_.callbacks_)["epoch_table"].floatfmt == ".2f"
    # skorch's own PrintLog is replaced by sktorch's table.
    assert "print_log" not in dict(clf.net_.callbacks_)


def test_verbose_levels(iris, capsys):
    X, y = iris
    TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""
    TorchClassifier(max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out and out.count("\n") >= 4
    TorchClassifier(max_epochs=1, verbose=2, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out
    # tqdm's bar over the 5 batches of the epoch
    assert "/5 [" in captured.err and "batch" in captured.err


def test_grid_search_over_options_and_names(iris):
    X, y = iris
    grid = {
        "module__hidden_sizes": [(8,), (16, 8)],
        "criterion__label_smoothing": [0.0, 0.1],
        "lr": [1e-3, 1e-2],
        "optimizer": ["adam", "sgd"],
    }
    search = GridSearchCV(TorchClassifier(max_epochs=2, random_state=0), grid, cv=2, error_score="raise")
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 16
    assert set(search.best_params_) == set(grid)
    best = search.best_estimator_
    for key, value in search.best_params_.items():
        assert best.get_params()[key] == value
    widths = [m.out_features for m in best.module_.modules() if isinstance(m, nn.Linear)][:-1]
    assert tuple(widths) == best.get_params()["module__hidden_sizes"]


def test_clone_and_set_params_keep_options():
    clf = TorchClassifier(module__hidden_sizes=(3,), criterion__label_smoothing=0.1)
    params = clf.get_params()
    assert params["module__hidden_sizes"] == (3,)
    cloned = clone(clf)
    assert cloned.get_params()["criterion__label_smoothing"] == 0.1
    cloned.set_params(module__hidden_sizes=(5, 4), lr=0.5)
    assert cloned.module__hidden_sizes == (5, 4) and cloned.lr == 0.5
    assert clf.module__hidden_sizes == (3,)
    assert "module__hidden_sizes=(3,)" in repr(clf)
