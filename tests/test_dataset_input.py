"""torch Datasets as X: the general (DataLoader) path of every estimator."""

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from sktorch import ImageClassifier, TorchClassifier, TorchRegressor
from sktorch._data._tensors import EncodedDataset, PermutationSampler
from sktorch._data._batches import TensorBatches


class Pairs(Dataset):
    """Items (x, y) from arrays, counting the items loaded."""

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.loads = 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.loads += 1
        return self.X[i], self.y[i]


class WithTargets(Pairs):
    """torchvision style: the labels are also in ``targets``."""

    @property
    def targets(self):
        return list(self.y)


def _weights(estimator):
    return [p.detach().clone() for p in estimator.module_.parameters()]


@pytest.mark.parametrize("options", [
    dict(batch_size=16, max_epochs=3),
    dict(batch_size=150, max_epochs=2),
    dict(batch_size=16, max_epochs=2, validation_fraction=0.2, accumulate_grad_batches=2),
])
def test_fast_and_general_paths_train_to_the_same_weights(iris, options):
    # Same seed, and (by construction: both draw torch.randperm from the same
    # seeded stream each epoch) the same batch order, dropout included.
    X, y = iris
    common = dict(module__hidden_sizes=(16,), module__dropout=0.2, lr=0.01, random_state=0,
                  device="cpu", **options)
    fast = TorchClassifier(**common).fit(X, y)
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    general = TorchClassifier(**common).fit(dataset)
    assert isinstance(general.net_.get_iterator(EncodedDataset(dataset, torch.from_numpy(y),
                                                               torch.as_tensor), True),
                      torch.utils.data.DataLoader)
    assert not isinstance(general.net_.get_iterator(dataset, True), TensorBatches)
    for a, b in zip(_weights(fast), _weights(general)):
        assert torch.equal(a, b)
    assert fast.history_[:, "train_loss"] == general.history_[:, "train_loss"]
    if "validation_fraction" in options:
        assert fast.history_[:, "valid_loss"] == general.history_[:, "valid_loss"]
    np.testing.assert_array_equal(general.classes_, fast.classes_)
    assert general.n_features_in_ == 4


def test_permutation_sampler_draws_as_the_fast_path():
    torch.manual_seed(5)
    order = list(PermutationSampler(7))
    torch.manual_seed(5)
    assert order == torch.randperm(7).tolist()


def test_string_labels_and_predict_on_a_dataset(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = TorchClassifier(max_epochs=3, random_state=0, device="cpu")
    clf.fit(Pairs(X, names))
    np.testing.assert_array_equal(clf.classes_, np.unique(names))
    # Items (x, y) or bare x: the same predictions as on the arrays.
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(Pairs(X, names)), proba, rtol=1e-5, atol=1e-6)
    bare = TensorDataset(torch.from_numpy(X))
    np.testing.assert_allclose(clf.predict_proba(bare), proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(Pairs(X, names)), clf.predict(X))
    assert clf.score(X, names) > 0.7


def test_targets_attribute_spares_loading_inputs(iris):
    X, y = iris
    data = WithTargets(X, y)
    clf = TorchClassifier(max_epochs=1, batch_size=50, random_state=0, device="cpu")
    clf.fit(data)
    plain = Pairs(X, y)
    TorchClassifier(max_epochs=1, batch_size=50, random_state=0, device="cpu").fit(plain)
    # Without `targets`, collecting them loads every item once more.
    assert plain.loads - data.loads == len(X)
    # With it: the first items (sample shape, module check) and one epoch.
    assert data.loads == 3 + len(X)


def test_regressor_on_a_dataset(regression_data):
    X, Y = regression_data
    fast = TorchRegressor(max_epochs=3, random_state=0, device="cpu").fit(X, Y)
    general = TorchRegressor(max_epochs=3, random_state=0, device="cpu").fit(Pairs(X, Y))
    assert general.n_outputs_ == 2
    np.testing.assert_allclose(general.predict(Pairs(X, Y)), fast.predict(X), rtol=1e-5,
                               atol=1e-6)
    single = TorchRegressor(max_epochs=1, random_state=0, device="cpu").fit(
        Pairs(X, [float(v) for v in Y[:, 0]]))
    assert single.predict(X).shape == (len(X),)


def test_validation_split_and_metrics_on_a_dataset(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, validation_fraction=0.2, metrics=("accuracy",),
                          random_state=0, device="cpu")
    clf.fit(Pairs(X, y))
    fast = TorchClassifier(max_epochs=2, validation_fraction=0.2, metrics=("accuracy",),
                           random_state=0, device="cpu").fit(X, y)
    assert len(clf.history_[:, "valid_loss"]) == 2
    # Same held-out rows, same weights: the same validation accuracy.
    assert clf.history_[:, "valid_accuracy"] == fast.history_[:, "valid_accuracy"]
    assert clf.net_.train_split is None  # the validation data does not live on


def test_early_stopping_and_warm_start_on_a_dataset(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=3, early_stopping=2, warm_start=True, random_state=0,
                          device="cpu")
    clf.fit(Pairs(X, y)).fit(Pairs(X, y))
    assert len(clf.history_) == 6


def test_augment_on_the_general_path(iris):
    X, y = iris
    calls = []

    def augment(batch):
        calls.append(tuple(batch.shape))
        return batch + 0.01

    clf = TorchClassifier(max_epochs=1, batch_size=50, augment=augment, random_state=0,
                          device="cpu").fit(Pairs(X, y))
    # A plain callable is applied sample by sample, to every training sample.
    assert calls == [(4,)] * len(X)
    clf.predict(Pairs(X, y))
    assert len(calls) == len(X)  # never at prediction


def test_image_dataset_of_uint8_chw_tensors():
    rng = np.random.RandomState(0)
    images = torch.from_numpy(rng.randint(0, 256, size=(40, 1, 8, 8)).astype(np.uint8))
    labels = np.arange(40) % 2
    data = WithTargets(images, labels)
    clf = ImageClassifier("cnn", module__width=4, max_epochs=1, batch_size=8,
                          validation_fraction=0.25, random_state=0, device="cpu").fit(data)
    assert clf.image_shape_ == (1, 8, 8)
    assert not hasattr(clf, "n_features_in_")
    np.testing.assert_allclose(clf.predict_proba(data), clf.predict_proba(images), rtol=1e-5,
                               atol=1e-6)


def test_image_dataset_checks_the_range():
    images = torch.full((4, 1, 8, 8), 2.0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ImageClassifier(max_epochs=1, device="cpu").fit(Pairs(images, [0, 1, 0, 1]))


def test_y_with_a_dataset_is_an_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match="Pass y=None"):
        TorchClassifier(max_epochs=1).fit(Pairs(X, y), y)


def test_items_must_be_pairs(iris):
    X, _ = iris
    with pytest.raises(ValueError, match=r"\(x, y\) pairs; item 0 of X is a tuple of length 1"):
        TorchClassifier(max_epochs=1).fit(TensorDataset(torch.from_numpy(X)))


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="Dataset X is empty"):
        TorchRegressor(max_epochs=1).fit(Pairs(np.zeros((0, 3)), np.zeros(0)))


def test_iterable_datasets_and_iterators_are_rejected(iris):
    X, y = iris

    class Stream(IterableDataset):
        def __iter__(self):
            return zip(X, y)

    for data in (Stream(), zip(X, y)):
        with pytest.raises(TypeError, match="map-style torch.utils.data.Dataset"):
            TorchClassifier(max_epochs=1).fit(data)


def test_predict_checks_the_sample_shape(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, random_state=0, device="cpu").fit(Pairs(X, y))
    with pytest.raises(ValueError, match=r"shape \(3,\).*samples of shape \(4,\)"):
        clf.predict(Pairs(X[:, :3], y))


def test_dataloader_options_and_pickling(iris):
    import pickle

    X, y = iris
    data = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    common = dict(max_epochs=1, validation_fraction=0.2, random_state=0, device="cpu")
    workers = TorchClassifier(iterator_train__num_workers=2, iterator_valid__num_workers=1,
                              **common).fit(data)
    alone = TorchClassifier(**common).fit(data)
    for a, b in zip(_weights(workers), _weights(alone)):
        assert torch.equal(a, b)
    loaded = pickle.loads(pickle.dumps(workers))
    np.testing.assert_array_equal(loaded.predict(X), workers.predict(data))
