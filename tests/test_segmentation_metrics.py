"""sktorch.metrics: mean IoU and Dice by hand, against scikit-learn's
per-pixel equivalents, as scorers and under their names in ``metrics``."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.metrics import f1_score, jaccard_score, make_scorer

from sktorch.callbacks import metric_monitor
from sktorch.callbacks._metrics import resolve_metrics
from sktorch.exceptions import InvalidParameterError
from sktorch.metrics import (
    dice_score,
    dice_scorer,
    get_scorer,
    list_scorers,
    mean_iou,
    mean_iou_scorer,
    register_scorer,
)

# Two 3x3 masks of classes 0, 1, 2 (2 is never predicted) and their prediction.
Y_TRUE = np.array([[[0, 0, 1], [0, 1, 1], [2, 2, 1]],
                   [[0, 0, 0], [1, 1, 0], [0, 0, 0]]])
Y_PRED = np.array([[[0, 1, 1], [0, 1, 1], [0, 0, 1]],
                   [[0, 0, 0], [1, 0, 0], [0, 0, 0]]])
# class 0: TP 9, FP 3 (predicted 0 where 1, 2, 2), FN 1; class 1: TP 5, FP 1, FN 1;
# class 2: TP 0, FP 0, FN 2.
IOU = np.array([9 / 13, 5 / 7, 0.0])
DICE = np.array([18 / 22, 10 / 12, 0.0])


def test_values_by_hand():
    np.testing.assert_allclose(mean_iou(Y_TRUE, Y_PRED, average=None), IOU)
    np.testing.assert_allclose(dice_score(Y_TRUE, Y_PRED, average=None), DICE)
    assert mean_iou(Y_TRUE, Y_PRED) == pytest.approx(IOU.mean())
    assert dice_score(Y_TRUE, Y_PRED) == pytest.approx(DICE.mean())
    # Per class, Dice = 2 IoU / (1 + IoU).
    np.testing.assert_allclose(DICE, 2 * IOU / (1 + IOU))


def test_equal_to_scikit_learn_on_the_flattened_masks():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, (2, 5, 6, 7))
    assert mean_iou(y_true, y_pred) == pytest.approx(
        jaccard_score(y_true.ravel(), y_pred.ravel(), average="macro"))
    assert dice_score(y_true, y_pred) == pytest.approx(
        f1_score(y_true.ravel(), y_pred.ravel(), average="macro"))


def test_labels_select_order_and_skip_absent_classes():
    np.testing.assert_allclose(mean_iou(Y_TRUE, Y_PRED, labels=[2, 1], average=None),
                               IOU[[2, 1]])
    assert mean_iou(Y_TRUE, Y_PRED, labels=[1]) == pytest.approx(5 / 7)
    # Class 5 is in neither array: no IoU, left out of the mean.
    per_class = mean_iou(Y_TRUE, Y_PRED, labels=[0, 1, 5], average=None)
    assert np.isnan(per_class[2])
    assert mean_iou(Y_TRUE, Y_PRED, labels=[0, 1, 5]) == pytest.approx(IOU[:2].mean())
    assert np.isnan(mean_iou(Y_TRUE, Y_PRED, labels=[5]))


def test_string_and_boolean_labels():
    names = np.array(["sky", "road", "car"])
    assert mean_iou(names[Y_TRUE], names[Y_PRED]) == pytest.approx(IOU.mean())
    assert mean_iou(Y_TRUE == 1, Y_PRED == 1, labels=[True]) == pytest.approx(5 / 7)
    assert mean_iou(Y_TRUE, Y_TRUE) == 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mean_iou(Y_TRUE, Y_PRED[:1]), r"same shape; got \(2, 3, 3\) and \(1, 3, 3\)"),
        (lambda: mean_iou([], []), "y_true is empty"),
        (lambda: mean_iou(Y_TRUE, Y_PRED, labels=[1, 1]), "distinct labels"),
        (lambda: dice_score(Y_TRUE, Y_PRED, average="micro"), "'macro' or None"),
        (lambda: mean_iou(np.array([1, "a"], dtype=object), np.array([1, 1], dtype=object)),
         "could not sort the labels"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


class Fixed(BaseEstimator):
    """A fitted stand-in that predicts given masks."""

    def __init__(self, masks):
        self.masks = masks

    def fit(self, X, y):
        return self

    def predict(self, X):
        return self.masks[X]


def test_scorers_score_predict():
    X = np.arange(2)
    assert mean_iou_scorer(Fixed(Y_PRED), X, Y_TRUE) == pytest.approx(IOU.mean())
    assert dice_scorer(Fixed(Y_PRED), X, Y_TRUE) == pytest.approx(DICE.mean())
    assert mean_iou_scorer(Fixed(Y_PRED), X[:1], Y_TRUE[:1]) == pytest.approx(
        mean_iou(Y_TRUE[:1], Y_PRED[:1]))


def test_names_resolve_to_the_scorers():
    assert resolve_metrics(("mean_iou", "dice", "accuracy")) == {
        "mean_iou": mean_iou_scorer, "dice": dice_scorer, "accuracy": "accuracy"}
    # Passed as objects, they are recorded under their metric's name.
    assert list(resolve_metrics((mean_iou_scorer, dice_scorer))) == ["mean_iou", "dice_score"]
    assert metric_monitor("mean_iou") == ("valid_mean_iou", False)
    assert get_scorer("dice") is dice_scorer
    assert {"mean_iou", "dice", "accuracy"} <= set(list_scorers())
    with pytest.raises(InvalidParameterError, match=r"unknown scorer name 'mean_io'.*"
                                                    r"\['dice', 'mean_iou'.*Did you mean"):
        resolve_metrics(("mean_io",))


def test_register_scorer_refuses_taken_names():
    register_scorer("foreground_iou_test", make_scorer(mean_iou, labels=[1]))
    assert resolve_metrics(("foreground_iou_test",))["foreground_iou_test"](
        Fixed(Y_PRED), np.arange(2), Y_TRUE) == pytest.approx(5 / 7)
    with pytest.raises(ValueError, match="already registered"):
        register_scorer("mean_iou", mean_iou_scorer)
    with pytest.raises(ValueError, match="scikit-learn scorer name already"):
        register_scorer("accuracy", mean_iou_scorer)


def test_validation_metrics_read_uint8_images_channels_first():
    # Validation images (n, 1, H, W) reach the scorers as a tensor: as a
    # uint8 array, image estimators would read them as channels-last.
    from sklearn.datasets import load_digits

    from sktorch import ImageClassifier

    digits = load_digits()
    X, y = (digits.images[:100] * 255 / 16).astype(np.uint8), digits.target[:100]
    clf = ImageClassifier(module__width=4, max_epochs=1, validation_fraction=0.2,
                          metrics=("accuracy",), random_state=0).fit(X, y)
    assert 0 <= clf.history_[-1, "valid_accuracy"] <= 1
