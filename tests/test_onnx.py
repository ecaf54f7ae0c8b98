"""sktorch.export_onnx: the module and its output function as one ONNX graph,
checked against predict_proba / predict with onnxruntime."""

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from torch import nn

from helpers import SoftmaxNet
import sktorch
from sktorch import TorchClassifier, TorchRegressor
from sktorch._io._onnx import OnnxExportError


class DigitsConvNet(nn.Module):
    """A user conv module on the 64 digit features seen as 1x8x8 images: a
    stand-in for an image estimator."""

    def __init__(self, in_features, out_features, channels=4):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                                  nn.BatchNorm2d(channels), nn.MaxPool2d(2))
        self.head = nn.Linear(channels * 16, out_features)

    def forward(self, x):
        x = x.reshape(-1, 1, 8, 8)
        return self.head(self.conv(x).flatten(1))


class TraceDiffersNet(nn.Module):
    """Computes something else when traced for export than when run: the
    exported graph is wrong."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.linear(x) * (0.5 if torch.compiler.is_exporting() else 1.0)


class BatchBranchNet(TraceDiffersNet):
    """Python control flow on the batch size: torch.export refuses it."""

    def forward(self, x):
        return self.linear(x) * 2.0 if x.shape[0] == 2 else self.linear(x)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16.0).astype(np.float32), y[:300]


def graph_io(path):
    model = onnx.load(path)
    def described(values):
        return [(v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
                for v in values]

    return model, described(model.graph.input), described(model.graph.output)


def run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


@pytest.mark.parametrize(
    "case",
    ["multiclass", "binary-bce", "multiclass-tta", "conv-module", "probability-module"],
)
def test_classifier_graph_gives_predict_proba(case, tmp_path, iris, cancer, digits):
    if case == "binary-bce":
        X, y = cancer[0][:200].astype(np.float32), cancer[1][:200]
        est = TorchClassifier(criterion="bce", max_epochs=2, random_state=0, device="cpu")
    elif case == "conv-module":
        X, y = digits
        est = TorchClassifier(module=DigitsConvNet, max_epochs=2, random_state=0, device="cpu")
    elif case == "probability-module":
        # No second softmax in the graph either.
        X, y = iris
        est = TorchClassifier(module=SoftmaxNet, criterion="nll", lr=0.05, max_epochs=2,
                              random_state=0, device="cpu")
    else:
        X, y = iris
        est = TorchClassifier(module__hidden_sizes=(16,), max_epochs=2, random_state=0,
                              device="cpu", tta="hflip" if case == "multiclass-tta" else None)
    est.fit(X, y)
    path = tmp_path / "clf.onnx"
    sktorch.export_onnx(est, path)
    assert [p.name for p in tmp_path.iterdir()] == ["clf.onnx"]  # no temporary file left
    model, inputs, outputs = graph_io(path)
    assert inputs == [("input", ["batch", X.shape[1]])]
    assert outputs == [("probabilities", ["batch", len(est.classes_)])]
    assert model.opset_import[0].version == 18
    props = {p.key: p.value for p in model.metadata_props}
    assert props["classes"] == str(est.classes_.tolist())
    assert props["sktorch_estimator"] == "TorchClassifier"
    for n in (1, 7):
        np.testing.assert_allclose(run(path, X[:n]), est.predict_proba(X[:n]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("multi_output", [False, True], ids=["1d", "2d"])
def test_regressor_graph_gives_predict(multi_output, tmp_path, regression_data):
    X, Y = regression_data
    y = Y if multi_output else Y[:, 0]
    est = TorchRegressor(max_epochs=2, random_state=0, device="cpu").fit(X, y)
    path = tmp_path / "reg.onnx"
    sktorch.export_onnx(est, path, opset=20)
    model, inputs, outputs = graph_io(path)
    assert model.opset_import[0].version == 20
    assert outputs == [("predictions", ["batch", 2] if multi_output else ["batch"])]
    for n in (1, 7):
        np.testing.assert_allclose(run(path, X[:n]), est.predict(X[:n]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "module, match",
    [(TraceDiffersNet, "does not reproduce the module on a batch of 1 sample"),
     (BatchBranchNet, "torch.onnx could not export the module of TorchClassifier")],
    ids=["wrong-graph", "export-fails"],
)
def test_graphs_that_do_not_reproduce_the_module_are_refused(tmp_path, iris, module, match):
    X, y = iris
    est = TorchClassifier(module=module, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    with pytest.raises(OnnxExportError, match=match):
        sktorch.export_onnx(est, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_errors(tmp_path, iris, monkeypatch):
    with pytest.raises(NotFittedError):
        sktorch.export_onnx(TorchClassifier(), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install sktorch\[onnx\]"):
        sktorch.export_onnx(TorchClassifier(), tmp_path / "m.onnx")


@pytest.mark.parametrize("module, kwargs", [("cnn", {"module__width": 8}),
                                            ("resnet18", {"image_size": 16})])
def test_image_classifier_graph_includes_its_preprocessing(module, kwargs, tmp_path):
    # The ImageModel's preprocessing (gray to 3 channels, resize) is part of
    # the graph: it takes the images as the estimator does, floats in [0, 1].
    from sktorch import ImageClassifier

    images = load_digits().images
    X, y = (images[:120] / 16).astype(np.float32), load_digits().target[:120]
    clf = ImageClassifier(module, max_epochs=1, random_state=0, **kwargs).fit(X, y)
    path = tmp_path / f"{module}.onnx"
    sktorch.export_onnx(clf, path)
    _, inputs, outputs = graph_io(path)
    assert inputs == [("input", ["batch", 1, 8, 8])]
    for rows in (1, 7):
        batch = X[:rows, None]
        np.testing.assert_allclose(run(path, batch), clf.predict_proba(X[:rows]), atol=1e-5)


# ------------------------------------------------- graph == predictions, every tta
class Dim:
    """A batch-aware test-time view without an inverse: a dimmer image."""

    batch_aware = True

    def __call__(self, x):
        return 0.8 * x + 0.1


class VFlip:
    """A batch-aware test-time view that moves pixels and declares its
    inverse: spatial outputs are flipped back along the height."""

    batch_aware = True

    def __call__(self, x):
        return x.flip(-2)

    def inverse(self, output):
        return output.flip(-2) if output.ndim >= 3 else output


def _blobs(n=12, size=12, seed=0):
    """Gray images with a bright rectangle off-centre (class 1) on a noisy
    background: neither images nor masks are mirror-symmetric."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 0.3, (n, size, size))
    y = np.zeros((n, size, size), np.int64)
    for i in range(n):
        top, left = rng.integers(0, size // 2, 2)
        y[i, top : top + rng.integers(2, size // 2), left : left + rng.integers(2, 4)] = 1
    X[y == 1] = 0.8
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted_kinds(iris, cancer):
    """Each kind of estimator, fitted once (tta is set on copies): the
    estimator, an X, and that X as the graph takes it."""
    from sktorch import ImageClassifier, ImageSegmenter

    digits = load_digits()
    images = (digits.images[:60] / 16).astype(np.float32)
    blobs, masks = _blobs()
    rng = np.random.RandomState(0)
    Xr = rng.normal(size=(60, 5)).astype(np.float32)
    common = dict(max_epochs=1, random_state=0, device="cpu")
    kinds = {
        "multiclass": (TorchClassifier(module__hidden_sizes=(8,), **common).fit(*iris), iris[0]),
        "binary": (TorchClassifier(criterion="bce", module__hidden_sizes=(8,), **common).fit(
            cancer[0][:100].astype(np.float32), cancer[1][:100]),
            cancer[0][:100].astype(np.float32)),
        "regressor": (TorchRegressor(module__hidden_sizes=(8,), **common).fit(
            Xr, Xr @ rng.normal(size=5)), Xr),
        "image": (ImageClassifier("cnn", module__width=4, **common).fit(
            images, digits.target[:60]), images),
        "segmenter": (ImageSegmenter(module__depth=1, module__width=8, batch_size=6, lr=0.05,
                                     **{**common, "max_epochs": 2}).fit(blobs, masks), blobs),
    }
    return {kind: (est, X[:5], X[:5, None] if X.ndim == 3 else X[:5])
            for kind, (est, X) in kinds.items()}


@pytest.mark.parametrize("tta", [None, "hflip", "two-views"])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "regressor", "image", "segmenter"])
def test_graph_gives_the_estimators_predictions_with_every_tta(fitted_kinds, kind, tta,
                                                               tmp_path):
    import copy

    est, X, inputs = fitted_kinds[kind]
    if tta == "two-views":
        tta = [VFlip(), "hflip"] if kind == "segmenter" else ["hflip", Dim()]
    est = copy.deepcopy(est).set_params(tta=tta)
    path = tmp_path / "model.onnx"
    sktorch.export_onnx(est, path)
    expected = est.predict(X) if kind == "regressor" else est.predict_proba(X)
    got = run(path, inputs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    if kind == "segmenter" and tta is not None:
        # The mirrored views' scores differ from the input's: an inverse left
        # out would show.
        plain = copy.deepcopy(est).set_params(tta=None)
        mirrored = plain.predict_proba(X[..., ::-1].copy())[..., ::-1]
        assert np.abs(mirrored - plain.predict_proba(X)).max() > 1e-2


def test_check_compares_the_graph_with_predict_proba(fitted_kinds, tmp_path, monkeypatch):
    # A graph that leaves out the inverse of the mirrored view (as the graph
    # of sktorch <= 0.x did) agrees with itself, not with predict_proba.
    import copy

    from sktorch._engine._inference import InferenceModule
    from sktorch._io import _onnx

    class MirrorWithoutInverse:
        def __call__(self, x):
            return x.flip(-1)

        def inverse(self, output):
            return output

    def wrong_graph(estimator):
        module = copy.deepcopy(estimator.net_.module_)
        return InferenceModule(module, estimator._loss_plan.link, [MirrorWithoutInverse()]).eval()

    est = copy.deepcopy(fitted_kinds["segmenter"][0]).set_params(tta="hflip")
    monkeypatch.setattr(_onnx, "_inference_graph", wrong_graph)
    with pytest.raises(OnnxExportError, match=r"on a batch of 1 sample\(s\): largest difference "
                                              r"0\.\d+ from ImageSegmenter.predict_proba "
                                              r"\(tolerance 1e-05\)"):
        sktorch.export_onnx(est, tmp_path / "wrong.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_mixed_precision_estimator_is_checked_in_float32_in_its_own_thread_only(
        tmp_path, iris, monkeypatch):
    """The export compares its float32 graph with predict_proba computed in
    float32, without touching the estimator: a thread predicting meanwhile
    still gets the bf16 results."""
    import threading

    from sktorch._engine import _inference

    X, y = iris
    est = TorchClassifier(module__hidden_sizes=(64,), precision="bf16-mixed", max_epochs=2,
                          random_state=0, device="cpu").fit(X, y)
    in_bf16 = est.predict_proba(X)
    with _inference.float32_inference():
        in_float32 = est.predict_proba(X)
    assert np.abs(in_bf16 - in_float32).max() > 1e-4  # bf16 autocast is visible
    assert est.net_.precision == "bf16-mixed"

    inside, done, seen = threading.Event(), threading.Event(), {}
    original = _inference.run_inference

    def paused_run_inference(*args, **kwargs):
        # The export's check, in float32: let the other thread predict now.
        if threading.current_thread() is threading.main_thread() and not inside.is_set():
            inside.set()
            assert done.wait(60)
        return original(*args, **kwargs)

    def predict_meanwhile():
        assert inside.wait(60)
        seen["proba"] = est.predict_proba(X)
        done.set()

    monkeypatch.setattr("sktorch._estimators._predict.run_inference", paused_run_inference)
    other = threading.Thread(target=predict_meanwhile)
    other.start()
    path = tmp_path / "bf16.onnx"
    sktorch.export_onnx(est, path)
    other.join(60)
    np.testing.assert_array_equal(seen["proba"], in_bf16)
    np.testing.assert_allclose(run(path, X), in_float32, rtol=0, atol=1e-5)
    assert est.net_.precision == "bf16-mixed"
