"""CUDA paths. Skipped where there is no GPU (as in CI); run them on a GPU
machine with `pytest tests/test_cuda.py`."""

import pickle

import numpy as np
import pytest
import torch

from sktorch import TorchClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_auto_device_trains_on_cuda(cancer):
    X, y = cancer
    est = TorchClassifier(max_epochs=3, random_state=0).fit(X, y)
    assert next(est.module_.parameters()).device.type == "cuda"
    assert est.score(X, y) > 0.9


def test_float16_mixed_uses_a_grad_scaler_and_learns(cancer):
    X, y = cancer
    params = dict(max_epochs=10, random_state=0, device="cuda")
    full = TorchClassifier(**params).fit(X, y)
    mixed = TorchClassifier(precision="16-mixed", max_grad_norm=1.0, **params).fit(X, y)
    assert mixed.net_.scaler_ is not None
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())
    assert abs(mixed.score(X, y) - full.score(X, y)) < 0.03


def test_cuda_pickle_round_trip(cancer):
    X, y = cancer
    est = TorchClassifier(max_epochs=2, random_state=0, device="cuda", precision="16-mixed").fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.predict_proba(X), est.predict_proba(X), rtol=1e-6)
