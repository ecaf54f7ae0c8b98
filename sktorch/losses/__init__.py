"""Loss functions, and the registry behind ``criterion='<name>'``."""

from __future__ import annotations

from typing import Any

from torch import nn

from sktorch._registry import Registry
from sktorch.losses._dice import DiceCELoss, DiceLoss, TverskyLoss
from sktorch.losses._focal import FocalLoss

__all__ = [
    "DiceCELoss",
    "DiceLoss",
    "FocalLoss",
    "TverskyLoss",
    "get_loss",
    "list_losses",
    "register_loss",
]

LOSSES = Registry("loss", base=nn.Module, base_name="torch.nn.Module")
for _name, _cls in {
    "cross_entropy": nn.CrossEntropyLoss,
    "nll": nn.NLLLoss,
    "bce": nn.BCEWithLogitsLoss,
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "smooth_l1": nn.SmoothL1Loss,
    "huber": nn.HuberLoss,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "tversky": TverskyLoss,
    "dice_ce": DiceCELoss,
}.items():
    LOSSES.register(_name, _cls)


def get_loss(name: str, **options: Any) -> nn.Module:
    """Build the loss registered under ``name`` with ``options``.

    Examples
    --------
    >>> from sktorch.losses import get_loss
    >>> get_loss("cross_entropy", label_smoothing=0.1)
    CrossEntropyLoss()
    """
    return LOSSES.get(name, **options)


def list_losses() -> list[str]:
    """Names accepted by ``criterion='<name>'``.

    Examples
    --------
    >>> from sktorch.losses import list_losses
    >>> "cross_entropy" in list_losses()
    True
    """
    return LOSSES.names()


def register_loss(name: str, cls: type[nn.Module] | None = None) -> Any:
    """Register an ``nn.Module`` loss class as ``criterion=name``; usable as a decorator.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sktorch.losses import register_loss, list_losses
    >>> @register_loss("abs_doc_example")
    ... class AbsLoss(nn.Module):
    ...     def forward(self, input, target):
    ...         return (input - target).abs().mean()
    >>> "abs_doc_example" in list_losses()
    True
    """
    return LOSSES.register(name, cls)
