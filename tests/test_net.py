"""The in-memory batch path: correct batches, and the same training as
skorch's general Dataset/DataLoader path for the same seed and batch order."""

import numpy as np
import pytest
import torch
from skorch import NeuralNet
from torch import nn
from torch.utils.data import DataLoader, Sampler

from sktorch import TorchClassifier
from sktorch._data._batches import TensorBatches
from sktorch._data._tensors import TensorDataset
from sktorch._engine._net import SktorchNet


def _dataset(n=23):
    X = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    return TensorDataset(X, torch.arange(n))


def test_shuffled_batches_cover_every_row_once():
    batches = list(TensorBatches(_dataset(), batch_size=5, shuffle=True))
    assert [len(xb) for xb, _ in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(23))
    assert seen.tolist() != list(range(23))
    for xb, yb in batches:  # rows stay paired with their targets
        assert torch.equal(xb[:, 0], 2.0 * yb)


def test_order_follows_the_torch_random_state():
    torch.manual_seed(3)
    first = [yb.tolist() for _, yb in TensorBatches(_dataset(), 4, shuffle=True)]
    torch.manual_seed(3)
    again = [yb.tolist() for _, yb in TensorBatches(_dataset(), 4, shuffle=True)]
    assert first == again
    assert len(TensorBatches(_dataset(), 4, shuffle=True)) == 6


def test_unshuffled_batches_are_views_in_order():
    data = _dataset()
    batches = list(TensorBatches(data, batch_size=10, shuffle=False))
    assert [yb.tolist() for _, yb in batches] == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    assert batches[0][0].data_ptr() == data.X.data_ptr()


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        TensorDataset(torch.zeros(3, 1), torch.zeros(2))


class _SamePermutation(Sampler):
    """Draws each epoch's order exactly as TensorBatches does."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(torch.randperm(self.n).tolist())

    def __len__(self):
        return self.n


def _module():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def test_fast_path_trains_to_the_same_weights_as_the_general_path(iris):
    X, y = iris
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    common = dict(criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=0.01, max_epochs=3,
                  batch_size=16, train_split=None, verbose=0, device="cpu")

    torch.manual_seed(0)
    fast = SktorchNet(module=_module(), dataset=TensorDataset, **common).fit(X_t, y_t)

    torch.manual_seed(0)
    general = NeuralNet(module=_module(), iterator_train__sampler=_SamePermutation(len(X)),
                        # the DataLoader's own seed draw must not consume the global stream
                        iterator_train__generator=torch.Generator(), **common)
    general.initialize()
    assert isinstance(general.get_iterator(general.get_dataset(X_t, y_t), training=True), DataLoader)
    general.partial_fit(X_t, y_t)

    for (name, a), (_, b) in zip(fast.module_.named_parameters(), general.module_.named_parameters()):
        assert torch.equal(a, b), name
    assert fast.history[:, "train_loss"] == general.history[:, "train_loss"]


def test_estimator_uses_the_fast_path(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, validation_fraction=0.2, random_state=0).fit(X, y)
    assert isinstance(clf.net_.get_iterator(TensorDataset(torch.zeros(3, 4), torch.zeros(3)), True),
                      TensorBatches)


def test_modules_are_not_walked_when_the_mode_is_unchanged(iris):
    X, y = iris
    calls = []

    class Counting(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.linear = nn.Linear(in_features, out_features)

        def train(self, mode=True):
            calls.append(mode)
            return super().train(mode)

        def forward(self, x):
            return self.linear(x)

    TorchClassifier(module=Counting, max_epochs=3, batch_size=10, random_state=0).fit(X, y)
    # 45 training batches, but the mode changes only a handful of times.
    assert 0 < len(calls) < 10
