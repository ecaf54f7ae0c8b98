"""UNet: shapes on any input size, padding centred and cropped back, the
channel plan, argument checks; SegmentationModel: outputs at the input's size."""

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sktorch.models import SEGMENTATION_MODELS, SegmentationModel, UNet, get_model


@pytest.mark.parametrize("depth, size", [(1, (8, 8)), (2, (20, 28)), (3, (5, 7)), (4, (16, 33))])
@pytest.mark.parametrize("bilinear", [False, True])
def test_forward_backward_on_any_size(depth, size, bilinear):
    net = UNet(in_channels=3, out_features=4, depth=depth, width=4, bilinear=bilinear,
               dropout=0.1)
    x = torch.rand(2, 3, *size)
    out = net(x)
    assert out.shape == (2, 4, *size)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_channels_double_at_each_level_and_the_head_scores_the_classes():
    net = UNet(in_channels=1, out_features=3, depth=3, width=8)
    convs = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
    # stem 8, 8; down 16, 16, 32, 32, 64, 64; up (32, 32), (16, 16), (8, 8); head 3
    assert convs == [8, 8, 16, 16, 32, 32, 64, 64, 32, 32, 16, 16, 8, 8, 3]
    ups = [m.out_channels for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert ups == [32, 16, 8]
    assert net.head == "classifier" and net.classifier.out_channels == 3
    assert not any(isinstance(m, nn.Dropout2d) for m in net.modules())


def test_padding_is_centred_with_zeros_and_cropped_back():
    torch.manual_seed(0)
    net = UNet(in_channels=1, out_features=2, depth=2, width=4).eval()
    x = torch.rand(1, 1, 10, 13)  # padded to 12 x 16: 1 above and below, 1 left, 2 right
    with torch.no_grad():
        out = net(x)
        padded = net(F.pad(x, (1, 2, 1, 1)))
    assert padded.shape == (1, 2, 12, 16)
    torch.testing.assert_close(out, padded[..., 1:11, 1:14], rtol=0, atol=1e-6)


def test_batch_norm_off_gives_biased_convolutions():
    net = UNet(depth=1, width=2, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    "arguments, match",
    [
        ({"depth": 0}, "'depth' argument of UNet must be an int >= 1. Got 0"),
        ({"width": 2.5}, "'width' argument of UNet must be an int >= 1. Got 2.5"),
        ({"in_channels": True}, "'in_channels' argument of UNet must be an int"),
        ({"bilinear": 1}, "'bilinear' argument of UNet must be a bool. Got 1"),
        ({"dropout": 1.0}, r"'dropout' argument of UNet must be a float in \[0, 1\)"),
    ],
)
def test_bad_arguments(arguments, match):
    with pytest.raises(ValueError, match=match):
        UNet(**arguments)


def test_registered_and_picklable():
    assert SEGMENTATION_MODELS.get_class("unet") is UNet
    net = UNet(depth=2, width=2)
    copy = pickle.loads(pickle.dumps(net))
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(copy.eval()(x), net.eval()(x))
    with pytest.raises(ValueError, match="Unknown model 'unet'"):
        get_model("unet")  # tabular registry: segmentation networks live apart


class HalfResolution(nn.Module):
    """Scores at half the input's resolution, in torchvision's dict."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, stride=2, padding=1)

    def forward(self, x):
        return {"out": self.conv(x), "aux": None}


def test_segmentation_model_brings_scores_to_the_input_size():
    net = SegmentationModel(HalfResolution(), channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    x = torch.randint(0, 256, (2, 1, 9, 14), dtype=torch.uint8)
    out = net(x)
    assert out.shape == (2, 2, 9, 14)
    with torch.no_grad():
        expected = net.model.conv((x.float().expand(-1, 3, -1, -1) / 255 - 0.5) / 0.25)
        expected = F.interpolate(expected, size=(9, 14), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected)
    assert net.crop is None
    resized = SegmentationModel(UNet(depth=2, width=2), channels=1, resize=(16, 16))
    assert resized.preprocess(x[:, :1].float() / 255).shape == (2, 1, 16, 16)
    assert resized(x).shape == (2, 2, 9, 14)
