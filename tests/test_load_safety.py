"""sktorch.load is a data-only operation: crafted files run nothing, write nothing,
and cannot make it allocate without bound.

Each crafted file below is a real saved file edited the way an attacker
would. Where a payload can run code, the test first shows that it is live
(it does run outside of sktorch.load), then that loading leaves no trace of it
(a marker file it would create does not exist).
"""

import json
import os
import textwrap
import warnings
import zipfile

import numpy as np
import pytest
import torch
from helpers import read_document, rewrite, run_python

import sktorch
from sktorch import TorchClassifier
from sktorch.exceptions import (
    InvalidFileError,
    ResetOnLoadWarning,
    UntrustedObjectError,
    WeightsMismatchError,
)


@pytest.fixture
def saved(tmp_path, iris):
    """A fitted classifier saved to a file, and the iris inputs."""
    X, y = iris
    clf = TorchClassifier(max_epochs=1, random_state=0, device="cpu").fit(X, y)
    path = tmp_path / "model.sktorch"
    sktorch.save(clf, path)
    return path, clf, X


def crafted(path, edit):
    """Apply ``edit`` to the file's document and write it back."""
    document = read_document(path)
    edit(document)
    rewrite(path, document)
    return path


def load_quietly(path, **kwargs):
    """Load, returning the estimator or the InvalidFileError, and the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = sktorch.load(path, **kwargs)
        except InvalidFileError as exc:
            result = exc
    return result, [w.category for w in caught]


def shell_marker_compiler(marker):
    """A C++ compiler command for torch inductor that first creates ``marker``."""
    return f"sh -c 'touch {marker}; exec g++ \"$@\"' sh"


# ------------------------------------------------------------------ no code runs
@pytest.mark.slow
def test_the_compiler_payload_is_live_outside_load(tmp_path):
    # Proof that the payload of the next test runs when torch compiles with
    # it (slow: a real inductor compile).
    marker = tmp_path / "compiled"
    module = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Tanh())
    compiled = torch.compile(module, options={"cpp.cxx": shell_marker_compiler(marker)})
    compiled(torch.zeros(2, 4))
    assert marker.exists()


def test_compile_and_its_options_are_reset_never_compiled(saved, tmp_path):
    path, clf, X = saved
    marker = tmp_path / "compiled"

    def edit(document):
        document["params"]["compile"] = True
        document["params"]["compile__options"] = {"cpp.cxx": shell_marker_compiler(marker)}
        document["params"]["compile__mode"] = "max-autotune"

    loaded, caught = load_quietly(crafted(path, edit))
    assert not marker.exists()
    assert ResetOnLoadWarning in caught
    assert loaded.compile is False
    assert "compile__options" not in loaded.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert not marker.exists()


@pytest.mark.parametrize("param, value", [
    ("checkpoint_dir", {"__path__": "CHECKPOINTS"}),
    ("tensorboard", "CHECKPOINTS"),
    ("resume_from", "CHECKPOINTS/last.pt"),
    ("strategy", "ddp"),
    ("devices", 2),
])
def test_paths_and_processes_are_reset(saved, tmp_path, param, value):
    path, clf, X = saved
    target = tmp_path / "CHECKPOINTS"
    value = json.loads(json.dumps(value).replace("CHECKPOINTS", str(target)))
    loaded, caught = load_quietly(crafted(path, lambda d: d["params"].update({param: value})))
    assert ResetOnLoadWarning in caught
    assert getattr(loaded, param) is None
    loaded.partial_fit(X[:10], clf.predict(X[:10]))  # trains, and writes nowhere
    assert not target.exists()


@pytest.mark.parametrize("key, value", [
    ("callbacks__print_log__sink", {"__function__": "torch.nn.init.zeros_"}),
    ("callbacks__checkpoint__f_params", "/tmp/overwritten.pt"),
    ("iterator_valid__num_workers", 2),
    ("iterator_valid__worker_init_fn", {"__function__": "torch.nn.init.zeros_"}),
    ("iterator_train__multiprocessing_context", "fork"),
])
def test_options_that_reach_callbacks_or_workers_are_reset(saved, key, value):
    path, clf, X = saved
    loaded, caught = load_quietly(crafted(path, lambda d: d["params"].update({key: value})))
    assert ResetOnLoadWarning in caught
    assert key not in loaded.get_params()


def test_plain_loader_options_are_kept_without_a_warning(tmp_path, iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, random_state=0, iterator_valid__batch_size=7,
                          iterator_train__drop_last=True).fit(X, y)
    sktorch.save(clf, tmp_path / "m.sktorch")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResetOnLoadWarning)
        loaded = sktorch.load(tmp_path / "m.sktorch")
    assert loaded.get_params()["iterator_valid__batch_size"] == 7
    assert loaded.get_params()["iterator_train__drop_last"] is True


def test_a_file_writing_callback_is_refused_and_creates_nothing(saved, tmp_path):
    path, _, _ = saved
    target = tmp_path / "planted"
    callback = {"__object__": "skorch.callbacks.training.Checkpoint",
                "params": {"dirname": str(target / "dir"),
                           "f_params": str(target / "overwritten.pt")}}
    loaded, _ = load_quietly(crafted(path, lambda d: d["params"].update(
        {"callbacks": [{"__tuple__": ["ckpt", callback]}]})))
    assert isinstance(loaded, UntrustedObjectError)
    assert "Checkpoint" in str(loaded)
    assert not target.exists()


@pytest.mark.parametrize("spec", [
    {"__class__": "skorch.callbacks.training.Checkpoint"},  # skorch builds classes itself
    {"__class__": "sktorch.callbacks._tensorboard.TensorBoard"},
    {"__object__": "skorch.callbacks.training.TrainEndCheckpoint", "params": {}},
    {"__object__": "skorch.callbacks.training.LoadInitState", "params": {}},
    {"__object__": "sktorch.callbacks._checkpoint.Checkpoint", "params": {"dirname": "x"}},
    {"__object__": "torchvision.transforms.v2._misc.Lambda",
     "params": {"lambd": {"__function__": "torch.nn.init.zeros_"}}},
])
def test_callbacks_and_transforms_with_side_effects_are_not_trusted(saved, spec):
    path, _, _ = saved
    loaded, _ = load_quietly(crafted(path, lambda d: d["params"].update(
        {"callbacks": [{"__tuple__": ["cb", spec]}]})))
    assert isinstance(loaded, UntrustedObjectError)


def test_trusted_callbacks_take_only_their_allow_listed_options(saved):
    path, _, _ = saved
    good = {"__object__": "skorch.callbacks.training.EarlyStopping",
            "params": {"patience": 3}}
    bad = {"__object__": "skorch.callbacks.training.EarlyStopping",
           "params": {"patience": 3, "sink": {"__function__": "torch.nn.init.zeros_"}}}
    document = read_document(path)
    document["params"]["callbacks"] = [{"__tuple__": ["stop", good]}]
    rewrite(path, document)
    loaded, _ = load_quietly(path)
    assert loaded.callbacks[0][1].patience == 3
    document["params"]["callbacks"] = [{"__tuple__": ["stop", bad]}]
    rewrite(path, document)
    loaded, _ = load_quietly(path)
    assert isinstance(loaded, UntrustedObjectError)
    assert "'sink'" in str(loaded)


@pytest.mark.parametrize("name", ["predict", "fit", "__class__", "net_", "checkpoint_path_"])
def test_fitted_attributes_only_under_declared_names(saved, name):
    path, _, _ = saved
    loaded, _ = load_quietly(crafted(path, lambda d: d["fitted"].update(
        {name: {"__function__": "torch.nn.init.zeros_"}})))
    assert isinstance(loaded, InvalidFileError)
    assert name in str(loaded)


def test_hyperparameters_only_under_declared_names(saved):
    path, _, _ = saved
    loaded, _ = load_quietly(crafted(path, lambda d: d["params"].update(
        {"predict": {"__function__": "torch.nn.init.zeros_"}})))
    assert isinstance(loaded, InvalidFileError)
    assert "'predict'" in str(loaded)
    assert TorchClassifier.predict is not None


def test_every_fitted_attribute_is_declared(iris, tmp_path):
    # What save writes is exactly what the class declares: nothing a fit
    # learns is silently dropped from a file.
    from sktorch import ImageClassifier, ImageSegmenter, TorchRegressor

    X, y = iris
    rng = np.random.RandomState(0)
    images = rng.randint(0, 255, (8, 8, 8)).astype(np.uint8)
    masks = (rng.rand(4, 8, 8) > 0.5).astype(int)
    for est, data in [
        (TorchClassifier(max_epochs=1, validation_fraction=0.2), (X, y)),
        (TorchRegressor(max_epochs=1), (X, X[:, 0])),
        (ImageClassifier(max_epochs=1), (images, np.arange(8) % 2)),
        (ImageSegmenter(max_epochs=1, module__depth=1), (images[:4, None] / 255.0, masks)),
    ]:
        est.set_params(random_state=0, device="cpu").fit(*data)
        learned = {k for k in vars(est) if k not in est.get_params(deep=False)} - {"net_"}
        saved, unsaved = set(type(est)._fitted_attributes), set(type(est)._unsaved_attributes)
        assert learned <= saved | unsaved, type(est).__name__
        assert not saved & unsaved
        sktorch.save(est, tmp_path / "e.sktorch")
        assert set(read_document(tmp_path / "e.sktorch")["fitted"]) == learned - unsaved


@pytest.mark.parametrize("edit", [
    lambda d: d.update(params=[1, 2]),
    lambda d: d.update(history={"a": 1}),
    lambda d: d["params"].update(device={"__device__": "warp-drive"}),
    lambda d: d["params"].update(random_state={"__random_state__": [1, 2, 3]}),
    lambda d: d["fitted"].update(n_outputs_="three"),
    lambda d: d["fitted"].update(_input_shape={"__tuple__": [-4]}),
    lambda d: d["fitted"].update(_loss_plan={"link": "tanh"}),
    lambda d: d["fitted"].update(_loss_plan={"link": "sigmoid"}),
    lambda d: d["fitted"].pop("_loss_plan"),
    lambda d: d.update(format_version=2) or d["fitted"].update(_sigmoid_output=1),
    lambda d: d["fitted"].update(classes_={"__ndarray__": {"dtype": "<i8", "shape": [5],
                                                           "data": [1]}}),
    lambda d: d["params"].update(lr={"__dtype__": 3}),
    lambda d: d["net"].update(n_train="many"),
    lambda d: d["params"].update(module__hidden_sizes={"__tuple__": [5, 5, 5]}),
    lambda d: d.update(training={"optimizer": {"state": 1}}),
    lambda d: d["params"].update(max_epochs={"__tuple__": [{"__object__": 5}]}),
], ids=["params-list", "history-dict", "device", "random-state", "n-outputs", "input-shape",
        "link-unknown", "link-against-the-loss", "plan-missing", "legacy-flag-int",
        "array-shape", "dtype-tag", "n-train", "sizes", "training", "tag-body"])
def test_every_failure_is_an_invalid_file_error(saved, edit):
    path, _, _ = saved
    loaded, _ = load_quietly(crafted(path, edit))
    assert isinstance(loaded, InvalidFileError), loaded


def test_a_module_larger_than_its_weights_is_refused_before_it_is_built(saved):
    # 10**6 x 10**6 float32 weights would be 4 TB: built for real, this would
    # fail with an allocation error, not with a mismatch.
    path, _, _ = saved
    crafted(path, lambda d: d["params"].update(module__hidden_sizes={"__tuple__": [10**6, 10**6]}))
    with pytest.raises(WeightsMismatchError, match="(?s)size mismatch.*nothing was allocated"):
        sktorch.load(path)


# ------------------------------------------------------------------ bounded memory
MEMORY_BOUND_MB = 150

MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource
    import sktorch
    from sktorch.exceptions import InvalidFileError

    sktorch.load({good!r})  # warm up: imports and the trust table
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {{}}
    for path in {crafted!r}:
        try:
            sktorch.load(path)
            results[path] = "loaded"
        except InvalidFileError as exc:
            results[path] = type(exc).__name__
        results[path + ":mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps(results))
""")


def zip_bomb(path, good, megabytes):
    """A sktorch file whose document inflates ``megabytes`` of whitespace."""
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    chunk = b" " * (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("sktorch.json", "w", force_zip64=True) as stream:
            for _ in range(megabytes):
                stream.write(chunk)
            stream.write(members["sktorch.json"])
        for name in ("model.safetensors",):
            archive.writestr(name, members[name])


def test_crafted_files_cannot_exhaust_memory(saved, tmp_path):
    path, _, _ = saved
    good = tmp_path / "good.sktorch"
    good.write_bytes(path.read_bytes())
    files = {}
    files["bomb"] = tmp_path / "bomb.sktorch"
    zip_bomb(files["bomb"], good, 400)
    assert files["bomb"].stat().st_size < 2 << 20  # a few hundred KB inflating to 400 MB

    def copy(name, edit):
        files[name] = tmp_path / f"{name}.sktorch"
        files[name].write_bytes(good.read_bytes())
        crafted(files[name], edit)

    copy("dtype", lambda d: d["fitted"].update(classes_={"__ndarray__": {
        "dtype": "S800000000", "shape": [1], "data": ["a"]}}))
    copy("unicode", lambda d: d["fitted"].update(classes_={"__ndarray__": {
        "dtype": "<U200000000", "shape": [1], "data": ["a"]}}))
    copy("sizes", lambda d: d["params"].update(module__hidden_sizes={"__tuple__": [20000, 20000]}))
    copy("width", lambda d: d["fitted"].update(_input_shape={"__tuple__": [300_000_000]}))
    copy("criterion", lambda d: d["params"].update(criterion={
        "__object__": "torch.nn.modules.linear.Linear",
        "params": {"in_features": 20000, "out_features": 20000}}))
    code = MEMORY_SCRIPT.format(good=str(good), crafted=[str(p) for p in files.values()])
    result = json.loads(run_python(code, cwd=tmp_path).stdout.strip().splitlines()[-1])
    for name, file in files.items():
        assert result[str(file)] in ("InvalidFileError", "WeightsMismatchError",
                                     "UntrustedObjectError"), (name, result[str(file)])
        assert result[str(file) + ":mb"] < MEMORY_BOUND_MB, (name, result)


@pytest.mark.parametrize("change", [-100, +100])
def test_a_stream_that_differs_from_its_declared_size_is_refused(saved, monkeypatch, change):
    # The declared sizes are the cap; the stream read must match them.
    path, _, _ = saved
    real = zipfile.ZipFile.infolist

    def lying(self):
        infos = real(self)
        for info in infos:
            if info.filename == "sktorch.json":
                info.file_size += change
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying)
    with pytest.raises(InvalidFileError, match="declares|CRC|corrupted"):
        sktorch.load(path)


# ------------------------------------------------------------------ nothing written
def test_load_writes_nothing(saved, tmp_path):
    path, _, _ = saved
    before = sorted(p for p in tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        sktorch.load(path)
    finally:
        os.chdir(cwd)
    assert sorted(p for p in tmp_path.rglob("*")) == before
