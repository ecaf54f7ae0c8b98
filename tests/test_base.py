"""What every estimator shares: parameter handling, bad input, devices, RNG."""

import copy

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


# ------------------------------------------- predictions written in place
class _Rows(torch.utils.data.Dataset):
    """Bare inputs, one row per item, for the DataLoader path of predict."""

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i]


class _EachTwice(torch.utils.data.Sampler):
    """A sampler that yields every index twice: more rows than len(X)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return 2 * self.n

    def __iter__(self):
        return iter([i for i in range(self.n) for _ in range(2)])


def _forward_by_concatenation(est, X, link=None):
    """``_forward`` as it was before the output was preallocated: every
    batch's outputs collected, concatenated, then linked as a whole (per
    view, the views summed and divided); float32 without a link."""
    from sktorch._data._augment import resolve_tta
    from sktorch._engine._inference import PREDICT_CHUNK_ROWS as _PREDICT_CHUNK_ROWS
    from sktorch._engine._inference import first_output as _first_output
    from sktorch._data._tensors import is_dataset

    if is_dataset(X):
        batches = est._dataset_batches(X)
    else:
        inputs = est._predict_inputs(X)
        batches = (inputs[start : start + _PREDICT_CHUNK_ROWS]
                   for start in range(0, len(inputs), _PREDICT_CHUNK_ROWS))
    views = resolve_tta(est.tta, type(est).__name__)
    module = est.net_.module_.eval()
    outputs = []
    with torch.inference_mode():
        for batch in batches:
            outputs.append(_first_output(module(batch)).float().cpu())
            for view in views:
                outputs.append(_first_output(module(view(batch))).float().cpu())
    if views:
        n_views = len(views) + 1
        link = link or (lambda output: output)
        per_view = [torch.cat(outputs[i::n_views]) for i in range(n_views)]
        return sum(link(output.double()) for output in per_view) / n_views
    output = torch.cat(outputs)
    return link(output.double()) if link is not None else output


def _assert_same_bits(new, old):
    new, old = new.numpy(), old.double().numpy()
    assert new.dtype == np.float64 and new.shape == old.shape
    # Bits, not values: -0.0 and 0.0 differ, and every last bit counts.
    np.testing.assert_array_equal(new.view(np.int64), old.view(np.int64))


@pytest.fixture(scope="module")
def fitted_for_forward():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    return {
        # One sigmoid output (an elementwise link), three softmax ones, and
        # a regressor's raw outputs.
        "sigmoid": TorchClassifier(criterion="bce", max_epochs=1, random_state=0).fit(
            X, np.arange(120) % 2),
        "softmax": TorchClassifier(max_epochs=1, random_state=0).fit(X, np.arange(120) % 3),
        "raw": TorchRegressor(max_epochs=1, random_state=0).fit(X, rng.normal(size=(120, 2))),
    }


def _link(est):
    """The estimator's output function, written out: the reference the
    inference loop's blocks are compared with."""
    if not isinstance(est, TorchClassifier):
        return None
    if est._loss_plan.sigmoid:
        return lambda logits: torch.cat([1.0 - torch.sigmoid(logits), torch.sigmoid(logits)], 1)
    return lambda logits: torch.softmax(logits, dim=1)


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "raw"])
@pytest.mark.parametrize("tta", [None, [lambda x: -x, lambda x: 0.5 * x]])
def test_forward_matches_concatenating_the_batches_bit_for_bit(fitted_for_forward, output, tta):
    est = copy.deepcopy(fitted_for_forward[output]).set_params(tta=tta)
    # Several batches of 4096 rows and a partial one.
    X = 3 * np.random.RandomState(1).normal(size=(9000, 6)).astype(np.float32)
    new = est._forward(X)
    _assert_same_bits(new, _forward_by_concatenation(est, X, link=_link(est)))
    # An ordinary tensor, not an inference one: callers may modify it.
    assert not new.is_inference()


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "raw"])
@pytest.mark.parametrize("options, n, rows", [
    (dict(batch_size=1), 300, 300),
    (dict(batch_size=7), 300, 300),
    # Batches across the blocks of 4096 rows staged for the link.
    (dict(batch_size=1000), 9000, 9000),
    (dict(batch_size=7, iterator_valid__drop_last=True), 300, 294),
    # More rows than len(X): the output grows.
    (dict(batch_size=100, iterator_valid__sampler=_EachTwice(2500)), 2500, 5000),
    (dict(batch_size=100, tta=[lambda x: -x]), 1003, 1003),
])
def test_forward_on_a_dataset_matches_concatenating_its_batches(fitted_for_forward, output,
                                                                 options, n, rows):
    # Loader batches of any size: an elementwise link (sigmoid) still sees
    # the blocks of rows it saw, and gives the same bits.
    est = copy.deepcopy(fitted_for_forward[output]).set_params(**options)
    X = _Rows(3 * np.random.RandomState(2).normal(size=(n, 6)).astype(np.float32))
    new = est._forward(X)
    _assert_same_bits(new, _forward_by_concatenation(est, X, link=_link(est)))
    assert len(new) == rows


def test_forward_without_any_batch_names_the_loader():
    X, y = _data()
    est = TorchClassifier(max_epochs=1, random_state=0, batch_size=64,
                          iterator_valid__drop_last=True).fit(X, y)
    with pytest.raises(ValueError, match="got no batch to predict from X: its DataLoader "
                                         "yielded nothing"):
        est.predict_proba(_Rows(X))
