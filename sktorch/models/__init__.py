"""Network architectures, and the registry behind ``module='<name>'``."""

from __future__ import annotations

from typing import Any

from torch import nn

from sktorch._utils._registry import Registry
from sktorch.models._cnn import SmallCNN
from sktorch.models._image import ImageModel, torchvision_models
from sktorch.models._init import INITIALIZERS
from sktorch.models._mlp import MLP
from sktorch.models._segmentation import SegmentationModel, torchvision_segmentation_models
from sktorch.models._unet import UNet

__all__ = [
    "ImageModel",
    "MLP",
    "SegmentationModel",
    "SmallCNN",
    "UNet",
    "get_model",
    "list_image_models",
    "list_initializers",
    "list_models",
    "list_segmentation_models",
    "register_image_model",
    "register_model",
    "register_segmentation_model",
]

MODELS = Registry("model", base=nn.Module, base_name="torch.nn.Module")
MODELS.register("mlp", MLP)

# Networks for image estimators, by name; torchvision's classification
# models are accepted by name beside these.
IMAGE_MODELS = Registry("image model", base=nn.Module, base_name="torch.nn.Module")
IMAGE_MODELS.register("cnn", SmallCNN)

# Networks for ImageSegmenter, by name; torchvision's segmentation models are
# accepted by name beside these.
SEGMENTATION_MODELS = Registry("segmentation model", base=nn.Module, base_name="torch.nn.Module")
SEGMENTATION_MODELS.register("unet", UNet)


def get_model(name: str, **options: Any) -> nn.Module:
    """Build the model registered under ``name`` with ``options``.

    Examples
    --------
    >>> from sktorch.models import get_model
    >>> get_model("mlp", in_features=4, out_features=2, hidden_sizes=(8,))
    MLP(
      (layers): Sequential(
        (0): Linear(in_features=4, out_features=8, bias=True)
        (1): ReLU()
        (2): Linear(in_features=8, out_features=2, bias=True)
      )
    )
    """
    return MODELS.get(name, **options)


def list_models() -> list[str]:
    """Names accepted by ``module='<name>'``.

    Examples
    --------
    >>> from sktorch.models import list_models
    >>> "mlp" in list_models()
    True
    """
    return MODELS.names()


def register_model(name: str, cls: type[nn.Module] | None = None) -> Any:
    """Register an ``nn.Module`` class as ``module=name``; usable as a decorator.

    A class whose ``__init__`` takes ``in_features`` / ``out_features`` gets
    them filled in from the data by the estimators.

    Examples
    --------
    >>> from torch import nn
    >>> from sktorch.models import register_model, list_models
    >>> @register_model("linear_doc_example")
    ... class Linear(nn.Linear):
    ...     pass
    >>> "linear_doc_example" in list_models()
    True
    """
    return MODELS.register(name, cls)


def list_image_models() -> list[str]:
    """Names accepted by an image estimator's ``module``: sktorch's image
    networks ('cnn', and any registered), then torchvision's classification
    models ('resnet18', 'mobilenet_v3_small', 'efficientnet_b0', ...).

    Examples
    --------
    >>> from sktorch.models import list_image_models
    >>> {"cnn", "resnet18"} <= set(list_image_models())
    True
    """
    return IMAGE_MODELS.names() + torchvision_models()


def register_image_model(name: str, cls: type[nn.Module] | None = None) -> Any:
    """Register an ``nn.Module`` class as an image estimator's ``module=name``;
    usable as a decorator.

    Its ``__init__`` gets ``in_channels`` and ``out_features`` from the data
    when it takes them; a class attribute ``head`` names its classification
    head and ``gradcam_layer`` the layer Grad-CAM explains.

    Examples
    --------
    >>> from sktorch.models import SmallCNN, register_image_model, list_image_models
    >>> @register_image_model("wide_cnn_doc_example")
    ... class WideCNN(SmallCNN):
    ...     pass
    >>> "wide_cnn_doc_example" in list_image_models()
    True
    """
    return IMAGE_MODELS.register(name, cls)


def list_segmentation_models() -> list[str]:
    """Names accepted by :class:`~sktorch.ImageSegmenter`'s ``module``:
    sktorch's segmentation networks ('unet', and any registered), then
    torchvision's segmentation models ('fcn_resnet50',
    'deeplabv3_mobilenet_v3_large', 'lraspp_mobilenet_v3_large', ...).

    Examples
    --------
    >>> from sktorch.models import list_segmentation_models
    >>> {"unet", "lraspp_mobilenet_v3_large"} <= set(list_segmentation_models())
    True
    """
    return SEGMENTATION_MODELS.names() + torchvision_segmentation_models()


def register_segmentation_model(name: str, cls: type[nn.Module] | None = None) -> Any:
    """Register an ``nn.Module`` class as :class:`~sktorch.ImageSegmenter`'s
    ``module=name``; usable as a decorator.

    Its ``__init__`` gets ``in_channels`` and ``out_features`` (the number
    of score maps) from the data when it takes them; its forward pass maps
    a batch (N, C, H, W) to scores (N, out_features, h, w), brought to
    (H, W) when h, w differ. A class attribute ``head`` names the layer that
    gives the scores (else the last convolution is taken).

    Examples
    --------
    >>> from sktorch.models import UNet, register_segmentation_model, list_segmentation_models
    >>> @register_segmentation_model("small_unet_doc_example")
    ... class SmallUNet(UNet):
    ...     def __init__(self, in_channels=1, out_features=2):
    ...         super().__init__(in_channels, out_features, depth=2, width=8)
    >>> "small_unet_doc_example" in list_segmentation_models()
    True
    """
    return SEGMENTATION_MODELS.register(name, cls)


def list_initializers() -> list[str]:
    """Names accepted by ``init='<name>'`` (functions of ``torch.nn.init``).

    Examples
    --------
    >>> from sktorch.models import list_initializers
    >>> "kaiming_normal" in list_initializers()
    True
    """
    return INITIALIZERS.names()
