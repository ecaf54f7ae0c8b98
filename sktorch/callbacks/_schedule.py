"""Callbacks that drive and record the learning rate."""

from __future__ import annotations

from typing import Any

from skorch.callbacks import Callback
from skorch.callbacks import LRScheduler as SkorchLRScheduler


class LRScheduler(SkorchLRScheduler):
    """skorch's ``LRScheduler``, continuing its schedule across fits.

    Differences from skorch's:

    - A later ``fit`` of the same net (warm start, ``partial_fit``) continues
      the schedule where it stopped. skorch builds a new scheduler with
      ``last_epoch`` set from the history, which applies the step that
      already happened a second time.
    - It pickles the scheduler's ``state_dict`` rather than the scheduler,
      which references the optimizer and would pickle a second copy of it
      (and of the weights); the scheduler is rebuilt from that state when
      training resumes.
    - With gradient accumulation, a per-batch schedule steps only after
      batches where the optimizer stepped.

    Estimators add it themselves from their ``lr_scheduler`` hyperparameter;
    it is public for use in a plain skorch net.

    Examples
    --------
    >>> from torch.optim.lr_scheduler import StepLR
    >>> from sktorch.callbacks import LRScheduler
    >>> LRScheduler(policy=StepLR, step_size=2, gamma=0.5).step_every
    'epoch'
    """

    def initialize(self):
        super().initialize()
        self.lr_scheduler_state_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        if self.lr_scheduler_ is not None:
            self.lr_scheduler_.optimizer = net.optimizer_
            return
        saved = self.lr_scheduler_state_
        groups = net.optimizer_.param_groups
        # Building a scheduler resets the optimizer's learning rates (and,
        # for one-cycle or cyclic schedules, its momentum); when continuing,
        # the optimizer's current values are the ones to keep.
        kept = [{k: v for k, v in group.items() if k != "params"} for group in groups]
        self.lr_scheduler_ = self.policy_(net.optimizer_, **self.kwargs)
        if saved is not None:
            self.lr_scheduler_.load_state_dict(saved)
            for group, values in zip(groups, kept):
                group.update(values)
            self.lr_scheduler_state_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        if state.get("lr_scheduler_") is not None:
            state["lr_scheduler_state_"] = state["lr_scheduler_"].state_dict()
            state["lr_scheduler_"] = None
        return state

    def on_batch_end(self, net, training, **kwargs):
        if training and not getattr(net, "optimizer_stepped_", True):
            return
        super().on_batch_end(net, training, **kwargs)


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
