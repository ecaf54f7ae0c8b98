"""A multi-layer perceptron for tabular data."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import torch
from torch import nn

from sktorch._utils._registry import Registry

_ACTIVATIONS = Registry("activation", base=nn.Module, base_name="torch.nn.Module")
for _name, _cls in {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}.items():
    _ACTIVATIONS.register(_name, _cls)


class MLP(nn.Module):
    """Fully connected network: ``[Linear -> (BatchNorm) -> activation -> (Dropout)] * k -> Linear``.

    Registered as ``module='mlp'``. Estimators fill in ``in_features`` and
    ``out_features`` from the data; the other arguments are set through
    ``module__<name>`` hyperparameters.

    Parameters
    ----------
    in_features : int
        Width of the input.
    out_features : int
        Width of the output (number of classes or of regression targets).
    hidden_sizes : sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : str or nn.Module class, default='relu'
        One of 'elu', 'gelu', 'leaky_relu', 'relu', 'sigmoid', 'silu', 'tanh',
        or an ``nn.Module`` subclass built without arguments.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    batch_norm : bool, default=False
        Insert ``BatchNorm1d`` after each hidden linear layer.

    Examples
    --------
    >>> import torch
    >>> from sktorch.models import MLP
    >>> net = MLP(in_features=4, out_features=3, hidden_sizes=(8,))
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (100,),
        activation: str | type[nn.Module] = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"The {name!r} argument of MLP must be an int >= 1. Got {value!r} instead."
                )
        if isinstance(hidden_sizes, Integral) and not isinstance(hidden_sizes, bool):
            hidden_sizes = (hidden_sizes,)
        if not isinstance(hidden_sizes, Sequence) or isinstance(hidden_sizes, str) or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in hidden_sizes
        ):
            raise ValueError(
                "The 'hidden_sizes' argument of MLP must be a sequence of ints >= 1, "
                f"e.g. (256, 128). Got {hidden_sizes!r} instead."
            )
        if not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"The 'dropout' argument of MLP must be a float in [0, 1). Got {dropout!r} instead."
            )
        act_cls = _ACTIVATIONS.resolve(activation, param="module__activation", owner="MLP")
        if isinstance(act_cls, nn.Module):
            raise ValueError(
                "The 'activation' argument of MLP must be a name or an nn.Module class, "
                f"not an instance (a layer is built per hidden layer). Got {activation!r}."
            )

        layers: list[nn.Module] = []
        width = int(in_features)
        for size in hidden_sizes:
            layers.append(nn.Linear(width, int(size)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(size)))
            layers.append(act_cls())
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
            width = int(size)
        layers.append(nn.Linear(width, int(out_features)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
