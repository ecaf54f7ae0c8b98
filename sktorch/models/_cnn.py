"""A small convolutional network for small images (digits, CIFAR-sized)."""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    """Stages of two 3x3 convolutions (batch norm, ReLU), with 2x2 max
    pooling between stages, global average pooling and a linear head.

    Parameters
    ----------
    in_channels : int, default=3
        Channels of the input images.
    out_features : int, default=10
        Number of outputs (classes).
    width : int, default=32
        Channels of the first stage; each later stage doubles them.
    depth : int, default=2
        Number of stages. An image shrinks by 2 per stage but the last, so
        an 8x8 image with depth 2 leaves a 4x4 map for Grad-CAM.
    dropout : float, default=0.0
        Dropout before the head.

    Examples
    --------
    >>> import torch
    >>> from sktorch.models import SmallCNN
    >>> SmallCNN(in_channels=1, out_features=10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    # Per-model configuration, read by freezing and explaining instead of
    # hard-coded layer names.
    head = "classifier"
    gradcam_layer = "features"

    def __init__(
        self,
        in_channels: int = 3,
        out_features: int = 10,
        width: int = 32,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_features", out_features),
                            ("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"The {name!r} parameter of SmallCNN must be a positive int. "
                    f"Got {value!r} instead."
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"The 'dropout' parameter of SmallCNN must be in [0, 1). Got {dropout!r} instead."
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(depth):
            out = width * 2**stage
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(inplace=True),
                ]
                channels = out
            if stage < depth - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, out_features)
        )

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))
