"""Image inputs as tensors: the channel axis, the value range of each dtype
and PIL mode, and the files behind paths.

Every form of images an image estimator takes -- arrays, tensors, PIL
images, file paths, one Dataset sample at a time -- becomes a (n, C, H, W)
CPU tensor here, uint8 (0-255) or float32 in [0, 1], by these rules:

- **The channel axis comes from the shape, never from the dtype.** A 3-D
  batch (n, H, W) is gray. A 4-D batch is channels-first (n, C, H, W) when
  axis 1 holds 1, 3 or 4 entries (gray, RGB, RGBA) and the last axis does
  not, channels-last (n, H, W, C) in the opposite case; any other shape
  ((n, 3, 5, 3), (n, 5, 8, 8)) is an error asking for ``channels='first'``
  or ``'last'``, which skip the guess.
- **Each dtype keeps its dynamic range.** uint8 stays uint8 (0-255); the
  other unsigned integers are divided by their dtype's maximum (uint16 by
  65535, uint32 by 2**32 - 1); signed integers (NumPy's default for lists
  of ints) are read as 0-255, and an error outside it; floats must lie in
  [0, 1].
- **PIL modes**: 'L' and 'RGB' as they are; '1', 'LA' and 'La' as gray
  'L'; palette ('P', 'PA') and every other colour mode (RGBA, CMYK, YCbCr,
  LAB, HSV, ...) as 'RGB' (alpha dropped); 16-bit 'I;16*' divided by 65535;
  32-bit integer 'I' -- what Pillow opens 16-bit PNG and TIFF files as --
  read as 16-bit too (divided by 65535, an error outside 0-65535); 32-bit
  float 'F' as float arrays are (values in [0, 1]).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import torch

CHANNELS = ("auto", "first", "last")

# Channel counts a guessed channel axis may have: gray, RGB, RGBA.
_CHANNEL_COUNTS = (1, 3, 4)

_IMAGE_INPUT_HELP = (
    "Images are given as an array or tensor of shape (n, H, W) (gray), (n, C, H, W) "
    "or (n, H, W, C), of uint8 (0-255), other unsigned integers (scaled by their "
    "dtype's maximum) or floats in [0, 1]; a list of PIL images; or a list of image "
    "file paths."
)

_GRAY_MODES = ("1", "LA", "La")
_RGB_MODES = ("P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
_UINT16_MAX = 65535


def images_to_tensor(X: Any, owner: str, channels: str = "auto") -> torch.Tensor:
    """Convert any accepted image input to a (n, C, H, W) CPU tensor, uint8
    or float32, checked (finite floats in [0, 1], at least one image).

    ``channels`` ('auto', 'first' or 'last') is where the channel axis of a
    4-D array or tensor is; PIL images and files are decoded channels-last.
    """
    if isinstance(X, (list, tuple)) and not X:
        raise ValueError(f"{owner} needs at least one image; X holds none.")
    if isinstance(X, (list, tuple)) and _is_image_item(X[0]):
        X, channels = _read_images(X, owner), "last"
    if isinstance(X, torch.Tensor):
        tensor = X.detach().cpu()
        if tensor.dtype in (torch.uint16, torch.uint32, torch.uint64):
            tensor = tensor.numpy()
    else:
        tensor = X
    if not isinstance(tensor, torch.Tensor):
        tensor = torch.from_numpy(np.ascontiguousarray(_numeric_array(tensor, owner)))
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    elif tensor.ndim == 4:
        if channel_axis(tuple(tensor.shape), channels, owner) == 3:
            tensor = tensor.permute(0, 3, 1, 2)
    else:
        raise ValueError(
            f"{owner} needs images; X has shape {tuple(tensor.shape)}. {_IMAGE_INPUT_HELP}"
        )
    if len(tensor) == 0:
        raise ValueError(f"{owner} needs at least one image; X holds none.")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{owner} needs uint8 or float images; X has dtype {tensor.dtype}.")
    if not tensor.is_floating_point():
        if tensor.dtype != torch.uint8:
            low, high = int(tensor.min()), int(tensor.max())
            if low < 0 or high > 255:
                raise ValueError(
                    f"{owner} reads signed integer images as 0-255; X has values from {low} "
                    f"to {high}. Convert them to uint8, to an unsigned dtype whose range "
                    "they use (uint16: 0-65535), or to floats in [0, 1]."
                )
            tensor = tensor.to(torch.uint8)
        return tensor.contiguous()
    tensor = tensor.to(torch.float32)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"Input X contains NaN or infinity; {owner} needs finite images.")
    low, high = float(tensor.min()), float(tensor.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{owner} reads float images as values in [0, 1]; X has values from {low:g} "
            f"to {high:g}. Scale them (e.g. X / X.max()), or pass uint8 images (0-255)."
        )
    return tensor.contiguous()


def image_sample(x: Any, owner: str, channels: str = "auto") -> torch.Tensor:
    """An image sample (one item of a Dataset) as a (C, H, W) uint8 or
    float32 CPU tensor, by the rules of :func:`images_to_tensor` for a batch
    of one: a PIL image; an array or tensor (H, W), (C, H, W) or (H, W, C)."""
    if _is_pil_image(x):
        batch = [x]
    elif isinstance(x, torch.Tensor):
        batch = x.unsqueeze(0)
    else:
        batch = np.asarray(x)[None]
    return images_to_tensor(batch, owner, channels)[0]


def images_in_layout(images: torch.Tensor, channels: str) -> torch.Tensor:
    """Images (n, C, H, W) back as an X that :func:`images_to_tensor` reads
    as those images under ``channels``: the inverse of the conversion, for
    images the estimator converted itself (its validation split)."""
    if channels == "first":
        return images
    if channels == "auto" and images.shape[1] == 1:
        return images[:, 0]
    if channels == "auto" and images.shape[3] not in _CHANNEL_COUNTS:
        return images
    # 'last', or a shape that reads as channels-last (or as neither): the
    # user's X was channels-last then, which reads back unambiguously.
    return images.permute(0, 2, 3, 1)


def channel_axis(shape: tuple[int, ...], channels: str, owner: str) -> int:
    """The channel axis (1 or 3) of a batch of images of 4-D ``shape``."""
    if channels == "first":
        return 1
    if channels == "last":
        return 3
    first, last = shape[1] in _CHANNEL_COUNTS, shape[3] in _CHANNEL_COUNTS
    if first != last:
        return 1 if first else 3
    reason = (
        "both axis 1 and the last axis could hold the channels" if first
        else "neither axis 1 nor the last axis has 1, 3 or 4 entries (gray, RGB, RGBA)"
    )
    raise ValueError(
        f"{owner} cannot tell where the channels of X, of shape {shape}, are: {reason}. "
        f"Set the 'channels' parameter of {owner} to 'first' for (n, C, H, W) images "
        "or to 'last' for (n, H, W, C) images."
    )


def _numeric_array(X: Any, owner: str) -> np.ndarray:
    """X as a numeric array, unsigned integers wider than 8 bits scaled by
    their dtype's maximum to float32."""
    try:
        array = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{owner} could not read X as images: {exc}. {_IMAGE_INPUT_HELP}")
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ValueError(
            f"{owner} needs numeric images; X has dtype {array.dtype}. {_IMAGE_INPUT_HELP}"
        )
    if array.dtype.kind == "u" and array.dtype.itemsize > 1:
        return _scaled(array, np.iinfo(array.dtype).max)
    return array


def _scaled(array: np.ndarray, maximum: int) -> np.ndarray:
    # Divided in float64: float32 cannot hold 2**32 - 1 exactly.
    return (array.astype(np.float64) / maximum).astype(np.float32)


def _is_pil_image(item: Any) -> bool:
    # PIL costs ~50 ms to import; an object can only be a PIL image once
    # something has imported it.
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(item, module.Image)


def _is_image_item(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike)) or _is_pil_image(item)


def _read_images(items: Any, owner: str) -> np.ndarray:
    """PIL images or image files, as one channels-last array: uint8, or
    float32 in [0, 1] when any of them is a 16-bit or float image."""
    arrays = []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            item = _open_image(item, i, owner)
        if not _is_pil_image(item):
            raise ValueError(
                f"{owner}: item {i} of X is a {type(item).__name__}, but item 0 was an image "
                f"or a path; a list of images must hold only those. {_IMAGE_INPUT_HELP}"
            )
        arrays.append(_pil_array(item, i, owner))
    shapes = {array.shape for array in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"{owner} needs images of one size and mode; X holds shapes {sorted(shapes)[:4]}. "
            "Resize them to one size first (e.g. PIL's Image.resize), or convert them "
            "all to 'RGB'."
        )
    if any(array.dtype != np.uint8 for array in arrays):
        # 8-bit and 16-bit (or float) images together: all on the [0, 1] scale.
        arrays = [_scaled(a, 255) if a.dtype == np.uint8 else a for a in arrays]
    return np.stack(arrays)


def _open_image(path: str | os.PathLike, index: int, owner: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    where = f"{owner}: image {index} of X, {os.fspath(path)!r},"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{where} is a directory; X takes image files. List the files in it, e.g. "
            "sorted(pathlib.Path(directory).glob('*.png'))."
        )
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(
            f"{where} is not an image file that PIL can read (PNG, JPEG, TIFF, ...): {exc}"
        ) from exc


def _pil_array(image: Any, index: int, owner: str) -> np.ndarray:
    """A PIL image as an array (H, W) or (H, W, 3): uint8 for 8-bit modes,
    float32 in [0, 1] for 16-bit and float modes (see the module's rules)."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return np.asarray(image)
    if mode in _GRAY_MODES:
        # Pillow converts 'La' (premultiplied) to 'L' only through 'LA'.
        return np.asarray((image.convert("LA") if mode == "La" else image).convert("L"))
    if mode in _RGB_MODES:
        return np.asarray(image.convert("RGB"))
    where = f"{owner}: image {index} of X, of PIL mode {mode!r},"
    if mode.startswith("I;16"):
        return _scaled(np.asarray(image), _UINT16_MAX)
    if mode == "I":
        array = np.asarray(image)
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > _UINT16_MAX:
            raise ValueError(
                f"{where} has values from {low} to {high}; {owner} reads 'I' images as "
                "16-bit (0-65535). Scale it to that range, or convert it to 'F' with "
                "values in [0, 1]."
            )
        return _scaled(array, _UINT16_MAX)
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError(
                f"{where} has values from {array.min():g} to {array.max():g}; {owner} "
                "reads float images as values in [0, 1]. Scale it first."
            )
        return array
    raise ValueError(
        f"{where} is not a mode {owner} reads. Convert it to 'L' or 'RGB' first "
        "(image.convert('RGB'))."
    )
