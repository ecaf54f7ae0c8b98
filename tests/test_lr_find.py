import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sktorch import TorchClassifier, TorchRegressor  # noqa: E402
from sktorch._engine._lr_find import LRFinderResult  # noqa: E402


def test_range_test_ramps_exponentially_and_suggests_a_rate(cancer):
    X, y = cancer
    result = TorchClassifier(random_state=0).lr_find(X, y, start_lr=1e-6, end_lr=1.0, num_iter=60)
    assert isinstance(result, LRFinderResult)
    n = len(result.lrs)
    assert 5 <= n <= 60
    np.testing.assert_allclose(result.lrs, 1e-6 * (1e6 ** (1 / 59)) ** np.arange(n), rtol=1e-10)
    assert len(result.losses) == len(result.raw_losses) == n
    assert 1e-6 <= result.suggestion <= 1.0
    # The loss falls somewhere along the ramp: the suggestion sits where it falls.
    assert result.losses.min() < result.losses[0]


def test_divergence_stops_the_run(cancer):
    X, y = cancer
    result = TorchClassifier(optimizer="sgd", random_state=0).lr_find(X, y, end_lr=1e4, num_iter=100)
    assert result.diverged
    assert len(result.lrs) < 100
    assert result.losses[-1] > 4 * result.losses.min() or not np.isfinite(result.raw_losses).all()


def test_estimator_is_left_exactly_as_it_was(iris):
    X, y = iris
    est = TorchClassifier(max_epochs=2, random_state=0, lr_scheduler="cosine").fit(X, y)
    before = est.predict_proba(X)
    state = {k: v.clone() for k, v in est.module_.state_dict().items()}
    params = est.get_params()
    history = len(est.history_)
    torch.manual_seed(5)
    expected_next = torch.rand(2)
    torch.manual_seed(5)
    est.lr_find(X, y, num_iter=20)
    assert torch.equal(torch.rand(2), expected_next)  # global RNG untouched
    np.testing.assert_array_equal(est.predict_proba(X), before)
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, state[key])
    assert est.get_params() == params and len(est.history_) == history
    unfitted = TorchRegressor()
    unfitted.lr_find(X, X[:, 0], num_iter=10)
    assert not hasattr(unfitted, "net_") and not hasattr(unfitted, "n_features_in_")


def test_plot_returns_axes(iris):
    X, y = iris
    result = TorchClassifier(random_state=0).lr_find(X, y, num_iter=30)
    ax = result.plot()
    assert ax.get_xscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), result.lrs)


@pytest.mark.parametrize("kwargs, match", [
    ({"start_lr": 0}, "'start_lr'"),
    ({"start_lr": 1e-3, "end_lr": 1e-4}, "'end_lr'"),
    ({"num_iter": 1}, "'num_iter'"),
    ({"smoothing": 1.0}, "'smoothing'"),
])
def test_bad_arguments(iris, kwargs, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        TorchClassifier().lr_find(X, y, **kwargs)


def test_lr_find_ignores_validation_metrics_and_logging(tmp_path):
    # The range test trains without a validation split: metrics, which need
    # one, and TensorBoard runs are left out of the probe.
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    clf = TorchClassifier(metrics=("accuracy",), validation_fraction=0.2,
                          tensorboard=tmp_path / "runs", random_state=0)
    result = clf.lr_find(X, y, num_iter=10)
    assert len(result.lrs) == len(result.losses) > 0
    assert not (tmp_path / "runs").exists()
