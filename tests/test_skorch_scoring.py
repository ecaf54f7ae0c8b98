"""skorch's scoring callbacks on sktorch estimators, ``net_.predict`` and
``predict_log_proba``.

Every recorded score is checked against the scikit-learn metric of the
estimator's own predictions on the same validation rows, found in X by the
values of the inputs the net validated on (not through sktorch's decoding).
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import is_classifier, is_regressor
from sklearn.datasets import load_diabetes, load_digits
from sklearn.ensemble import BaggingClassifier
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import BatchScoring, Callback, EpochScoring
from skorch.utils import to_numpy
from torch import nn
from torch.utils.data import Dataset

from sktorch import ImageClassifier, ImageSegmenter, TorchClassifier, TorchRegressor
from sktorch._engine._net import SktorchNet

IRIS_NAMES = np.array(["setosa", "versicolor", "virginica"])


class ValidRows(Callback):
    """Records, at each epoch's end, the validation inputs as the net holds
    them (or the Dataset's item indices), and what ``net.predict`` and
    ``net.predict_proba`` give for that validation dataset."""

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.inputs_ = getattr(dataset_valid, "indices", None)
        if self.inputs_ is None:
            self.inputs_ = dataset_valid.X.detach().cpu().numpy()
        self.predict_ = net.predict(dataset_valid)
        self.proba_ = net.predict_proba(dataset_valid) if hasattr(net, "predict_proba") else None


def nearest_rows(X, inputs):
    """The indices of the rows of X that the module inputs are."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    inputs = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
    distances = ((inputs[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    rows = distances.argmin(axis=1)
    assert np.allclose(distances[np.arange(len(rows)), rows], 0, atol=1e-8)
    return rows


def valid_rows(estimator, X):
    rows = dict(estimator.net_.callbacks_)["rows"]
    if rows.inputs_.ndim == 1:  # Dataset indices
        return rows.inputs_
    return nearest_rows(X, rows.inputs_)


def classifier(callbacks, **params):
    params = {"module__hidden_sizes": (16,), "lr": 0.01, "max_epochs": 2, "random_state": 0,
              "validation_fraction": 0.3, **params}
    return TorchClassifier(callbacks=[*callbacks, ("rows", ValidRows())], **params)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X[:200]).astype(np.float32), y[:200]


# ------------------------------------------------------------------ net_.predict
def test_net_predicts_as_the_estimator(iris):
    X, y = iris
    labels = IRIS_NAMES[y]
    clf = TorchClassifier(module__hidden_sizes=(8,), max_epochs=2, random_state=0).fit(X, labels)
    net = clf.net_
    np.testing.assert_array_equal(net.predict(X), clf.predict(X))
    assert net.predict(X).dtype == labels.dtype
    np.testing.assert_array_equal(net.predict_proba(X), clf.predict_proba(X))
    # A classifier to scikit-learn's scorers, with the estimator's classes.
    assert is_classifier(net) and net.classes_ is clf.classes_
    # Pickles and copies keep the link to their estimator.
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.net_.predict(X), clf.predict(X))


def test_a_regressors_net_predicts_as_it_and_has_no_probabilities(diabetes):
    X, y = diabetes
    reg = TorchRegressor(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(reg.net_.predict(X), reg.predict(X))
    assert reg.net_.predict(X).shape == (len(X),)
    assert is_regressor(reg.net_) and not is_classifier(reg.net_)
    assert not hasattr(reg.net_, "predict_proba")
    assert not hasattr(reg.net_, "classes_")


def test_a_net_without_estimator_is_skorchs(iris):
    X, y = iris
    net = SktorchNet(nn.Linear(4, 3), criterion=nn.CrossEntropyLoss, max_epochs=1, lr=0.1,
                     train_split=None).fit(X, y.astype(np.int64))
    assert net.estimator is None
    with torch.no_grad():
        outputs = torch.softmax(net.module_(torch.from_numpy(X)), dim=1).numpy()
    # skorch's predict_proba: the module's outputs through its softmax.
    np.testing.assert_allclose(net.predict_proba(X), outputs, rtol=1e-6)
    np.testing.assert_allclose(net.predict(X), outputs, rtol=1e-6)
    assert not is_classifier(net) and not hasattr(net, "classes_")


# ------------------------------------------------------------------ EpochScoring
@pytest.mark.parametrize("use_caching", [True, False])
def test_epoch_accuracy_scores_the_users_labels(iris, use_caching):
    X, y = iris
    labels = IRIS_NAMES[y]
    scoring = EpochScoring("accuracy", lower_is_better=False, use_caching=use_caching)
    clf = classifier([("acc", scoring)], metrics=("accuracy",)).fit(X, labels)
    rows = valid_rows(clf, X)
    assert len(rows) == 45
    expected = accuracy_score(labels[rows], clf.predict(X[rows]))
    assert 0 < expected
    assert clf.history_[-1, "accuracy"] == pytest.approx(expected, abs=1e-12)
    # The same as sktorch's own validation metric, every epoch.
    assert clf.history_[:, "accuracy"] == pytest.approx(clf.history_[:, "valid_accuracy"])
    assert clf.history_[-1, "accuracy_best"] in (True, False)
    # net.predict of the validation dataset skorch hands the callbacks.
    recorded = dict(clf.net_.callbacks_)["rows"]
    np.testing.assert_array_equal(recorded.predict_, clf.predict(X[rows]))
    np.testing.assert_allclose(recorded.proba_, clf.predict_proba(X[rows]), rtol=1e-6)
    # The fit gave the callback back skorch's target extractor.
    assert dict(clf.net_.callbacks_)["acc"].target_extractor is to_numpy
    assert scoring.target_extractor is to_numpy


@pytest.mark.parametrize("use_caching", [True, False])
def test_epoch_neg_log_loss(iris, use_caching):
    X, y = iris
    labels = IRIS_NAMES[y]
    clf = classifier([EpochScoring("neg_log_loss", use_caching=use_caching)]).fit(X, labels)
    rows = valid_rows(clf, X)
    expected = -log_loss(labels[rows], clf.predict_proba(X[rows]), labels=clf.classes_)
    assert clf.history_[-1, "neg_log_loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("use_caching", [True, False])
@pytest.mark.parametrize("criterion", ["bce", "cross_entropy"])
def test_epoch_roc_auc_on_a_binary_problem(cancer, criterion, use_caching):
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    clf = classifier([EpochScoring("roc_auc", lower_is_better=False, use_caching=use_caching)],
                     criterion=criterion).fit(X, labels)
    assert clf.n_outputs_ == (1 if criterion == "bce" else 2)
    rows = valid_rows(clf, X)
    # scikit-learn's scorer takes the last class, 'malignant', as positive.
    expected = roc_auc_score(labels[rows] == "malignant", clf.predict_proba(X[rows])[:, 1])
    assert 0.5 < expected
    assert clf.history_[-1, "roc_auc"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("use_caching", [True, False])
def test_epoch_r2_on_a_regressor(diabetes, use_caching):
    X, y = diabetes
    reg = TorchRegressor(max_epochs=2, random_state=0, validation_fraction=0.3, callbacks=[
        EpochScoring("r2", lower_is_better=False, use_caching=use_caching),
        ("rows", ValidRows())]).fit(X, y)
    rows = valid_rows(reg, X)
    expected = r2_score(y[rows], reg.predict(X[rows]))
    assert reg.history_[-1, "r2"] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(dict(reg.net_.callbacks_)["rows"].predict_, reg.predict(X[rows]),
                               rtol=1e-6)


class Pairs(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


@pytest.mark.parametrize("use_caching", [True, False])
def test_epoch_scoring_on_a_dataset_X(iris, use_caching):
    X, y = iris
    labels = IRIS_NAMES[y]
    clf = classifier([EpochScoring("accuracy", lower_is_better=False, use_caching=use_caching),
                      EpochScoring("neg_log_loss", use_caching=use_caching)]).fit(Pairs(X, labels))
    rows = valid_rows(clf, X)
    assert len(rows) == 45
    assert clf.history_[-1, "accuracy"] == pytest.approx(
        accuracy_score(labels[rows], clf.predict(X[rows])), abs=1e-12)
    assert clf.history_[-1, "neg_log_loss"] == pytest.approx(
        -log_loss(labels[rows], clf.predict_proba(X[rows])), rel=1e-6)
    np.testing.assert_array_equal(dict(clf.net_.callbacks_)["rows"].predict_,
                                  clf.predict(X[rows]))


@pytest.mark.parametrize("use_caching", [True, False])
def test_epoch_scoring_of_images_laid_out_channels_last(use_caching):
    digits = load_digits()
    gray = (digits.images[:160] / 16).astype(np.float32)
    X = np.stack([gray, 1 - gray, gray / 2], axis=-1)  # (n, 8, 8, 3)
    labels = np.array([f"digit {k}" for k in digits.target[:160]])
    clf = ImageClassifier("cnn", module__width=4, channels="last", max_epochs=2, lr=0.01,
                          random_state=0, validation_fraction=0.25, callbacks=[
                              EpochScoring("accuracy", lower_is_better=False,
                                           use_caching=use_caching),
                              ("rows", ValidRows())]).fit(X, labels)
    rows = valid_rows(clf, X.transpose(0, 3, 1, 2))
    assert clf.history_[-1, "accuracy"] == pytest.approx(
        accuracy_score(labels[rows], clf.predict(X[rows])), abs=1e-12)
    np.testing.assert_array_equal(dict(clf.net_.callbacks_)["rows"].predict_,
                                  clf.predict(X[rows]))
    np.testing.assert_allclose(clf.predict_log_proba(X[:5]), np.log(clf.predict_proba(X[:5])))


class Count(nn.Module):
    """A linear layer counting the rows it is run on."""

    rows = 0

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        type(self).rows += len(x)
        return self.linear(x)


def test_caching_scores_without_another_forward_pass(iris):
    X, y = iris

    def rows_run(callbacks):
        Count.rows = 0
        TorchClassifier(Count, max_epochs=2, validation_fraction=0.3, random_state=0,
                        callbacks=callbacks).fit(X, y)
        return Count.rows

    plain = rows_run([])
    assert rows_run([EpochScoring("accuracy", lower_is_better=False)]) == plain
    # Without caching, each epoch predicts its 45 validation rows again.
    assert rows_run([EpochScoring("accuracy", use_caching=False)]) == plain + 2 * 45


def test_a_cached_scorer_reads_the_predictions_once(iris):
    X, y = iris

    def twice(net, X, y):
        return accuracy_score(y, net.predict(X)) + accuracy_score(y, net.predict(X))

    clf = classifier([("twice", EpochScoring(twice))])
    with pytest.raises(ValueError, match="use_caching=False"):
        clf.fit(X, y)
    # A failed fit also gives skorch's target extractor back.
    assert dict(clf.net_.callbacks_)["twice"].target_extractor is to_numpy
    clf = classifier([("twice", EpochScoring(twice, use_caching=False))]).fit(X, IRIS_NAMES[y])
    rows = valid_rows(clf, X)
    assert clf.history_[-1, "twice"] == pytest.approx(
        2 * accuracy_score(IRIS_NAMES[y][rows], clf.predict(X[rows])))


# ------------------------------------------------------------------ BatchScoring
class BatchReference(Callback):
    """The accuracy of the estimator's predictions on each training batch's
    rows (found in X), before and after the batch's step."""

    def __init__(self, X, labels):
        self.X, self.labels = X, labels

    def _accuracy(self, net, batch):
        rows = nearest_rows(self.X, batch[0].detach().cpu().numpy())
        return accuracy_score(self.labels[rows], net.estimator.predict(self.X[rows]))

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            net.history.record_batch("before_step", self._accuracy(net, batch))

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            net.history.record_batch("after_step", self._accuracy(net, batch))


@pytest.mark.parametrize("use_caching", [True, False])
def test_batch_scoring_on_training_batches(iris, use_caching):
    X, y = iris
    labels = IRIS_NAMES[y]
    clf = TorchClassifier(module__hidden_sizes=(16,), lr=0.05, max_epochs=2, batch_size=32,
                          random_state=0, callbacks=[
                              ("train_acc", BatchScoring(
                                  "accuracy", name="train_acc", on_train=True,
                                  lower_is_better=False, use_caching=use_caching)),
                              ("reference", BatchReference(X, labels))]).fit(X, labels)
    batches = clf.history_[-1, "batches"]
    scores = [batch["train_acc"] for batch in batches]
    # Cached: the predictions of the training step, made before it; else the
    # estimator's predict after it.
    expected = [batch["before_step" if use_caching else "after_step"] for batch in batches]
    assert scores == pytest.approx(expected, abs=1e-12)
    assert len(set(scores)) > 1
    sizes = [batch["train_batch_size"] for batch in batches]
    assert clf.history_[-1, "train_acc"] == pytest.approx(np.average(scores, weights=sizes))


# ------------------------------------------------------------- predict_log_proba
@pytest.mark.parametrize("criterion", ["cross_entropy", "bce"])
def test_predict_log_proba_is_the_log_of_predict_proba(cancer, criterion):
    X, y = cancer
    clf = TorchClassifier(criterion=criterion, max_epochs=1, random_state=0).fit(X, y)
    log_proba = clf.predict_log_proba(X)
    assert log_proba.shape == (len(X), 2) and log_proba.dtype == np.float64
    np.testing.assert_array_equal(log_proba, np.log(clf.predict_proba(X)))


def test_predict_log_proba_in_meta_estimators(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), TorchClassifier(max_epochs=1, random_state=0))
    pipe.fit(X, y)
    np.testing.assert_array_equal(pipe.predict_log_proba(X), np.log(pipe.predict_proba(X)))
    bag = BaggingClassifier(TorchClassifier(max_epochs=1, random_state=0), n_estimators=2,
                            random_state=0).fit(X, y)
    # Bagging averages its members' log probabilities through logaddexp.
    np.testing.assert_allclose(bag.predict_log_proba(X), np.log(bag.predict_proba(X)),
                               rtol=1e-6)


def test_a_segmenter_has_log_probabilities_per_pixel():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (6, 8, 8)).astype(np.float32)
    y = (X > 0.5).astype(np.int64) + (X > 0.8)
    seg = ImageSegmenter(module__depth=1, module__width=4, max_epochs=1, random_state=0).fit(X, y)
    proba = seg.predict_proba(X)
    log_proba = seg.predict_log_proba(X)
    assert log_proba.shape == (6, 3, 8, 8) and log_proba.dtype == proba.dtype
    np.testing.assert_array_equal(log_proba, np.log(proba))


def test_uncached_scoring_of_a_dataframe_keeps_its_column_names(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    scoring = EpochScoring("accuracy", lower_is_better=False, use_caching=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = classifier([scoring]).fit(frame, y)
    assert not [w for w in caught if "feature names" in str(w.message)]
    rows = valid_rows(clf, X)
    assert clf.history_[-1, "accuracy"] == pytest.approx(
        accuracy_score(y[rows], clf.predict(frame.iloc[rows])), abs=1e-12)
