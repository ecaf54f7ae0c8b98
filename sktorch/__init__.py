"""sktorch: PyTorch models as first-class scikit-learn estimators."""

import importlib as _importlib

# Public subpackages that the estimators load anyway: attributes from the start.
from sktorch import callbacks, exceptions, losses, metrics, models, optim, schedulers
from sktorch._estimators import ImageClassifier, ImageSegmenter, TorchClassifier, TorchRegressor
from sktorch._io import export_onnx, load, save
from sktorch._version import __version__
from sktorch.losses import get_loss, list_losses, register_loss
from sktorch.models import get_model, list_models, register_model
from sktorch.optim import get_optimizer, list_optimizers, register_optimizer

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

# Public subpackages and modules that ``import sktorch`` does not load
# itself, reachable as attributes all the same (PEP 562), as in scikit-learn:
# sktorch.transforms subclasses torchvision's transforms and sktorch.explain
# uses them, and importing torchvision costs about a second, which tabular
# users should not pay for.
_LAZY_SUBMODULES = ("explain", "parallel", "transforms")
_TRANSFORMS_FUNCTIONS = ("get_transform", "list_transforms", "register_transform")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"sktorch.{name}")
    if name in _TRANSFORMS_FUNCTIONS:
        return getattr(_importlib.import_module("sktorch.transforms"), name)
    raise AttributeError(f"module 'sktorch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES, *_TRANSFORMS_FUNCTIONS})
