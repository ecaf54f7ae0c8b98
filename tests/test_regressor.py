import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from sktorch import TorchRegressor


def test_multi_output_learns_and_keeps_shape(regression_data):
    X, Y = regression_data
    reg = TorchRegressor(lr=0.01, max_epochs=30, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 2
    assert reg.module_.layers[-1].out_features == 2
    pred = reg.predict(X)
    assert pred.shape == Y.shape and pred.dtype == np.float64
    assert r2_score(Y, pred) > 0.95


@pytest.mark.parametrize("shape", [(240,), (240, 1)])
def test_single_output_predicts_the_shape_y_had(regression_data, shape):
    X, Y = regression_data
    y = Y[:, 0].reshape(shape)
    reg = TorchRegressor(max_epochs=2, random_state=0).fit(X, y)
    assert reg.n_outputs_ == 1
    assert reg.predict(X).shape == shape


def test_integer_targets_and_list_input(regression_data):
    X, Y = regression_data
    y = np.round(Y[:, 0] * 3).astype(np.int64)
    reg = TorchRegressor(max_epochs=2, random_state=0).fit(X.tolist(), y.tolist())
    assert reg.predict(X).dtype == np.float64


def test_regression_losses_by_name(regression_data):
    X, Y = regression_data
    for criterion in ["l1", "smooth_l1", "huber"]:
        reg = TorchRegressor(criterion=criterion, max_epochs=1, random_state=0).fit(X, Y)
        assert type(reg.net_.criterion_).__name__.lower().startswith(criterion.split("_")[0][:3])


def test_partial_fit_and_target_width_check(regression_data):
    X, Y = regression_data
    reg = TorchRegressor(random_state=0)
    reg.partial_fit(X, Y)
    reg.partial_fit(X, Y)
    assert len(reg.history_) == 2
    with pytest.raises(ValueError, match="1 target column.*fitted on 2"):
        reg.partial_fit(X, Y[:, 0])


def test_module_output_width_mismatch_is_explained(regression_data):
    X, Y = regression_data
    module = torch.nn.Linear(5, 1)
    with pytest.raises(ValueError, match=r"shape \(2, 1\).*needs shape \(2, 2\).*2 column"):
        TorchRegressor(module=module).fit(X, Y)
