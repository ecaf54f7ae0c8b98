"""Optimizers, and the registry behind ``optimizer='<name>'``."""

from __future__ import annotations

from typing import Any

import torch

from sktorch._utils._registry import Registry

__all__ = ["get_optimizer", "list_optimizers", "register_optimizer"]

OPTIMIZERS = Registry("optimizer", base=torch.optim.Optimizer, base_name="torch.optim.Optimizer")
for _name, _cls in {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "lbfgs": torch.optim.LBFGS,
}.items():
    OPTIMIZERS.register(_name, _cls)


def get_optimizer(name: str, params: Any, **options: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered under ``name`` over ``params``.

    Examples
    --------
    >>> import torch
    >>> from sktorch.optim import get_optimizer
    >>> layer = torch.nn.Linear(2, 1)
    >>> type(get_optimizer("adamw", layer.parameters(), lr=0.01)).__name__
    'AdamW'
    """
    return OPTIMIZERS.get_class(name)(params, **options)


def list_optimizers() -> list[str]:
    """Names accepted by ``optimizer='<name>'``.

    Examples
    --------
    >>> from sktorch.optim import list_optimizers
    >>> "adam" in list_optimizers()
    True
    """
    return OPTIMIZERS.names()


def register_optimizer(name: str, cls: type[torch.optim.Optimizer] | None = None) -> Any:
    """Register a ``torch.optim.Optimizer`` class as ``optimizer=name``; usable as a decorator.

    Examples
    --------
    >>> import torch
    >>> from sktorch.optim import register_optimizer, list_optimizers
    >>> _ = register_optimizer("sgd_doc_example", torch.optim.SGD)
    >>> "sgd_doc_example" in list_optimizers()
    True
    """
    return OPTIMIZERS.register(name, cls)
