"""The registries behind name-valued hyperparameters."""

import numpy as np
import pytest
import torch
from torch import nn

import sktorch
from sktorch import TorchClassifier, TorchRegressor
from sktorch._utils._registry import Registry
from sktorch.exceptions import InvalidParameterError
from sktorch.losses import LOSSES
from sktorch.models import MODELS
from sktorch.optim import OPTIMIZERS


@pytest.mark.parametrize(
    "list_fn, expected",
    [
        (sktorch.list_losses, {"cross_entropy", "bce", "mse", "l1", "smooth_l1", "huber", "nll",
                               "dice", "focal", "tversky", "dice_ce"}),
        (sktorch.list_models, {"mlp"}),
        (sktorch.list_optimizers, {"adam", "adamw", "sgd", "rmsprop", "lbfgs"}),
    ],
)
def test_lists_are_sorted_and_hold_the_builtins(list_fn, expected):
    names = list_fn()
    assert names == sorted(names)
    assert expected <= set(names)


def test_get_builds_with_options():
    loss = sktorch.get_loss("cross_entropy", label_smoothing=0.25)
    assert isinstance(loss, nn.CrossEntropyLoss) and loss.label_smoothing == 0.25
    model = sktorch.get_model("mlp", in_features=3, out_features=2, hidden_sizes=(4,))
    assert model(torch.zeros(1, 3)).shape == (1, 2)
    opt = sktorch.get_optimizer("sgd", model.parameters(), lr=0.5, momentum=0.9)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9


def test_unknown_name_lists_valid_names_and_nearest():
    with pytest.raises(ValueError, match=r"Unknown loss 'cross_entropi'.*'mse'.*Did you mean 'cross_entropy'\?"):
        sktorch.get_loss("cross_entropi")


def test_register_twice_is_an_error():
    registry = Registry("thing", base=nn.Module)
    registry.register("a", nn.ReLU)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", nn.Tanh)
    with pytest.raises(ValueError, match="non-empty string"):
        registry.register("", nn.Tanh)
    with pytest.raises(TypeError, match="class or a callable"):
        registry.register("b", 3)


@pytest.mark.parametrize("registry", [LOSSES, MODELS, OPTIMIZERS])
def test_builtin_names_cannot_be_overwritten(registry):
    name = registry.names()[0]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(name, registry.get_class(name))


def test_resolve_accepts_name_class_and_instance():
    assert LOSSES.resolve("mse", param="criterion", owner="X") is nn.MSELoss
    assert LOSSES.resolve(nn.L1Loss, param="criterion", owner="X") is nn.L1Loss
    instance = nn.L1Loss()
    assert LOSSES.resolve(instance, param="criterion", owner="X") is instance
    with pytest.raises(InvalidParameterError, match=r"'criterion' parameter of X .*torch\.nn\.Module"):
        LOSSES.resolve(int, param="criterion", owner="X")


class _HalfMSE(nn.Module):
    def __init__(self, scale: float = 0.5):
        super().__init__()
        self.scale = scale

    def forward(self, input, target):
        return self.scale * ((input - target) ** 2).mean()


class _TinyNet(nn.Module):
    def __init__(self, in_features, out_features, width=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.body(x)


def test_registered_components_are_usable_by_name(regression_data):
    X, Y = regression_data
    sktorch.register_loss("half_mse_test", _HalfMSE)
    sktorch.register_model("tiny_test", _TinyNet)
    reg = TorchRegressor(module="tiny_test", module__width=5, criterion="half_mse_test",
                         criterion__scale=2.0, max_epochs=2, random_state=0).fit(X, Y)
    assert isinstance(reg.module_, _TinyNet)
    assert reg.module_.body[0].out_features == 5
    assert reg.module_.body[2].out_features == 2  # filled in from Y
    assert reg.net_.criterion_.scale == 2.0


def test_registered_optimizer_usable_by_name(iris):
    X, y = iris
    sktorch.register_optimizer("sgd_momentum_test", torch.optim.SGD)
    clf = TorchClassifier(optimizer="sgd_momentum_test", optimizer__momentum=0.9, max_epochs=1,
                          random_state=0).fit(X, y)
    assert isinstance(clf.net_.optimizer_, torch.optim.SGD)
    assert clf.net_.optimizer_.defaults["momentum"] == 0.9
    assert np.isfinite(clf.history_[-1, "train_loss"])
