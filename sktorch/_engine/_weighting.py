"""Sample weights in training: the weighted loss of a batch, of a step, and of an epoch.

:class:`SampleWeighting` is mixed into ``SktorchNet``. A weighted batch
(its targets are :class:`~sktorch._data._tensors.WeightedTargets`) is
scored ``S / D`` (:func:`sktorch.losses._weighted.weighted_loss_terms`).
When a step spans several batches (gradient accumulation) or processes
(data-parallel training), each backward pass takes its batch's ``S`` and the
gradients are divided by the step's ``D`` before the optimizer steps, as one
large batch would give them. The epoch's ``train_loss`` and ``valid_loss``
average the batches' losses by their ``D`` (:class:`LossAverage`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch.callbacks import PassthroughScoring

from sktorch._data._tensors import WeightedTargets
from sktorch.losses._weighted import unreduced, weighted_loss_terms

__all__ = ["LossAverage", "SampleWeighting"]


class SampleWeighting:
    """The weighted-loss side of ``SktorchNet`` (see the module's docstring)."""

    # The loss's denominator D of the weighted batch just scored, read by the
    # step and the epoch loop that scored it; the D summed over the current
    # accumulation group; the loss copy giving element losses. Set per
    # instance by SktorchNet.__init__.
    _batch_weight: torch.Tensor | None = None
    _group_weight: torch.Tensor | None = None
    _unreduced: tuple[Any, Any] | None = None

    def get_default_callbacks(self):
        # train_loss and valid_loss averaged over the batches by their weight
        # (see LossAverage), not only by their number of rows.
        return [
            (name, LossAverage(name=name, on_train=name == "train_loss")
             if isinstance(callback, PassthroughScoring) else callback)
            for name, callback in super().get_default_callbacks()
        ]

    def _weighted_loss(self, y_pred: Any, y_true: WeightedTargets) -> torch.Tensor:
        """The batch's weighted mean loss ``S / D``; its ``D`` is kept in
        ``_batch_weight`` for the step and the epoch loop."""
        device = torch.device(self.device)
        total, denominator = weighted_loss_terms(
            self._unreduced_criterion(), y_pred, y_true.targets.to(device), y_true.weights,
            self._owner())
        self._batch_weight = denominator.detach()
        # A batch whose every weight is 0 has S = 0 and D = 0: loss 0.
        return total / denominator.clamp_min(torch.finfo(denominator.dtype).tiny)

    def _owner(self) -> str:
        return type(self.estimator or self).__name__

    def _unreduced_criterion(self):
        """``criterion_`` giving element losses (``reduction='none'``), for
        weighted batches; a copy, made once per criterion."""
        if self._unreduced is None or self._unreduced[0] is not self.criterion_:
            self._unreduced = (self.criterion_, unreduced(self.criterion_, self._owner()))
        return self._unreduced[1]

    def _divide_grads(self, denominator: torch.Tensor) -> None:
        """Gradients of ``sum S`` over a step's batches (weighted, with
        accumulation or data-parallel training) made those of ``sum S /
        sum D``: what one large batch would give."""
        if self._shard is not None:
            import torch.distributed as dist

            denominator = denominator.clone()
            dist.all_reduce(denominator)
            # DistributedDataParallel averaged the gradients over processes.
            denominator = denominator / self._shard[1]
        scale = 1.0 / denominator.clamp_min(torch.finfo(denominator.dtype).tiny)
        for _, param in self.get_all_learnable_params():
            if param.grad is not None:
                param.grad.mul_(scale.to(param.grad.dtype))



class LossAverage(PassthroughScoring):
    """skorch's epoch loss (``train_loss``, ``valid_loss``): the batches'
    losses averaged by their number of rows, or by their weight D when the
    batches were weighted (``sample_weight``), so that the epoch's loss is
    the weighted mean over all its samples."""

    def get_avg_score(self, history):
        prefix = "train" if self.on_train else "valid"
        batches = history[-1, "batches"]
        scored = [batch for batch in batches if self.name in batch]
        key = f"{prefix}_batch_weight"
        if scored and all(key in batch for batch in scored):
            weights = [batch[key] for batch in scored]
            if sum(weights) > 0:
                return float(np.average([b[self.name] for b in scored], weights=weights))
        return super().get_avg_score(history)
