"""Losses weighted per sample: the weighted mean of a loss over the samples of a batch.

A fit with ``sample_weight`` trains on ``S / D``, where

- ``S = sum_i w_i * sum_e l_ie``: each sample's element losses ``l_ie``
  (one per output, per pixel, ...) weighted by the sample's weight;
- ``D = sum_i w_i * sum_e m_ie``: what the loss's own mean divides by,
  weighted alike. ``m_ie`` is 1 per element, 0 where the target is the
  loss's ``ignore_index``, and the class's weight for a loss with class
  weights over class-index targets (as ``F.cross_entropy(weight=...)``
  divides by the sum of the targets' class weights).

With every weight 1 this is the loss's own ``'mean'`` reduction. A weight
of 0 removes a sample; an integer weight k counts a sample k times. The
two sums are kept apart so that gradient accumulation and data-parallel
training divide by the ``D`` of the whole step (see
``sktorch._engine._net.SktorchNet``), as one large batch would.

The element losses come from a shallow copy of the loss with
``reduction='none'``: the loss must take ``reduction`` and then give one
row per sample. Losses that pool over the batch (Dice and Tversky with
``batch=True``, Dice CE) do not, and are refused with the way out.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["unreduced", "weighted_loss_terms"]


def unreduced(criterion: nn.Module, owner: str) -> nn.Module:
    """A shallow copy of ``criterion`` that gives element losses
    (``reduction='none'``); the original is left as it is."""
    name = type(criterion).__name__
    if getattr(criterion, "batch", False):
        raise ValueError(
            f"{owner} got sample_weight, but its criterion {name} with batch=True pools "
            "the whole batch into one overlap ratio per class, so it has no loss per "
            "sample to weigh. Use criterion__batch=False (one ratio per sample), or a "
            "per-sample loss such as 'cross_entropy' or 'focal'."
        )
    if not isinstance(getattr(criterion, "reduction", None), str):
        raise ValueError(
            f"{owner} got sample_weight, but its criterion {name} has no 'reduction' "
            "attribute, so sktorch cannot get one loss per sample from it. Give the loss "
            "a reduction argument ('none' returning one row per sample), or train "
            "without sample_weight."
        )
    copied = copy.copy(criterion)
    try:
        copied.reduction = "none"
    except Exception as exc:  # a property refusing 'none'
        raise ValueError(
            f"{owner} got sample_weight, but its criterion {name} cannot be set to "
            f"reduction='none' ({exc}). Use a per-sample loss such as 'cross_entropy' or "
            "'focal', or train without sample_weight."
        ) from exc
    return copied


def _element_weights(criterion: nn.Module, target: torch.Tensor,
                     losses: torch.Tensor) -> torch.Tensor | None:
    """``m_ie`` of each element loss, or None where every one is 1."""
    if target.is_floating_point() or target.shape != losses.shape:
        return None
    weights = None
    ignore = getattr(criterion, "ignore_index", None)
    valid = target != ignore if isinstance(ignore, int) else None
    class_weight = getattr(criterion, "weight", None)
    if isinstance(class_weight, torch.Tensor) and class_weight.ndim == 1:
        index = target if valid is None else torch.where(valid, target, 0)
        weights = class_weight.to(losses.dtype)[index]
    if valid is not None:
        weights = valid.to(losses.dtype) if weights is None else weights * valid
    return weights


def weighted_loss_terms(unreduced_criterion: nn.Module, input: Any, target: torch.Tensor,
                        sample_weight: torch.Tensor, owner: str
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, D)`` of a batch (see the module's docstring); the batch's loss
    is ``S / D``."""
    losses = unreduced_criterion(input, target)
    n = len(sample_weight)
    if losses.ndim == 0 or losses.shape[0] != n:
        raise ValueError(
            f"{owner} got sample_weight, but its criterion "
            f"{type(unreduced_criterion).__name__} with reduction='none' returned shape "
            f"{tuple(losses.shape)} for a batch of {n} samples, not one row per sample. "
            "Use a per-sample loss, or train without sample_weight."
        )
    weight = sample_weight.to(device=losses.device, dtype=losses.dtype)
    shape = (n,) + (1,) * (losses.ndim - 1)
    total = (losses * weight.view(shape)).sum()
    elements = _element_weights(unreduced_criterion, target, losses)
    if elements is None:
        count = losses[0].numel() if n else 0
        denominator = weight.sum() * count
    else:
        denominator = (elements * weight.view(shape)).sum()
    return total, denominator
