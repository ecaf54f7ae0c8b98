"""U-Net (Ronneberger et al., 2015): the built-in network of ``ImageSegmenter``."""

from __future__ import annotations

from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn


def _check_int(value: object, name: str, low: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(
            f"The {name!r} argument of UNet must be an int >= {low}. Got {value!r} instead."
        )
    return int(value)


class _DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm (optional) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for channels in (in_channels, out_channels):
            layers.append(nn.Conv2d(channels, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Up(nn.Module):
    """Upsample by 2, concatenate the skip connection, two convolutions."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool,
                 bilinear: bool) -> None:
        super().__init__()
        if bilinear:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        else:
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = _DoubleConv(2 * out_channels, out_channels, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net: an encoder-decoder with skip connections, for segmentation.

    The encoder has ``depth`` downsampling steps (2x2 max pooling), each
    followed by two 3x3 convolutions with twice the channels of the step
    before (``width``, ``2 * width``, ... ``2**depth * width``); the decoder
    mirrors it with 2x2 transposed convolutions (or bilinear upsampling),
    concatenating the encoder's map of the same size; a 1x1 convolution
    (``classifier``) gives one score map per class, at the input's size.

    Inputs of any height and width are accepted: the forward pass pads the
    batch with zeros, evenly on both sides, to the next multiple of
    ``2**depth`` and crops the output back, so every pixel gets a score and
    the skip connections always match.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    out_features : int, default=2
        Score maps in the output: one per class (one for a binary task
        scored with a sigmoid).
    depth : int, default=4
        Number of downsampling steps, >= 1. Inputs are padded to a multiple
        of ``2**depth``; 2 or 3 suit images of 16 to 64 pixels.
    width : int, default=32
        Channels of the first level, >= 1; they double at each step down.
    batch_norm : bool, default=True
        Batch normalization after every 3x3 convolution.
    bilinear : bool, default=False
        Upsample with bilinear interpolation and a 1x1 convolution instead
        of a transposed convolution (fewer parameters, no checkerboard
        artifacts).
    dropout : float, default=0.0
        Dropout probability (channel-wise, ``nn.Dropout2d``) at the
        bottleneck, in [0, 1).

    Attributes
    ----------
    head : str
        ``'classifier'``, the name of the last layer: what freezing the
        ``'backbone'`` leaves trainable.

    See Also
    --------
    sktorch.ImageSegmenter : Trains it (``module='unet'``, options as
        ``module__depth``, ``module__width``...).

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional
       Networks for Biomedical Image Segmentation", MICCAI 2015,
       https://arxiv.org/abs/1505.04597

    Examples
    --------
    >>> import torch
    >>> from sktorch.models import UNet
    >>> net = UNet(in_channels=3, out_features=4, depth=2, width=8)
    >>> net(torch.zeros(2, 3, 20, 28)).shape  # not multiples of 4: padded, cropped back
    torch.Size([2, 4, 20, 28])
    """

    head = "classifier"

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int = 2,
        depth: int = 4,
        width: int = 32,
        batch_norm: bool = True,
        bilinear: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_channels = _check_int(in_channels, "in_channels", 1)
        out_features = _check_int(out_features, "out_features", 1)
        depth = _check_int(depth, "depth", 1)
        width = _check_int(width, "width", 1)
        for name, value in (("batch_norm", batch_norm), ("bilinear", bilinear)):
            if not isinstance(value, bool):
                raise ValueError(
                    f"The {name!r} argument of UNet must be a bool. Got {value!r} instead."
                )
        if not isinstance(dropout, Real) or isinstance(dropout, bool) or not 0 <= dropout < 1:
            raise ValueError(
                f"The 'dropout' argument of UNet must be a float in [0, 1). Got {dropout!r} "
                "instead."
            )
        self.depth = depth
        channels = [width * 2**level for level in range(depth + 1)]
        self.stem = _DoubleConv(in_channels, channels[0], batch_norm)
        self.down = nn.ModuleList(
            _DoubleConv(channels[level], channels[level + 1], batch_norm)
            for level in range(depth)
        )
        self.dropout = nn.Dropout2d(float(dropout)) if dropout else nn.Identity()
        self.up = nn.ModuleList(
            _Up(channels[level + 1], channels[level], batch_norm, bilinear)
            for level in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(channels[0], out_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            top, left = pad_h // 2, pad_w // 2
            x = F.pad(x, (left, pad_w - left, top, pad_h - top))
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        x = self.dropout(skips.pop())
        for block in self.up:
            x = block(x, skips.pop())
        x = self.classifier(x)
        if pad_h or pad_w:
            x = x[..., top : top + height, left : left + width]
        return x
