"""The skorch net sktorch drives, with an in-memory batch path.

skorch's default path wraps the data in a ``Dataset`` and lets a
``DataLoader`` index it row by row and collate the rows back into a batch.
For data that is already one tensor in memory that is pure overhead: here a
batch is one indexing operation on the whole tensor with a slice of a
shuffled permutation, drawn from torch's random state (which sktorch seeds
from ``random_state``). Everything else -- the training step, callbacks,
history -- is skorch's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from skorch import NeuralNet


class TensorDataset:
    """Inputs and targets held as whole tensors, possibly on the training device."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)


class TensorBatches:
    """Iterate over ``(X[idx], y[idx])`` batches of a :class:`TensorDataset`.

    With ``shuffle=True`` each pass draws a new permutation with
    ``torch.randperm`` on the data's device; without it, batches are
    contiguous slices (views, no copy).
    """

    def __init__(self, dataset: TensorDataset, batch_size: int, shuffle: bool) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        X, y, size = self.dataset.X, self.dataset.y, self.batch_size
        n = len(X)
        if not self.shuffle:
            for start in range(0, n, size):
                yield X[start : start + size], y[start : start + size]
            return
        order = torch.randperm(n, device=X.device)
        for start in range(0, n, size):
            index = order[start : start + size]
            yield X[index], y[index]


class SktorchNet(NeuralNet):
    """skorch's ``NeuralNet`` with the in-memory batch path.

    A :class:`TensorDataset` is cut into batches by :class:`TensorBatches`;
    any other dataset goes through skorch's ``DataLoader`` path as usual.
    """

    def _set_training(self, training=True):
        # skorch calls this before every batch, and ``Module.train`` walks the
        # whole module tree each time: for a deep network that walk costs more
        # than a small batch. Walk only when the mode actually changes.
        # A side effect users may rely on: a submodule a callback put in eval
        # mode (e.g. frozen batch-norm statistics) stays so during training.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, TensorDataset):
            prefix = "iterator_train" if training else "iterator_valid"
            batch_size = self.get_params_for(prefix).get("batch_size", self.batch_size)
            if batch_size == -1:
                batch_size = len(dataset)
            return TensorBatches(dataset, batch_size, shuffle=training)
        return super().get_iterator(dataset, training=training)
