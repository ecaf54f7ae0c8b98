"""DiceCELoss: hand-computed values, equality with its two terms, reductions,
ignore_index, dtype, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

import loss_cases  # tests/losses/loss_cases.py

from sktorch.losses import DiceCELoss, DiceLoss, get_loss

LN2 = math.log(2.0)


def make_case(mode, **kwargs):
    return loss_cases.make_case(mode, binary_channel=True, **kwargs)


def test_by_hand():
    logits = torch.zeros(1, 2, 2, 2)  # uniform: every probability is 1/2
    target = torch.tensor([[[0, 0], [1, 1]]])
    # Dice, each class: I = 2 * 0.5 = 1, P = 4 * 0.5 = 2, G = 2
    #   -> 1 - (2 + 1e-5) / (4 + 1e-5) = 0.5 (up to 1e-5 / 4)
    # cross-entropy: -log(1/2) = ln 2 at every pixel
    dice = 1 - (2 + 1e-5) / (4 + 1e-5)
    torch.testing.assert_close(DiceCELoss()(logits, target), torch.tensor(dice + LN2))
    weighted = DiceCELoss(lambda_dice=2.0, lambda_ce=0.5)(logits, target)
    torch.testing.assert_close(weighted, torch.tensor(2 * dice + 0.5 * LN2))
    # sum: 2 Dice values (1 sample x 2 classes) + 4 cross-entropy terms
    total = DiceCELoss(reduction="sum")(logits, target)
    torch.testing.assert_close(total, torch.tensor(2 * dice + 4 * LN2))


def test_multiclass_equals_dice_plus_cross_entropy_with_ignored_pixels():
    logits, target = make_case("multiclass", spatial=(4, 4))
    target[0, 0] = -100
    kwargs = dict(batch=True, include_background=False, smooth=1e-3)
    loss = DiceCELoss(lambda_dice=0.7, lambda_ce=0.3, **kwargs)(logits, target)
    expected = 0.7 * DiceLoss(**kwargs)(logits, target) + 0.3 * F.cross_entropy(logits, target)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_sigmoid_modes_use_binary_cross_entropy(mode):
    logits, target = make_case(mode)
    loss = DiceCELoss(mode=mode)(logits, target)
    expected = DiceLoss(mode=mode)(logits, target) + F.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(loss, expected)


def test_binary_column_targets_from_an_estimator():
    logits = torch.randn(6, 1)
    target = torch.randint(0, 2, (6, 1)).float()
    loss = DiceCELoss(mode="binary", batch=True)
    expected = DiceLoss(mode="binary", batch=True)(logits, target) + F.binary_cross_entropy_with_logits(
        logits, target
    )
    torch.testing.assert_close(loss(logits, target), expected)
    torch.testing.assert_close(loss(logits, target.squeeze(1).long()), expected)


def test_include_background_only_affects_the_dice_term():
    logits, target = make_case("multiclass")
    a = DiceCELoss(include_background=False, lambda_dice=0.0)(logits, target)
    torch.testing.assert_close(a, F.cross_entropy(logits, target))


def test_all_ignored_batch_gives_zero_with_a_gradient():
    logits = torch.randn(2, 3, 2, 2, requires_grad=True)
    target = torch.full((2, 2, 2), -100)
    assert F.cross_entropy(logits, target).isnan()  # torch's convention; ours is 0
    loss = DiceCELoss()(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("empty", [False, True])
def test_extreme_logits_give_finite_loss_and_gradient(mode, empty):
    logits, target = make_case(mode)
    logits = (torch.sign(logits) * 1e4).requires_grad_()
    if empty:
        target = torch.zeros_like(target)
    loss = DiceCELoss(mode=mode)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_autocast_bfloat16_computes_and_returns_float32():
    layer = torch.nn.Conv2d(2, 3, 1)
    x = torch.randn(2, 2, 3, 3)
    target = torch.randint(0, 3, (2, 3, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        loss = DiceCELoss()(logits, target)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(loss, DiceCELoss()(logits.float(), target))


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_gradcheck_float64(mode):
    logits, target = make_case(mode, spatial=(2, 2), dtype=torch.float64)
    logits.requires_grad_()
    loss = DiceCELoss(mode=mode, lambda_dice=0.5, smooth=1e-3)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"DiceCELoss\(mode='multiclass'\).*\(2, 3, 4, 4\).*\(2, 3, 4, 4\)"):
        DiceCELoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reduction": "none"}, "The 'reduction' argument of DiceCELoss must be one of ['mean', "
                                "'sum']. Got 'none' instead: the Dice term has one value per"),
        ({"lambda_ce": -1.0}, "The 'lambda_ce' argument of DiceCELoss must be a float >= 0. "
                              "Got -1.0 instead."),
        ({"lambda_dice": True}, "The 'lambda_dice' argument of DiceCELoss must be a float >= 0."),
        ({"smooth": 0}, "The 'smooth' argument of DiceCELoss must be a float > 0. Got 0 instead."),
        ({"mode": "multi"}, "The 'mode' argument of DiceCELoss must be one of"),
        ({"lambda_dice": 0, "lambda_ce": 0.0}, "'lambda_dice' and 'lambda_ce' arguments of DiceCELoss "
                                               "must not both be 0"),
    ],
)
def test_constructor_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError) as info:
        DiceCELoss(**kwargs)
    assert message in str(info.value)


def test_registered():
    assert isinstance(get_loss("dice_ce", lambda_ce=0.5), DiceCELoss)
