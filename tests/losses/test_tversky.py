"""TverskyLoss: hand-computed values, the Dice identity at 0.5/0.5, the roles of
alpha and beta, ignore_index, dtype, gradients."""

import pytest
import torch
from loss_cases import make_case

from sktorch.losses import DiceLoss, TverskyLoss, get_loss


def test_binary_by_hand():
    probs = torch.tensor([[0.9, 0.2, 0.6]])
    target = torch.tensor([[1.0, 0.0, 0.0]])
    # TP = 0.9 * 1 = 0.9
    # FP = 0.2 * (1 - 0) + 0.6 * (1 - 0) = 0.8
    # FN = (1 - 0.9) * 1 = 0.1
    # alpha = 0.7, beta = 0.3, smooth = 1:
    # 1 - (2 * 0.9 + 1) / (2 * 0.9 + 2 * 0.7 * 0.8 + 2 * 0.3 * 0.1 + 1) = 1 - 2.8 / 3.98
    loss = TverskyLoss(mode="binary", alpha=0.7, beta=0.3, smooth=1.0, from_logits=False)
    torch.testing.assert_close(loss(probs, target), torch.tensor(1 - 2.8 / 3.98))


def test_multiclass_by_hand():
    probs = torch.tensor([[[0.8, 0.4], [0.2, 0.6]]])  # (N=1, C=2, S=2)
    target = torch.tensor([[0, 1]])
    # class 0: TP = 0.8, FP = 0.4, FN = 0.2; class 1: TP = 0.6, FP = 0.2, FN = 0.4
    # alpha = 0.25, beta = 0.75, smooth = 1
    # class 0: 1 - (1.6 + 1) / (1.6 + 0.5 * 0.4 + 1.5 * 0.2 + 1) = 1 - 2.6 / 3.1
    # class 1: 1 - (1.2 + 1) / (1.2 + 0.5 * 0.2 + 1.5 * 0.4 + 1) = 1 - 2.2 / 2.9
    loss = TverskyLoss(alpha=0.25, beta=0.75, smooth=1.0, from_logits=False, reduction="none")
    torch.testing.assert_close(loss(probs, target), torch.tensor([[1 - 2.6 / 3.1, 1 - 2.2 / 2.9]]))


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("include_background", [False, True])
@pytest.mark.parametrize("smooth", [1e-5, 1.0])
def test_half_half_equals_dice(mode, batch, include_background, smooth):
    logits, target = make_case(mode)
    target.view(-1)[::4] = -100
    kwargs = dict(mode=mode, batch=batch, include_background=include_background, smooth=smooth,
                  reduction="none")
    torch.testing.assert_close(TverskyLoss(**kwargs)(logits, target), DiceLoss(**kwargs)(logits, target))


def test_alpha_weighs_false_positives_and_beta_false_negatives():
    probs = torch.tensor([[0.9, 0.8, 0.0]])
    over = torch.tensor([[1.0, 0.0, 0.0]])  # position 1 is a false positive
    under = torch.tensor([[1.0, 0.0, 1.0]])  # position 2 is a false negative, position 1 a FP

    def tversky(alpha, beta, target):
        return TverskyLoss(mode="binary", alpha=alpha, beta=beta, smooth=1.0, from_logits=False)(probs, target)

    # over-segmentation only: FN = 0.1 (position 0) is small, FP = 0.8
    assert tversky(0.9, 0.1, over) > tversky(0.1, 0.9, over)
    # beta = 0 ignores false negatives: TP = 0.9, FP = 0.8 -> 1 - 2.8 / (1.8 + 2 * 0.8 + 1)
    torch.testing.assert_close(tversky(1.0, 0.0, under), torch.tensor(1 - 2.8 / 4.4))
    # alpha = 0 ignores false positives: TP = 0.9, FN = 0.1 + 1.0 -> 1 - 2.8 / (1.8 + 2 * 1.1 + 1)
    torch.testing.assert_close(tversky(0.0, 1.0, under), torch.tensor(1 - 2.8 / 5.0))


def test_ignored_positions_and_all_ignored_batch():
    probs = torch.tensor([[0.9, 0.2, 0.6, 0.3]])
    target = torch.tensor([[1.0, 0.0, 0.0, -100.0]])
    loss = TverskyLoss(mode="binary", alpha=0.7, beta=0.3, smooth=1.0, from_logits=False)
    torch.testing.assert_close(loss(probs, target), torch.tensor(1 - 2.8 / 3.98))  # as by hand above

    logits = torch.randn(2, 3, 2, 2, requires_grad=True)
    value = TverskyLoss(alpha=0.3, beta=0.7)(logits, torch.full((2, 2, 2), -100))
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("empty", [False, True])
def test_extreme_logits_give_finite_loss_and_gradient(mode, empty):
    logits, target = make_case(mode)
    logits = (torch.sign(logits) * 1e4).requires_grad_()
    if empty:
        target = torch.zeros_like(target)
    loss = TverskyLoss(mode=mode, alpha=0.3, beta=0.7)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_autocast_bfloat16_computes_and_returns_float32():
    layer = torch.nn.Conv2d(2, 1, 1)
    x = torch.randn(2, 2, 3, 3)
    target = torch.randint(0, 2, (2, 3, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        loss = TverskyLoss(mode="binary", alpha=0.3, beta=0.7)(logits, target)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_gradcheck_float64(mode):
    logits, target = make_case(mode, spatial=(2, 2), dtype=torch.float64)
    logits.requires_grad_()
    loss = TverskyLoss(mode=mode, alpha=0.3, beta=0.7, smooth=1e-3)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"TverskyLoss\(mode='binary'\).*\(2, 1, 3, 3\).*\(2, 3, 4\)"):
        TverskyLoss(mode="binary")(torch.zeros(2, 1, 3, 3), torch.zeros(2, 3, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": -0.1}, "The 'alpha' argument of TverskyLoss must be a float >= 0. Got -0.1 instead."),
        ({"beta": None}, "The 'beta' argument of TverskyLoss must be a float >= 0. Got None instead."),
        ({"smooth": -1}, "The 'smooth' argument of TverskyLoss must be a float > 0. Got -1 instead."),
        ({"batch": "no"}, "The 'batch' argument of TverskyLoss must be a bool. Got 'no' instead."),
        ({"alpha": 0, "beta": 0.0}, "The 'alpha' and 'beta' arguments of TverskyLoss must not both be 0"),
    ],
)
def test_constructor_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError) as info:
        TverskyLoss(**kwargs)
    assert message in str(info.value)


def test_registered():
    loss = get_loss("tversky", alpha=0.3, beta=0.7)
    assert isinstance(loss, TverskyLoss) and (loss.alpha, loss.beta) == (0.3, 0.7)
