"""Image networks: the built-in CNN and torchvision's classification models,
wrapped with the preprocessing their weights expect.

``ImageModel`` is what an image estimator trains: its ``model`` is the
network, and its forward pass first brings a batch of images, as the
estimator stores them (uint8 0-255 or float 0-1, N x C x H x W), to what the
network expects (float, 3 channels for an RGB backbone, the size and
normalization of its weights). Keeping that inside the module means
prediction, ONNX export and Grad-CAM all see the same pipeline.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import torch
from torch import nn

from sktorch.exceptions import InvalidParameterError

_HEAD_TYPES = (nn.Linear, nn.Conv2d)


class ImageModel(nn.Module):
    """An image network with its input preprocessing.

    Parameters
    ----------
    model : nn.Module
        The network; its parameters are named ``model.<name>``.
    channels : int or None
        Input channels the network takes; a 1-channel batch is repeated to
        3 channels when it takes 3. None takes the batch as it is.
    resize : tuple of int or None
        (height, width) the batch is resized to (bilinear, antialiased); one
        int resizes the shorter side to it, keeping the aspect ratio; None
        keeps the size.
    crop : tuple of int or None
        (height, width), or one int for a square, of a center crop after
        resizing, or None.
    mean, std : tuple of float or None
        Per-channel normalization after scaling to [0, 1], or None.
    head : str or None
        Name (in ``model``) of the classification head, the layer that maps
        features to class scores; freezing ``'backbone'`` trains only it.
    gradcam_layer : str or None
        Name (in ``model``) of the layer Grad-CAM explains by default; None
        lets :func:`sktorch.explain.grad_cam` choose.
    channels_last : bool, default=False
        Keep the network's 4-D weights and its input batches in the
        channels-last memory format (NHWC), which convolutions run faster
        in on recent GPUs (tensor cores) and with oneDNN on CPUs.

    Examples
    --------
    >>> import torch
    >>> from sktorch.models import ImageModel, SmallCNN
    >>> net = ImageModel(SmallCNN(in_channels=3, out_features=4), channels=3, resize=(16, 16))
    >>> gray_uint8 = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    >>> net.preprocess(gray_uint8).shape
    torch.Size([2, 3, 16, 16])
    >>> net(gray_uint8).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        model: nn.Module,
        channels: int | None = None,
        resize: tuple[int, int] | None = None,
        crop: tuple[int, int] | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        head: str | None = None,
        gradcam_layer: str | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.channels = channels
        self.resize = tuple(resize) if resize is not None else None
        self.crop = tuple(crop) if crop is not None else None
        self.head = head
        self.gradcam_layer = gradcam_layer
        if (mean is None) != (std is None):
            raise ValueError("ImageModel needs both mean and std, or neither.")
        if mean is not None:
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        else:
            self.register_buffer("mean", None)
            self.register_buffer("std", None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A state dict may carry a normalization this module was built
        # without (e.g. one that came from a weights file it was fitted
        # from): take it on, so loading that state dict restores it.
        for name in ("mean", "std"):
            if prefix + name in state_dict and getattr(self, name) is None:
                self.register_buffer(name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Bring a batch (N, C, H, W), uint8 or float in [0, 1], to the
        network's input."""
        if not x.is_floating_point():
            x = x.float() / 255.0
        if self.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize is not None and tuple(x.shape[-2:]) != _full(self.resize):
            from torchvision.transforms.v2 import functional as F

            x = F.resize(x, list(self.resize), antialias=True)
        if self.crop is not None and tuple(x.shape[-2:]) != _full(self.crop):
            from torchvision.transforms.v2 import functional as F

            x = F.center_crop(x, list(self.crop))
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(self.preprocess(x))

    def extra_repr(self) -> str:
        parts = [f"channels={self.channels}"]
        if self.resize is not None:
            parts.append(f"resize={self.resize}")
        if self.crop is not None:
            parts.append(f"crop={self.crop}")
        if self.mean is not None:
            parts.append(f"mean={tuple(round(v, 4) for v in self.mean.flatten().tolist())}")
            parts.append(f"std={tuple(round(v, 4) for v in self.std.flatten().tolist())}")
        parts.append(f"head={self.head!r}")
        if self.channels_last:
            parts.append("channels_last=True")
        return ", ".join(parts)


def _full(size: tuple[int, ...]) -> tuple[int, ...]:
    return (size[0], size[0]) if len(size) == 1 else size


def torchvision_models() -> list[str]:
    """Names of torchvision's image classification models."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def first_conv_channels(model: nn.Module) -> int | None:
    """Input channels of the first convolution, or None when there is none."""
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            return layer.in_channels
    return None


def find_head(model: nn.Module, n_outputs: int | None = None) -> str:
    """Name of the classification head: the model's declared ``head``, or
    else its last linear (or convolution) layer, with ``n_outputs`` outputs
    when given."""
    declared = getattr(model, "head", None)
    if isinstance(declared, str):
        return declared
    found = None
    for name, layer in model.named_modules():
        if isinstance(layer, _HEAD_TYPES):
            width = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
            if n_outputs is None or width == n_outputs:
                found = name
    if found is None:
        raise ValueError(
            f"Could not find the classification head of {type(model).__name__}: no "
            "nn.Linear or nn.Conv2d layer"
            + (f" with {n_outputs} outputs" if n_outputs is not None else "")
            + ". Give the module class a `head` attribute naming it."
        )
    return found


def replace_head(model: nn.Module, name: str, n_outputs: int) -> None:
    """Replace the head layer ``name`` by a fresh one with ``n_outputs``
    outputs (a new linear layer, or a 1x1-style convolution of the same
    kernel for convolutional heads such as SqueezeNet's)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, n_outputs, bias=old.bias is not None)
    elif isinstance(old, nn.Conv2d):
        new = nn.Conv2d(old.in_channels, n_outputs, kernel_size=old.kernel_size,
                        stride=old.stride, padding=old.padding, bias=old.bias is not None)
    elif isinstance(old, nn.Sequential) and isinstance(old[-1], _HEAD_TYPES):
        replace_head(old, str(len(old) - 1), n_outputs)
        return
    else:
        raise ValueError(
            f"The head {name!r} of {type(model).__name__} is a {type(old).__name__}; "
            "sktorch replaces nn.Linear and nn.Conv2d heads."
        )
    setattr(parent, child, new.to(next(old.parameters()).device))


def weights_file(weights: Any) -> str:
    """Where torch's hub cache keeps the file of torchvision ``weights``."""
    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def is_weights_path(weights: Any) -> bool:
    """Whether ``weights`` names a file rather than a torchvision weights
    entry ('DEFAULT', 'IMAGENET1K_V1')."""
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (
        os.sep in weights
        or "/" in weights
        or weights.endswith((".pt", ".pth", ".bin", ".safetensors"))
        or os.path.exists(weights)
    )


def weights_entry(enum: Any, name: str, message: str) -> Any:
    """The entry ``name`` ('DEFAULT', 'IMAGENET1K_V1'...) of a torchvision
    weights enum; an unknown name is an error, ``message`` formatted with
    ``valid`` (the enum's names)."""
    try:
        return enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise InvalidParameterError(
            message.format(valid=list(enum.__members__)) + f" Got {name!r} instead."
        ) from None


def torchvision_weights(arch: str, name: str, owner: str) -> Any:
    """The torchvision weights entry ``name`` of architecture ``arch``."""
    import torchvision

    return weights_entry(
        torchvision.models.get_model_weights(arch),
        name,
        f"The 'weights' parameter of {owner} must be one of {{valid}} for {arch!r}, "
        "or the path of a state_dict file.",
    )


def load_torchvision_weights(arch: str, weights: Any, owner: str) -> nn.Module:
    """Build ``arch`` with pretrained ``weights`` from torch's hub cache.

    torchvision downloads the file when it is not cached; where that fails
    (no network), the error says where to put the file.
    """
    import torchvision

    path = weights_file(weights)
    try:
        return torchvision.models.get_model(arch, weights=weights, progress=False)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        if os.path.exists(path):
            raise
        raise FileNotFoundError(
            f"{owner} could not load the weights {weights} of {arch!r}: they are not in "
            f"torch's hub cache and downloading {weights.url} failed ({exc}). Put that "
            f"file at {path} (the cache is under $TORCH_HOME/hub, now "
            f"{torch.hub.get_dir()}), or pass weights='<path of a state_dict file>'."
        ) from exc


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file,
    read without unpickling arbitrary objects (``weights_only=True``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at {path!r}.")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path!r} does not hold a state_dict (a dict of tensors).")
    return state


def load_local_weights(
    model: nn.Module, path: str | os.PathLike, head: str, owner: str
) -> dict[str, tuple[float, ...]]:
    """Load a state dict file into ``model`` (a fresh head already in place).

    Keys may carry the ``model.`` prefix of an :class:`ImageModel`'s state
    dict. The head's weights are loaded only when their shapes fit the new
    head (a file pretrained on other classes keeps the fresh head); any other
    missing, unexpected or misshapen key is an error.

    Returns the normalization (``mean`` and ``std``) an :class:`ImageModel`'s
    state dict carries, so a network finetuned from normalized weights keeps
    being fed normalized images; empty when the file has none.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The 'weights' parameter of {owner} names the file {os.fspath(path)!r}, which "
            "does not exist. Give the path of a state_dict file (.pt, .pth or "
            ".safetensors), or the name of torchvision weights ('DEFAULT')."
        )
    state = read_state_dict(path)
    # An ImageModel's own normalization buffers are not the network's; drop
    # them before the prefix test, which they would otherwise fail.
    normalization = {
        key: tuple(float(v) for v in state[key].flatten())
        for key in ("mean", "std")
        if key in state
    }
    state = {k: v for k, v in state.items() if k not in ("mean", "std")}
    if state and all(key.startswith("model.") for key in state):
        state = {key[len("model."):]: value for key, value in state.items()}
    own = model.state_dict()
    head_prefix = head + "."
    mismatched = []
    for key, value in list(state.items()):
        if key in own and own[key].shape != value.shape:
            if key.startswith(head_prefix):
                del state[key]
            else:
                mismatched.append(f"{key}: file {tuple(value.shape)}, model {tuple(own[key].shape)}")
    missing = [k for k in own if k not in state and not k.startswith(head_prefix)]
    unexpected = [k for k in state if k not in own]
    if mismatched or missing or unexpected:
        details = "; ".join(
            part for part in (
                f"shapes differ for {mismatched[:5]}" if mismatched else "",
                f"missing keys {missing[:5]}" if missing else "",
                f"unexpected keys {unexpected[:5]}" if unexpected else "",
            ) if part
        )
        raise ValueError(
            f"The weights file {os.fspath(path)!r} given to {owner} does not fit the "
            f"module {type(model).__name__}: {details}."
        )
    model.load_state_dict(state, strict=False)
    return normalization if len(normalization) == 2 else {}


def weights_preprocessing(weights: Any) -> dict[str, Any]:
    """Resize, crop and normalization of torchvision ``weights``' own
    inference transforms."""
    transform = weights.transforms()
    resize = getattr(transform, "resize_size", None)
    crop = getattr(transform, "crop_size", None)
    mean = getattr(transform, "mean", None)
    std = getattr(transform, "std", None)

    def size(value):
        # One int resizes the shorter side (torchvision's convention).
        return tuple(value) if value is not None else None

    return {"resize": size(resize), "crop": size(crop),
            "mean": tuple(mean) if mean is not None else None,
            "std": tuple(std) if std is not None else None}

