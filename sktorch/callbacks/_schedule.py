"""Callbacks that drive and record the learning rate."""

from __future__ import annotations

from typing import Any

from skorch.callbacks import Callback
from skorch.callbacks import LRScheduler as SkorchLRScheduler


class LRScheduler(SkorchLRScheduler):
    """skorch's ``LRScheduler``, stepping per-batch schedules per optimizer step.

    Two changes: with gradient accumulation, a per-batch schedule steps only
    after batches where the optimizer stepped; and a per-batch schedule
    resumed by a later ``fit`` (warm start, ``partial_fit``) continues from
    the number of optimizer steps taken, where skorch counts epochs.

    Estimators add it themselves from their ``lr_scheduler`` hyperparameter;
    it is public for use in a plain skorch net.

    Examples
    --------
    >>> from torch.optim.lr_scheduler import StepLR
    >>> from sktorch.callbacks import LRScheduler
    >>> LRScheduler(policy=StepLR, step_size=2, gamma=0.5).step_every
    'epoch'
    """

    def on_batch_end(self, net, training, **kwargs):
        if training and not getattr(net, "optimizer_stepped_", True):
            return
        super().on_batch_end(net, training, **kwargs)

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        if self.step_every == "batch" and "last_epoch" not in scheduler_kwargs:
            steps_taken = sum(net.history[:, "optimizer_steps"]) if net.history else 0
            scheduler_kwargs["last_epoch"] = steps_taken - 1
        return super()._get_scheduler(net, policy, **scheduler_kwargs)


class LearningRateLog(Callback):
    """Record each epoch's learning rate in the history.

    ``lr`` is the learning rate of the first parameter group when the epoch
    starts; with several groups, ``lr_groups`` lists all of them. Also
    records ``optimizer_steps``, the number of optimizer steps of the epoch.
    Every sktorch estimator has it.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TorchClassifier(lr=0.01, lr_scheduler="step", lr_scheduler__step_size=1,
    ...                       lr_scheduler__gamma=0.5, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.history_[:, "lr"]
    [0.01, 0.005, 0.0025]
    """

    def on_epoch_begin(self, net, **kwargs: Any) -> None:
        rates = [group["lr"] for group in net.optimizer_.param_groups]
        net.history.record("lr", float(rates[0]))
        if len(rates) > 1:
            net.history.record("lr_groups", [float(r) for r in rates])
        self.steps_ = 0

    def on_batch_end(self, net, training=False, **kwargs: Any) -> None:
        if training and getattr(net, "optimizer_stepped_", True):
            self.steps_ += 1

    def on_epoch_end(self, net, **kwargs: Any) -> None:
        net.history.record("optimizer_steps", self.steps_)


def call_factory(optimizer, last_epoch: int = -1, *, factory, **options):
    """Adapt a user's ``factory(optimizer)`` to skorch's policy signature."""
    return factory(optimizer, **options)
