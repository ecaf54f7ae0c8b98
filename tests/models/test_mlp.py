import pytest
import torch
from torch import nn

from sktorch.exceptions import InvalidParameterError
from sktorch.models import MLP


def test_forward_backward_shapes_and_finite():
    net = MLP(in_features=6, out_features=3, hidden_sizes=(8, 4), dropout=0.2, batch_norm=True)
    x = torch.randn(5, 6)
    out = net(x)
    assert out.shape == (5, 3)
    out.sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_layer_structure_follows_options():
    net = MLP(in_features=4, out_features=2, hidden_sizes=(8, 5), activation="tanh", dropout=0.5,
              batch_norm=True)
    kinds = [type(layer) for layer in net.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout,
                     nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout, nn.Linear]
    widths = [(m.in_features, m.out_features) for m in net.layers if isinstance(m, nn.Linear)]
    assert widths == [(4, 8), (8, 5), (5, 2)]


def test_no_hidden_layer_is_linear():
    net = MLP(in_features=3, out_features=1, hidden_sizes=())
    assert [type(m) for m in net.layers] == [nn.Linear]


def test_activation_class_and_int_hidden_size():
    net = MLP(in_features=3, out_features=2, hidden_sizes=7, activation=nn.GELU)
    assert isinstance(net.layers[1], nn.GELU)
    assert net.layers[0].out_features == 7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_sizes": (8, 0)}, "hidden_sizes"),
        ({"hidden_sizes": "8"}, "hidden_sizes"),
        ({"dropout": 1.0}, "dropout"),
        ({"in_features": 0}, "in_features"),
        ({"activation": nn.ReLU()}, "not an instance"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    base = {"in_features": 3, "out_features": 2}
    with pytest.raises(ValueError, match=match):
        MLP(**{**base, **kwargs})


def test_unknown_activation_lists_names():
    with pytest.raises(InvalidParameterError, match=r"'gelu'.*Did you mean 'relu'"):
        MLP(in_features=3, out_features=2, activation="rellu")
