"""skorch callbacks sktorch adds to its estimators."""

from sktorch.callbacks._checkpoint import Checkpoint
from sktorch.callbacks._schedule import LearningRateLog, LRScheduler

__all__ = ["Checkpoint", "LRScheduler", "LearningRateLog"]
