"""Linear warmup followed by cosine annealing."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler


class WarmupCosineLR(LRScheduler):
    """Linear warmup to the base learning rate, then cosine annealing.

    Over the first ``warmup_epochs`` steps the learning rate rises linearly
    from ``warmup_start_factor * base_lr`` to ``base_lr``; over the following
    ``T_max - warmup_epochs`` steps it follows half a cosine down to
    ``eta_min``, where it stays. Registered as ``lr_scheduler='cosine_warmup'``,
    stepped once per epoch.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer whose learning rates are scheduled.
    warmup_epochs : int
        Number of warmup steps (epochs), >= 0.
    T_max : int
        Total number of steps (epochs) of warmup plus annealing, > warmup_epochs.
    eta_min : float, default=0.0
        Learning rate at the end of the annealing.
    warmup_start_factor : float, default=0.0
        Fraction of the base learning rate the warmup starts from, in [0, 1].
    last_epoch : int, default=-1
        Index of the last step, for resuming.

    Examples
    --------
    >>> import torch
    >>> from sktorch.schedulers import WarmupCosineLR
    >>> opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    >>> sched = WarmupCosineLR(opt, warmup_epochs=2, T_max=4)
    >>> lrs = []
    >>> for _ in range(5):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3))
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_epochs: int,
        T_max: int,
        eta_min: float = 0.0,
        warmup_start_factor: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(
                "The 'warmup_epochs' argument of WarmupCosineLR must be an int >= 0. "
                f"Got {warmup_epochs!r} instead."
            )
        if not isinstance(T_max, int) or T_max <= warmup_epochs:
            raise ValueError(
                "The 'T_max' argument of WarmupCosineLR must be an int greater than "
                f"warmup_epochs={warmup_epochs}. Got {T_max!r} instead."
            )
        if not 0.0 <= warmup_start_factor <= 1.0:
            raise ValueError(
                "The 'warmup_start_factor' argument of WarmupCosineLR must be in [0, 1]. "
                f"Got {warmup_start_factor!r} instead."
            )
        self.warmup_epochs = warmup_epochs
        self.T_max = T_max
        self.eta_min = eta_min
        self.warmup_start_factor = warmup_start_factor
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, step: int) -> float:
        if step < self.warmup_epochs:
            start = self.warmup_start_factor
            return base_lr * (start + (1.0 - start) * step / self.warmup_epochs)
        progress = min(1.0, (step - self.warmup_epochs) / (self.T_max - self.warmup_epochs))
        return self.eta_min + (base_lr - self.eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [self._lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]
