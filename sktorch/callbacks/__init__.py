"""skorch callbacks sktorch adds to its estimators."""

from sktorch.callbacks._schedule import LearningRateLog, LRScheduler

__all__ = ["LRScheduler", "LearningRateLog"]
