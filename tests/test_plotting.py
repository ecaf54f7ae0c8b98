"""plot_history draws the history's values, panel by panel."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sktorch import TorchClassifier, TorchRegressor  # noqa: E402
from sktorch._engine._plotting import plot_history  # noqa: E402
from sktorch.callbacks._metrics import ValidationMetrics  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def line_data(axis):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in axis.lines}


def test_losses_metrics_and_learning_rate_equal_the_history(iris):
    X, y = iris
    clf = TorchClassifier(
        max_epochs=4, lr=0.02, validation_fraction=0.25, random_state=0,
        lr_scheduler="step", lr_scheduler__step_size=1, lr_scheduler__gamma=0.5,
        callbacks=[ValidationMetrics(("accuracy", "f1_macro"))],
    ).fit(X, y)
    history = clf.history_
    axes = plot_history(clf)
    assert isinstance(axes, np.ndarray) and axes.shape == (3,)
    assert [axis.get_title() for axis in axes] == ["loss", "metrics", "learning rate"]
    epochs = [1, 2, 3, 4]
    assert line_data(axes[0]) == {
        "train_loss": (epochs, history[:, "train_loss"]),
        "valid_loss": (epochs, history[:, "valid_loss"]),
    }
    assert line_data(axes[1]) == {
        "valid_accuracy": (epochs, history[:, "valid_accuracy"]),
        "valid_f1_macro": (epochs, history[:, "valid_f1_macro"]),
    }
    assert line_data(axes[2]) == {"lr": (epochs, [0.02, 0.01, 0.005, 0.0025])}
    assert axes[2].get_yscale() == "log"
    assert axes[0].get_yscale() == "linear"
    assert all(axis.get_xlabel() == "epoch" for axis in axes)


def test_without_validation_two_panels_and_given_axes(regression_data):
    X, Y = regression_data
    reg = TorchRegressor(max_epochs=2, random_state=0).fit(X, Y)
    axes = plot_history(reg)
    assert [axis.get_title() for axis in axes] == ["loss", "learning rate"]
    assert line_data(axes[0]) == {"train_loss": ([1, 2], reg.history_[:, "train_loss"])}

    _, mine = plt.subplots(2, 1)
    assert plot_history(reg, ax=mine) is not None
    assert line_data(mine[1]) == {"lr": ([1, 2], [1e-3, 1e-3])}
    _, (one,) = plt.subplots(1, 1, squeeze=False)
    with pytest.raises(ValueError, match=r"draws 2 panel\(s\) for this history \(loss, "
                                         r"learning rate\); the 'ax' parameter must hold"):
        plot_history(reg, ax=[one[0]])


def test_one_line_per_parameter_group(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, lr=0.01, random_state=0,
                          optimizer__param_groups=[("layers.0.*", {"lr": 0.001})]).fit(X, y)
    lr_axis = plot_history(clf)[-1]
    assert line_data(lr_axis) == {"lr group 0": ([1, 2], [0.001, 0.001]),
                                  "lr group 1": ([1, 2], [0.01, 0.01])}


def test_not_fitted():
    with pytest.raises(NotFittedError, match="TorchClassifier instance is not fitted"):
        plot_history(TorchClassifier())
