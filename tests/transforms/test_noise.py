import copy
import math
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from sktorch.transforms import (
    GaussianNoise,
    SaltAndPepperNoise,
    get_transform,
    list_transforms,
    register_transform,
)

TOP = {torch.uint8: 255, torch.float32: 1.0}


def assert_binomial(count, n, prob, k=5.0):
    """``count`` successes out of ``n`` are within ``k`` standard deviations of ``n * prob``."""
    sd = math.sqrt(n * prob * (1.0 - prob))
    assert abs(count - n * prob) <= k * sd + 1e-9, (count, n, prob)


def image_strictly_inside(shape, dtype, device="cpu"):
    """Values strictly between 0 and the top of the range, so salt and pepper are identifiable."""
    if dtype == torch.uint8:
        return torch.randint(1, 255, shape, dtype=dtype, device=device)
    return (torch.rand(shape, device=device) * 0.98 + 0.01).to(dtype)


# --------------------------------------------------------------------- salt and pepper
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize(
    "amount, salt_vs_pepper",
    [(0.05, 0.5), (0.2, 0.8), (0.5, 0.0), (0.3, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 0.5)],
)
def test_salt_and_pepper_rates_and_values(amount, salt_vs_pepper, dtype):
    image = image_strictly_inside((3, 200, 200), dtype)
    out = SaltAndPepperNoise(amount=amount, salt_vs_pepper=salt_vs_pepper)(image)

    changed = out != image
    top = TOP[dtype]
    # Changed values are exactly salt or pepper.
    assert set(out[changed].unique().tolist()) <= {0, top}
    n_pixels = 200 * 200
    pixel_changed = changed.any(dim=0)
    salt = (out == top).all(dim=0)
    pepper = (out == 0).all(dim=0)
    assert_binomial(int(pixel_changed.sum()), n_pixels, amount)
    assert_binomial(int(salt.sum()), n_pixels, amount * salt_vs_pepper)
    assert_binomial(int(pepper.sum()), n_pixels, amount * (1 - salt_vs_pepper))
    if pixel_changed.any():
        assert_binomial(int(salt.sum()), int(pixel_changed.sum()), salt_vs_pepper)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_salt_and_pepper_changes_whole_pixels_by_default(dtype):
    image = image_strictly_inside((3, 128, 128), dtype)
    out = SaltAndPepperNoise(amount=0.3)(image)
    changed = out != image
    assert changed.any()
    # A pixel changes in all its channels, to one value.
    assert torch.equal(changed.all(dim=0), changed.any(dim=0))
    assert torch.equal(out[0][changed[0]], out[1][changed[1]])
    assert torch.equal(out[0][changed[0]], out[2][changed[2]])


def test_salt_and_pepper_per_channel_draws_channels_independently():
    image = image_strictly_inside((3, 200, 200), torch.float32)
    amount, salt_vs_pepper = 0.2, 0.7
    out = SaltAndPepperNoise(amount=amount, salt_vs_pepper=salt_vs_pepper, per_channel=True)(image)
    changed = out != image
    partly = changed.any(dim=0) & ~changed.all(dim=0)
    # P(some but not all of 3 channels) = 1 - 0.2**3 - 0.8**3 = 0.48
    assert_binomial(int(partly.sum()), 200 * 200, 1 - amount**3 - (1 - amount) ** 3)
    # Changed pixels in every channel at once, with mixed salt and pepper.
    mixed = changed.all(dim=0) & (out == 1.0).any(dim=0) & (out == 0.0).any(dim=0)
    assert mixed.any()
    for c in range(3):
        assert_binomial(int(changed[c].sum()), 200 * 200, amount)
        assert_binomial(int((out[c] == 1.0).sum()), 200 * 200, amount * salt_vs_pepper)


def test_salt_and_pepper_p_zero_is_identity_and_returns_a_new_tensor():
    image = image_strictly_inside((4, 3, 16, 16), torch.uint8)
    out = SaltAndPepperNoise(amount=0.5, p=0.0)(image)
    assert torch.equal(out, image)
    assert out is not image and out.data_ptr() != image.data_ptr()


@pytest.mark.parametrize("transform", [SaltAndPepperNoise(amount=0.5, p=0.5), GaussianNoise(std=0.2, p=0.5)])
def test_p_is_drawn_per_image_of_a_batch(transform):
    image = image_strictly_inside((400, 1, 8, 8), torch.float32)
    out = transform(image)
    corrupted = (out != image).flatten(1).any(dim=1)
    assert_binomial(int(corrupted.sum()), 400, 0.5)
    # Images left alone are bit-identical.
    assert torch.equal(out[~corrupted], image[~corrupted])


def test_salt_and_pepper_p_one_corrupts_every_image():
    image = image_strictly_inside((100, 1, 8, 8), torch.float32)
    out = SaltAndPepperNoise(amount=0.5)(image)
    assert (out != image).flatten(1).any(dim=1).all()


def test_salt_and_pepper_draws_independently_per_image():
    one = image_strictly_inside((3, 32, 32), torch.uint8)
    batch = one.expand(2, 3, 32, 32)
    out = SaltAndPepperNoise(amount=0.2)(batch)
    masks = out != batch
    assert masks[0].any() and masks[1].any()
    assert not torch.equal(masks[0], masks[1])


def test_salt_and_pepper_accepts_any_leading_dimensions():
    image = image_strictly_inside((2, 3, 1, 32, 32), torch.float32)
    out = SaltAndPepperNoise(amount=0.3, p=1.0)(image)
    assert out.shape == image.shape
    masks = (out != image).reshape(6, 32, 32)
    assert all(m.any() for m in masks)
    assert len({tuple(m.flatten().tolist()) for m in masks}) == 6


def test_salt_and_pepper_draws_independently_per_image_of_a_sample():
    one = image_strictly_inside((3, 32, 32), torch.float32)
    a, b = SaltAndPepperNoise(amount=0.2)(tv_tensors.Image(one), tv_tensors.Image(one.clone()))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("shape", [(32, 32), (10,)])
def test_salt_and_pepper_needs_channel_and_spatial_dimensions(shape):
    with pytest.raises(ValueError, match=r"SaltAndPepperNoise expects images of shape \(\.\.\., C, H, W\)"):
        SaltAndPepperNoise()(torch.rand(shape))


@pytest.mark.parametrize("transform", [SaltAndPepperNoise(), GaussianNoise()])
def test_bool_tensors_are_refused(transform):
    with pytest.raises(TypeError, match="floating point or integer dtype. Got dtype torch.bool"):
        transform(torch.zeros(3, 4, 4, dtype=torch.bool))


# --------------------------------------------------------------------- common v2 behaviour
TRANSFORMS = [
    SaltAndPepperNoise(amount=0.3),
    SaltAndPepperNoise(amount=0.3, per_channel=True, p=0.7),
    GaussianNoise(std=0.2),
    GaussianNoise(std=0.2, clip=False, p=0.7),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 16, 16), (5, 3, 16, 16)])
def test_input_untouched_dtype_and_device_kept(transform, dtype, shape):
    image = image_strictly_inside(shape, dtype)
    before = image.clone()
    out = transform(image)
    assert torch.equal(image, before)
    assert type(out) is torch.Tensor
    assert out.dtype == dtype and out.device == image.device and out.shape == image.shape
    assert out.data_ptr() != image.data_ptr()
    if transform.p == 1.0:
        assert not torch.equal(out, image)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_tv_image_in_image_out_and_mask_boxes_labels_untouched(transform):
    image = tv_tensors.Image(image_strictly_inside((3, 24, 24), torch.uint8))
    mask = tv_tensors.Mask(torch.randint(1, 5, (24, 24), dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes([[1, 2, 10, 12]], format="XYXY", canvas_size=(24, 24))
    label = torch.tensor(3)
    sample = {"image": image, "mask": mask, "boxes": boxes, "label": label}
    before = copy.deepcopy(sample)

    out = v2.Compose([transform])(sample)

    assert type(out["image"]) is tv_tensors.Image
    if transform.p == 1.0:
        assert not torch.equal(out["image"], image)
    assert torch.equal(image, before["image"])
    assert out["mask"] is mask and torch.equal(mask, before["mask"])
    assert out["boxes"] is boxes and torch.equal(boxes, before["boxes"])
    assert out["label"] is label


def test_plain_tensor_pair_transforms_only_the_image():
    image = image_strictly_inside((3, 16, 16), torch.float32)
    target = torch.rand(3, 16, 16)
    out_image, out_target = SaltAndPepperNoise(amount=0.3)(image, target)
    assert not torch.equal(out_image, image)
    assert out_target is target


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("RGBA", 4)])
def test_pil_in_pil_out(transform, mode, channels):
    rng = np.random.RandomState(0)
    array = rng.randint(1, 255, size=(20, 30, channels) if channels > 1 else (20, 30)).astype(np.uint8)
    image = PIL.Image.fromarray(array).convert(mode)
    out = transform(image)
    assert isinstance(out, PIL.Image.Image)
    assert out.mode == mode and out.size == image.size == (30, 20)
    assert np.array_equal(np.asarray(image), array)  # input untouched
    if transform.p == 1.0:
        assert not np.array_equal(np.asarray(out), array)


def test_pil_salt_and_pepper_values():
    image = PIL.Image.new("RGB", (40, 40), (100, 120, 140))
    out = np.asarray(SaltAndPepperNoise(amount=0.3)(image))
    changed = (out != np.asarray(image)).any(axis=-1)
    assert changed.any()
    assert set(np.unique(out[changed]).tolist()) <= {0, 255}


@pytest.mark.parametrize("transform", [SaltAndPepperNoise(), GaussianNoise()])
def test_unsupported_pil_mode_is_refused(transform):
    with pytest.raises(TypeError, match=r"PIL images of modes .* Got mode 'P' instead"):
        transform(PIL.Image.new("P", (8, 8)))


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("round_trip", [lambda t: pickle.loads(pickle.dumps(t)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_pickle_and_deepcopy_round_trip(transform, round_trip):
    clone = round_trip(transform)
    assert type(clone) is type(transform) and repr(clone) == repr(transform)
    image = image_strictly_inside((2, 3, 16, 16), torch.float32)
    torch.manual_seed(1)
    expected = transform(image)
    torch.manual_seed(1)
    assert torch.equal(clone(image), expected)


def test_global_seed_makes_draws_reproducible():
    image = image_strictly_inside((2, 3, 16, 16), torch.uint8)
    transform = SaltAndPepperNoise(amount=0.3, per_channel=True, p=0.5)
    torch.manual_seed(7)
    first = transform(image)
    second = transform(image)
    torch.manual_seed(7)
    assert torch.equal(transform(image), first)
    assert not torch.equal(first, second)


def test_repr_lists_arguments():
    assert repr(SaltAndPepperNoise(amount=0.1, salt_vs_pepper=0.3, per_channel=True, p=0.5)) == (
        "SaltAndPepperNoise(amount=0.1, salt_vs_pepper=0.3, per_channel=True, p=0.5)"
    )
    assert repr(GaussianNoise(std=0.2, mean=0.1, clip=False, p=0.5)) == (
        "GaussianNoise(std=0.2, mean=0.1, clip=False, p=0.5)"
    )


def test_batch_aware():
    assert SaltAndPepperNoise.batch_aware is True
    assert GaussianNoise.batch_aware is True


@pytest.mark.parametrize(
    "cls, kwargs, error, expected",
    [
        (SaltAndPepperNoise, {"amount": 1.5}, ValueError, "a float in [0, 1]. Got 1.5 instead."),
        (SaltAndPepperNoise, {"amount": -0.1}, ValueError, "a float in [0, 1]. Got -0.1 instead."),
        (SaltAndPepperNoise, {"amount": float("nan")}, ValueError, "a float in [0, 1]. Got nan instead."),
        (SaltAndPepperNoise, {"amount": "0.1"}, TypeError, "a float in [0, 1]. Got '0.1' instead."),
        (SaltAndPepperNoise, {"salt_vs_pepper": 2}, ValueError, "a float in [0, 1]. Got 2 instead."),
        (SaltAndPepperNoise, {"p": 1.01}, ValueError, "a float in [0, 1]. Got 1.01 instead."),
        (SaltAndPepperNoise, {"p": True}, TypeError, "a float in [0, 1]. Got True instead."),
        (SaltAndPepperNoise, {"per_channel": 1}, TypeError, "a bool. Got 1 instead."),
        (GaussianNoise, {"std": -0.1}, ValueError, "a finite float >= 0. Got -0.1 instead."),
        (GaussianNoise, {"std": float("inf")}, ValueError, "a finite float >= 0. Got inf instead."),
        (GaussianNoise, {"mean": None}, TypeError, "a finite float. Got None instead."),
        (GaussianNoise, {"clip": "yes"}, TypeError, "a bool. Got 'yes' instead."),
        (GaussianNoise, {"p": -1}, ValueError, "a float in [0, 1]. Got -1 instead."),
    ],
)
def test_constructor_argument_errors(cls, kwargs, error, expected):
    (name,) = kwargs
    with pytest.raises(error) as excinfo:
        cls(**kwargs)
    assert str(excinfo.value) == f"The {name!r} parameter of {cls.__name__} must be {expected}"


def test_numpy_scalars_are_accepted_as_floats():
    transform = SaltAndPepperNoise(amount=np.float32(0.25), p=np.float64(1))
    assert repr(transform) == "SaltAndPepperNoise(amount=0.25, salt_vs_pepper=0.5, per_channel=False, p=1.0)"


# --------------------------------------------------------------------- Gaussian noise
def test_gaussian_noise_mean_and_std():
    image = torch.full((1000, 200), 0.5)
    out = GaussianNoise(std=0.2, mean=0.1, clip=False)(image)
    noise = (out - image).double()
    n = noise.numel()
    assert abs(noise.mean().item() - 0.1) < 5 * 0.2 / math.sqrt(n)
    assert abs(noise.std().item() - 0.2) < 5 * 0.2 / math.sqrt(2 * n)


def test_gaussian_noise_clip_keeps_unit_range():
    image = torch.rand(3, 64, 64)
    out = GaussianNoise(std=0.5)(image)
    assert out.min().item() == 0.0 and out.max().item() == 1.0
    unclipped = GaussianNoise(std=0.5, clip=False)(image)
    assert unclipped.min().item() < 0.0 and unclipped.max().item() > 1.0


def test_gaussian_noise_uint8_scale_rounding_and_clamping():
    image = torch.full((3, 100, 100), 128, dtype=torch.uint8)
    out = GaussianNoise(std=0.1, clip=False)(image)
    assert out.dtype == torch.uint8
    noise = out.double() - 128
    assert abs(noise.std().item() - 25.5) < 0.5
    assert abs(noise.mean().item()) < 0.5
    # Clamped, never wrapped around, whatever ``clip`` says.
    high = torch.full((3, 8, 8), 250, dtype=torch.uint8)
    assert torch.equal(GaussianNoise(std=0.01, mean=0.5, clip=False)(high), torch.full_like(high, 255))
    low = torch.full((3, 8, 8), 5, dtype=torch.uint8)
    assert torch.equal(GaussianNoise(std=0.01, mean=-0.5)(low), torch.zeros_like(low))


def test_gaussian_noise_p_zero_is_identity():
    image = torch.rand(8, 3, 16, 16) * 2  # out of [0, 1]: clipping would show
    out = GaussianNoise(std=0.3, p=0.0)(image)
    assert torch.equal(out, image) and out.data_ptr() != image.data_ptr()


def test_gaussian_noise_on_tabular_batches_draws_per_row():
    X = torch.randn(400, 10)
    out = GaussianNoise(std=0.5, clip=False, p=0.5)(X)
    changed = out != X
    rows = changed.any(dim=1)
    # A row is noised in all its features or not at all.
    assert torch.equal(changed.all(dim=1), rows)
    assert_binomial(int(rows.sum()), 400, 0.5)


# --------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_cuda_device_kept(transform, dtype):
    image = image_strictly_inside((4, 3, 32, 32), dtype, device="cuda")
    before = image.clone()
    out = transform(image)
    assert out.device == image.device and out.dtype == dtype
    assert torch.equal(image, before)
    assert not torch.equal(out, image)  # 4 images: all left alone has probability 0.3**4
    torch.manual_seed(3)
    first = transform(image)
    torch.manual_seed(3)
    assert torch.equal(transform(image), first)


# --------------------------------------------------------------------- registry
def test_registry_names_resolve():
    assert {"salt_and_pepper", "gaussian_noise"} <= set(list_transforms())
    transform = get_transform("salt_and_pepper", amount=0.2, per_channel=True)
    assert isinstance(transform, SaltAndPepperNoise)
    assert transform.amount == 0.2 and transform.per_channel is True
    noise = get_transform("gaussian_noise", std=0.3)
    assert isinstance(noise, GaussianNoise) and noise.std == 0.3


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown transform 'salt_pepper'. Valid names are") as excinfo:
        get_transform("salt_pepper")
    message = str(excinfo.value)
    assert "'gaussian_noise'" in message and "'salt_and_pepper'" in message
    assert "Did you mean 'salt_and_pepper'?" in message


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="A transform named 'gaussian_noise' is already registered"):
        register_transform("gaussian_noise", GaussianNoise)
