"""Training-time augmentation (``augment``) and test-time augmentation
(``tta``) for every estimator.

Both hyperparameters hold transforms: sktorch's own (``sktorch.transforms``),
torchvision v2 transforms, or any callable on a tensor. sktorch's transforms
are *batch aware*: called on a batch (N, C, H, W) they draw independently for
each image, so they run once per batch on the training device. Other
transforms draw one set of random parameters per call (a torchvision
``RandomHorizontalFlip`` called on a batch flips all of it or none of it),
so they run sample by sample, which keeps the draws independent.

For segmentation the masks must move with their images: ``BatchAugment.pair``
wraps a batch as ``tv_tensors.Image`` and its masks as ``tv_tensors.Mask``,
so that a torchvision v2 transform applies one geometric draw to both (with
nearest-neighbour interpolation for the mask) while pixel transforms (noise,
colour) leave the mask alone.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from sktorch._utils._introspect import check_options, constructor_arguments
from sktorch.exceptions import InvalidParameterError


class BatchAugment:
    """Apply a sequence of transforms to a training batch, in order.

    Parameters
    ----------
    transforms : sequence of callables
        Batch-aware transforms (``batch_aware = True``) are called on the
        whole batch; the others on each sample.
    """

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.forward(batch)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The batch, transformed by each transform in order."""
        with torch.no_grad():
            for transform in self.transforms:
                if getattr(transform, "batch_aware", False):
                    batch = transform(batch)
                else:
                    batch = torch.stack([transform(sample) for sample in batch])
        return batch

    def inverse(self, output: torch.Tensor) -> torch.Tensor:
        """Map the module's output for a transformed batch back to the
        untransformed one, as a test-time view (``tta``) must: each
        transform's own ``inverse(output)``, in reverse order, where it
        declares one; identity for the others."""
        for transform in reversed(self.transforms):
            inverse = getattr(transform, "inverse", None)
            if callable(inverse):
                output = inverse(output)
        return output

    def pair(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the transforms to a batch of images and their masks together.

        torchvision v2 transforms are called with the images as a
        ``tv_tensors.Image`` and the masks as a ``tv_tensors.Mask``: a flip,
        rotation or crop moves both alike (the mask by nearest neighbour,
        pixels brought in by a rotation get the transform's ``fill``, 0 by
        default), while sktorch's noise transforms and torchvision's colour
        transforms change the image only. Batch-aware transforms get the
        whole batch, the others each (image, mask) pair, so draws are
        independent per image. A callable that is no v2 transform sees the
        image only, so it must not move pixels.

        Parameters
        ----------
        images : Tensor of shape (N, C, H, W)
        masks : Tensor of shape (N, H, W) or (N, 1, H, W)
            Per-pixel targets (class indices, or a binary channel).

        Returns
        -------
        images, masks : Tensor
            Plain tensors, transformed.
        """
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        with torch.no_grad():
            for transform in self.transforms:
                joint = isinstance(transform, v2.Transform)
                if getattr(transform, "batch_aware", False):
                    if joint:
                        images, masks = _plain(
                            transform(tv_tensors.Image(images), tv_tensors.Mask(masks))
                        )
                    else:
                        images = transform(images)
                    continue
                pairs = [
                    _plain(transform(tv_tensors.Image(image), tv_tensors.Mask(mask)))
                    if joint else (transform(image), mask)
                    for image, mask in zip(images, masks)
                ]
                images = torch.stack([image for image, _ in pairs])
                masks = torch.stack([mask for _, mask in pairs])
        return images, masks

    def __repr__(self) -> str:
        return f"BatchAugment({self.transforms!r})"


def _plain(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """tv_tensors back to plain tensors."""
    return tuple(t.as_subclass(torch.Tensor) for t in tensors)


def hflip(batch: torch.Tensor) -> torch.Tensor:
    """Mirror images left to right (the last axis): the test-time view
    ``tta='hflip'``.

    As a view it also has ``hflip.forward`` (itself) and
    ``hflip.inverse(output)``, which maps the module's output for the
    flipped batch back: a spatial output (more axes than (N, K): the
    per-pixel scores (N, K, H, W) of a segmenter) is flipped back along its
    width, so that each pixel's scores average with those of the same pixel
    of the input; a per-sample output (N, K) or (N,) of a classifier or
    regressor does not depend on where things are, and is kept as it is.
    """
    return torch.flip(batch, dims=(-1,))


def _hflip_inverse(output: torch.Tensor) -> torch.Tensor:
    """The output of a flipped batch, mirrored back when spatial."""
    return torch.flip(output, dims=(-1,)) if output.ndim >= 3 else output


# A function (an augment too), with the two methods of a view.
hflip.forward = hflip
hflip.inverse = _hflip_inverse


def _accepts(transform: Any, name: str) -> bool:
    if inspect.isroutine(transform):
        # A plain function takes no options; the signature of its type
        # (FunctionType: code, globals, name...) is not its own.
        return False
    target = transform if isinstance(transform, type) else type(transform)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters


def _build_one(spec: Any, options: dict[str, Any], owner: str, where: str) -> Callable:
    from sktorch.transforms import TRANSFORMS

    if isinstance(spec, str):
        spec = TRANSFORMS.resolve(spec, param="augment", owner=owner)
    if isinstance(spec, type):
        check_options(spec, options, prefix="augment", owner=owner)
        return spec(**options)
    if not callable(spec):
        raise InvalidParameterError(
            f"The {where} of {owner} must be a transform name from "
            f"{TRANSFORMS.names()}, a transform class, or a callable transform "
            f"(sktorch.transforms or torchvision.transforms.v2). Got {spec!r} instead."
        )
    if not options:
        return copy.deepcopy(spec)
    if inspect.isroutine(spec):
        raise InvalidParameterError(
            f"augment__ options {sorted(options)} of {owner} cannot be applied to the "
            f"function {spec!r}, which takes only the tensor. Pass a transform class "
            "or instance that takes them instead."
        )
    arguments = constructor_arguments(spec, strict=False)
    if arguments is None:
        raise InvalidParameterError(
            f"augment__ options {sorted(options)} of {owner} cannot be applied to "
            f"{spec!r}: its constructor arguments cannot be read back from it. Pass its "
            "class as augment instead, so it is built with the options."
        )
    check_options(type(spec), options, prefix="augment", owner=owner)
    return type(spec)(**{**arguments, **options})


def resolve_augment(spec: Any, options: dict[str, Any], owner: str) -> BatchAugment | None:
    """Build the ``augment`` hyperparameter with its ``augment__`` options.

    With a list, ``augment__<name>`` goes to the one transform that takes
    ``<name>``; ``augment__<i>__<name>`` names the transform by position.
    """
    if spec is None:
        if options:
            raise InvalidParameterError(
                f"augment__ options {sorted(options)} of {owner} were given, but augment "
                "is None. Set augment to a transform, a transform name or a list of them."
            )
        return None
    if not isinstance(spec, (list, tuple)):
        return BatchAugment([_build_one(spec, options, owner, "'augment' parameter")])
    per_item: list[dict[str, Any]] = [{} for _ in spec]
    for key, value in options.items():
        head, _, rest = key.partition("__")
        if head.isdigit() and rest:
            index = int(head)
            if index >= len(spec):
                raise InvalidParameterError(
                    f"augment__{key} of {owner} names transform {index}, but augment "
                    f"holds {len(spec)} transforms."
                )
            per_item[index][rest] = value
            continue
        takers = [i for i, item in enumerate(spec) if _accepts(_as_class(item), key)]
        if len(takers) != 1:
            what = "none" if not takers else f"transforms {takers}"
            raise InvalidParameterError(
                f"augment__{key} of {owner} must go to exactly one transform of the "
                f"augment list, but {what} take {key!r}. Name one by position: "
                f"augment__<i>__{key}."
            )
        per_item[takers[0]][key] = value
    return BatchAugment(
        [
            _build_one(item, item_options, owner, f"augment[{i}]")
            for i, (item, item_options) in enumerate(zip(spec, per_item))
        ]
    )


def _as_class(spec: Any) -> Any:
    if isinstance(spec, str):
        from sktorch.transforms import TRANSFORMS

        return TRANSFORMS.get_class(spec) if spec in TRANSFORMS else spec
    return spec


def resolve_tta(spec: Any, owner: str) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The test-time views of the ``tta`` hyperparameter: ``predict``
    averages over the input itself, then each of these.

    A view is called on a batch (``view(x)``, or ``view.forward(x)``) and
    has ``view.inverse(output)``, which maps the module's output for the
    transformed batch back to the input's frame before the views are
    averaged. ``'hflip'`` gives :data:`hflip`, whose inverse mirrors a
    spatial output (a segmenter's per-pixel scores) back and keeps a
    per-sample one. Any other transform is wrapped in a
    :class:`BatchAugment` (run on the batch when batch aware, else sample by
    sample); its inverse is the transform's own ``inverse`` method or
    attribute, a callable taking the module's output for the whole batch,
    when it declares one, and the identity otherwise (right for transforms
    that move no pixels, or for per-sample outputs).

    Parameters
    ----------
    spec : 'hflip', callable, list or tuple of them, or None
        The ``tta`` hyperparameter.
    owner : str
        The estimator's class name, for error messages.

    Returns
    -------
    views : list
        One view per item of ``spec``; empty for None.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        if spec != "hflip":
            raise InvalidParameterError(
                f"The 'tta' parameter of {owner} must be 'hflip', a transform, a list of "
                f"transforms or None. Got {spec!r} instead."
            )
        return [hflip]
    items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    views = []
    for i, item in enumerate(items):
        if item == "hflip":
            views.append(hflip)
        elif callable(item):
            views.append(BatchAugment([item]))
        else:
            raise InvalidParameterError(
                f"tta[{i}] of {owner} must be 'hflip' or a callable transform. "
                f"Got {item!r} instead."
            )
    if not views:
        raise InvalidParameterError(
            f"The 'tta' parameter of {owner} is an empty list; use None for no "
            "test-time augmentation."
        )
    return views
