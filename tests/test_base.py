"""What every estimator shares: parameter handling, bad input, devices, RNG."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sktorch import TorchClassifier, TorchRegressor
from sktorch.exceptions import DeviceError, InvalidParameterError, SktorchError

ESTIMATORS = [TorchClassifier, TorchRegressor]


def _data(n=40, p=3):
    rng = np.random.RandomState(0)
    return rng.normal(size=(n, p)).astype(np.float32), np.arange(n) % 2


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize(
    "make_X, error, match",
    [
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 4, np.nan, X), ValueError, "NaN"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 4, np.inf, X), ValueError, "infinity"),
        (lambda X: X[:0], ValueError, "0 sample"),
        (lambda X: X[:, 0], ValueError, "Expected 2D array, got 1D array"),
        (lambda X: sp.csr_matrix(X), TypeError, "Sparse data was passed"),
        (lambda X: np.full(X.shape, "a", dtype=object), ValueError, "could not convert"),
    ],
)
def test_bad_X_at_fit(Est, make_X, error, match):
    X, y = _data()
    X_bad = make_X(X)
    y_fit = y[: len(X_bad)] if hasattr(X_bad, "__len__") and not sp.issparse(X_bad) else y
    with pytest.raises(error, match=match):
        Est(max_epochs=1).fit(X_bad, y_fit)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_bad_X_at_predict(Est):
    X, y = _data()
    est = Est(max_epochs=1, random_state=0)
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3 features"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="Reshape your data"):
        est.predict(X[0])
    with pytest.raises(TypeError, match="Sparse data"):
        est.predict(sp.csr_matrix(X))


def test_predict_proba_before_fit():
    with pytest.raises(NotFittedError):
        TorchClassifier().predict_proba(np.zeros((2, 3)))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_y_problems(Est):
    X, y = _data()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Est(max_epochs=1).fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        Est(max_epochs=1).fit(X, None)


def test_classifier_rejects_continuous_and_single_class_targets():
    X, _ = _data()
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        TorchClassifier(max_epochs=1).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="at least 2 classes.*1 class"):
        TorchClassifier(max_epochs=1).fit(X, np.zeros(len(X)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"criterion": "crossentropy"}, r"'criterion' parameter of TorchClassifier must be one of \[.*'cross_entropy'.*Did you mean 'cross_entropy'"),
        ({"module": "mpl"}, r"'module' parameter of TorchClassifier must be one of \['mlp'.*Did you mean 'mlp'"),
        ({"optimizer": "adamm"}, r"'optimizer' parameter .*'sgd'.*Did you mean 'adam'"),
        ({"module__hiden_sizes": (4,)}, r"'module__hiden_sizes' for TorchClassifier: MLP takes no argument 'hiden_sizes'.*Did you mean 'hidden_sizes'"),
        ({"criterion__label_smothing": 0.1}, r"CrossEntropyLoss takes no argument.*Did you mean 'label_smoothing'"),
        ({"optimizer__betaz": (0.9, 0.99)}, r"Adam takes no argument 'betaz'.*Did you mean 'betas'"),
        ({"modul__x": 1}, r"Invalid parameter 'modul__x' for estimator TorchClassifier.*Did you mean 'module'"),
        ({"lrr": 0.1}, r"Invalid parameter 'lrr'.*Did you mean 'lr'"),
        ({"lr": -1.0}, r"The 'lr' parameter of TorchClassifier must be a float in the range \(0.0, inf\). Got -1.0 instead."),
        ({"max_epochs": 0}, r"'max_epochs' parameter"),
        ({"batch_size": 2.5}, r"'batch_size' parameter"),
        ({"validation_fraction": 1.0}, r"'validation_fraction' parameter"),
        ({"early_stopping": 0}, r"'early_stopping' parameter"),
        ({"device": "tpu"}, r"'device' parameter of TorchClassifier must be 'auto', 'cpu'"),
    ],
)
def test_invalid_parameters_are_named(params, match):
    X, y = _data()
    est = TorchClassifier(max_epochs=1).set_params(**params)  # set_params stores only
    with pytest.raises(ValueError, match=match) as info:
        est.fit(X, y)
    assert isinstance(info.value, TypeError)  # scikit-learn's InvalidParameterError is both


def test_our_errors_share_a_base():
    X, y = _data()
    with pytest.raises(SktorchError):
        TorchClassifier(criterion="nope").fit(X, y)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(DeviceError, ValueError)


def test_init_and_set_params_only_store():
    est = TorchClassifier(lr="not a number", module__anything=object, whatever__x=1)
    assert est.lr == "not a number"
    assert est.get_params()["whatever__x"] == 1
    est.set_params(max_epochs=-5, nonsense=3)
    assert est.get_params()["nonsense"] == 3
    assert clone(est).get_params()["module__anything"] is object


def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = _data()
    for device in ["cuda", "cuda:1", torch.device("cuda:0")]:
        with pytest.raises(DeviceError, match=r"CUDA is not available on this machine.*device='cpu'"):
            TorchClassifier(device=device, max_epochs=1).fit(X, y)


def test_auto_device_follows_cuda_availability(monkeypatch):
    X, y = _data()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    est = TorchRegressor(max_epochs=1, random_state=0).fit(X, y)
    assert torch.device(est.net_.device).type == "cpu"
    assert next(est.module_.parameters()).device.type == "cpu"


def test_fit_leaves_the_global_torch_random_state_alone():
    X, y = _data()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    TorchClassifier(max_epochs=1).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_random_state_none_draws_from_numpy_global_state():
    X, y = _data()
    np.random.seed(1)
    a = TorchClassifier(max_epochs=1).fit(X, y).predict_proba(X)
    np.random.seed(1)
    b = TorchClassifier(max_epochs=1).fit(X, y).predict_proba(X)
    c = TorchClassifier(max_epochs=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_compile_option_compiles_and_pickles():
    import pickle

    X, y = _data()
    eager = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    # aot_eager traces with dynamo and AOTAutograd but needs no C++ compiler.
    compiled = TorchClassifier(max_epochs=2, random_state=0, compile=True,
                               compile__backend="aot_eager").fit(X, y)
    assert type(compiled.module_).__name__ == "OptimizedModule"
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(restored.predict_proba(X), compiled.predict_proba(X))


def test_unknown_compile_option_is_named():
    X, y = _data()
    with pytest.raises(InvalidParameterError, match=r"'compile__mdoe'.*Did you mean 'mode'"):
        TorchClassifier(compile=True, compile__mdoe="max-autotune").fit(X, y)


@pytest.mark.slow
def test_compile_with_inductor():
    X, y = _data()
    eager = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    compiled = TorchClassifier(max_epochs=2, random_state=0, compile=True).fit(X, y)
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), rtol=1e-4, atol=1e-5)
