"""Loss functions, and the registry behind ``criterion='<name>'``."""

from __future__ import annotations

from typing import Any

from torch import nn

from sktorch._utils._registry import Registry
from sktorch.losses._dice import DiceCELoss, DiceLoss, TverskyLoss
from sktorch.losses._focal import FocalLoss

__all__ = [
    "DiceCELoss",
    "DiceLoss",
    "FocalLoss",
    "TverskyLoss",
    "get_loss",
    "list_losses",
    "loss_task",
    "register_loss",
]

LOSSES = Registry("loss", base=nn.Module, base_name="torch.nn.Module")

# The task each known loss serves: 'classification' (its target is a class
# index, a {0, 1} value or a mask of them) or 'regression' (real targets).
# Estimators refuse a loss of the other task; a loss found here for neither
# (a user's own class) is allowed everywhere. Subclasses inherit the task.
LOSS_TASKS: dict[type, str] = {
    **dict.fromkeys(
        (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss, nn.BCELoss, nn.MultiMarginLoss,
         DiceLoss, FocalLoss, TverskyLoss, DiceCELoss),
        "classification",
    ),
    **dict.fromkeys(
        (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.PoissonNLLLoss), "regression"
    ),
}
# Classification losses that score logits, applying a softmax or sigmoid of
# their own (unless built with ``from_logits=False``, for those that take it).
LOGIT_LOSSES: tuple[type, ...] = (
    nn.CrossEntropyLoss, nn.BCEWithLogitsLoss, DiceLoss, FocalLoss, TverskyLoss, DiceCELoss,
)

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


def loss_task(loss: Any) -> str | None:
    """The task a loss class or instance serves: 'classification',
    'regression', or None when it is not known (see :func:`register_loss`).

    Examples
    --------
    >>> from torch import nn
    >>> from sktorch.losses import loss_task
    >>> loss_task(nn.MSELoss), loss_task(nn.CrossEntropyLoss()), loss_task(nn.Module)
    ('regression', 'classification', None)
    """
    cls = loss if isinstance(loss, type) else type(loss)
    for base in cls.__mro__:
        if base in LOSS_TASKS:
            return LOSS_TASKS[base]
    return None


def register_loss(name: str, cls: type[nn.Module] | None = None, *,
                  task: str | None = None) -> Any:
    """Register an ``nn.Module`` loss class as ``criterion=name``; usable as a decorator.

    ``task`` is ``'classification'`` or ``'regression'`` when the loss
    serves only one (a classifier then refuses a regression loss, and a
    regressor a classification loss), or None to allow it on every
    estimator.

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
    if task not in (None, "classification", "regression"):
        raise ValueError(
            f"The 'task' argument of register_loss must be 'classification', 'regression' "
            f"or None. Got {task!r} instead."
        )
    if cls is None:
        return lambda cls: register_loss(name, cls, task=task)
    LOSSES.register(name, cls)
    if task is not None:
        LOSS_TASKS[cls] = task
    return cls
