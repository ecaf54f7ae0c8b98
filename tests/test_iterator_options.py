"""``iterator_train__``/``iterator_valid__`` options: honoured alike by the
in-memory path (arrays) and the DataLoader path (Datasets), or refused."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch.utils.data import Sampler, TensorDataset

from sktorch import TorchClassifier, TorchRegressor
from sktorch.exceptions import InvalidParameterError


class Batches(Callback):
    """Records the targets of every training and validation batch."""

    def initialize(self):
        self.train, self.valid = [], []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        (self.train if training else self.valid).append(batch[1].reshape(-1).tolist())


class Reversed(Sampler):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(range(self.n - 1, -1, -1))


def _data(n=25):
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2) / n
    return X, np.arange(n, dtype=np.float32)


def _batches(**params):
    X, y = _data()
    reg = TorchRegressor(max_epochs=1, batch_size=10, random_state=0,
                         callbacks=[("batches", Batches())], **params).fit(X, y)
    return dict(reg.net_.callbacks_)["batches"]


def _rows(first, stop):
    return [float(i) for i in range(first, stop)]


def test_shuffle_false_gives_batches_in_order():
    assert _batches(iterator_train__shuffle=False).train == [
        _rows(0, 10), _rows(10, 20), _rows(20, 25)]


def test_drop_last_drops_the_short_batch():
    batches = _batches(iterator_train__drop_last=True, iterator_train__shuffle=False).train
    assert batches == [_rows(0, 10), _rows(10, 20)]
    shuffled = _batches(iterator_train__drop_last=True).train
    assert [len(b) for b in shuffled] == [10, 10]


def test_a_sampler_orders_the_batches():
    batches = _batches(iterator_train__sampler=Reversed(25)).train
    assert batches == [_rows(15, 25)[::-1], _rows(5, 15)[::-1], _rows(0, 5)[::-1]]


def test_a_batch_sampler_chooses_the_batches():
    plan = [[3, 1], [0, 2, 4], [24]]
    assert _batches(iterator_train__batch_sampler=plan).train == [[3.0, 1.0], [0.0, 2.0, 4.0],
                                                                  [24.0]]


def test_validation_options_apply_to_the_held_out_rows():
    batches = _batches(validation_fraction=0.4, iterator_valid__batch_size=4,
                       iterator_valid__drop_last=True)
    assert [len(b) for b in batches.valid] == [4, 4]


@pytest.mark.parametrize("options", [
    dict(iterator_train__shuffle=False),
    dict(iterator_train__shuffle=True),
    dict(iterator_train__drop_last=True),
    dict(iterator_train__sampler=Reversed(120)),
    dict(iterator_valid__batch_size=7, iterator_valid__drop_last=True),
])
def test_arrays_and_datasets_train_alike(iris, options):
    X, y = iris
    common = dict(module__hidden_sizes=(8,), module__dropout=0.2, batch_size=16, max_epochs=2,
                  validation_fraction=0.2, random_state=0, device="cpu", **options)
    arrays = TorchClassifier(**common).fit(X, y)
    dataset = TorchClassifier(**common).fit(TensorDataset(torch.from_numpy(X),
                                                          torch.from_numpy(y)))
    for a, b in zip(arrays.module_.parameters(), dataset.module_.parameters()):
        assert torch.equal(a, b)
    assert arrays.history_[:, "train_loss"] == dataset.history_[:, "train_loss"]
    assert arrays.history_[:, "valid_loss"] == dataset.history_[:, "valid_loss"]


@pytest.mark.parametrize("key", ["iterator_train__shufle", "iterator_valid__bach_size"])
@pytest.mark.parametrize("as_dataset", [False, True])
def test_an_unknown_option_is_an_error_naming_it(iris, key, as_dataset):
    X, y = iris
    data = (TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),) if as_dataset else (X, y)
    with pytest.raises(InvalidParameterError, match=rf"Invalid parameter '{key}'.*DataLoader.*"
                                                    r"Did you mean"):
        TorchClassifier(max_epochs=1, **{key: True}).fit(*data)


@pytest.mark.parametrize("key, value", [("iterator_train__num_workers", 2),
                                        ("iterator_valid__pin_memory", True),
                                        ("iterator_train__collate_fn", list)])
def test_loading_options_are_refused_with_arrays(iris, key, value):
    X, y = iris
    with pytest.raises(InvalidParameterError, match=rf"'{key}' parameter of TorchClassifier "
                                                    r"applies to the DataLoader of a Dataset X"):
        TorchClassifier(max_epochs=1, **{key: value}).fit(X, y)


def test_shuffle_and_a_sampler_are_mutually_exclusive(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="iterator_train__shuffle=True and "
                                                    "iterator_train__sampler are mutually"):
        TorchClassifier(max_epochs=1, iterator_train__shuffle=True,
                        iterator_train__sampler=Reversed(150)).fit(X, y)


def test_a_batch_sampler_with_accumulation_is_refused(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="batch_sampler cannot be combined with "
                                                    "accumulate_grad_batches"):
        TorchClassifier(max_epochs=1, accumulate_grad_batches=2,
                        iterator_train__batch_sampler=[[0, 1], [2, 3]]).fit(X, y)


def test_one_cycle_counts_the_batches_drop_last_leaves():
    X, y = _data()
    reg = TorchRegressor(max_epochs=2, batch_size=10, lr_scheduler="onecycle",
                         iterator_train__drop_last=True, random_state=0).fit(X, y)
    scheduler = dict(reg.net_.callbacks_)["lr_scheduler"].lr_scheduler_
    assert scheduler.total_steps == 4 and scheduler.last_epoch == 4
