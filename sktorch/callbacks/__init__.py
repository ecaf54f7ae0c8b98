"""skorch callbacks sktorch adds to its estimators."""

from sktorch.callbacks._checkpoint import Checkpoint
from sktorch.callbacks._metrics import ValidationMetrics, metric_monitor
from sktorch.callbacks._progress import BatchProgress, EpochTable
from sktorch.callbacks._schedule import LearningRateLog, LRScheduler
from sktorch.callbacks._tensorboard import TensorBoard

__all__ = [
    "BatchProgress",
    "Checkpoint",
    "EpochTable",
    "LRScheduler",
    "LearningRateLog",
    "TensorBoard",
    "ValidationMetrics",
    "metric_monitor",
]
