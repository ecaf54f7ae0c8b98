"""A pickle of an estimator trained on CUDA loads and predicts on a CPU-only
machine, with a DeviceWarning (skorch remaps its CUDA tensors to the CPU).

There is no GPU in CI: the net of a CPU-trained estimator is told its device
is 'cuda', which sends its pickle down skorch's CUDA path (the module,
criterion and optimizer pickled apart, to be mapped back to a device on
load), and CUDA is made unavailable where it is unpickled.
"""

import pickle

import numpy as np
import pytest
import torch
from helpers import run_python

from sktorch import TorchClassifier
from sktorch.exceptions import DeviceWarning

LOAD_WITHOUT_CUDA = """
import pickle, warnings
import numpy as np, torch
assert not torch.cuda.is_available()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with open("model.pkl", "rb") as f:
        est = pickle.load(f)
from sktorch.exceptions import DeviceWarning
assert any(issubclass(w.category, DeviceWarning) for w in caught), [str(w.message) for w in caught]
assert str(est.net_.device) == "cpu", est.net_.device
assert next(est.module_.parameters()).device.type == "cpu"
np.save("proba.npy", est.predict_proba(np.load("X.npy")))
"""


@pytest.fixture
def cuda_pickle(iris):
    """A pickle taken while the estimator's net was on 'cuda', and the CPU
    predictions of that estimator."""
    X, y = iris
    est = TorchClassifier(module__hidden_sizes=(16,), max_epochs=2, device="cpu",
                          random_state=0).fit(X, y)
    expected = est.predict_proba(X)
    est.net_.device = "cuda"
    assert est.net_.cuda_dependent_attributes_  # module_, criterion_, optimizer_
    data = pickle.dumps(est)
    est.net_.device = "cpu"
    return data, X, y, expected


def test_cuda_pickle_loads_on_cpu_with_a_warning(cuda_pickle, monkeypatch):
    data, X, y, expected = cuda_pickle
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning) as caught:
        restored = pickle.loads(data)
    messages = " ".join(str(w.message) for w in caught)
    assert "no CUDA devices are available" in messages and "device = cpu" in messages
    assert str(restored.net_.device) == "cpu"  # skorch sets torch.device('cpu')
    assert all(p.device.type == "cpu" for p in restored.module_.parameters())
    assert restored.net_.estimator is restored
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    # It keeps training on the CPU, optimizer state included.
    assert restored.net_.optimizer_.state_dict()["state"]
    restored.partial_fit(X, y)
    assert len(restored.history_) == 3


def test_cuda_pickle_loads_in_a_fresh_process_without_cuda(cuda_pickle, tmp_path, monkeypatch):
    data, X, _, expected = cuda_pickle
    (tmp_path / "model.pkl").write_bytes(data)
    np.save(tmp_path / "X.npy", X)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    run_python(LOAD_WITHOUT_CUDA, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), expected)
