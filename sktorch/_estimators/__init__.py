"""Estimators: the parameter contract, fit orchestration, net assembly and the leaves."""

from sktorch._estimators._base import BaseTorchEstimator
from sktorch._estimators._classifier import TorchClassifier
from sktorch._estimators._image import ImageClassifier
from sktorch._estimators._regressor import TorchRegressor
from sktorch._estimators._segmenter import ImageSegmenter

#: sktorch's public estimator classes by name: what ``sktorch.load`` builds
#: without a trust list.
ESTIMATORS: dict[str, type[BaseTorchEstimator]] = {
    cls.__name__: cls
    for cls in (TorchClassifier, TorchRegressor, ImageClassifier, ImageSegmenter)
}

__all__ = ["ESTIMATORS", "BaseTorchEstimator", "ImageClassifier", "ImageSegmenter",
           "TorchClassifier", "TorchRegressor"]
