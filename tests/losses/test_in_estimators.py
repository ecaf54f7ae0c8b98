"""The losses of the registry inside TorchClassifier: mode from the task, the
matching output function, and a grid search on imbalanced data."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktorch import TorchClassifier
from sktorch.losses import DiceLoss, FocalLoss


@pytest.fixture(scope="module")
def imbalanced():
    # 95 / 5 classes
    return make_classification(n_samples=600, n_features=10, weights=[0.95], flip_y=0,
                               random_state=0)


def _logits(clf, X):
    with torch.no_grad():
        return clf.module_(torch.as_tensor(X, dtype=torch.float32)).double()


@pytest.mark.parametrize("criterion", ["focal", "dice", "tversky", "dice_ce"])
def test_binary_task_uses_one_sigmoid_output(imbalanced, criterion):
    X, y = imbalanced
    clf = TorchClassifier(criterion=criterion, max_epochs=2, random_state=0).fit(X, y)
    assert clf.net_.criterion_.mode == "binary"
    assert clf.n_outputs_ == 1
    proba = clf.predict_proba(X[:20])
    np.testing.assert_allclose(proba[:, 1], torch.sigmoid(_logits(clf, X[:20])).numpy().ravel(),
                               rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("criterion", ["focal", "dice", "tversky", "dice_ce"])
def test_multiclass_task_uses_softmax(iris, criterion):
    X, y = iris
    clf = TorchClassifier(criterion=criterion, max_epochs=2, random_state=0).fit(X, y)
    assert clf.net_.criterion_.mode == "multiclass"
    assert clf.n_outputs_ == 3
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, torch.softmax(_logits(clf, X), dim=1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_overlap_losses_sum_over_the_batch_on_tabular_data(iris):
    X, y = iris
    clf = TorchClassifier(criterion="dice", max_epochs=1, random_state=0).fit(X, y)
    assert clf.net_.criterion_.batch is True
    per_sample = TorchClassifier(criterion="dice", criterion__batch=False, max_epochs=1,
                                 random_state=0).fit(X, y)
    assert per_sample.net_.criterion_.batch is False


def test_user_mode_wins(imbalanced):
    X, y = imbalanced
    clf = TorchClassifier(criterion="focal", criterion__mode="multiclass", max_epochs=1,
                          random_state=0).fit(X, y)
    assert clf.n_outputs_ == 2 and clf.net_.criterion_.mode == "multiclass"
    instance = TorchClassifier(criterion=FocalLoss(mode="binary", gamma=1.0), max_epochs=1,
                               random_state=0).fit(X, y)
    assert instance.n_outputs_ == 1 and instance.net_.criterion_.gamma == 1.0


def test_binary_mode_with_three_classes_and_multilabel_are_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="binary loss.*3 classes"):
        TorchClassifier(criterion="dice", criterion__mode="binary").fit(X, y)
    with pytest.raises(ValueError, match="multilabel"):
        TorchClassifier(criterion=DiceLoss(mode="multilabel")).fit(X, y)


def test_focal_loss_in_grid_search_on_imbalanced_data(imbalanced):
    X, y = imbalanced
    search = GridSearchCV(
        TorchClassifier(criterion="focal", lr=0.01, max_epochs=15, random_state=0),
        {"criterion__gamma": [0.0, 2.0, 5.0]},
        scoring="balanced_accuracy", cv=StratifiedKFold(3), error_score="raise",
    ).fit(X, y)
    assert [p["criterion__gamma"] for p in search.cv_results_["params"]] == [0.0, 2.0, 5.0]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert best.net_.criterion_.gamma == search.best_params_["criterion__gamma"]
    assert search.best_score_ > 0.8
    assert recall_score(y, best.predict(X)) > 0.8  # the 5% class is found
