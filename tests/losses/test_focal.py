"""FocalLoss: hand-computed values, identities with cross-entropy, BCE and
torchvision's sigmoid focal loss, class weights, ignore_index, dtype, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

import loss_cases  # tests/losses/loss_cases.py

from sktorch.losses import FocalLoss, get_loss

LN2, LN3, LN4 = math.log(2.0), math.log(3.0), math.log(4.0)


def make_case(mode, **kwargs):
    return loss_cases.make_case(mode, binary_channel=True, **kwargs)


# ------------------------------------------------------------------ values by hand
def test_binary_by_hand():
    logits = torch.tensor([[0.0], [LN3], [LN3]])
    target = torch.tensor([[1.0], [1.0], [0.0]])
    # x = 0,    t = 1: p = 0.5,  p_t = 0.5,  -log p_t = ln 2,       (1 - p_t)^2 = 0.25,   alpha_t = 0.25
    # x = ln 3, t = 1: p = 0.75, p_t = 0.75, -log p_t = ln(4/3),    (1 - p_t)^2 = 0.0625, alpha_t = 0.25
    # x = ln 3, t = 0: p = 0.75, p_t = 0.25, -log p_t = ln 4,       (1 - p_t)^2 = 0.5625, alpha_t = 0.75
    terms = torch.tensor([
        [0.25 * 0.25 * LN2],
        [0.25 * 0.0625 * (LN4 - LN3)],
        [0.75 * 0.5625 * LN4],
    ])
    loss = FocalLoss(mode="binary", alpha=0.25, gamma=2.0, reduction="none")
    torch.testing.assert_close(loss(logits, target), terms)
    torch.testing.assert_close(FocalLoss(mode="binary", alpha=0.25)(logits, target), terms.mean())
    torch.testing.assert_close(
        FocalLoss(mode="binary", alpha=0.25, reduction="sum")(logits, target), terms.sum()
    )


def test_multiclass_by_hand_with_class_weights():
    # both rows: softmax(0, ln 3) = (1/4, 3/4)
    logits = torch.tensor([[0.0, LN3], [0.0, LN3]])
    target = torch.tensor([1, 0])
    # sample 0, class 1: p_t = 3/4 -> 0.6 * (1/4)^2 * ln(4/3)
    # sample 1, class 0: p_t = 1/4 -> 0.2 * (3/4)^2 * ln 4
    terms = torch.tensor([0.6 * 0.0625 * (LN4 - LN3), 0.2 * 0.5625 * LN4])
    loss = FocalLoss(alpha=(0.2, 0.6), reduction="none")
    torch.testing.assert_close(loss(logits, target), terms)
    # the mean divides by the 2 samples, not by the sum of their weights (0.8)
    torch.testing.assert_close(FocalLoss(alpha=[0.2, 0.6])(logits, target), terms.sum() / 2)


def test_multiclass_weighted_mean_differs_from_cross_entropy_weight_convention():
    logits, target = make_case("multiclass")
    weight = torch.tensor([0.5, 2.0, 1.0])
    ours = FocalLoss(alpha=weight.tolist(), gamma=0.0)(logits, target)
    theirs = F.cross_entropy(logits, target, weight=weight)
    count, weight_sum = target.numel(), weight[target].sum()
    torch.testing.assert_close(ours * count, theirs * weight_sum)


# ------------------------------------------------------------------ identities
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5), (2, 3, 2, 3, 2)])
def test_gamma_zero_equals_cross_entropy(shape):
    logits = torch.randn(*shape)
    target = torch.randint(0, 3, (shape[0], *shape[2:]))
    target.view(-1)[::3] = -100
    loss = FocalLoss(gamma=0.0)
    torch.testing.assert_close(loss(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, reduction="none")(logits, target),
        F.cross_entropy(logits, target, reduction="none"),
    )
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, reduction="sum")(logits, target),
        F.cross_entropy(logits, target, reduction="sum"),
    )


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_gamma_zero_equals_bce_with_logits(mode):
    logits, target = make_case(mode)
    torch.testing.assert_close(
        FocalLoss(mode=mode, gamma=0.0)(logits, target),
        F.binary_cross_entropy_with_logits(logits, target),
    )


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (None, 2.0), (0.6, 0.5), (0.25, 0.0)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_form_equals_torchvision(mode, alpha, gamma, reduction):
    logits, target = make_case(mode)
    logits = logits * 4  # some confident, some wrong
    ours = FocalLoss(mode=mode, alpha=alpha, gamma=gamma, reduction=reduction)(logits, target)
    tv_alpha = -1.0 if alpha is None else alpha  # torchvision: alpha < 0 means no weighting
    theirs = sigmoid_focal_loss(logits, target, alpha=tv_alpha, gamma=gamma, reduction=reduction)
    torch.testing.assert_close(ours, theirs)


def test_probabilities_input_matches_logits_input():
    logits, target = make_case("multiclass")
    torch.testing.assert_close(
        FocalLoss(from_logits=False)(logits.softmax(1), target), FocalLoss()(logits, target)
    )
    logits, target = make_case("multilabel")
    torch.testing.assert_close(
        FocalLoss(mode="multilabel", alpha=0.3, from_logits=False)(logits.sigmoid(), target),
        FocalLoss(mode="multilabel", alpha=0.3)(logits, target),
    )


def test_multilabel_per_channel_alpha():
    logits, target = make_case("multilabel")
    alpha = (0.1, 0.5, 0.9)
    out = FocalLoss(mode="multilabel", alpha=alpha, reduction="none")(logits, target)
    for c, a in enumerate(alpha):  # the reference, channel by channel
        expected = sigmoid_focal_loss(logits[:, c], target[:, c], alpha=a, reduction="none")
        torch.testing.assert_close(out[:, c], expected)


# ------------------------------------------------------------------ shapes, ignore_index
def test_binary_target_layouts():
    logits = torch.randn(2, 1, 3, 3)
    target = torch.randint(0, 2, (2, 3, 3))
    loss = FocalLoss(mode="binary", reduction="none")
    out = loss(logits, target)
    assert out.shape == (2, 1, 3, 3)  # the input's shape
    torch.testing.assert_close(out, loss(logits, target.unsqueeze(1).float()))
    # what a binary estimator passes: (N, 1) logits, (N, 1) float targets
    col = FocalLoss(mode="binary", gamma=0.0)
    x, t = torch.randn(5, 1), torch.randint(0, 2, (5, 1)).float()
    torch.testing.assert_close(col(x, t), F.binary_cross_entropy_with_logits(x, t))
    torch.testing.assert_close(col(x, t.squeeze(1)), col(x, t))


def test_ignored_targets_leave_the_sum_and_the_count():
    logits = torch.randn(6, 3)
    target = torch.tensor([0, 2, -100, 1, -100, 2])
    kept = target != -100
    loss = FocalLoss(alpha=(0.2, 0.3, 0.5))
    torch.testing.assert_close(loss(logits, target), loss(logits[kept], target[kept]))
    out = FocalLoss(reduction="none")(logits, target)
    assert out.shape == (6,) and (out[~kept] == 0).all()


def test_ignore_index_in_binary_mode():
    logits = torch.randn(2, 1, 2, 2)
    target = torch.randint(0, 2, (2, 1, 2, 2)).float()
    target[0, 0, 0, 0] = 255
    loss = FocalLoss(mode="binary", ignore_index=255)
    kept = target != 255
    expected = sigmoid_focal_loss(logits[kept], target[kept], alpha=-1, reduction="mean")
    torch.testing.assert_close(loss(logits, target), expected)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_all_ignored_batch_gives_zero_with_a_gradient(mode):
    logits, target = make_case(mode)
    logits.requires_grad_()
    target = torch.full_like(target, -100)
    loss = FocalLoss(mode=mode, alpha=None if mode == "multiclass" else 0.25)(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"FocalLoss\(mode='multiclass'\).*\(2, 3, 4, 4\).*\(2, 4\)"):
        FocalLoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"FocalLoss\(mode='multilabel'\).*\(2, 3\).*\(2,\)"):
        FocalLoss(mode="multilabel")(torch.zeros(2, 3), torch.zeros(2))


def test_class_weights_must_match_the_number_of_classes():
    with pytest.raises(ValueError, match="gives 2 class weights, but the input has 3 classes"):
        FocalLoss(alpha=(0.5, 0.5))(torch.zeros(2, 3), torch.tensor([0, 1]))


# ------------------------------------------------------------------ robustness, dtype, gradients
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("empty", [False, True])
def test_extreme_logits_give_finite_loss_and_gradient(mode, gamma, empty):
    logits, target = make_case(mode)
    logits = (torch.sign(logits) * 1e4).requires_grad_()
    if empty:
        target = torch.zeros_like(target)
    loss = FocalLoss(mode=mode, gamma=gamma)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_autocast_bfloat16_computes_and_returns_float32():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)
    target = torch.randint(0, 3, (5,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        assert logits.dtype == torch.bfloat16
        loss = FocalLoss(alpha=(0.2, 0.3, 0.5))(logits, target)
        binary = FocalLoss(mode="binary", alpha=0.25)(logits[:, :1], (target == 1).float())
    assert loss.dtype == torch.float32 and binary.dtype == torch.float32
    torch.testing.assert_close(loss, FocalLoss(alpha=(0.2, 0.3, 0.5))(logits.float(), target))


@pytest.mark.parametrize("mode, alpha", [("binary", 0.25), ("multiclass", (0.2, 0.3, 0.5)),
                                         ("multilabel", (0.1, 0.5, 0.9))])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradcheck_float64(mode, alpha, gamma):
    logits, target = make_case(mode, spatial=(2, 2), dtype=torch.float64)
    logits.requires_grad_()
    loss = FocalLoss(mode=mode, alpha=alpha, gamma=gamma)
    assert loss(logits, target).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


# ------------------------------------------------------------------ constructor
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gamma": -1}, "The 'gamma' argument of FocalLoss must be a float >= 0. Got -1 instead."),
        ({"gamma": float("nan")}, "The 'gamma' argument of FocalLoss must be a float >= 0."),
        ({"alpha": 0.25}, "The 'alpha' argument of FocalLoss must be None or a sequence of one "
                          "weight per class in mode='multiclass'. Got 0.25 instead"),
        ({"alpha": (0.5, -1.0)}, "must be None or a sequence of floats >= 0, one per class"),
        ({"mode": "binary", "alpha": 1.5}, "The 'alpha' argument of FocalLoss must be a float in "
                                           "the range [0, 1]. Got 1.5 instead."),
        ({"mode": "binary", "alpha": (0.2, 0.8)}, "a float in the range [0, 1] (the weight of "
                                                  "positives) in mode='binary'"),
        ({"mode": "multilabel", "alpha": (0.2, 2.0)}, "a sequence of floats in the range [0, 1]"),
        ({"mode": "multiclass", "alpha": "balanced"}, "Got 'balanced' instead."),
        ({"reduction": "avg"}, "The 'reduction' argument of FocalLoss must be one of"),
        ({"mode": "binray"}, "The 'mode' argument of FocalLoss must be one of"),
    ],
)
def test_constructor_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError) as info:
        FocalLoss(**kwargs)
    assert message in str(info.value)


def test_registered_and_alpha_not_in_state_dict():
    loss = get_loss("focal", alpha=(0.2, 0.8), gamma=1.0)
    assert isinstance(loss, FocalLoss) and loss.gamma == 1.0
    assert loss.state_dict() == {}  # alpha is configuration, not a learned weight
    assert "alpha=(0.2, 0.8)" in repr(loss)
