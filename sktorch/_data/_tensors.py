"""``torch.utils.data.Dataset`` inputs: the general path.

An estimator fitted on arrays holds the whole data as two tensors and cuts
batches by slicing (:class:`sktorch._data._tensors.TensorDataset`). A map-style
``Dataset`` -- one whose items are loaded, decoded or transformed one at a
time, from disk or on the fly -- goes through skorch's ``DataLoader`` path
instead, with the pieces here:

- :func:`collect_targets` reads every target once, before training, since
  the estimator needs them all up front (a classifier's ``classes_`` and the
  module's output width, the stratified validation split). A dataset with a
  ``targets`` attribute (torchvision's do) is read without loading a single
  input; otherwise each item is loaded once.
- :class:`EncodedDataset` gives the items back as (input tensor, encoded
  target), the encoding being the estimator's own (label indices, float
  targets), and exposes ``X`` and ``y`` as a ``TensorDataset`` does, so the
  validation metrics score it through ``predict``.
- :class:`PermutationSampler` draws each epoch's order exactly as the
  in-memory path does (``torch.randperm`` from the torch random state sktorch
  seeds), so the two paths see the same batches for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, Sampler, Subset

_DATASET_HELP = (
    "X may be a map-style torch.utils.data.Dataset (with __len__ and __getitem__) "
    "whose items are (x, y) pairs, with y=None."
)


def is_dataset(X: Any) -> bool:
    """Whether X goes through the general path: a map-style ``Dataset``.

    An ``IterableDataset`` or a plain iterator is an error here: the
    estimator needs the number of samples and every target before training
    (``classes_``, the validation split), which a stream cannot give without
    being consumed.
    """
    if isinstance(X, IterableDataset) or (
        isinstance(X, Iterator) and not isinstance(X, (np.ndarray, torch.Tensor))
    ):
        raise TypeError(
            f"X is a {type(X).__name__}, an iterable-style dataset or iterator; sktorch "
            "needs the number of samples and all targets before training. Wrap the data "
            "in a map-style torch.utils.data.Dataset (with __len__ and __getitem__ "
            "returning (x, y) pairs), or load it into arrays."
        )
    return isinstance(X, Dataset)


def split_item(item: Any, index: int, owner: str) -> tuple[Any, Any]:
    """The (x, y) of a training item, or a clear error."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        kind = f"a {type(item).__name__}"
        if isinstance(item, (tuple, list)):
            kind += f" of length {len(item)}"
        raise ValueError(
            f"{owner} trains on Dataset items that are (x, y) pairs; item {index} of X is "
            f"{kind}. {_DATASET_HELP}"
        )
    return item[0], item[1]


def input_of(item: Any) -> Any:
    """The input of a prediction item: x of an (x, y) pair or of an (x,)
    (a ``TensorDataset`` of inputs alone), else the item."""
    if isinstance(item, (tuple, list)) and len(item) in (1, 2):
        return item[0]
    return item


def float_sample(x: Any) -> torch.Tensor:
    """A sample as a float32 tensor (tabular data, or anything not an image),
    on the device it is on."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32)
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _targets_attribute(dataset: Any) -> np.ndarray | None:
    """``dataset.targets`` when it is what the items' y are: present, one per
    item, and no ``target_transform`` between them (torchvision applies it
    in ``__getitem__`` only). Subsets of such datasets too."""
    if isinstance(dataset, Subset):
        parent = _targets_attribute(dataset.dataset)
        return None if parent is None else parent[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is None or getattr(dataset, "target_transform", None) is not None:
        return None
    try:
        targets = _as_numpy(targets)
    except Exception:
        return None
    if targets.ndim == 0 or len(targets) != len(dataset):
        return None
    return targets


def collect_targets(dataset: Dataset, owner: str) -> np.ndarray:
    """Every target of ``dataset``, as an array of length ``len(dataset)``.

    From ``dataset.targets`` when it holds them (see above), without loading
    any input; else by loading each item once, which costs one pass over
    the data.
    """
    targets = _targets_attribute(dataset)
    if targets is not None:
        return targets
    values = [_as_numpy(split_item(dataset[i], i, owner)[1]) for i in range(len(dataset))]
    shapes = {value.shape for value in values}
    if len(shapes) > 1:
        raise ValueError(
            f"{owner} needs targets of one shape; the Dataset's y have shapes "
            f"{sorted(shapes)[:4]}."
        )
    return np.stack(values)


class EncodedDataset(Dataset):
    """The user's dataset, items given back as (input tensor, encoded target).

    Parameters
    ----------
    dataset : Dataset
        The user's map-style dataset, items (x, y).
    targets : torch.Tensor
        The encoded targets of the items ``indices`` (all, when None), in
        that order.
    convert : callable
        Turns one x into the module's input tensor; picklable, so the
        dataset can go to ``DataLoader`` worker processes.
    indices : array of int or None
        The items of ``dataset`` this one holds (a validation split), or
        None for all of them.
    """

    def __init__(self, dataset: Dataset, targets: torch.Tensor,
                 convert: Callable[[Any], torch.Tensor],
                 indices: np.ndarray | None = None) -> None:
        self.dataset = dataset
        self.y = targets
        self.convert = convert
        self.indices = indices

    def __len__(self) -> int:
        return len(self.y)

    def _index(self, i: int) -> int:
        return int(self.indices[i]) if self.indices is not None else i

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self._index(i)
        x, _ = split_item(self.dataset[j], j, "sktorch")
        return self.convert(x), self.y[i]

    @property
    def X(self) -> EncodedDataset:
        # What ValidationMetrics scores: estimators predict on the dataset
        # itself, reading the x of each pair.
        return self

    def subset(self, indices: np.ndarray) -> EncodedDataset:
        """The items ``indices`` of this dataset (a torch ``Subset`` that
        keeps ``X``, ``y`` and the conversion)."""
        indices = np.asarray(indices)
        parent = indices if self.indices is None else self.indices[indices]
        return EncodedDataset(self.dataset, self.y[torch.from_numpy(indices)], self.convert,
                              parent)

    def inputs(self) -> InputsOf:
        """The converted inputs alone, for prediction."""
        return InputsOf(self, _identity)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class InputsOf(Dataset):
    """The inputs of a dataset's items, converted: for prediction."""

    def __init__(self, dataset: Dataset, convert: Callable[[Any], torch.Tensor]) -> None:
        self.dataset = dataset
        self.convert = convert

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.convert(input_of(self.dataset[i]))


class PermutationSampler(Sampler):
    """Each pass, a new order drawn with ``torch.randperm`` from torch's
    global random state -- the draw the in-memory path makes each epoch, so
    for the same seed both paths see the same batches."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n).tolist())


class TensorDataset:
    """Inputs and targets held as whole tensors, possibly on the training device."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)


class WeightedTargets:
    """Encoded targets with one weight per sample, indexed together.

    What a fit with ``sample_weight`` carries where the targets go: rows
    are taken from both by the same index (a batch, the validation split, a
    data-parallel share), moved to a device together, and the net's loss
    reads both (see :func:`sktorch.losses._weighted.weighted_loss_terms`).

    Parameters
    ----------
    targets : torch.Tensor
        The encoded targets, one row per sample.
    weights : torch.Tensor
        float32 weights of shape (n_samples,), finite and >= 0.
    """

    __slots__ = ("targets", "weights")

    def __init__(self, targets: torch.Tensor, weights: torch.Tensor) -> None:
        if len(targets) != len(weights):
            raise ValueError(f"{len(targets)} targets but {len(weights)} weights.")
        self.targets = targets
        self.weights = weights

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: Any) -> WeightedTargets:
        return WeightedTargets(self.targets[index], self.weights[index])

    @property
    def device(self) -> torch.device:
        return self.targets.device

    def numel(self) -> int:
        return self.targets.numel() + self.weights.numel()

    def element_size(self) -> int:
        # For memory estimates (numel * element_size): the larger of the two.
        return max(self.targets.element_size(), self.weights.element_size())

    def to(self, device: Any, non_blocking: bool = False) -> WeightedTargets:
        return WeightedTargets(self.targets.to(device, non_blocking=non_blocking),
                               self.weights.to(device, non_blocking=non_blocking))


def plain_targets(targets: Any) -> Any:
    """The targets without their weights (unchanged when unweighted)."""
    return targets.targets if isinstance(targets, WeightedTargets) else targets


def target_weights(targets: Any) -> torch.Tensor | None:
    """The weights carried with ``targets``, or None."""
    return targets.weights if isinstance(targets, WeightedTargets) else None
