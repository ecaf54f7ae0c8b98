"""DiceLoss: hand-computed values, conventions (batch, background, ignore_index,
empty masks), shapes, dtype under autocast, gradients."""

import math
import pickle

import pytest
import torch
from loss_cases import make_case

import sktorch
from sktorch.losses import DiceLoss, get_loss

LN3 = math.log(3.0)


# ------------------------------------------------------------------ values by hand
def test_multiclass_probabilities_by_hand():
    # One sample, two classes, two positions (H=1, W=2).
    probs = torch.tensor([[[[0.8, 0.4]], [[0.2, 0.6]]]])
    target = torch.tensor([[[0, 1]]])
    # class 0: I = 0.8*1 + 0.4*0 = 0.8, P = 0.8 + 0.4 = 1.2, G = 1
    #          1 - (2*0.8 + 1) / (1.2 + 1 + 1) = 1 - 2.6 / 3.2 = 0.1875
    # class 1: I = 0.2*0 + 0.6*1 = 0.6, P = 0.8, G = 1
    #          1 - (1.2 + 1) / (0.8 + 1 + 1) = 1 - 2.2 / 2.8 = 0.6 / 2.8
    per_class = torch.tensor([[0.1875, 0.6 / 2.8]])
    loss = DiceLoss(smooth=1.0, from_logits=False, reduction="none")
    torch.testing.assert_close(loss(probs, target), per_class)
    mean = DiceLoss(smooth=1.0, from_logits=False)(probs, target)
    torch.testing.assert_close(mean, torch.tensor((0.1875 + 0.6 / 2.8) / 2))
    total = DiceLoss(smooth=1.0, from_logits=False, reduction="sum")(probs, target)
    torch.testing.assert_close(total, torch.tensor(0.1875 + 0.6 / 2.8))


def test_multiclass_logits_by_hand():
    # logits (0, ln 3) -> softmax (1/4, 3/4); (ln 3, 0) -> (3/4, 1/4).
    logits = torch.tensor([[[[0.0, LN3]], [[LN3, 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    # p(class 0) = (0.25, 0.75), one-hot class 0 = (0, 1): I = 0.75, P = 1, G = 1
    # p(class 1) = (0.75, 0.25), one-hot class 1 = (1, 0): I = 0.75, P = 1, G = 1
    s = 1e-5
    expected = 1 - (2 * 0.75 + s) / (1 + 1 + s)  # = 0.25 up to s
    out = DiceLoss(reduction="none")(logits, target)
    torch.testing.assert_close(out, torch.full((1, 2), expected))


def test_batch_pools_the_sums_before_the_ratio():
    probs = torch.tensor([[[0.8], [0.2]], [[0.3], [0.7]]])  # (N=2, C=2, S=1)
    target = torch.tensor([[0], [0]])
    # class 0: I = 0.8 + 0.3 = 1.1, P = 1.1, G = 2 -> 1 - (2.2 + 1) / (3.1 + 1) = 0.9 / 4.1
    # class 1: I = 0,             P = 0.9, G = 0 -> 1 - 1 / (0.9 + 1) = 0.9 / 1.9
    out = DiceLoss(smooth=1.0, batch=True, from_logits=False, reduction="none")(probs, target)
    torch.testing.assert_close(out, torch.tensor([0.9 / 4.1, 0.9 / 1.9]))
    # batch=False: one ratio per sample; sample 0 class 0: 1 - (1.6 + 1) / (0.8 + 1 + 1)
    per_sample = DiceLoss(smooth=1.0, from_logits=False, reduction="none")(probs, target)
    assert per_sample.shape == (2, 2)
    torch.testing.assert_close(per_sample[0, 0], torch.tensor(1 - 2.6 / 2.8))


def test_include_background_false_drops_class_zero_after_the_softmax():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    full = DiceLoss(reduction="none")(logits, target)
    without = DiceLoss(reduction="none", include_background=False)(logits, target)
    torch.testing.assert_close(without, full[:, 1:])  # same softmax over all 3 classes
    torch.testing.assert_close(DiceLoss(include_background=False)(logits, target), full[:, 1:].mean())
    batch = DiceLoss(reduction="none", include_background=False, batch=True)(logits, target)
    assert batch.shape == (2,)


def test_include_background_is_a_no_op_in_binary_mode():
    logits, target = make_case("binary")
    a = DiceLoss(mode="binary")(logits, target)
    b = DiceLoss(mode="binary", include_background=False)(logits, target)
    torch.testing.assert_close(a, b)


def test_binary_by_hand_and_target_layouts():
    probs = torch.tensor([[[[0.9, 0.2, 0.6]]]])  # (N=1, 1, H=1, W=3)
    # I = 0.9, P = 1.7, G = 1 -> 1 - (1.8 + 1) / (1.7 + 1 + 1) = 1 - 2.8 / 3.7
    expected = torch.tensor(1 - 2.8 / 3.7)
    loss = DiceLoss(mode="binary", smooth=1.0, from_logits=False)
    for target in (
        torch.tensor([[[[1.0, 0.0, 0.0]]]]),  # the input's shape
        torch.tensor([[[1, 0, 0]]]),  # (N, H, W), integer
        torch.tensor([[[True, False, False]]]),  # bool
    ):
        torch.testing.assert_close(loss(probs, target), expected)


def test_binary_classification_column_targets():
    # What a binary estimator passes: (N, 1) logits and (N, 1) float targets.
    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    target = torch.tensor([[1.0], [0.0], [1.0]])
    loss = DiceLoss(mode="binary", batch=True)
    torch.testing.assert_close(loss(logits, target), loss(logits, target.squeeze(1)))
    p = torch.sigmoid(logits.squeeze(1))
    i, big_p, g = (p * target.squeeze(1)).sum(), p.sum(), 2.0
    torch.testing.assert_close(loss(logits, target), 1 - (2 * i + 1e-5) / (big_p + g + 1e-5))


def test_multilabel_scores_each_channel_with_a_sigmoid():
    logits, target = make_case("multilabel")
    out = DiceLoss(mode="multilabel", reduction="none")(logits, target)
    assert out.shape == (2, 3)
    p = torch.sigmoid(logits)
    i, big_p, g = (p * target).sum((2, 3)), p.sum((2, 3)), target.sum((2, 3))
    torch.testing.assert_close(out, 1 - (2 * i + 1e-5) / (big_p + g + 1e-5))


def test_volumes_and_channel_dim_targets():
    logits = torch.randn(2, 3, 2, 3, 4)
    target = torch.randint(0, 3, (2, 2, 3, 4))
    loss = DiceLoss()
    value = loss(logits, target)
    torch.testing.assert_close(loss(logits, target.unsqueeze(1)), value)
    # one position per voxel: same as the flattened 2-D layout
    torch.testing.assert_close(loss(logits.reshape(2, 3, 6, 4), target.reshape(2, 6, 4)), value)


# ------------------------------------------------------------------ ignore_index
def test_ignored_positions_leave_every_sum():
    probs = torch.tensor([[[[0.8, 0.4, 0.5]], [[0.2, 0.6, 0.5]]]])
    target = torch.tensor([[[0, 1, -100]]])
    kept = DiceLoss(smooth=1.0, from_logits=False, reduction="none")(probs, target)
    # same as the first test, where the third position does not exist
    torch.testing.assert_close(kept, torch.tensor([[0.1875, 0.6 / 2.8]]))
    custom = DiceLoss(smooth=1.0, from_logits=False, reduction="none", ignore_index=255)
    torch.testing.assert_close(custom(probs, torch.tensor([[[0, 1, 255]]])), kept)


def test_ignore_index_in_binary_mode_is_element_wise():
    probs = torch.tensor([[0.9, 0.2, 0.6, 0.7]])
    target = torch.tensor([[1.0, 0.0, 0.0, -100.0]])
    loss = DiceLoss(mode="binary", smooth=1.0, from_logits=False)
    torch.testing.assert_close(loss(probs, target), torch.tensor(1 - 2.8 / 3.7))


def test_all_ignored_batch_gives_zero_with_a_gradient():
    logits = torch.randn(2, 3, 2, 2, requires_grad=True)
    target = torch.full((2, 2, 2), -100)
    loss = DiceLoss()(logits, target)
    assert loss.item() == 0.0  # I = P = G = 0 -> 1 - smooth / smooth
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


# ------------------------------------------------------------------ empty masks, extremes
def test_empty_target_is_near_one_unless_the_prediction_is_near_empty():
    target = torch.zeros(1, 1, 4, 4)
    confident_absent = torch.full((1, 1, 4, 4), -1e4)
    unsure = torch.zeros(1, 1, 4, 4)
    loss = DiceLoss(mode="binary")
    # G = 0, P = sum(sigmoid(-1e4)) = 0 -> 1 - smooth / smooth = 0
    assert loss(confident_absent, target).item() == pytest.approx(0.0, abs=1e-6)
    # G = 0, P = 16 * 0.5 = 8 -> 1 - 1e-5 / (8 + 1e-5)
    assert loss(unsure, target).item() == pytest.approx(1 - 1e-5 / 8.00001)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("empty", [False, True])
def test_extreme_logits_give_finite_loss_and_gradient(mode, empty):
    logits, target = make_case(mode)
    logits = (torch.sign(logits) * 1e4).requires_grad_()
    if empty:
        target = torch.zeros_like(target)
    loss = DiceLoss(mode=mode)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


# ------------------------------------------------------------------ dtype, autocast, gradcheck
def test_autocast_bfloat16_computes_and_returns_float32():
    layer = torch.nn.Conv2d(2, 3, 1)
    x = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        assert logits.dtype == torch.bfloat16
        loss = DiceLoss()(logits, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, DiceLoss()(logits.float(), target))
    loss.backward()


def test_half_input_returns_float32_and_double_stays_double():
    logits, target = make_case("multiclass")
    assert DiceLoss()(logits.half(), target).dtype == torch.float32
    assert DiceLoss()(logits.double(), target).dtype == torch.float64


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("batch", [False, True])
def test_gradcheck_float64(mode, batch):
    logits, target = make_case(mode, spatial=(2, 2), dtype=torch.float64)
    logits.requires_grad_()
    loss = DiceLoss(mode=mode, batch=batch, smooth=1e-3)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "mode, logits_shape, target_shape",
    [
        ("multiclass", (2, 3, 4, 4), (2, 4, 5)),
        ("multiclass", (2, 3), (3,)),
        ("multiclass", (3,), (3,)),
        ("binary", (2, 1, 4, 4), (2, 4, 5)),
        ("binary", (2, 2, 4, 4), (2, 4, 4)),
        ("multilabel", (2, 3, 4, 4), (2, 4, 4)),
    ],
)
def test_shape_mismatch_names_both_shapes(mode, logits_shape, target_shape):
    target = torch.zeros(target_shape, dtype=torch.int64 if mode == "multiclass" else torch.float32)
    with pytest.raises(ValueError) as info:
        DiceLoss(mode=mode)(torch.zeros(logits_shape), target)
    message = str(info.value)
    assert f"DiceLoss(mode={mode!r})" in message
    assert str(tuple(logits_shape)) in message and str(tuple(target_shape)) in message


def test_bad_target_values_and_dtypes():
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"class indices \[3\] outside \[0, 3\)"):
        DiceLoss()(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="needs integer class indices.*got torch.float32"):
        DiceLoss()(logits, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target values in \[0, 1\]; got \[2.0\]"):
        DiceLoss(mode="binary")(torch.zeros(2, 1), torch.tensor([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        DiceLoss(mode="multilabel", include_background=False)(torch.zeros(2, 1), torch.zeros(2, 1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "segmentation"}, "The 'mode' argument of DiceLoss must be one of ['binary', "
                                   "'multiclass', 'multilabel']. Got 'segmentation' instead."),
        ({"smooth": 0.0}, "The 'smooth' argument of DiceLoss must be a float > 0. Got 0.0 instead."),
        ({"smooth": "1"}, "The 'smooth' argument of DiceLoss must be a float > 0. Got '1' instead."),
        ({"batch": 1}, "The 'batch' argument of DiceLoss must be a bool. Got 1 instead."),
        ({"include_background": None}, "The 'include_background' argument of DiceLoss must be a bool."),
        ({"from_logits": "yes"}, "The 'from_logits' argument of DiceLoss must be a bool."),
        ({"reduction": "avg"}, "The 'reduction' argument of DiceLoss must be one of ['mean', 'sum', "
                               "'none']. Got 'avg' instead."),
        ({"ignore_index": 1.5}, "The 'ignore_index' argument of DiceLoss must be an int or None."),
    ],
)
def test_constructor_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError) as info:
        DiceLoss(**kwargs)
    assert message in str(info.value)


# ------------------------------------------------------------------ registry, pickling, device
def test_registered_and_exported():
    assert isinstance(get_loss("dice", smooth=1.0), DiceLoss)
    assert {"dice", "focal", "tversky", "dice_ce"} <= set(sktorch.list_losses())
    assert {"DiceLoss", "FocalLoss", "TverskyLoss", "DiceCELoss"} <= set(sktorch.losses.__all__)


def test_pickle_round_trip_and_repr():
    loss = DiceLoss(mode="binary", batch=True)
    clone = pickle.loads(pickle.dumps(loss))
    logits, target = make_case("binary")
    torch.testing.assert_close(clone(logits, target), loss(logits, target))
    assert "mode='binary'" in repr(loss) and "batch=True" in repr(loss)


def test_ignore_index_none_counts_everything():
    logits, target = make_case("multiclass")
    torch.testing.assert_close(DiceLoss(ignore_index=None)(logits, target), DiceLoss()(logits, target))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_input_device():
    logits, target = make_case("multiclass")
    loss = DiceLoss()(logits.cuda(), target.cuda())
    assert loss.device.type == "cuda"
    torch.testing.assert_close(loss.cpu(), DiceLoss()(logits, target))
