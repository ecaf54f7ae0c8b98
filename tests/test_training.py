"""Training options: mixed precision, clipping, accumulation, init, freezing,
layer-wise learning rates."""

import math

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sktorch import TorchClassifier, TorchRegressor
from sktorch.exceptions import InvalidParameterError


class _GradNorms(Callback):
    """Record the total gradient norm each time the optimizer is about to step."""

    def initialize(self):
        self.norms_ = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.detach().flatten() for _, p in named_parameters if p.grad is not None]
        self.norms_.append(float(torch.cat(grads).norm()))


# ------------------------------------------------------------------ precision
def test_bf16_mixed_learns_on_cpu_like_float32(cancer):
    X, y = cancer
    params = dict(max_epochs=10, lr=1e-3, random_state=0, device="cpu")
    full = TorchClassifier(**params).fit(X, y)
    mixed = TorchClassifier(precision="bf16-mixed", **params).fit(X, y)
    assert abs(mixed.score(X, y) - full.score(X, y)) < 0.03
    assert mixed.score(X, y) > 0.95
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())
    assert mixed.predict_proba(X).dtype == np.float64
    # the two runs differ: the forward pass really ran in bfloat16
    assert not np.allclose(mixed.history_[:, "train_loss"], full.history_[:, "train_loss"], rtol=1e-6)


def test_bf16_forward_runs_under_autocast(iris):
    X, y = iris
    seen = []

    class Probe(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.linear = nn.Linear(in_features, out_features)

        def forward(self, x):
            out = self.linear(x)
            seen.append(out.dtype)
            return out

    est = TorchClassifier(module=Probe, precision="bf16-mixed", max_epochs=1, device="cpu").fit(X, y)
    seen.clear()
    est.predict(X)
    assert seen == [torch.bfloat16]


def test_float16_mixed_on_cpu_is_a_clear_error(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError, match=r"'16-mixed', which needs a CUDA device.*'bf16-mixed'"):
        TorchClassifier(precision="16-mixed", device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="'precision' parameter"):
        TorchClassifier(precision="fp8").fit(X, y)


# ------------------------------------------------------------------ clipping
def test_max_grad_norm_clips_the_total_norm(iris):
    X, y = iris
    probe = ("norms", _GradNorms())
    free = TorchClassifier(lr=1.0, max_epochs=2, random_state=0, callbacks=[probe]).fit(X, y)
    clipped = TorchClassifier(lr=1.0, max_epochs=2, random_state=0, max_grad_norm=0.05,
                              callbacks=[probe]).fit(X, y)
    assert max(dict(free.net_.callbacks_)["norms"].norms_) > 0.05
    norms = dict(clipped.net_.callbacks_)["norms"].norms_
    assert len(norms) == 2 * math.ceil(150 / 32)
    assert max(norms) <= 0.05 * (1 + 1e-5)


# -------------------------------------------------------------- accumulation
def _linear_regressor(**params):
    return TorchRegressor(module__hidden_sizes=(8,), optimizer="sgd", lr=0.1, max_epochs=1,
                          random_state=0, device="cpu", **params)


def test_accumulated_gradient_equals_one_larger_batch(regression_data):
    X, Y = regression_data  # 240 rows
    big = _linear_regressor(batch_size=48).fit(X, Y)
    accumulated = _linear_regressor(batch_size=16, accumulate_grad_batches=3).fit(X, Y)
    assert big.history_[0, "optimizer_steps"] == accumulated.history_[0, "optimizer_steps"] == 5
    for a, b in zip(big.module_.parameters(), accumulated.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_last_partial_group_still_steps_with_its_own_weights(regression_data):
    X, Y = regression_data
    X, Y = X[:100], Y[:100]  # batches of 16: 6 full + 4 rows; groups of 3: (16,16,16), (16,16,16), (4)
    big = _linear_regressor(batch_size=48).fit(X, Y)  # 48, 48, 4
    accumulated = _linear_regressor(batch_size=16, accumulate_grad_batches=3).fit(X, Y)
    assert accumulated.history_[0, "optimizer_steps"] == 3
    for a, b in zip(big.module_.parameters(), accumulated.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------- init
def test_init_by_name_sets_linear_weights(cancer):
    X, y = cancer
    est = TorchClassifier(module__hidden_sizes=(512, 512), init="kaiming_normal",
                          init__nonlinearity="relu", max_epochs=1, lr=1e-9, optimizer="sgd",
                          random_state=0).fit(X, y)
    hidden = est.module_.layers[2]
    # He initialization: std sqrt(2 / fan_in)
    assert hidden.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.03)
    assert hidden.bias.abs().max().item() < 1e-6  # zeroed, then moved by lr=1e-9 only
    default = TorchClassifier(module__hidden_sizes=(512, 512), max_epochs=1, lr=1e-9,
                              optimizer="sgd", random_state=0).fit(X, y)
    assert default.module_.layers[2].weight.std().item() < 0.5 * math.sqrt(2 / 512)


def test_init_orthogonal_and_callable(iris):
    X, y = iris
    est = TorchClassifier(module__hidden_sizes=(16,), init="orthogonal", max_epochs=1, lr=1e-9,
                          optimizer="sgd", random_state=0).fit(X, y)
    w = est.module_.layers[0].weight.detach()  # 16 x 4: orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(4), rtol=0, atol=1e-5)
    est = TorchClassifier(init=nn.init.ones_, max_epochs=1, lr=1e-9, optimizer="sgd").fit(X, y)
    assert torch.all(est.module_.layers[0].weight == 1)


def test_init_errors(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="'init' parameter .*Did you mean 'orthogonal'"):
        TorchClassifier(init="orthogonl").fit(X, y)
    with pytest.raises(InvalidParameterError, match="init is None"):
        TorchClassifier(init__gain=2.0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="overwrite the weights of the module instance"):
        TorchClassifier(module=nn.Linear(4, 3), init="orthogonal").fit(X, y)


# --------------------------------------------------------- freezing, groups
def test_frozen_parameters_are_out_of_the_optimizer(iris):
    X, y = iris
    frozen = TorchClassifier(module__hidden_sizes=(16, 8), optimizer="adamw", lr=0.05, max_epochs=2,
                             random_state=0, freeze=("layers.0.*",)).fit(X, y)
    first = frozen.module_.layers[0]
    assert not first.weight.requires_grad and not first.bias.requires_grad
    optimized = {id(p) for group in frozen.net_.optimizer_.param_groups for p in group["params"]}
    assert id(first.weight) not in optimized and id(first.bias) not in optimized
    assert id(frozen.module_.layers[2].weight) in optimized
    assert frozen.score(X, y) > 0.6  # the rest still learns


def test_freeze_keeps_weights_bit_identical(iris):
    X, y = iris

    class Record(Callback):
        def on_train_begin(self, net, **kwargs):
            self.start_ = {k: v.clone() for k, v in net.module_.state_dict().items()}

    est = TorchClassifier(module__hidden_sizes=(16, 8), optimizer="adamw", optimizer__weight_decay=0.1,
                          lr=0.05, max_epochs=3, random_state=0, freeze=("layers.0.*",),
                          callbacks=[("record", Record())]).fit(X, y)
    start = dict(est.net_.callbacks_)["record"].start_
    now = est.module_.state_dict()
    assert torch.equal(now["layers.0.weight"], start["layers.0.weight"])
    assert torch.equal(now["layers.0.bias"], start["layers.0.bias"])
    assert not torch.equal(now["layers.2.weight"], start["layers.2.weight"])


def test_freeze_pattern_matching_nothing_is_an_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"'backbone\.\*' matches no parameter.*layers\.0\.weight"):
        TorchClassifier(freeze=("backbone.*",)).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'freeze' parameter"):
        TorchClassifier(freeze=(3,)).fit(X, y)


def test_layer_wise_learning_rates_through_param_groups(iris):
    X, y = iris
    est = TorchClassifier(module__hidden_sizes=(16,), lr=0.01, max_epochs=2, random_state=0,
                          optimizer__param_groups=[("layers.0.*", {"lr": 1e-4})],
                          lr_scheduler="step", lr_scheduler__step_size=1,
                          lr_scheduler__gamma=0.5).fit(X, y)
    groups = est.net_.optimizer_.param_groups
    assert len(groups) == 2
    assert est.history_[:, "lr_groups"] == [[1e-4, 0.01], [5e-5, 0.005]]
    assert est.history_[:, "lr"] == [1e-4, 5e-5]
