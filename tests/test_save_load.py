"""sktorch.save / sktorch.load: one file, JSON and safetensors, never unpickled."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from helpers import SoftmaxNet, TwoLayerNet, read_document, rewrite, run_python
from sklearn.linear_model import LogisticRegression
from skorch.callbacks import GradientNormClipping
from torch import nn

import sktorch
from sktorch import TorchClassifier, TorchRegressor
from sktorch._io import FORMAT_VERSION
from sktorch.exceptions import (
    InvalidFileError,
    PersistenceError,
    UnsavableValueError,
    UnsupportedFormatError,
    UntrustedObjectError,
    WeightsMismatchError,
)
from sktorch.exceptions import DeviceError, DeviceWarning, SktorchError
from sktorch.transforms import SaltAndPepperNoise


class Boom:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def fit_iris(iris, **params):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    params = {"max_epochs": 2, "random_state": 0, "device": "cpu", **params}
    return TorchClassifier(**params).fit(X, labels), X, labels


def assert_same_params(loaded, original):
    a, b = loaded.get_params(deep=False), original.get_params(deep=False)
    assert a.keys() == b.keys()
    for key in a:
        assert type(a[key]) is type(b[key]), key  # tuples stay tuples, classes stay classes
        if isinstance(b[key], np.random.RandomState):
            np.testing.assert_array_equal(a[key].get_state()[1], b[key].get_state()[1])
        elif isinstance(b[key], torch.Tensor):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
        elif isinstance(b[key], nn.Module):
            assert repr(a[key]) == repr(b[key])
        elif key == "augment" and b[key]:
            assert repr(a[key]) == repr(b[key])
        elif key == "callbacks" and b[key]:
            assert [(n, type(c), c.get_params(deep=False)) for n, c in a[key]] == [
                (n, type(c), c.get_params(deep=False)) for n, c in b[key]
            ]
        else:
            assert a[key] == b[key], key


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize(
    "params",
    [
        dict(module__hidden_sizes=(16, 8), module__dropout=0.1, validation_fraction=0.2),
        dict(module__batch_norm=True, lr_scheduler="step", optimizer="sgd",
             optimizer__momentum=0.9),
        dict(tta="hflip", init="xavier_uniform", freeze=("layers.0.*",)),
    ],
    ids=["mlp-dropout", "batchnorm-sgd-step", "tta-init-freeze"],
)
def test_classifier_round_trip_predicts_identically(tmp_path, iris, params):
    est, X, labels = fit_iris(iris, **params)
    path = tmp_path / "clf.sktorch"
    sktorch.save(est, path)
    loaded = sktorch.load(path)
    assert type(loaded) is TorchClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.classes_.dtype == est.classes_.dtype
    assert loaded.n_features_in_ == 4 and loaded.n_outputs_ == 3
    assert loaded._input_shape == (4,)
    assert_same_params(loaded, est)
    assert not loaded.module_.training
    assert loaded.net_.estimator is loaded
    assert loaded.net_.device == "cpu"
    assert [row["epoch"] for row in loaded.history_] == [1, 2]
    assert "batches" not in loaded.history_[-1]  # per-epoch history without include_optimizer
    assert loaded.history_[-1]["train_loss"] == est.history_[-1]["train_loss"]


def test_binary_classifier_and_dataframe_round_trip(tmp_path, cancer):
    X, y = cancer
    frame = pd.DataFrame(X[:, :6], columns=[f"f{i}" for i in range(6)])
    labels = np.where(y == 1, "benign", "malignant")
    est = TorchClassifier(criterion="bce", max_epochs=2, random_state=0, device="cpu")
    est.fit(frame, labels)
    sktorch.save(est, tmp_path / "bin.sktorch")
    loaded = sktorch.load(tmp_path / "bin.sktorch")
    assert loaded._loss_plan.sigmoid and loaded.n_outputs_ == 1
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.predict_proba(frame), est.predict_proba(frame))
    with pytest.warns(UserWarning, match="feature names"):
        loaded.predict(X[:, :6])  # the names are checked as on the original


LOSS_PLANS = {
    # name: (estimator, labels, link, log_output, legacy flags (sigmoid, probabilities))
    "softmax": (dict(), lambda y: y, "softmax", False, (False, False)),
    "sigmoid": (dict(criterion="bce"), lambda y: y == 0, "sigmoid", False, (True, False)),
    "probabilities": (dict(module=SoftmaxNet, criterion="nll"), lambda y: y, "identity", True,
                      (False, True)),
}


@pytest.mark.parametrize("legacy", [False, True], ids=["format-3", "format-2-flags"])
@pytest.mark.parametrize("kind", list(LOSS_PLANS))
def test_the_loss_plan_round_trips(tmp_path, iris, kind, legacy):
    """The file keeps the output function; load makes the rest of the plan
    anew from the hyperparameters. A format-2 file (two flags) still loads."""
    X, y = iris
    options, labels, link, log_output, (sigmoid, probabilities) = LOSS_PLANS[kind]
    est = TorchClassifier(max_epochs=2, lr=0.05, random_state=0, device="cpu", **options)
    est.fit(X, labels(y))
    assert (est._loss_plan.link, est._loss_plan.log_output) == (link, log_output)
    assert est.net_.log_output is log_output
    path = tmp_path / "plan.sktorch"
    sktorch.save(est, path, include_optimizer=True)
    document = read_document(path)
    assert document["fitted"]["_loss_plan"] == {"link": link}
    if legacy:
        document["format_version"] = 2
        del document["fitted"]["_loss_plan"]
        document["fitted"].update(_sigmoid_output=sigmoid, _probability_output=probabilities)
        rewrite(path, document)
    loaded = sktorch.load(path, trusted=[SoftmaxNet])
    assert loaded._loss_plan.link == link and loaded._loss_plan.log_output is log_output
    assert loaded._loss_plan.criterion is est._loss_plan.criterion  # the class, resolved anew
    assert loaded.net_.log_output is log_output
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    loaded.partial_fit(X, labels(y))
    est.partial_fit(X, labels(y))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("multi_output", [False, True], ids=["1d", "2d"])
def test_regressor_round_trip(tmp_path, regression_data, multi_output):
    X, Y = regression_data
    y = Y if multi_output else Y[:, 0]
    est = TorchRegressor(module__hidden_sizes=(8,), max_epochs=2, random_state=0, device="cpu")
    est.fit(X, y)
    sktorch.save(est, tmp_path / "reg.sktorch")
    loaded = sktorch.load(tmp_path / "reg.sktorch")
    assert loaded._y_was_1d is (not multi_output)
    assert loaded.predict(X).shape == y.shape
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_hyperparameters_of_every_kind_round_trip(tmp_path, iris):
    weight = torch.tensor([1.0, 2.0, 0.5])
    est, X, _ = fit_iris(
        iris,
        module__activation=nn.Tanh,  # a torch class
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        criterion=nn.CrossEntropyLoss,
        criterion__weight=weight,  # a tensor, stored as safetensors
        init=torch.nn.init.xavier_uniform_,  # a torch function
        lr_scheduler=torch.optim.lr_scheduler.StepLR,
        lr_scheduler__step_size=1,
        random_state=np.random.RandomState(0),
        device=torch.device("cpu"),
        module__hidden_sizes=[5, 4],  # a list stays a list
        # skorch's (an EpochScoring of the validation data would be an error
        # at fit: this fit holds out none).
        callbacks=[("clip", GradientNormClipping(gradient_clip_value=10.0))],
    )
    sktorch.save(est, tmp_path / "kinds.sktorch")
    document = read_document(tmp_path / "kinds.sktorch")
    assert document["params"]["optimizer"] == {"__class__": "torch.optim.sgd.SGD"}
    assert document["params"]["module__hidden_sizes"] == [5, 4]
    loaded = sktorch.load(tmp_path / "kinds.sktorch")
    assert_same_params(loaded, est)
    assert loaded.optimizer is torch.optim.SGD and loaded.init is torch.nn.init.xavier_uniform_
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_transform_objects_and_odd_dicts_round_trip(tmp_path):
    # Objects are stored by their constructor arguments; dicts with non-string
    # keys or keys that look like the file's own tags are escaped.
    est = TorchClassifier(
        augment=[SaltAndPepperNoise(amount=0.1, p=0.5)],
        module__extra={1: "a", "__tuple__": (1, 2)},
        module__names=np.array(["x", "y"], dtype=object),
    )
    sktorch.save(est, tmp_path / "unfitted.sktorch")
    loaded = sktorch.load(tmp_path / "unfitted.sktorch")
    assert not hasattr(loaded, "net_")
    assert repr(loaded.augment) == repr(est.augment)
    assert loaded.module__extra == {1: "a", "__tuple__": (1, 2)}
    np.testing.assert_array_equal(loaded.module__names, est.module__names)


def test_weights_member_is_the_plain_state_dict(tmp_path, iris):
    est, _, _ = fit_iris(iris)
    sktorch.save(est, tmp_path / "m.sktorch")
    with zipfile.ZipFile(tmp_path / "m.sktorch") as archive:
        assert archive.namelist() == ["sktorch.json", "model.safetensors", "state.safetensors"]
        weights = safetensors.torch.load(archive.read("model.safetensors"))
        document = json.loads(archive.read("sktorch.json"))
    assert weights.keys() == est.module_.state_dict().keys()
    for key, value in est.module_.state_dict().items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0)
    assert document["format_version"] == FORMAT_VERSION
    assert document["versions"]["torch"] == torch.__version__
    assert document["versions"]["sktorch"] == sktorch.__version__
    assert document["estimator"]["name"] == "TorchClassifier"
    classes = document["fitted"]["classes_"]["__ndarray__"]
    assert classes["data"] == ["setosa", "versicolor", "virginica"]


def test_load_leaves_the_global_random_state_alone(tmp_path, iris):
    est, _, _ = fit_iris(iris)
    sktorch.save(est, tmp_path / "m.sktorch")
    before = torch.get_rng_state()
    sktorch.load(tmp_path / "m.sktorch")
    assert torch.equal(torch.get_rng_state(), before)


# ------------------------------------------------------------------ trust
def test_user_module_is_refused_unless_trusted(tmp_path, iris):
    est, X, _ = fit_iris(iris, module=TwoLayerNet, module__width=5)
    sktorch.save(est, tmp_path / "user.sktorch")
    with pytest.raises(UntrustedObjectError, match=r"refuses to build 'helpers\.TwoLayerNet'.*"
                                                   r"trusted=\[TwoLayerNet\]"):
        sktorch.load(tmp_path / "user.sktorch")
    loaded = sktorch.load(tmp_path / "user.sktorch", trusted=[TwoLayerNet])
    assert loaded.module is TwoLayerNet
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    with pytest.raises(TypeError, match="not import paths"):
        sktorch.load(tmp_path / "user.sktorch", trusted=["helpers.TwoLayerNet"])


def test_user_module_loads_in_a_fresh_process(tmp_path, iris):
    est, X, _ = fit_iris(iris, module=TwoLayerNet, module__width=5)
    sktorch.save(est, tmp_path / "user.sktorch")
    np.save(tmp_path / "X.npy", X)
    run_python(
        "import numpy as np, sktorch\n"
        "from helpers import TwoLayerNet\n"
        "est = sktorch.load('user.sktorch', trusted=[TwoLayerNet])\n"
        "np.save('proba.npy', est.predict_proba(np.load('X.npy')))\n",
        cwd=tmp_path,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), est.predict_proba(X))


@pytest.mark.parametrize(
    "where, value",
    [
        ("module", {"__class__": "os.system"}),
        ("callbacks", [{"__object__": "subprocess.Popen",
                        "params": {"args": ["touch", "MARKER"]}}]),
        ("init", {"__function__": "builtins.exec"}),
        ("module__x", {"__enum__": "signal.Signals", "name": "SIGKILL"}),
    ],
    ids=["class", "object", "function", "enum"],
)
def test_names_outside_the_allow_list_are_refused_never_imported(tmp_path, iris, where, value):
    est, _, _ = fit_iris(iris)
    path = tmp_path / "m.sktorch"
    sktorch.save(est, path)
    document = read_document(path)
    value = json.loads(json.dumps(value).replace("MARKER", str(tmp_path / "marker")))
    document["params"][where] = value
    rewrite(path, document)
    with pytest.raises(UntrustedObjectError, match="refuses to build"):
        sktorch.load(path)
    assert not (tmp_path / "marker").exists()


def test_estimator_class_must_be_sktorch_s(tmp_path, iris):
    est, _, _ = fit_iris(iris)
    path = tmp_path / "m.sktorch"
    sktorch.save(est, path)
    document = read_document(path)
    document["estimator"] = {"name": "Popen", "path": "subprocess.Popen"}
    rewrite(path, document)
    with pytest.raises(UntrustedObjectError, match="not one of sktorch's estimators"):
        sktorch.load(path)


# ------------------------------------------------------------------ never unpickled
def test_crafted_files_are_refused_without_running_them(tmp_path, iris):
    marker = tmp_path / "marker"
    payload = pickle.dumps(Boom(marker))
    pickle.loads(payload).close()  # the payload is live: unpickling it runs code
    assert marker.exists()
    marker.unlink()

    est, _, _ = fit_iris(iris)
    good = tmp_path / "good.sktorch"
    sktorch.save(est, good)

    plain_pickle = tmp_path / "plain.sktorch"
    plain_pickle.write_bytes(payload)
    torch_pickle = tmp_path / "torch.pt"
    torch.save({"weights": Boom(marker)}, torch_pickle)

    weights_as_pickle = tmp_path / "weights.sktorch"
    weights_as_pickle.write_bytes(good.read_bytes())
    rewrite(weights_as_pickle, members={"model.safetensors": torch_pickle.read_bytes()})
    extra_member = tmp_path / "extra.sktorch"
    extra_member.write_bytes(good.read_bytes())
    rewrite(extra_member, members={"data.pkl": payload})

    for path in (plain_pickle, torch_pickle, weights_as_pickle, extra_member):
        with pytest.raises(InvalidFileError):
            sktorch.load(path)
        assert not marker.exists(), path.name
    torch.load(torch_pickle, weights_only=False)["weights"].close()  # live, too
    assert marker.exists()


# ------------------------------------------------------------------ robustness
def test_missing_file_is_a_file_not_found_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "model.sktorch"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        sktorch.load(path)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "text"])
def test_truncated_or_corrupted_files_are_clear_errors(tmp_path, iris, damage):
    est, _, _ = fit_iris(iris)
    path = tmp_path / "m.sktorch"
    sktorch.save(est, path)
    data = path.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        start = data.index(b"model.safetensors") + 200  # inside the stored weights
        data = data[:start] + bytes(b ^ 0xFF for b in data[start:start + 64]) + data[start + 64:]
    elif damage == "empty":
        data = b""
    else:
        data = b"not a model at all\n"
    path.write_bytes(data)
    with pytest.raises(InvalidFileError, match="m.sktorch") as info:
        sktorch.load(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SktorchError)


def test_file_from_a_newer_format_is_refused(tmp_path, iris):
    est, _, _ = fit_iris(iris)
    path = tmp_path / "m.sktorch"
    sktorch.save(est, path)
    document = read_document(path)
    document["format_version"] = FORMAT_VERSION + 1
    document["versions"]["sktorch"] = "9.0"
    rewrite(path, document)
    with pytest.raises(UnsupportedFormatError, match=r"sktorch 9\.0 .* Upgrade sktorch"):
        sktorch.load(path)


def test_weights_that_do_not_fit_the_hyperparameters(tmp_path, iris):
    est, _, _ = fit_iris(iris, module__hidden_sizes=(16,))
    path = tmp_path / "m.sktorch"
    sktorch.save(est, path)
    document = read_document(path)
    document["params"]["module__hidden_sizes"] = {"__tuple__": [12]}
    rewrite(path, document)
    with pytest.raises(WeightsMismatchError,
                       match="(?s)do not fit the module.*size mismatch for layers.0.weight"):
        sktorch.load(path)


def test_interrupted_save_leaves_no_file(tmp_path, iris, monkeypatch):
    est, _, _ = fit_iris(iris)
    path = tmp_path / "m.sktorch"

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("interrupted while writing the weights")

    monkeypatch.setattr(safetensors.torch, "save", fail)
    with pytest.raises(KeyboardInterrupt):
        sktorch.save(est, path)
    assert list(tmp_path.iterdir()) == []

    path.write_bytes(b"previous version")
    with pytest.raises(KeyboardInterrupt):
        sktorch.save(est, path)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"previous version"  # the old file is kept whole


def test_save_errors(tmp_path, iris):
    with pytest.raises(TypeError, match="takes a sktorch estimator"):
        sktorch.save(LogisticRegression(), tmp_path / "m.sktorch")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sktorch.save(TorchClassifier(), tmp_path / "missing" / "m.sktorch")
    with pytest.raises(PersistenceError, match="not fitted"):
        sktorch.save(TorchClassifier(), tmp_path / "m.sktorch", include_optimizer=True)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(lr_scheduler="lambda", lr_scheduler__lr_lambda=lambda epoch: 0.9),
         r"'lr_scheduler__lr_lambda' parameter .* no import path"),
        (dict(module=TwoLayerNet(4, 3)),
         r"'module' parameter .* TwoLayerNet instance with weights .* module=TwoLayerNet"),
        (dict(callbacks=[io.StringIO()]), r"'callbacks' parameter .* cannot be read back"),
    ],
    ids=["lambda", "module-instance", "opaque-object"],
)
def test_values_that_need_pickle_are_refused_with_what_to_do(tmp_path, params, match):
    path = tmp_path / "m.sktorch"
    with pytest.raises(UnsavableValueError, match=match):
        sktorch.save(TorchClassifier(**params), path)
    assert not path.exists()


# ------------------------------------------------------------------ devices
def test_saved_cuda_device_falls_back_to_cpu_with_a_warning(tmp_path, iris, monkeypatch):
    est, X, _ = fit_iris(iris)
    est.set_params(device="cuda")  # as saved on a GPU machine
    path = tmp_path / "m.sktorch"
    sktorch.save(est, path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning, match="device='cuda'.*CPU"):
        loaded = sktorch.load(path)
    assert loaded.net_.device == "cpu" and loaded.device == "cuda"
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    with pytest.raises(DeviceError, match="CUDA is not available"):
        sktorch.load(path, device="cuda")
    assert sktorch.load(path, device="cpu").net_.device == "cpu"


# ------------------------------------------------------------------ continuing training
@pytest.mark.parametrize("how", ["partial_fit", "warm_fit"])
def test_include_optimizer_continues_training_exactly(tmp_path, iris, how):
    params = dict(module__dropout=0.2, lr=0.01, validation_fraction=0.2, warm_start=True)
    params.update(lr_scheduler="cyclic") if how == "partial_fit" else params.update(
        optimizer="sgd", optimizer__momentum=0.9, lr_scheduler="step", lr_scheduler__step_size=1)
    est, X, labels = fit_iris(iris, **params)
    sktorch.save(est, tmp_path / "full.sktorch", include_optimizer=True)
    sktorch.save(est, tmp_path / "weights.sktorch")
    full = sktorch.load(tmp_path / "full.sktorch")
    weights_only = sktorch.load(tmp_path / "weights.sktorch")
    assert full.history_[0]["batches"]  # the whole history came back

    for model in (est, full, weights_only):
        if how == "partial_fit":
            model.partial_fit(X, labels)
        else:
            model.set_params(max_epochs=1).fit(X, labels)
    for a, b in zip(est.module_.state_dict().values(), full.module_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert full.history_[-1]["valid_loss"] == est.history_[-1]["valid_loss"]
    assert full.history_[-1]["lr"] == est.history_[-1]["lr"]
    # Without the optimizer's state the continuation differs: the check above
    # is not vacuous.
    pairs = zip(est.module_.state_dict().values(), weights_only.module_.state_dict().values())
    assert not all(torch.equal(a, b) for a, b in pairs)


def test_paths_are_strings_or_path_likes(tmp_path, iris):
    est, X, _ = fit_iris(iris)
    sktorch.save(est, str(tmp_path / "m.sktorch"))
    loaded = sktorch.load(os.fspath(tmp_path / "m.sktorch"))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_image_classifier_loads_without_its_pretrained_weights(tmp_path, monkeypatch):
    # sktorch.load rebuilds the architecture and preprocessing only: neither
    # the hub cache nor the local weights file is read again.
    import torchvision
    from sklearn.datasets import load_digits

    from sktorch import ImageClassifier

    digits = load_digits()
    X, y = (digits.images[:40] / 16).astype(np.float32), digits.target[:40] % 3
    hub = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(hub))
    weights = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT
    checkpoint = hub / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    checkpoint.parent.mkdir(parents=True)
    torch.save(torchvision.models.get_model("mobilenet_v3_small").state_dict(), checkpoint)
    from_hub = ImageClassifier("mobilenet_v3_small", weights="DEFAULT", image_size=16,
                               max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    local = tmp_path / "finetuned.pt"
    torch.save(from_hub.module_.state_dict(), local)
    from_file = ImageClassifier("mobilenet_v3_small", weights=str(local), image_size=16,
                                max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    saved = {}
    for name, clf in (("hub", from_hub), ("file", from_file)):
        saved[name] = tmp_path / f"{name}.sktorch"
        sktorch.save(clf, saved[name])
    checkpoint.unlink()
    local.unlink()
    for name, clf in (("hub", from_hub), ("file", from_file)):
        loaded = sktorch.load(saved[name])
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        # The normalization of the weights came along, as buffers.
        torch.testing.assert_close(loaded.module_.mean, clf.module_.mean)
