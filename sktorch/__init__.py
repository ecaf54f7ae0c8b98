"""sktorch: PyTorch models as first-class scikit-learn estimators."""

from sktorch._classifier import TorchClassifier
from sktorch._regressor import TorchRegressor
from sktorch._version import __version__
from sktorch.losses import get_loss, list_losses, register_loss
from sktorch.models import get_model, list_models, register_model
from sktorch.optim import get_optimizer, list_optimizers, register_optimizer

__all__ = [
    "TorchClassifier",
    "TorchRegressor",
    "__version__",
    "get_loss",
    "get_model",
    "get_optimizer",
    "list_losses",
    "list_models",
    "list_optimizers",
    "register_loss",
    "register_model",
    "register_optimizer",
]
