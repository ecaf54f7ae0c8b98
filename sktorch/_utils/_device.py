"""Resolve the ``device`` hyperparameter to a device that exists here."""

from __future__ import annotations

import torch

from sktorch.exceptions import DeviceError, InvalidParameterError


def resolve_device(device: str | torch.device, owner: str) -> torch.device:
    """Turn ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:1'``... into a usable device.

    ``'auto'`` picks CUDA when it is available, else the CPU. A CUDA (or MPS)
    device that this machine does not have is a :class:`DeviceError` now,
    rather than a crash deep inside torch at the first batch.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidParameterError(
            f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda', "
            f"'cuda:<index>' or a torch.device. Got {device!r} instead."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"The 'device' parameter of {owner} is {device!r}, but CUDA is not "
                "available on this machine (torch.cuda.is_available() is False). "
                "Use device='cpu', or device='auto' to take CUDA only when present."
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(
                f"The 'device' parameter of {owner} is {device!r}, but this machine "
                f"has {count} CUDA device(s) (indices 0 to {count - 1})."
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            f"The 'device' parameter of {owner} is {device!r}, but MPS is not "
            "available on this machine. Use device='cpu' or device='auto'."
        )
    return resolved


def to_device_if_room(tensors: tuple[torch.Tensor, ...], device: torch.device,
                      ) -> tuple[torch.Tensor, ...]:
    """Move the training data to the device once, when it fits there with
    room to spare; otherwise batches move one at a time as they are used."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if sum(t.numel() * t.element_size() for t in tensors) > free // 4:
            return tensors
    return tuple(t.to(device) for t in tensors)
