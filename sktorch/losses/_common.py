"""Argument checks, input canonicalization and reductions shared by the losses.

Every loss of this package brings its input to one layout before computing
anything: ``input`` of shape ``(N, C, S)`` in a float dtype of at least 32 bits
(``S`` is the flattened spatial extent, 1 for plain classification) and a
target with the ignored positions replaced by a harmless value, plus a boolean
mask of the positions that count. The losses then never branch on the number
of spatial dimensions and never loop over samples or classes.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator, Sequence
from numbers import Integral, Real
from typing import Literal, NamedTuple

import torch

Mode = Literal["binary", "multiclass", "multilabel"]
Reduction = Literal["mean", "sum", "none"]

MODES: tuple[str, ...] = ("binary", "multiclass", "multilabel")
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


# --------------------------------------------------------------------- shared documentation
PARAMETER_DOCS: dict[str, str] = {
    "mode": """mode : {'binary', 'multiclass', 'multilabel'}, default='multiclass'
        'multiclass': input ``(N, C, *spatial)`` scored with a softmax over C,
        target ``(N, *spatial)`` (or ``(N, 1, *spatial)``) of integer class
        indices. 'binary': one sigmoid logit per element, target of the
        input's shape with values in {0, 1}; input ``(N, 1, *spatial)`` also
        takes a target ``(N, *spatial)``. 'multilabel': input
        ``(N, C, *spatial)``, one independent sigmoid per channel, {0, 1}
        target of the same shape.""",
    "from_logits": """from_logits : bool, default=True
        Whether the input holds logits (True) or probabilities (False), in
        which case no softmax or sigmoid is applied.""",
    "ignore_index": """ignore_index : int or None, default=-100
        Target value whose positions are left out of the loss (out of every
        sum and count); None ignores nothing.""",
    "overlap": """smooth : float, default=1e-5
        Added to the numerator and the denominator of each ratio, > 0. It keeps
        the ratio defined for classes absent from both the prediction and the
        target, and fixes the loss of an empty target: near 1 unless the
        predicted probabilities sum to far less than ``smooth``.
    batch : bool, default=False
        Sum over the batch as well as over the positions before taking the
        ratio (one value per class, as if the batch were one image), instead
        of one value per (sample, class). Use True for classification (no
        spatial dimensions), where one position per sample makes the
        per-sample ratio nearly constant.
    include_background : bool, default=True
        Whether the first class (channel 0) enters the average. False drops its
        term after the softmax over all classes; it has no effect in 'binary'
        mode, whose one channel is the foreground.""",
}


def fill_doc(obj: type) -> type:
    """Replace the ``$name`` markers of ``obj.__doc__`` by :data:`PARAMETER_DOCS`."""
    doc = obj.__doc__ or ""
    for name, text in PARAMETER_DOCS.items():
        doc = doc.replace(f"${name}", text)
    obj.__doc__ = doc
    return obj


def arguments_repr(module: object) -> str:
    """``name=value, ...`` for every argument of ``type(module).__init__``, for ``extra_repr``."""
    names = inspect.signature(type(module)).parameters
    return ", ".join(f"{name}={getattr(module, name)!r}" for name in names)


# --------------------------------------------------------------------- argument checks
def check_choice(value: object, name: str, owner: str, choices: Sequence[str]) -> None:
    """Raise if ``value`` is not one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"The {name!r} argument of {owner} must be one of {list(choices)}. "
            f"Got {value!r} instead."
        )


def check_bool(value: object, name: str, owner: str) -> None:
    """Raise if ``value`` is not a bool (``0`` and ``1`` are refused too)."""
    if not isinstance(value, bool):
        raise ValueError(
            f"The {name!r} argument of {owner} must be a bool. Got {value!r} instead."
        )


def check_real(
    value: object,
    name: str,
    owner: str,
    *,
    low: float,
    low_open: bool = False,
    high: float | None = None,
) -> None:
    """Raise unless ``value`` is a finite real in ``[low, high]``."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and value == value  # not NaN
    if ok:
        ok = value > low if low_open else value >= low
        ok = ok and (value <= high if high is not None else value < float("inf"))
    if not ok:
        if high is not None:
            expected = f"a float in the range {'(' if low_open else '['}{low:g}, {high:g}]"
        else:
            expected = f"a float {'>' if low_open else '>='} {low:g}"
        raise ValueError(
            f"The {name!r} argument of {owner} must be {expected}. Got {value!r} instead."
        )


def check_ignore_index(value: object, owner: str) -> None:
    """Raise if ``ignore_index`` is neither an int nor None."""
    if value is not None and (not isinstance(value, Integral) or isinstance(value, bool)):
        raise ValueError(
            f"The 'ignore_index' argument of {owner} must be an int or None. "
            f"Got {value!r} instead."
        )


def check_common(
    owner: str, mode: object, from_logits: object, reduction: object, ignore_index: object
) -> None:
    """The checks of the arguments every loss of this package takes."""
    check_choice(mode, "mode", owner, MODES)
    check_bool(from_logits, "from_logits", owner)
    check_choice(reduction, "reduction", owner, REDUCTIONS)
    check_ignore_index(ignore_index, owner)


def check_overlap_args(
    owner: str, smooth: object, batch: object, include_background: object
) -> None:
    """The checks of the arguments of the overlap (Dice, Tversky) losses."""
    # smooth > 0 keeps (2I + smooth) / (P + G + smooth) defined when a class is
    # absent from both prediction and target, and when every position is ignored.
    check_real(smooth, "smooth", owner, low=0.0, low_open=True)
    check_bool(batch, "batch", owner)
    check_bool(include_background, "include_background", owner)


# --------------------------------------------------------------------- computation
@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Switch autocast off on ``device`` for the duration of the block.

    Reductions of probabilities over many pixels lose too much in float16 or
    bfloat16; the losses cast their input to float32 themselves and must not
    have autocast cast intermediate results back down.
    """
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # pragma: no cover - devices without autocast support
        yield


class Prepared(NamedTuple):
    """Input and target brought to the layout every loss computes on.

    Attributes
    ----------
    input : Tensor of shape (N, C, S)
        Logits or probabilities, float32 (float64 when given in float64).
    target : Tensor
        ``(N, S)`` int64 class indices for 'multiclass', ``(N, C, S)`` floats
        in [0, 1] otherwise; ignored positions hold 0.
    valid : Tensor of bool
        Positions that count: ``(N, S)`` for 'multiclass', ``(N, C, S)`` otherwise.
    shape : torch.Size
        Shape of the element-wise loss map returned by ``reduction='none'``.
    """

    input: torch.Tensor
    target: torch.Tensor
    valid: torch.Tensor
    shape: torch.Size


def _shape_error(
    owner: str, mode: str, input: torch.Tensor, target: torch.Tensor, expected: str
) -> ValueError:
    return ValueError(
        f"{owner}(mode={mode!r}) got input of shape {tuple(input.shape)} and target of "
        f"shape {tuple(target.shape)}; {expected}"
    )


def prepare(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str,
    ignore_index: int | None,
    owner: str,
) -> Prepared:
    """Check shapes and values, and bring ``input`` and ``target`` to ``(N, C, S)``.

    Raises
    ------
    ValueError
        If the shapes do not match ``mode``, if a 'multiclass' target is not
        made of integer class indices in ``[0, C)``, or if a 'binary' or
        'multilabel' target has values outside ``[0, 1]`` (ignored positions
        excepted).
    """
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"{owner} takes tensors; got input of type {type(input).__name__} and target "
            f"of type {type(target).__name__}."
        )
    if not input.is_floating_point():
        raise ValueError(
            f"{owner} needs a floating point input (logits or probabilities); got "
            f"{input.dtype}."
        )
    dtype = torch.promote_types(input.dtype, torch.float32)
    x = input.to(dtype)
    target = target.to(input.device)
    n = x.shape[0] if x.dim() else 0

    if mode == "multiclass":
        expected = (
            "'multiclass' takes input (N, C, *spatial) and integer class indices of "
            "shape (N, *spatial) or (N, 1, *spatial)."
        )
        if x.dim() < 2:
            raise _shape_error(owner, mode, input, target, expected)
        spatial = x.shape[2:]
        if target.dim() == x.dim() and target.shape[1] == 1:
            target = target.squeeze(1)
        if target.shape != (n, *spatial):
            raise _shape_error(owner, mode, input, target, expected)
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise ValueError(
                f"{owner}(mode='multiclass') needs integer class indices as target; got "
                f"{target.dtype}. Convert with target.long(), or use mode='multilabel' "
                "for one-hot or soft targets."
            )
        n_classes = x.shape[1]
        size = math.prod(spatial)  # explicit, as -1 is ambiguous for an empty batch
        target = target.reshape(n, size).long()
        valid = (
            torch.ones_like(target, dtype=torch.bool)
            if ignore_index is None
            else target != ignore_index
        )
        bad = valid & ((target < 0) | (target >= n_classes))
        if bool(bad.any()):
            values = torch.unique(target[bad])[:5].tolist()
            raise ValueError(
                f"{owner}(mode='multiclass') got target class indices {values} outside "
                f"[0, {n_classes}) for an input with {n_classes} classes (ignore_index="
                f"{ignore_index!r})."
            )
        target = torch.where(valid, target, 0)
        return Prepared(x.reshape(n, n_classes, size), target, valid, torch.Size((n, *spatial)))

    # binary and multilabel: one {0, 1} target per element of the input.
    if mode == "binary":
        expected = (
            "'binary' takes a target of the input's shape, or input (N, 1, *spatial) "
            "with target (N, *spatial)."
        )
        if x.dim() == 0:
            raise _shape_error(owner, mode, input, target, expected)
        if target.shape != x.shape and x.dim() >= 2 and x.shape[1] == 1 and target.shape == (
            x.shape[0], *x.shape[2:]
        ):
            target = target.unsqueeze(1)
        if target.shape != x.shape:
            raise _shape_error(owner, mode, input, target, expected)
        channels = 1  # every element scores the same, positive, class
    else:
        expected = (
            "'multilabel' takes input (N, C, *spatial) and a {0, 1} target of the same shape."
        )
        if x.dim() < 2 or target.shape != x.shape:
            raise _shape_error(owner, mode, input, target, expected)
        channels = x.shape[1]
    if ignore_index is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    else:
        valid = target != ignore_index
    if target.is_complex():
        raise ValueError(f"{owner}(mode={mode!r}) needs a real target; got {target.dtype}.")
    if target.dtype == torch.bool:
        target = target.to(dtype)
    bad = valid & ((target < 0) | (target > 1))
    if bool(bad.any()):
        values = torch.unique(target[bad])[:5].tolist()
        raise ValueError(
            f"{owner}(mode={mode!r}) needs target values in [0, 1]; got {values} "
            f"(ignore_index={ignore_index!r}). For class indices use mode='multiclass'."
        )
    target = torch.where(valid, target.to(dtype), 0.0)
    layout = (n, channels, math.prod(x.shape[1:]) // channels)
    return Prepared(x.reshape(layout), target.reshape(layout), valid.reshape(layout), x.shape)


def probabilities(x: torch.Tensor, mode: str, from_logits: bool) -> torch.Tensor:
    """Class probabilities of ``x`` (N, C, S): softmax over C for 'multiclass', else sigmoid."""
    if not from_logits:
        return x
    return torch.softmax(x, dim=1) if mode == "multiclass" else torch.sigmoid(x)


def safe_log(p: torch.Tensor) -> torch.Tensor:
    """``log(p)`` clamped away from ``-inf``, with a zero (not NaN) gradient at ``p = 0``."""
    return torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))


def masked_reduce(
    loss: torch.Tensor, valid: torch.Tensor, reduction: str, shape: torch.Size
) -> torch.Tensor:
    """Reduce an element-wise loss over the valid positions only.

    'mean' divides by the number of valid positions (at least 1, so that a batch
    whose every target is ignored gives 0 with a zero gradient instead of
    ``0 / 0``); 'none' returns the map, with zeros at ignored positions, in
    ``shape``.
    """
    loss = torch.where(valid, loss, 0.0)
    if reduction == "none":
        return loss.reshape(shape)
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / valid.sum().clamp_min(1).to(loss.dtype)


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` to per-(sample, class) or per-class values."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values
