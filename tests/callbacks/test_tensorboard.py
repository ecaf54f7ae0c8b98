"""The TensorBoard callback: event files read back and compared with the history."""

import copy
import io
import pickle
import re

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from torch import nn
from torchvision.utils import make_grid

from sktorch import TorchClassifier
from sktorch._engine._net import SktorchNet, TensorDataset
from sktorch.callbacks._metrics import ValidationMetrics
from sktorch.callbacks._tensorboard import TensorBoard, TensorBoardWarning, run_name
from sktorch.exceptions import InvalidParameterError


def read_run(run_dir):
    guidance = {kind: 0 for kind in (
        event_accumulator.SCALARS, event_accumulator.HISTOGRAMS, event_accumulator.IMAGES,
        event_accumulator.TENSORS, event_accumulator.GRAPH, event_accumulator.COMPRESSED_HISTOGRAMS,
        event_accumulator.AUDIO,
    )}
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance=guidance)
    return acc.Reload()


def scalars(acc, tag):
    return [(event.step, event.value) for event in acc.Scalars(tag)]


def tensorboard_of(estimator):
    return dict(estimator.net_.callbacks_)["tb"]


PARAMS = dict(module__hidden_sizes=(8,), lr=0.01, max_epochs=3, batch_size=32,
              validation_fraction=0.2, random_state=0,
              # Two parameter groups, so that lr_groups is recorded.
              optimizer__param_groups=[("layers.0.*", {"lr": 0.005})])


@pytest.fixture(scope="module")
def fitted(iris, tmp_path_factory):
    X, y = iris
    log_dir = tmp_path_factory.mktemp("runs")
    clf = TorchClassifier(
        **PARAMS,
        callbacks=[("metrics", ValidationMetrics(("accuracy", "neg_log_loss"))),
                   ("tb", TensorBoard(log_dir, histogram_every=2))],
    ).fit(X, y)
    run_dir = tensorboard_of(clf).run_dir_
    return clf, log_dir, run_dir, read_run(run_dir)


def test_one_run_directory_named_from_the_changed_hyperparameters(fitted):
    clf, log_dir, run_dir, _ = fitted
    assert [p for p in log_dir.iterdir()] == [run_dir]
    # Time, changed hyperparameters (sorted, sanitized, cut at 100 characters
    # with a hash of the whole), process id and a random suffix.
    match = re.fullmatch(r"(\d{8}-\d{6})_(.+)_(\d+)-([0-9a-f]{6})", run_dir.name)
    assert match, run_dir.name
    params = match[2]
    assert params.startswith("lr=0.01,max_epochs=3,module__hidden_sizes=8,"
                             "optimizer__param_groups=layers.0.-lr-0.005,rand")
    assert len(params) == 100 and re.fullmatch(r"[\w.,=+-]+~[0-9a-f]{8}", params)


def test_run_name_lists_the_hyperparameters_changed_from_the_defaults():
    # batch_size=32 is the default; verbose only says what to print.
    clf = TorchClassifier(lr=0.01, max_epochs=3, batch_size=32, verbose=1)
    assert re.fullmatch(r"\d{8}-\d{6}_lr=0\.01,max_epochs=3_\d+-[0-9a-f]{6}", run_name(clf))


def test_scalars_equal_the_history(fitted):
    clf, _, _, acc = fitted
    history = clf.history_
    epochs = [1, 2, 3]
    expected = {
        "loss/train": history[:, "train_loss"],
        "loss/valid": history[:, "valid_loss"],
        "metrics/valid_accuracy": history[:, "valid_accuracy"],
        "metrics/valid_neg_log_loss": history[:, "valid_neg_log_loss"],
        "lr/group_0": [rates[0] for rates in history[:, "lr_groups"]],
        "lr/group_1": [rates[1] for rates in history[:, "lr_groups"]],
        "time/epoch_seconds": history[:, "dur"],
    }
    assert history[:, "lr_groups"][0] == [0.005, 0.01]
    for tag, values in expected.items():
        logged = scalars(acc, tag)
        assert [step for step, _ in logged] == epochs, tag
        np.testing.assert_allclose([v for _, v in logged], values, rtol=1e-6, err_msg=tag)
    # Nothing else under metrics/: batch counts and *_best flags stay out.
    assert sorted(t for t in acc.Tags()["scalars"] if t.startswith("metrics/")) == [
        "metrics/valid_accuracy", "metrics/valid_neg_log_loss"]


def test_weight_and_gradient_histograms_every_histogram_every_epochs(fitted):
    clf, _, _, acc = fitted
    tags = set(acc.Tags()["histograms"])
    names = [name for name, _ in clf.module_.named_parameters()]
    assert tags == {f"{kind}/{name}" for kind in ("weights", "gradients") for name in names}
    for name, param in clf.module_.named_parameters():
        weights = acc.Histograms(f"weights/{name}")
        assert [event.step for event in weights] == [1, 3]  # histogram_every=2
        assert [event.step for event in acc.Histograms(f"gradients/{name}")] == [1, 3]
        last = weights[-1].histogram_value
        # The last histogram is of the final weights.
        assert last.num == param.numel()
        assert last.sum == pytest.approx(param.sum().item(), rel=1e-5, abs=1e-6)
        assert last.min == pytest.approx(param.min().item(), rel=1e-6)
        assert last.max == pytest.approx(param.max().item(), rel=1e-6)
        gradients = acc.Histograms(f"gradients/{name}")[-1].histogram_value
        assert gradients.num == param.numel() and gradients.sum_squares > 0


def test_graph_of_the_mlp(fitted):
    _, _, _, acc = fitted
    assert acc.Tags()["graph"]
    ops = " ".join(node.op for node in acc.Graph().node)
    assert "aten::linear" in ops


def test_hparams_session_holds_every_hyperparameter_and_the_final_metrics(fitted):
    clf, _, _, acc = fitted
    content = acc.PluginTagToContent("hparams")
    assert hparams_metadata.EXPERIMENT_TAG not in content
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG])
    hparams = start.hparams
    assert set(hparams) == set(clf.get_params(deep=False))
    assert hparams["lr"].number_value == 0.01
    assert hparams["max_epochs"].number_value == 3
    assert hparams["validation_fraction"].number_value == 0.2
    assert hparams["module"].string_value == "mlp"
    assert hparams["lr_scheduler"].string_value == "None"
    assert hparams["warm_start"].WhichOneof("kind") == "bool_value"
    assert hparams["warm_start"].bool_value is False
    assert hparams["module__hidden_sizes"].string_value == "(8,)"
    assert hparams["optimizer__param_groups"].string_value == "[('layers.0.*', {'lr': 0.005})]"
    assert hparams["callbacks"].string_value == (
        "[('metrics', ValidationMetrics), ('tb', TensorBoard)]")
    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG])
    assert end.status == 1  # STATUS_SUCCESS

    history = clf.history_
    expected = {
        "hparams/train_loss": history[-1, "train_loss"],
        "hparams/valid_loss": history[-1, "valid_loss"],
        "hparams/valid_accuracy": history[-1, "valid_accuracy"],
        "hparams/valid_neg_log_loss": history[-1, "valid_neg_log_loss"],
        "hparams/best_valid_loss": min(history[:, "valid_loss"]),
    }
    assert sorted(t for t in acc.Tags()["scalars"] if t.startswith("hparams/")) == sorted(expected)
    for tag, value in expected.items():
        assert scalars(acc, tag) == [(3, pytest.approx(value, rel=1e-6))], tag


def test_no_images_for_tabular_inputs(fitted):
    _, _, _, acc = fitted
    assert acc.Tags()["images"] == []


def test_training_is_the_same_with_or_without_the_callback(iris, fitted):
    clf, _, _, _ = fitted
    X, y = iris
    plain = TorchClassifier(**PARAMS, callbacks=[("metrics", ValidationMetrics(("accuracy",)))])
    plain.fit(X, y)
    assert plain.history_[:, "train_loss"] == clf.history_[:, "train_loss"]
    assert plain.history_[:, "valid_loss"] == clf.history_[:, "valid_loss"]
    np.testing.assert_array_equal(plain.predict_proba(X), clf.predict_proba(X))


# ------------------------------------------------------------------- images
class SmallConvNet(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x.float() * self.scale))
        return self.head(x.mean(dim=(2, 3)))


class FirstBatches(Callback):
    """Keep the first training batch of every epoch, as callbacks see it."""

    def initialize(self):
        self.batches_ = []
        self.seen_ = 0
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.seen_ = 0

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.seen_ += 1
            if self.seen_ == 1:
                self.batches_.append(batch[0].clone())


def image_net(X, y, tb, max_epochs=2):
    net = SktorchNet(
        module=SmallConvNet, module__scale=1 / 16 if X.dtype == torch.uint8 else 1.0,
        criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD, lr=0.05,
        max_epochs=max_epochs, batch_size=32, train_split=None, dataset=TensorDataset,
        callbacks=[("first", FirstBatches()), ("tb", tb)], device="cpu", verbose=0,
    )
    return net.fit(X, y)


def decoded(image_event):
    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)))


@pytest.fixture(scope="module")
def digits_images():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:96], dtype=torch.float32).reshape(-1, 1, 8, 8)
    return X, torch.tensor(y[:96])


@pytest.mark.parametrize("image_every, steps", [(None, [1]), (1, [1, 2])])
def test_image_grid_of_the_first_training_batch(digits_images, tmp_path, image_every, steps):
    X, y = digits_images
    X = (X - X.mean()) / X.std()  # floats are min-max scaled per image
    net = image_net(X, y, TensorBoard(tmp_path, image_every=image_every, max_images=12))
    acc = read_run(dict(net.callbacks_)["tb"].run_dir_)
    events = acc.Images("images/train_batch")
    assert [event.step for event in events] == steps
    first = dict(net.callbacks_)["first"].batches_
    for event in events:
        batch = first[event.step - 1][:12]
        grid = make_grid(batch, nrow=8, normalize=True, scale_each=True)
        expected = (grid.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
        assert (event.width, event.height) == (8 * 10 + 2, 2 * 10 + 2)
        np.testing.assert_array_equal(decoded(event), expected)


def test_uint8_images_are_divided_by_255(digits_images, tmp_path):
    X, y = digits_images
    X = X.to(torch.uint8)  # digits are 0..16
    net = image_net(X, y, TensorBoard(tmp_path, max_images=4), max_epochs=1)
    acc = read_run(dict(net.callbacks_)["tb"].run_dir_)
    (event,) = acc.Images("images/train_batch")
    batch = dict(net.callbacks_)["first"].batches_[0][:4]
    expected = make_grid(batch.float() / 255, nrow=8)
    expected = (expected.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(decoded(event), expected)
    assert decoded(event).max() <= 16  # not stretched to full range


def test_extra_images_hook_runs_at_image_epochs(digits_images, tmp_path):
    class WithMasks(TensorBoard):
        def add_extra_images(self, writer, net, epoch):
            writer.add_image("images/extra", self.image_batch_[0], global_step=epoch)

    X, y = digits_images
    net = image_net(X / 16, y, WithMasks(tmp_path, image_every=2, histograms=False),
                    max_epochs=3)
    acc = read_run(dict(net.callbacks_)["tb"].run_dir_)
    assert [e.step for e in acc.Images("images/extra")] == [1, 3]
    assert acc.Tags()["histograms"] == []
    assert dict(net.callbacks_)["tb"].image_batch_ is None  # dropped when training ends


# ---------------------------------------------------------- graph failures
class Untraceable(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("this module refuses to be traced")
        return self.linear(x)


def test_a_graph_that_cannot_be_traced_is_a_warning(iris, tmp_path):
    X, y = iris
    clf = TorchClassifier(Untraceable, max_epochs=2, random_state=0,
                          callbacks=[("tb", TensorBoard(tmp_path))])
    with pytest.warns(TensorBoardWarning, match="could not trace the graph of Untraceable"):
        clf.fit(X, y)
    acc = read_run(tensorboard_of(clf).run_dir_)
    assert not acc.Tags()["graph"]
    assert [step for step, _ in scalars(acc, "loss/train")] == [1, 2]


# ------------------------------------------------------ parallel, clone, pickle
def test_parallel_fits_write_distinct_run_directories(iris, tmp_path):
    X, y = iris
    # Threads: the fits share the process id and, most likely, the second of
    # their start, so only the random suffix keeps their directories apart
    # (and no worker processes need starting).
    with joblib.parallel_config(backend="threading"):
        search = GridSearchCV(
            TorchClassifier(max_epochs=1, random_state=0,
                            callbacks=[("tb", TensorBoard(tmp_path, graph=False))]),
            {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2, error_score="raise",
        ).fit(X, y)
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(runs) == 2 * 2 + 1  # every fold of every candidate, and the refit
    names = [run.name for run in runs]
    assert sum("_lr=0.01,max_epochs=1,random_state=0_" in n for n in names) == 2 + (
        search.best_params_["lr"] == 1e-2)
    for run in runs:
        assert len(scalars(read_run(run), "loss/train")) == 1


def test_run_names_are_unique_within_one_process():
    clf = TorchClassifier(lr=0.01)
    names = {run_name(clf) for _ in range(50)}
    assert len(names) == 50


def test_run_name_sanitizes_and_caps(tmp_path):
    long = {f"module__x{i}": "a/b c" for i in range(20)}
    clf = TorchClassifier(module__hidden_sizes=(32, 16), criterion=nn.CrossEntropyLoss,
                          checkpoint_dir=str(tmp_path), **long)
    name = run_name(clf)
    params = name.split("_", 1)[1].rsplit("_", 1)[0]
    assert params.startswith(
        "criterion=CrossEntropyLoss,module__hidden_sizes=32-16,module__x0=a-b-c")
    assert len(params) == 100 and re.fullmatch(r"[\w.=,+~-]+", params)
    assert "checkpoint_dir" not in name
    assert run_name(None).count("_") == 1


def test_given_run_name_gets_a_suffix_when_taken(iris, tmp_path):
    X, y = iris
    dirs = []
    for _ in range(2):
        clf = TorchClassifier(max_epochs=1, callbacks=[
            ("tb", TensorBoard(tmp_path, run_name="baseline", graph=False, histograms=False))])
        dirs.append(tensorboard_of(clf.fit(X, y)).run_dir_)
    assert dirs[0].name == "baseline"
    assert dirs[1].name.startswith("baseline_") and dirs[1] != dirs[0]


class PickleMidFit(Callback):
    """Pickle and deep-copy the estimator while the writer is open."""

    def on_epoch_end(self, net, **kwargs):
        self.size_ = len(pickle.dumps(net.estimator))
        copy.deepcopy(net.estimator)


def test_clone_and_pickle_before_during_and_after_fit(iris, tmp_path):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, random_state=0, callbacks=[
        ("tb", TensorBoard(tmp_path, histogram_every=3)), ("mid", PickleMidFit())])
    unfitted = clone(clf)
    assert unfitted.callbacks[0][1].get_params() == clf.callbacks[0][1].get_params()
    pickle.loads(pickle.dumps(clf))

    clf.fit(X, y)
    assert dict(clf.net_.callbacks_)["mid"].size_ > 0
    callback = tensorboard_of(clf)
    assert callback.writer_ is None
    assert clf.callbacks[0][1] is not callback  # the hyperparameter is not the fitted copy
    assert not hasattr(clf.callbacks[0][1], "run_dir_")

    again = clone(clf)
    assert again.callbacks[0][1].log_dir == tmp_path
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert tensorboard_of(restored).run_dir_ == callback.run_dir_

    again.fit(X, y)  # a fit of the clone writes a run of its own
    assert len(list(tmp_path.iterdir())) == 2


def test_warm_start_continues_the_same_run(iris, tmp_path):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, warm_start=True, random_state=0,
                          callbacks=[("tb", TensorBoard(tmp_path, graph=False))])
    clf.fit(X, y).fit(X, y)
    (run,) = tmp_path.iterdir()
    acc = read_run(run)
    assert [step for step, _ in scalars(acc, "loss/train")] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in scalars(acc, "loss/train")],
                               clf.history_[:, "train_loss"], rtol=1e-6)


def test_epoch_ended_by_an_earlier_callback_still_gets_its_scalars(iris, tmp_path):
    class StopAtTwo(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    X, y = iris
    clf = TorchClassifier(max_epochs=5, callbacks=[
        ("stop", StopAtTwo()), ("tb", TensorBoard(tmp_path, graph=False))]).fit(X, y)
    acc = read_run(tensorboard_of(clf).run_dir_)
    assert [step for step, _ in scalars(acc, "loss/train")] == [1, 2]
    assert scalars(acc, "hparams/best_train_loss")[0][1] == pytest.approx(
        min(clf.history_[:, "train_loss"]), rel=1e-6)


@pytest.mark.parametrize("param, value", [
    ("histogram_every", 0), ("image_every", 0), ("max_images", 1.5), ("graph", "yes"),
    ("run_name", "a/b"), ("log_dir", None),
])
def test_invalid_parameters(iris, tmp_path, param, value):
    X, y = iris
    options = {"log_dir": tmp_path, param: value}
    clf = TorchClassifier(max_epochs=1, callbacks=[("tb", TensorBoard(**options))])
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of TensorBoard"):
        clf.fit(X, y)
    assert list(tmp_path.iterdir()) == []  # refused before any run directory was made
