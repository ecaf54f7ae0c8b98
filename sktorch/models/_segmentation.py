"""Segmentation networks: the wrapper that gives one score map per class at
the input's size, and torchvision's segmentation models (FCN, DeepLabV3,
LR-ASPP) with their heads fitted to the classes."""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sktorch.models._image import ImageModel, weights_entry, weights_file


class SegmentationModel(ImageModel):
    """A segmentation network with its input preprocessing; its output is
    one score map per class at the height and width of the input.

    The preprocessing is :class:`ImageModel`'s (to float in [0, 1], a gray
    channel repeated for a 3-channel network, resize, normalization) without
    the center crop, which would lose pixels of the input. The network's
    output is taken as it comes (a tensor), as ``output['out']`` (the dict
    torchvision's segmentation models return) or as the first element of a
    tuple, and brought back to the input's height and width by bilinear
    interpolation of the scores when they differ (after a resize, or for
    networks that predict at a lower resolution).

    Parameters
    ----------
    model : nn.Module
        The network: a batch (N, C, h, w) to scores (N, K, h', w').
    channels : int or None, default=None
        Input channels the network takes (a 1-channel batch is repeated to
        3 when it takes 3); None takes the batch as it is.
    resize : tuple of int or None, default=None
        (height, width) the batch is resized to before the network, or one
        int for the shorter side (torchvision's segmentation weights resize
        to 520); None keeps the size.
    mean, std : tuple of float or None, default=None
        Per-channel normalization after scaling to [0, 1], or None.
    head : str or None, default=None
        Name (in ``model``) of the layer or block that gives the class
        scores; freezing ``'backbone'`` trains only it.
    channels_last : bool, default=False
        Run the network in the channels-last memory format.

    See Also
    --------
    ImageModel : The same for classification networks.
    UNet : The built-in segmentation network.

    Examples
    --------
    >>> import torch
    >>> from sktorch.models import SegmentationModel, UNet
    >>> net = SegmentationModel(UNet(in_channels=1, out_features=3, depth=2, width=4),
    ...                         channels=1, resize=(16, 16))
    >>> net(torch.zeros(2, 1, 10, 12, dtype=torch.uint8)).shape  # scores at the input's size
    torch.Size([2, 3, 10, 12])
    """

    def __init__(
        self,
        model: nn.Module,
        channels: int | None = None,
        resize: tuple[int, ...] | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        head: str | None = None,
        channels_last: bool = False,
    ) -> None:
        options = {"channels_last": True} if channels_last else {}
        super().__init__(model, channels=channels, resize=resize, crop=None, mean=mean, std=std,
                         head=head, gradcam_layer=None, **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(self.preprocess(x))
        if isinstance(output, dict):
            output = output["out"]
        elif isinstance(output, (tuple, list)):
            output = output[0]
        if output.ndim == 4 and tuple(output.shape[-2:]) != tuple(x.shape[-2:]):
            output = F.interpolate(output, size=tuple(x.shape[-2:]), mode="bilinear",
                                   align_corners=False)
        return output


# ------------------------------------------------------ torchvision models
def torchvision_segmentation_models() -> list[str]:
    """Names of torchvision's semantic segmentation models."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models.segmentation)


def backbone_weights(arch: str, name: str, owner: str) -> Any:
    """The entry ``name`` ('DEFAULT', 'IMAGENET1K_V1'...) of the weights enum
    of the backbone of the torchvision segmentation model ``arch``."""
    import torchvision

    builder = torchvision.models.get_model_builder(arch)
    default = inspect.signature(builder).parameters["weights_backbone"].default
    enum = type(default)
    return weights_entry(
        enum,
        name,
        f"The 'weights_backbone' parameter of {owner} must be one of {{valid}} for the "
        f"backbone of {arch!r} ({enum.__name__}).",
    )


def build_torchvision_segmentation(
    arch: str,
    n_outputs: int,
    weights_backbone: Any = None,
    owner: str = "ImageSegmenter",
    **options: Any,
) -> nn.Module:
    """Build ``arch`` untrained with ``n_outputs`` classes, its backbone
    pretrained with ``weights_backbone`` (read from torch's hub cache) or
    untrained (None; torchvision's own default would download ImageNet
    weights). The auxiliary classifier, when there is one, is dropped."""
    import torchvision

    path = weights_file(weights_backbone) if weights_backbone is not None else None
    try:
        network = torchvision.models.get_model(
            arch, weights=None, weights_backbone=weights_backbone, num_classes=n_outputs,
            progress=False, **options
        )
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        if path is None or os.path.exists(path):
            raise
        raise FileNotFoundError(
            f"{owner} could not load the backbone weights {weights_backbone} of {arch!r}: "
            f"they are not in torch's hub cache and downloading {weights_backbone.url} "
            f"failed ({exc}). Put that file at {path} (the cache is under $TORCH_HOME/hub, "
            f"now {torch.hub.get_dir()}), or pass weights_backbone=None."
        ) from exc
    drop_aux_classifier(network)
    return network


def drop_aux_classifier(network: nn.Module) -> None:
    """Remove torchvision's auxiliary classifier: only ``'out'`` is trained
    and predicted, so it would hold parameters that never get a gradient."""
    if getattr(network, "aux_classifier", None) is not None:
        network.aux_classifier = None


def replace_class_convolutions(head: nn.Module, old_classes: int, n_outputs: int) -> list[str]:
    """Replace every convolution of ``head`` that scores ``old_classes``
    classes (FCN's and DeepLabV3's last convolution, LR-ASPP's low and high
    classifiers) by a fresh one scoring ``n_outputs``; return their names."""
    replaced = []
    for name, layer in list(head.named_modules()):
        if isinstance(layer, nn.Conv2d) and layer.out_channels == old_classes:
            parent_name, _, child = name.rpartition(".")
            parent = head.get_submodule(parent_name) if parent_name else head
            new = nn.Conv2d(layer.in_channels, n_outputs, kernel_size=layer.kernel_size,
                            stride=layer.stride, padding=layer.padding,
                            bias=layer.bias is not None)
            setattr(parent, child, new.to(layer.weight.device))
            replaced.append(name)
    if not replaced:
        raise ValueError(
            f"Found no convolution with {old_classes} outputs in the head "
            f"{type(head).__name__} to replace."
        )
    return replaced


def segmentation_preprocessing(weights: Any, resize: bool) -> dict[str, Any]:
    """Normalization (and, with ``resize``, the resize of the shorter side)
    of torchvision ``weights``' own transforms; never a crop."""
    transform = weights.transforms()
    mean = getattr(transform, "mean", None)
    std = getattr(transform, "std", None)
    preprocessing: dict[str, Any] = {}
    if mean is not None and std is not None:
        preprocessing.update(mean=tuple(mean), std=tuple(std))
    size = getattr(transform, "resize_size", None)
    if resize and size is not None:
        preprocessing["resize"] = tuple(size)
    return preprocessing


def score_layer(network: nn.Module) -> str | None:
    """The layer that gives the class scores: the network's declared
    ``head``, else its last convolution, else None."""
    declared = getattr(network, "head", None)
    if isinstance(declared, str):
        return declared
    names = [name for name, layer in network.named_modules() if isinstance(layer, nn.Conv2d)]
    return names[-1] if names else None


def score_channels(network: nn.Module, name: str) -> int | None:
    """The output channels of the layer ``name`` (its last layer if a
    Sequential), or None if that is not a convolution."""
    layer = network.get_submodule(name)
    if isinstance(layer, nn.Sequential) and len(layer):
        layer = layer[-1]
    return layer.out_channels if isinstance(layer, nn.Conv2d) else None
