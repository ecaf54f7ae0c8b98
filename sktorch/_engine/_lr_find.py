"""The learning-rate range test (Smith, 2017)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from sktorch._data._tensors import TensorDataset
from sktorch._engine._net import SktorchNet
from sktorch._utils._rng import fit_random_state


@dataclass
class LRFinderResult:
    """What :meth:`lr_find` measured.

    Attributes
    ----------
    lrs : ndarray
        Learning rate of each step (of the first parameter group).
    losses : ndarray
        Smoothed training loss after each step (exponential moving average,
        bias-corrected).
    raw_losses : ndarray
        Training loss of each step's batch.
    suggestion : float or None
        Learning rate where the smoothed loss falls fastest (steepest negative
        slope against ``log(lr)``); None when too few steps ran to tell.
    diverged : bool
        Whether the run stopped early because the loss diverged.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float | None
    diverged: bool = field(default=False)

    def plot(self, ax: Any = None) -> Any:
        """Plot the smoothed loss against the learning rate (log scale).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure's Axes when None.

        Returns
        -------
        ax : matplotlib Axes
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - matplotlib is in the dev extra
            raise ImportError(
                "LRFinderResult.plot needs matplotlib: pip install 'sktorch[plot]'."
            ) from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="tab:red", linestyle="--",
                       label=f"suggestion {self.suggestion:.2g}")
        ax.legend()
        ax.set_title("Learning-rate range test")
        return ax


def _check(name: str, value: Any, kind: type, low: float, owner: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) or not value > low:
        expected = "an int" if kind is Integral else "a float"
        raise ValueError(
            f"The {name!r} argument of {owner}.lr_find must be {expected} > {low:g}. "
            f"Got {value!r} instead."
        )


def check_lr_find_arguments(
    owner: str,
    *,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    smoothing: float,
    diverge_threshold: float,
) -> None:
    """Check the arguments of ``owner.lr_find``, before any data is read."""
    _check("start_lr", start_lr, Real, 0.0, owner)
    _check("end_lr", end_lr, Real, start_lr, owner)
    _check("num_iter", num_iter, Integral, 1, owner)
    _check("diverge_threshold", diverge_threshold, Real, 1.0, owner)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(
            f"The 'smoothing' argument of {owner}.lr_find must be in [0, 1). Got {smoothing!r}."
        )


def lr_find(
    build: Callable[[], SktorchNet],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    device: torch.device,
    seed: int,
    *,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    smoothing: float,
    diverge_threshold: float,
) -> LRFinderResult:
    """Run the range test on the net ``build()`` returns; see ``lr_find`` on
    the estimators, which check the arguments (:func:`check_lr_find_arguments`) and
    hand over the builder of a probe's net and its prepared data.

    ``build`` is called once, with torch's random state seeded with ``seed``
    (the caller's random state is restored afterwards), and returns an
    initialized net whose learning rate is ``start_lr``.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    gamma = (end_lr / start_lr) ** (1.0 / max(1, num_iter - 1))

    lrs, raw, smooth = [], [], []
    diverged = False
    with fit_random_state(cuda):
        torch.manual_seed(seed)
        net = build()
        data = TensorDataset(*(t.to(device) for t in (inputs, targets)))
        optimizer = net.optimizer_
        bases = [group["lr"] for group in optimizer.param_groups]
        batches = iter(())
        average, best = 0.0, np.inf
        for step in range(num_iter):
            batch = next(batches, None)
            if batch is None:
                batches = iter(net.get_iterator(data, training=True))
                batch = next(batches)
            for group, base in zip(optimizer.param_groups, bases):
                group["lr"] = base * gamma**step
            loss = float(net.train_step(batch)["loss"].item())
            if not np.isfinite(loss):
                diverged = True
                break
            average = smoothing * average + (1.0 - smoothing) * loss
            smoothed = average / (1.0 - smoothing ** (step + 1)) if smoothing else loss
            lrs.append(start_lr * gamma**step)
            raw.append(loss)
            smooth.append(smoothed)
            best = min(best, smoothed)
            if smoothed > diverge_threshold * best:
                diverged = True
                break

    lrs_a, smooth_a = np.asarray(lrs), np.asarray(smooth)
    return LRFinderResult(lrs=lrs_a, losses=smooth_a, raw_losses=np.asarray(raw),
                          suggestion=_steepest(lrs_a, smooth_a), diverged=diverged)


def _steepest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """Learning rate of the steepest descent of the loss against log(lr),
    leaving out the noisy first and last tenth of the curve."""
    if len(lrs) < 5:
        return None
    slopes = np.gradient(losses, np.log(lrs))
    trim = len(lrs) // 10
    window = slice(trim, len(lrs) - trim)
    return float(lrs[window][np.argmin(slopes[window])])
