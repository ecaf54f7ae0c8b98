"""sktorch: PyTorch models as first-class scikit-learn estimators."""

from sktorch._classifier import TorchClassifier
from sktorch._image import ImageClassifier
from sktorch._onnx import export_onnx
from sktorch._persistence import load, save
from sktorch._regressor import TorchRegressor
from sktorch._segmenter import ImageSegmenter
from sktorch._version import __version__
from sktorch.losses import get_loss, list_losses, register_loss
from sktorch.models import get_model, list_models, register_model
from sktorch.optim import get_optimizer, list_optimizers, register_optimizer
from sktorch.transforms import get_transform, list_transforms, register_transform

__all__ = [
    "ImageClassifier",
    "ImageSegmenter",
    "TorchClassifier",
    "TorchRegressor",
    "__version__",
    "export_onnx",
    "get_loss",
    "get_model",
    "get_optimizer",
    "get_transform",
    "list_losses",
    "list_models",
    "list_optimizers",
    "list_transforms",
    "load",
    "register_loss",
    "register_model",
    "register_optimizer",
    "register_transform",
    "save",
]
