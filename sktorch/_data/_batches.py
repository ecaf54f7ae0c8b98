"""How training and validation data are cut into batches, on both paths.

The ``iterator_train__<name>`` and ``iterator_valid__<name>`` options are
``torch.utils.data.DataLoader`` arguments. A Dataset X goes through a
``DataLoader`` built with them (:func:`loader_options`); arrays go through
:class:`TensorBatches`, which cuts batches from tensors in memory and takes
the options that decide *which rows form which batch* -- ``batch_size``,
``shuffle``, ``sampler``, ``batch_sampler``, ``drop_last`` -- with the
``DataLoader``'s meaning, so that both paths see the same batches. The
options about *loading* (``num_workers``, ``collate_fn``, ``pin_memory``...)
have nothing to act on in memory and are an error with arrays
(:func:`check_iterator_options`), as is any name ``DataLoader`` does not
take.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from skorch.dataset import unpack_data
from torch.utils.data import DataLoader

from sktorch._data._tensors import (
    PermutationSampler,
    WeightedTargets,
    plain_targets,
    target_weights,
)
from sktorch._utils._introspect import did_you_mean
from sktorch.exceptions import InvalidParameterError

PREFIXES = ("iterator_train", "iterator_valid")

# Every argument of the DataLoader, but the dataset it is given.
LOADER_OPTIONS: tuple[str, ...] = tuple(
    name for name in inspect.signature(DataLoader.__init__).parameters
    if name not in ("self", "dataset")
)
# The DataLoader arguments the in-memory path honours.
ARRAY_OPTIONS: tuple[str, ...] = ("batch_size", "shuffle", "sampler", "batch_sampler", "drop_last")


def check_iterator_options(options: dict[str, Any], owner: str, arrays: bool) -> None:
    """Raise for an ``iterator_train__``/``iterator_valid__`` option that the
    ``DataLoader`` does not take, or, with ``arrays``, that the in-memory
    path cannot honour.

    Parameters
    ----------
    options : dict
        ``prefix__name`` options; those of other prefixes are skipped.
    owner : str
        The estimator's class name, for the message.
    arrays : bool
        Whether the data are arrays (in memory) rather than a Dataset.
    """
    for key in options:
        prefix, _, name = key.partition("__")
        if prefix not in PREFIXES:
            continue
        if name not in LOADER_OPTIONS:
            raise InvalidParameterError(
                f"Invalid parameter {key!r} for estimator {owner}: {prefix}__ options are "
                f"arguments of torch.utils.data.DataLoader, which takes {list(LOADER_OPTIONS)}."
                + did_you_mean(name, list(LOADER_OPTIONS))
            )
        if arrays and name not in ARRAY_OPTIONS:
            raise InvalidParameterError(
                f"The {key!r} parameter of {owner} applies to the DataLoader of a Dataset X; "
                f"with X an array, batches are cut from tensors in memory, which takes only "
                f"{[f'{prefix}__{option}' for option in ARRAY_OPTIONS]}. Remove {key!r}, or "
                "pass X as a torch.utils.data.Dataset."
            )


def loader_options(options: dict[str, Any], n: int, batch_size: int, training: bool,
                   where: str) -> dict[str, Any]:
    """The ``DataLoader`` arguments of one pass over ``n`` samples: the
    user's ``options`` (without their prefix) with sktorch's defaults.

    ``batch_size`` defaults to the estimator's (-1: all samples). Training
    shuffles unless ``shuffle=False`` or a ``sampler``/``batch_sampler`` is
    given; shuffling, for training or (``shuffle=True``) validation, is a
    :class:`~sktorch._data._tensors.PermutationSampler`, the order the in-memory path
    draws. ``where`` (the prefix) names the options in errors.
    """
    options = dict(options)
    custom = {"sampler", "batch_sampler"} & options.keys()
    shuffle = options.pop("shuffle", None)
    if shuffle and custom:
        raise InvalidParameterError(
            f"{where}__shuffle=True and {where}__{sorted(custom)[0]} are mutually exclusive "
            "(as in torch's DataLoader): the sampler decides the order. Remove one of them."
        )
    if "batch_sampler" not in options:
        options.setdefault("batch_size", batch_size)
        if options["batch_size"] == -1:
            options["batch_size"] = n
    if shuffle is None:
        shuffle = training and not custom
    if shuffle:
        options["sampler"] = PermutationSampler(n)
    return options


def batch_sizes(options: dict[str, Any], n: int) -> list[int] | None:
    """The sizes of the batches a pass with these :func:`loader_options`
    cuts, or None when a ``batch_sampler`` decides them."""
    if options.get("batch_sampler") is not None:
        return None
    size = options["batch_size"]
    sampler = options.get("sampler")
    m = n if sampler is None else len(sampler)
    sizes = [size] * (m // size)
    if m % size and not options.get("drop_last", False):
        sizes.append(m % size)
    return sizes


class TensorBatches:
    """Iterate over ``(X[idx], y[idx])`` batches of a
    :class:`sktorch._data._tensors.TensorDataset`.

    With ``shuffle=True`` each pass draws a new permutation with
    ``torch.randperm`` on the data's device; without it, batches are
    contiguous slices (views, no copy). ``drop_last`` drops a last batch
    shorter than ``batch_size``. With ``batch_sampler`` (an iterable of
    lists of row indices, such as ``DataLoader.batch_sampler``) its batches
    are taken as they come and the other arguments are not used.
    """

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool, drop_last: bool = False,
                 batch_sampler: Any = None) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.batch_sampler = batch_sampler

    @classmethod
    def from_options(cls, dataset: Any, options: dict[str, Any]) -> TensorBatches:
        """Batches of ``dataset`` as a ``DataLoader`` built with
        :func:`loader_options` ``options`` would cut them."""
        sampler = options.get("sampler")
        drop_last = bool(options.get("drop_last", False))
        if options.get("batch_sampler") is None:
            if sampler is None:
                return cls(dataset, options["batch_size"], shuffle=False, drop_last=drop_last)
            if type(sampler) is PermutationSampler:
                return cls(dataset, options["batch_size"], shuffle=True, drop_last=drop_last)
        # A sampler of the user's: the DataLoader (over row numbers) checks the
        # options together and batches its indices, as it would the Dataset's.
        loader = DataLoader(range(len(dataset)), **options)
        return cls(dataset, options.get("batch_size") or 1, shuffle=False,
                   batch_sampler=loader.batch_sampler)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        X, y, size = self.dataset.X, self.dataset.y, self.batch_size
        if self.batch_sampler is not None:
            for indices in self.batch_sampler:
                index = torch.as_tensor(indices, dtype=torch.long, device=X.device)
                yield X[index], y[index]
            return
        n = len(X)
        stop = n - n % size if self.drop_last else n
        if not self.shuffle:
            for start in range(0, stop, size):
                yield X[start : start + size], y[start : start + size]
            return
        order = torch.randperm(n, device=X.device)
        for start in range(0, stop, size):
            index = order[start : start + size]
            yield X[index], y[index]


class AugmentedBatches:
    """Training batches with ``augment`` applied to their inputs, on the
    training device (a batch not there yet is moved first).

    With ``joint``, inputs and targets (images and their masks) are
    transformed together by ``augment.pair`` (see
    :meth:`sktorch._data._augment.BatchAugment.pair`).
    """

    def __init__(self, batches: Any, augment: Callable, device: torch.device,
                 joint: bool = False) -> None:
        self.batches = batches
        self.augment = augment
        self.device = device
        self.joint = joint

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for batch in self.batches:
            Xi, yi = unpack_data(batch)
            if not isinstance(Xi, torch.Tensor):
                raise TypeError(
                    "augment transforms tensors; this training batch holds "
                    f"{type(Xi).__name__} inputs."
                )
            if self.joint:
                weights = target_weights(yi)
                yi = plain_targets(yi)
                if not isinstance(yi, torch.Tensor):
                    raise TypeError(
                        "augment transforms images and masks together; this training "
                        f"batch holds {type(yi).__name__} targets."
                    )
                Xi, yi = self.augment.pair(Xi.to(self.device), yi.to(self.device))
                yield Xi, (yi if weights is None else WeightedTargets(yi, weights))
            else:
                yield self.augment(Xi.to(self.device)), yi


class ShardedBatches:
    """This process's share of every global training batch, for
    data-parallel training: rows ``rank::world`` of each batch.

    Every process must cut the same global batches, so each epoch starts
    from rank 0's random state (broadcast), from which the permutation is
    drawn; the other ranks then reseed from a value derived from that state,
    so dropout and augmentation draw differently in each process. A process
    whose share of the last, short batch is empty gets the batch's first row
    as a stand-in, which the net weighs zero (see ``SktorchNet.train_step``):
    every process must run every step, since gradients are averaged across
    processes in each backward pass.
    """

    def __init__(self, batches: Any, rank: int, world: int) -> None:
        self.batches = batches
        self.rank = rank
        self.world = world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch.distributed as dist

        state = [torch.get_rng_state()]
        dist.broadcast_object_list(state, src=0)
        torch.set_rng_state(state[0])
        iterator = iter(self.batches)
        first = next(iterator, None)  # the permutation is drawn here
        if self.rank > 0:
            generator = torch.Generator()
            generator.set_state(state[0])
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)) + self.rank)
        if first is None:
            return
        yield self._share(first)
        for batch in iterator:
            yield self._share(batch)

    def _share(self, batch: Any) -> tuple[Any, Any]:
        Xi, yi = unpack_data(batch)
        for part in (Xi, plain_targets(yi)):
            if not isinstance(part, torch.Tensor):
                raise TypeError(
                    "strategy='ddp' splits each training batch across processes by rows; "
                    f"this batch holds {type(part).__name__} values, not tensors."
                )
        if len(Xi) <= self.rank:
            stand_in = yi[:1]
            if isinstance(stand_in, WeightedTargets):
                stand_in = WeightedTargets(stand_in.targets, torch.zeros_like(stand_in.weights))
            return Xi[:1], stand_in
        return Xi[self.rank :: self.world], yi[self.rank :: self.world]
