"""Network architectures, and the registry behind ``module='<name>'``."""

from __future__ import annotations

from typing import Any

from torch import nn

from sktorch._registry import Registry
from sktorch.models._init import INITIALIZERS
from sktorch.models._mlp import MLP

__all__ = ["MLP", "get_model", "list_initializers", "list_models", "register_model"]

MODELS = Registry("model", base=nn.Module, base_name="torch.nn.Module")
MODELS.register("mlp", MLP)


def get_model(name: str, **options: Any) -> nn.Module:
    """Build the model registered under ``name`` with ``options``.

    Examples
    --------
    >>> from sktorch.models import get_model
    >>> get_model("mlp", in_features=4, out_features=2, hidden_sizes=(8,))
    MLP(
      (layers): Sequential(
        (0): Linear(in_features=4, out_features=8, bias=True)
        (1): ReLU()
        (2): Linear(in_features=8, out_features=2, bias=True)
      )
    )
    """
    return MODELS.get(name, **options)


def list_models() -> list[str]:
    """Names accepted by ``module='<name>'``.

    Examples
    --------
    >>> from sktorch.models import list_models
    >>> "mlp" in list_models()
    True
    """
    return MODELS.names()


def register_model(name: str, cls: type[nn.Module] | None = None) -> Any:
    """Register an ``nn.Module`` class as ``module=name``; usable as a decorator.

    A class whose ``__init__`` takes ``in_features`` / ``out_features`` gets
    them filled in from the data by the estimators.

    Examples
    --------
    >>> from torch import nn
    >>> from sktorch.models import register_model, list_models
    >>> @register_model("linear_doc_example")
    ... class Linear(nn.Linear):
    ...     pass
    >>> "linear_doc_example" in list_models()
    True
    """
    return MODELS.register(name, cls)


def list_initializers() -> list[str]:
    """Names accepted by ``init='<name>'`` (functions of ``torch.nn.init``).

    Examples
    --------
    >>> from sktorch.models import list_initializers
    >>> "kaiming_normal" in list_initializers()
    True
    """
    return INITIALIZERS.names()
