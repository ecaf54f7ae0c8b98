import os

# scikit-learn's array-API estimator check runs only when SciPy is told to
# accept array-API inputs; it must be set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import random  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="session")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="session")
def regression_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 5)).astype(np.float32)
    W = rng.normal(size=(5, 2))
    Y = X @ W + 0.05 * rng.normal(size=(240, 2))
    return X, Y


def pytest_report_header(config):
    import sklearn
    import skorch
    import torchvision

    return (f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
            f"scikit-learn {sklearn.__version__}, skorch {skorch.__version__}, "
            f"cuda available: {torch.cuda.is_available()}, torch threads: {torch.get_num_threads()}")
