"""Learning-rate schedules, and the registry behind ``lr_scheduler='<name>'``.

Each name comes with the rhythm it steps at (once per epoch, or once per
batch for ``'onecycle'`` and ``'cyclic'``) and with defaults an estimator
derives from its own ``lr``, ``max_epochs`` and number of batches for the
options that are not given.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import lr_scheduler as torch_schedulers

from sktorch._utils._registry import Registry
from sktorch.schedulers._warmup import WarmupCosineLR

__all__ = ["WarmupCosineLR", "get_scheduler", "list_schedulers", "register_scheduler"]

SCHEDULERS = Registry(
    "scheduler", base=torch_schedulers.LRScheduler,
    base_name="torch.optim.lr_scheduler.LRScheduler",
)
# Names whose schedule is defined per optimizer step rather than per epoch.
STEP_PER_BATCH: set[str] = set()

for _name, _cls in {
    "step": torch_schedulers.StepLR,
    "multistep": torch_schedulers.MultiStepLR,
    "exponential": torch_schedulers.ExponentialLR,
    "cosine": torch_schedulers.CosineAnnealingLR,
    "cosine_warmup": WarmupCosineLR,
    "plateau": torch_schedulers.ReduceLROnPlateau,
    "onecycle": torch_schedulers.OneCycleLR,
    "cyclic": torch_schedulers.CyclicLR,
    "lambda": torch_schedulers.LambdaLR,
}.items():
    SCHEDULERS.register(_name, _cls)
STEP_PER_BATCH.update({"onecycle", "cyclic"})


def default_options(name: str, *, lr: float, max_epochs: int, steps_per_epoch: int) -> dict[str, Any]:
    """Options a named schedule gets from the estimator unless given.

    - ``'step'``: ``step_size`` a third of ``max_epochs`` (at least 1).
    - ``'multistep'``: ``milestones`` at half and three quarters of ``max_epochs``.
    - ``'exponential'``: ``gamma`` that takes ``lr`` down to ``lr / 100`` over ``max_epochs``.
    - ``'cosine'``: ``T_max=max_epochs``.
    - ``'cosine_warmup'``: ``T_max=max_epochs``, ``warmup_epochs`` a tenth of it (at least 1).
    - ``'onecycle'``: ``max_lr=lr``, ``total_steps=max_epochs * steps_per_epoch``.
    - ``'cyclic'``: ``base_lr=lr / 10``, ``max_lr=lr``, ``step_size_up`` one epoch of batches.
    - ``'plateau'``, ``'lambda'``: none (``'lambda'`` needs ``lr_lambda``).
    """
    if name == "step":
        return {"step_size": max(1, max_epochs // 3)}
    if name == "multistep":
        return {"milestones": sorted({max(1, max_epochs // 2), max(1, (3 * max_epochs) // 4)})}
    if name == "exponential":
        return {"gamma": 0.01 ** (1.0 / max_epochs)}
    if name == "cosine":
        return {"T_max": max_epochs}
    if name == "cosine_warmup":
        warmup = max(1, round(0.1 * max_epochs))
        return {"T_max": max(max_epochs, warmup + 1), "warmup_epochs": warmup}
    if name == "onecycle":
        return {"max_lr": lr, "total_steps": max_epochs * steps_per_epoch}
    if name == "cyclic":
        return {"base_lr": lr / 10.0, "max_lr": lr, "step_size_up": max(1, steps_per_epoch)}
    return {}


def get_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    max_epochs: int | None = None,
    steps_per_epoch: int | None = None,
    **options: Any,
) -> torch_schedulers.LRScheduler:
    """Build the schedule registered under ``name`` for ``optimizer``.

    When ``max_epochs`` (and, for per-batch schedules, ``steps_per_epoch``)
    are given, options not in ``options`` get the defaults an estimator would
    use (see :func:`default_options`).

    Examples
    --------
    >>> import torch
    >>> from sktorch.schedulers import get_scheduler
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    >>> sched = get_scheduler("cosine", opt, max_epochs=10)
    >>> type(sched).__name__, sched.T_max
    ('CosineAnnealingLR', 10)
    """
    cls = SCHEDULERS.get_class(name)
    if max_epochs is not None:
        lr = optimizer.param_groups[0]["lr"]
        steps = steps_per_epoch if steps_per_epoch is not None else 1
        options = {**default_options(name, lr=lr, max_epochs=max_epochs, steps_per_epoch=steps), **options}
    return cls(optimizer, **options)


def list_schedulers() -> list[str]:
    """Names accepted by ``lr_scheduler='<name>'``.

    Examples
    --------
    >>> from sktorch.schedulers import list_schedulers
    >>> list_schedulers()[:3]
    ['cosine', 'cosine_warmup', 'cyclic']
    """
    return SCHEDULERS.names()


def register_scheduler(
    name: str, cls: type[torch_schedulers.LRScheduler] | None = None, *, step_every: str = "epoch"
) -> Any:
    """Register a scheduler class as ``lr_scheduler=name``; usable as a decorator.

    ``step_every`` is ``'epoch'`` or ``'batch'``: when the estimator steps it.

    Examples
    --------
    >>> from torch.optim.lr_scheduler import PolynomialLR
    >>> from sktorch.schedulers import register_scheduler, list_schedulers
    >>> _ = register_scheduler("polynomial_doc_example", PolynomialLR)
    >>> "polynomial_doc_example" in list_schedulers()
    True
    """
    if step_every not in ("epoch", "batch"):
        raise ValueError(f"step_every must be 'epoch' or 'batch'. Got {step_every!r} instead.")
    if cls is None:
        return lambda cls: register_scheduler(name, cls, step_every=step_every)
    SCHEDULERS.register(name, cls)
    if step_every == "batch":
        STEP_PER_BATCH.add(name)
    return cls


def _ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
