"""partial_fit (and a warm-started fit) on a fitted estimator: hyperparameters
validated as fit validates them; a change the running training can take is
applied, any other is an error naming it."""

import pickle
import re

import numpy as np
import pytest
from skorch.callbacks import Callback

from sktorch import TorchClassifier, TorchRegressor
from sktorch.exceptions import InvalidParameterError


def _fitted(iris, **params):
    X, y = iris
    clf = TorchClassifier(module__hidden_sizes=(8,), max_epochs=1, random_state=0, **params)
    return clf.partial_fit(X, y, classes=np.unique(y)), X, y


@pytest.mark.parametrize("params", [dict(lr=-1.0), dict(batch_size=0), dict(optimizer=3),
                                    dict(modul__dropout=0.1)])
def test_invalid_values_raise_the_error_fit_raises(iris, params):
    clf, X, y = _fitted(iris)
    clf.set_params(**params)
    with pytest.raises(ValueError) as from_fit:
        TorchClassifier(**params).fit(X, y)
    with pytest.raises(ValueError) as from_partial_fit:
        clf.partial_fit(X, y)
    assert type(from_partial_fit.value) is type(from_fit.value)
    assert str(from_partial_fit.value) == str(from_fit.value)


class Noop(Callback):
    pass


@pytest.mark.parametrize("params", [
    dict(optimizer="sgd"), dict(optimizer__weight_decay=0.1), dict(module__hidden_sizes=(16,)),
    dict(module="mlp", module__dropout=0.5), dict(criterion="focal"), dict(random_state=1),
    dict(validation_fraction=0.2), dict(callbacks=[Noop()]), dict(augment="gaussian_noise"),
    dict(precision="bf16-mixed"), dict(iterator_train__drop_last=True),
])
def test_a_change_training_cannot_take_is_an_error_naming_it(iris, params):
    clf, X, y = _fitted(iris)
    weights = [p.detach().clone() for p in clf.module_.parameters()]
    clf.set_params(**params)
    names = sorted(key for key in params if key != "module")
    with pytest.raises(InvalidParameterError, match=rf"partial_fit continues training .* cannot "
                                                    rf"apply the change of {re.escape(repr(names))}.*Call fit"):
        clf.partial_fit(X, y)
    # Nothing trained; fit starts anew with the change.
    assert all((a == b).all() for a, b in zip(weights, clf.module_.parameters()))
    clf.fit(X, y)
    clf.partial_fit(X, y)


def test_a_warm_started_fit_follows_the_same_rule(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, warm_start=True, random_state=0).fit(X, y)
    clf.set_params(module__hidden_sizes=(4,))
    with pytest.raises(InvalidParameterError, match=r"TorchClassifier.fit continues training.*"
                                                    r"'module__hidden_sizes'"):
        clf.fit(X, y)
    clf.set_params(warm_start=False).fit(X, y)
    assert clf.module_.layers[0].out_features == 4


def test_lr_is_applied_to_the_optimizer(iris):
    clf, X, y = _fitted(iris)
    clf.set_params(lr=0.25).partial_fit(X, y)
    assert [group["lr"] for group in clf.net_.optimizer_.param_groups] == [0.25]
    assert clf.history_[-1, "lr"] == 0.25


def test_lr_is_refused_under_a_schedule(iris):
    clf, X, y = _fitted(iris, lr_scheduler="step")
    with pytest.raises(InvalidParameterError, match=r"change of \['lr'\].*schedule"):
        clf.set_params(lr=0.25).partial_fit(X, y)


def test_batch_size_is_applied(regression_data):
    X, y = regression_data
    reg = TorchRegressor(max_epochs=1, batch_size=60, random_state=0).partial_fit(X, y)
    reg.set_params(batch_size=24, max_epochs=5).partial_fit(X, y)
    assert reg.history_[:, "train_batch_count"] == [4, 10]


def test_unchanged_or_restored_values_and_a_pickle_continue(iris):
    clf, X, y = _fitted(iris, callbacks=[Noop()])
    clf.set_params(module__hidden_sizes=(8,), callbacks=clf.callbacks, tta="hflip")
    clf.partial_fit(X, y)
    clf.set_params(optimizer="sgd").set_params(optimizer="adam")
    clf.partial_fit(X, y)
    pickle.loads(pickle.dumps(clf)).partial_fit(X, y)
    assert len(clf.history_) == 3


class Fails(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("stop")


def test_a_failed_fit_leaves_the_record_of_the_net_it_built(iris):
    clf, X, y = _fitted(iris)
    clf.set_params(module__hidden_sizes=(4,), callbacks=[Fails()])
    with pytest.raises(RuntimeError, match="stop"):
        clf.fit(X, y)
    # The net now trained is the (4,) one; only the callbacks change here.
    clf.set_params(callbacks=None)
    with pytest.raises(InvalidParameterError, match=r"change of \['callbacks'\]"):
        clf.partial_fit(X, y)
