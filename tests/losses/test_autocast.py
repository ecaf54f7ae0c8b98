"""Every loss of the package computes in float32 under autocast, in float16 and bfloat16."""

import pytest
import torch

from sktorch.losses import DiceCELoss, DiceLoss, FocalLoss, TverskyLoss


@pytest.mark.parametrize("loss_cls", [DiceLoss, FocalLoss, TverskyLoss, DiceCELoss])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_computes_in_float32(loss_cls, dtype):
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(2, 3, 1)
    x = torch.randn(2, 2, 5, 5)
    target = torch.randint(0, 3, (2, 5, 5))
    with torch.autocast("cpu", dtype=dtype):
        logits = layer(x)
        assert logits.dtype == dtype
        loss = loss_cls()(logits, target)
    assert loss.dtype == torch.float32
    # The same low-precision logits, scored outside autocast in float32.
    torch.testing.assert_close(loss, loss_cls()(logits.float(), target))
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()
