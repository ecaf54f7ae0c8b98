"""Data augmentation transforms (torchvision v2), and the registry behind their names."""

from __future__ import annotations

from typing import Any

from sktorch._utils._registry import Registry
from sktorch.transforms._noise import GaussianNoise, SaltAndPepperNoise

__all__ = [
    "GaussianNoise",
    "SaltAndPepperNoise",
    "get_transform",
    "list_transforms",
    "register_transform",
]

# Any callable is a transform (v1 and v2 transforms, Compose, plain functions),
# so no base class is required of a transform given directly.
TRANSFORMS = Registry("transform")
for _name, _cls in {
    "salt_and_pepper": SaltAndPepperNoise,
    "gaussian_noise": GaussianNoise,
}.items():
    TRANSFORMS.register(_name, _cls)


def get_transform(name: str, **options: Any) -> Any:
    """Build the transform registered under ``name`` with ``options``.

    Examples
    --------
    >>> from sktorch.transforms import get_transform
    >>> get_transform("salt_and_pepper", amount=0.1)
    SaltAndPepperNoise(amount=0.1, salt_vs_pepper=0.5, per_channel=False, p=1.0)
    """
    return TRANSFORMS.get(name, **options)


def list_transforms() -> list[str]:
    """Names of the registered transforms.

    Examples
    --------
    >>> from sktorch.transforms import list_transforms
    >>> "salt_and_pepper" in list_transforms()
    True
    """
    return TRANSFORMS.names()


def register_transform(name: str, cls: Any = None) -> Any:
    """Register a transform class (or factory) under ``name``; usable as a decorator.

    Examples
    --------
    >>> import torch
    >>> from torchvision.transforms import v2
    >>> from sktorch.transforms import register_transform, list_transforms
    >>> @register_transform("invert_doc_example")
    ... class Invert(v2.Transform):
    ...     def transform(self, inpt, params):
    ...         return 1.0 - inpt
    >>> "invert_doc_example" in list_transforms()
    True
    """
    return TRANSFORMS.register(name, cls)
