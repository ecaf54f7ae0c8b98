"""The validation split of a fit: which rows train and which validate."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from sktorch._data._tensors import EncodedDataset, plain_targets


def split_validation(inputs: Any, targets: Any, share: float | None, seed: int,
                     target_adapter: Any) -> tuple[tuple, tuple | None]:
    """Hold out ``share`` of the rows for validation (none for None):
    tensors are indexed, an :class:`EncodedDataset` is split into two
    subsets of it. The split is stratified on the labels the target
    adapter gives (``stratify``) when every class has two rows and both
    sides can hold every class; ``seed`` makes it reproducible.

    Returns
    -------
    train, valid : tuple, tuple or None
        ``(inputs, targets)`` of each side, or ``(dataset,)`` for a Dataset;
        ``valid`` is None without a share.
    """
    general = isinstance(inputs, EncodedDataset)
    if share is None:
        return ((inputs,) if general else (inputs, targets)), None
    n_samples = len(inputs)
    n_valid = int(np.ceil(share * n_samples))
    if n_valid < 1 or n_samples - n_valid < 1:
        raise ValueError(
            f"validation_fraction={share} of {n_samples} samples leaves "
            f"{n_samples - n_valid} for training and {n_valid} for validation; "
            "both need at least 1. Use more data or validation_fraction=None "
            "(and early_stopping=None)."
        )
    labels = target_adapter.stratify(plain_targets(targets))
    if labels is not None:
        counts = np.unique(labels, return_counts=True)[1]
        n_classes = len(counts)
        if counts.min() < 2 or n_valid < n_classes or n_samples - n_valid < n_classes:
            labels = None
    train_idx, valid_idx = train_test_split(
        np.arange(n_samples), test_size=n_valid, random_state=seed, stratify=labels
    )
    if general:
        return (inputs.subset(train_idx),), (inputs.subset(valid_idx),)
    train_idx, valid_idx = torch.from_numpy(train_idx), torch.from_numpy(valid_idx)
    return (inputs[train_idx], targets[train_idx]), (inputs[valid_idx], targets[valid_idx])
