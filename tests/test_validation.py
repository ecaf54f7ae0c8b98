import numpy as np
import pandas as pd
import pytest

from sktorch import TorchRegressor
from sktorch._utils._validation import validate_data, validate_predict_input


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    return TorchRegressor(max_epochs=1, random_state=0).fit(X, X[:, 0]), X


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8, bool, np.float16])
def test_shortcut_returns_what_validate_data_returns(fitted, dtype):
    est, X = fitted
    Xq = (X * 3).astype(dtype)
    fast = validate_predict_input(est, Xq)
    full = validate_data(est, Xq, dtype=np.float32, reset=False)
    assert fast.dtype == np.float32
    np.testing.assert_array_equal(fast, full)


@pytest.mark.parametrize(
    "X_bad, match",
    [
        (np.array([[np.nan, 0.0, 0.0]]), "NaN"),
        (np.array([[np.inf, 0.0, 0.0]]), "infinity"),
        (np.array([[1e39, 0.0, 0.0]]), "too large for dtype"),  # overflows float32
        (np.zeros((1, 4)), "X has 4 features"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((2, 3), dtype=complex), "Complex data not supported"),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # sklearn's own cast
def test_rejections_are_scikit_learns(fitted, X_bad, match):
    est, _ = fitted
    with pytest.raises(ValueError, match=match):
        validate_predict_input(est, X_bad)


def test_large_finite_values_pass_even_when_their_sum_overflows(fitted):
    est, _ = fitted
    X = np.full((4, 3), 3e38, dtype=np.float32)
    np.testing.assert_array_equal(validate_predict_input(est, X), X)


def test_feature_names_still_checked():
    df = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    est = TorchRegressor(max_epochs=1, random_state=0).fit(df, [0.0, 1.0, 2.0, 3.0])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        validate_predict_input(est, df.to_numpy())
