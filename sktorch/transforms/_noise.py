"""Pixel noise as torchvision v2 transforms: salt-and-pepper and Gaussian.

Both transforms are *batch aware*: on an input with leading batch dimensions
every sample gets its own draws, including the draw that decides whether it is
corrupted at all, so an estimator may apply them to a whole batch at once.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, ClassVar

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2 import functional as F

# Modes whose bands are all 8-bit and that torchvision converts back losslessly;
# others ('1', 'P', 'I', 'F', ...) have no [0, 255] value range to corrupt.
_PIL_MODES = ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV")


def _is_plain_tensor(inpt: Any) -> bool:
    # A tensor that is no tv_tensor: masks, boxes and key points stay untouched.
    return isinstance(inpt, torch.Tensor) and not isinstance(inpt, tv_tensors.TVTensor)


# --------------------------------------------------------------------- argument checks
def _check_real(
    value: object, name: str, owner: str, *, low: float = -math.inf, high: float = math.inf
) -> float:
    """Return ``value`` as a float after checking it is a finite real in ``[low, high]``."""
    if low == 0.0 and high == 1.0:
        expected = "a float in [0, 1]"
    elif low == 0.0:
        expected = "a finite float >= 0"
    else:
        expected = "a finite float"
    message = f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(message)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(message)
    return float(value)


def _check_bool(value: object, name: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(
            f"The {name!r} parameter of {owner} must be a bool. Got {value!r} instead."
        )
    return value


# --------------------------------------------------------------------- input handling
def _query(inpt: Any, owner: str, min_ndim: int) -> tuple[tuple[int, ...], torch.device, torch.dtype]:
    """Shape, device and dtype of an image-like input, checked for ``owner``."""
    if isinstance(inpt, PIL.Image.Image):
        if inpt.mode not in _PIL_MODES:
            raise TypeError(
                f"{owner} supports PIL images of modes {list(_PIL_MODES)}. Got mode "
                f"{inpt.mode!r} instead; convert it first, e.g. image.convert('RGB')."
            )
        return (len(inpt.getbands()), inpt.height, inpt.width), torch.device("cpu"), torch.uint8
    if inpt.dtype == torch.bool or inpt.is_complex():
        raise TypeError(
            f"{owner} expects a tensor of a floating point or integer dtype. "
            f"Got dtype {inpt.dtype} instead."
        )
    if inpt.ndim < min_ndim:
        raise ValueError(
            f"{owner} expects images of shape (..., C, H, W), with at least 3 dimensions. "
            f"Got a tensor of shape {tuple(inpt.shape)} instead."
        )
    return tuple(inpt.shape), inpt.device, inpt.dtype


def _draw_hits(
    p: float, batch_shape: tuple[int, ...], ndim: int, device: torch.device
) -> torch.Tensor | None:
    """Which samples are corrupted, broadcastable to the input; None when all are."""
    if p >= 1.0:
        return None
    hits = torch.rand(batch_shape, device=device) < p
    return hits.reshape(batch_shape + (1,) * (ndim - len(batch_shape)))


class _NoiseTransform(Transform):
    """What both noise transforms share: input types, PIL round trip, tv_tensor wrapping."""

    # Plain tensors, images and PIL images; Mask, BoundingBoxes, KeyPoints and
    # Video pass through unchanged.
    _transformed_types = (_is_plain_tensor, tv_tensors.Image, PIL.Image.Image)

    #: Called on a batch (N, C, H, W), every sample gets its own draws.
    batch_aware: ClassVar[bool] = True

    _min_ndim: ClassVar[int] = 0

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        # Every image-like input of the sample gets its own draws, matched by
        # identity in ``transform``: the objects are the same within one call.
        draws = {}
        for inpt in flat_inputs:
            shape, device, dtype = _query(inpt, type(self).__name__, self._min_ndim)
            draws[id(inpt)] = self._draw(shape, device, dtype)
        return {"draws": draws}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        draw = params["draws"][id(inpt)]
        if isinstance(inpt, PIL.Image.Image):
            return F.to_pil_image(self._apply(F.pil_to_tensor(inpt), draw), mode=inpt.mode)
        out = self._apply(inpt.as_subclass(torch.Tensor), draw)
        if isinstance(inpt, tv_tensors.TVTensor):
            return tv_tensors.wrap(out, like=inpt)
        return out

    def _draw(self, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> Any:
        raise NotImplementedError

    def _apply(self, image: torch.Tensor, draw: Any) -> torch.Tensor:
        raise NotImplementedError


class SaltAndPepperNoise(_NoiseTransform):
    """Set random pixels to the top (salt) or the bottom (pepper) of the value range.

    Each pixel independently becomes salt with probability
    ``amount * salt_vs_pepper`` or pepper with probability
    ``amount * (1 - salt_vs_pepper)``. Salt is ``1.0`` for floating point
    images and the largest value of the dtype for integer images (255 for
    ``uint8``); pepper is 0. A torchvision v2 transform: it works on tensors,
    :class:`~torchvision.tv_tensors.Image` and PIL images, inside
    :class:`~torchvision.transforms.v2.Compose`, and leaves masks, bounding
    boxes and labels untouched.

    Parameters
    ----------
    amount : float, default=0.05
        Probability that a pixel is changed, in [0, 1].
    salt_vs_pepper : float, default=0.5
        Share of salt among the changed pixels, in [0, 1].
    per_channel : bool, default=False
        If False, a changed pixel changes in all its channels together, to
        salt in all or pepper in all. If True, every channel draws on its own.
    p : float, default=1.0
        Probability that an image is corrupted at all, drawn per image.

    Attributes
    ----------
    batch_aware : bool
        True: called on a batch, every image gets its own draws.

    See Also
    --------
    GaussianNoise : Add Gaussian noise to every value.

    Notes
    -----
    The input is an image (C, H, W) or a batch of images of shape
    (..., C, H, W); every leading dimension indexes images, each drawn
    independently. Draws use torch's global generator on the input's device,
    so ``torch.manual_seed`` makes them reproducible. The input is never
    changed in place; dtype and device are kept. PIL images of modes
    ``L``, ``LA``, ``RGB``, ``RGBA``, ``RGBX``, ``CMYK``, ``YCbCr`` and
    ``HSV`` come back as PIL images of the same mode.

    Examples
    --------
    >>> import torch
    >>> from sktorch.transforms import SaltAndPepperNoise
    >>> _ = torch.manual_seed(0)
    >>> transform = SaltAndPepperNoise(amount=0.1)
    >>> transform
    SaltAndPepperNoise(amount=0.1, salt_vs_pepper=0.5, per_channel=False, p=1.0)
    >>> image = torch.full((3, 64, 64), 0.5)
    >>> noisy = transform(image)
    >>> noisy.shape, noisy.dtype
    (torch.Size([3, 64, 64]), torch.float32)
    >>> sorted(noisy.unique().tolist())
    [0.0, 0.5, 1.0]
    >>> changed = (noisy != image).all(dim=0)  # whole pixels change
    >>> 0.08 < changed.float().mean().item() < 0.12
    True
    """

    _min_ndim = 3

    def __init__(
        self,
        amount: float = 0.05,
        salt_vs_pepper: float = 0.5,
        per_channel: bool = False,
        p: float = 1.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.amount = _check_real(amount, "amount", owner, low=0.0, high=1.0)
        self.salt_vs_pepper = _check_real(salt_vs_pepper, "salt_vs_pepper", owner, low=0.0, high=1.0)
        self.per_channel = _check_bool(per_channel, "per_channel", owner)
        self.p = _check_real(p, "p", owner, low=0.0, high=1.0)

    def _draw(
        self, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.p == 0.0 or self.amount == 0.0:
            return None
        # One uniform per pixel splits [0, 1) into salt, pepper and unchanged,
        # so the two events are exclusive with exactly the asked probabilities.
        mask_shape = shape if self.per_channel else shape[:-3] + (1,) + shape[-2:]
        u = torch.rand(mask_shape, device=device)
        salt = u < self.amount * self.salt_vs_pepper
        pepper = (u < self.amount) & ~salt
        hits = _draw_hits(self.p, shape[:-3], len(shape), device)
        if hits is not None:
            salt &= hits
            pepper &= hits
        return salt, pepper

    def _apply(self, image: torch.Tensor, draw: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        if draw is None:
            return image.clone()
        salt, pepper = draw
        top = 1.0 if image.is_floating_point() else torch.iinfo(image.dtype).max
        return image.masked_fill(salt, top).masked_fill_(pepper, 0)


class GaussianNoise(_NoiseTransform):
    """Add Gaussian noise N(mean, std²) to every value.

    ``mean`` and ``std`` are given on the [0, 1] scale: for integer images
    they are multiplied by the largest value of the dtype (255 for ``uint8``),
    and the result is rounded and clamped to [0, 255], keeping the dtype.
    Unlike :class:`torchvision.transforms.v2.GaussianNoise` it works on PIL
    images and on tensors of any shape (tabular batches (N, F) too), and
    corrupts each sample with probability ``p``.

    Parameters
    ----------
    std : float, default=0.1
        Standard deviation of the noise, >= 0.
    mean : float, default=0.0
        Mean of the noise.
    clip : bool, default=True
        Whether to clip floating point results to [0, 1]. Integer results are
        always clamped to the range of the dtype.
    p : float, default=1.0
        Probability that a sample is noised at all, drawn per sample.

    Attributes
    ----------
    batch_aware : bool
        True: called on a batch, every sample gets its own draws.

    See Also
    --------
    SaltAndPepperNoise : Set random pixels to the top or bottom of the range.

    Notes
    -----
    A sample is the last three dimensions (C, H, W) of an input with at least
    three, otherwise its last dimension (a feature vector); every leading
    dimension indexes samples, each drawn independently. A 2-D input is thus
    read as a batch (N, F), not as one (H, W) image. Draws use torch's global
    generator on the input's device. The input is never changed in place;
    dtype and device are kept.

    Examples
    --------
    >>> import torch
    >>> from sktorch.transforms import GaussianNoise
    >>> _ = torch.manual_seed(0)
    >>> transform = GaussianNoise(std=0.2, clip=False)
    >>> transform
    GaussianNoise(std=0.2, mean=0.0, clip=False, p=1.0)
    >>> X = torch.zeros(1000, 10)
    >>> noisy = transform(X)
    >>> noisy.shape, noisy.dtype
    (torch.Size([1000, 10]), torch.float32)
    >>> abs(noisy.std().item() - 0.2) < 0.01
    True
    """

    def __init__(
        self, std: float = 0.1, mean: float = 0.0, clip: bool = True, p: float = 1.0
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.std = _check_real(std, "std", owner, low=0.0)
        self.mean = _check_real(mean, "mean", owner)
        self.clip = _check_bool(clip, "clip", owner)
        self.p = _check_real(p, "p", owner, low=0.0, high=1.0)

    def _draw(
        self, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        if self.p == 0.0:
            return None
        noise_dtype = dtype if dtype.is_floating_point else torch.float32
        noise = torch.randn(shape, dtype=noise_dtype, device=device).mul_(self.std).add_(self.mean)
        batch_shape = shape[:-3] if len(shape) >= 3 else shape[:-1]
        return noise, _draw_hits(self.p, batch_shape, len(shape), device)

    def _apply(
        self, image: torch.Tensor, draw: tuple[torch.Tensor, torch.Tensor | None] | None
    ) -> torch.Tensor:
        if draw is None:
            return image.clone()
        noise, hits = draw
        if image.is_floating_point():
            noisy = image + noise
            if self.clip:
                noisy.clamp_(0.0, 1.0)
        else:
            top = torch.iinfo(image.dtype).max
            noisy = (image.float() + noise * top).round_().clamp_(0, top).to(image.dtype)
        if hits is not None:
            noisy = torch.where(hits, noisy, image)
        return noisy
