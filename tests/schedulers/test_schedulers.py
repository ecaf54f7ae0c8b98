"""Named schedules give the learning rates torch's own schedulers give."""

import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch.optim import lr_scheduler as torch_schedulers

from sktorch import TorchClassifier
from sktorch.exceptions import InvalidParameterError
from sktorch.schedulers import WarmupCosineLR, default_options, get_scheduler, list_schedulers

EPOCHS = 6
LR = 0.1


def _optimizer(lr=LR, optimizer=torch.optim.SGD, **kwargs):
    return optimizer(torch.nn.Linear(2, 2).parameters(), lr=lr, **kwargs)


def _epoch_sequence(scheduler, epochs=EPOCHS, losses=None):
    rates = []
    for epoch in range(epochs):
        rates.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step(*([losses[epoch]] if losses is not None else []))
    return rates


def _fit(iris, **params):
    X, y = iris
    return TorchClassifier(lr=LR, max_epochs=EPOCHS, batch_size=50, random_state=0, **params).fit(X, y)


def _halve(epoch):
    return 0.5**epoch


@pytest.mark.parametrize(
    "name, options, torch_cls",
    [
        ("step", {"step_size": 2, "gamma": 0.5}, torch_schedulers.StepLR),
        ("multistep", {"milestones": [1, 4], "gamma": 0.3}, torch_schedulers.MultiStepLR),
        ("exponential", {"gamma": 0.8}, torch_schedulers.ExponentialLR),
        ("cosine", {"T_max": 4, "eta_min": 0.01}, torch_schedulers.CosineAnnealingLR),
        ("cosine_warmup", {"warmup_epochs": 2, "T_max": 6}, WarmupCosineLR),
        ("lambda", {"lr_lambda": _halve}, torch_schedulers.LambdaLR),
    ],
)
def test_epoch_schedules_match_torch(iris, name, options, torch_cls):
    est = _fit(iris, lr_scheduler=name, **{f"lr_scheduler__{k}": v for k, v in options.items()})
    expected = _epoch_sequence(torch_cls(_optimizer(), **options))
    np.testing.assert_allclose(est.history_[:, "lr"], expected, rtol=1e-12)
    assert est.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(
        _epoch_sequence(torch_cls(_optimizer(), **options), EPOCHS + 1)[-1])


def test_plateau_watches_train_loss_without_validation(iris):
    est = _fit(iris, lr_scheduler="plateau", lr_scheduler__patience=0, lr_scheduler__factor=0.5,
               lr_scheduler__threshold=0.5)
    losses = est.history_[:, "train_loss"]
    expected = _epoch_sequence(torch_schedulers.ReduceLROnPlateau(
        _optimizer(), patience=0, factor=0.5, threshold=0.5), losses=losses)
    np.testing.assert_allclose(est.history_[:, "lr"], expected)
    assert est.history_[-1, "lr"] < LR  # it did reduce


def test_plateau_watches_valid_loss_with_validation(iris):
    est = _fit(iris, lr_scheduler="plateau", lr_scheduler__patience=0, lr_scheduler__threshold=0.5,
               validation_fraction=0.2)
    expected = _epoch_sequence(torch_schedulers.ReduceLROnPlateau(
        _optimizer(), patience=0, threshold=0.5), losses=est.history_[:, "valid_loss"])
    np.testing.assert_allclose(est.history_[:, "lr"], expected)


def _batch_lrs(est):
    return [lr for epoch in est.history_ for lr in (b["event_lr"] for b in epoch["batches"]
                                                      if "event_lr" in b)]


@pytest.mark.parametrize(
    "name, options, torch_cls, torch_options",
    [
        ("onecycle", {}, torch_schedulers.OneCycleLR, {"max_lr": LR, "total_steps": EPOCHS * 3}),
        ("onecycle", {"pct_start": 0.5, "div_factor": 10.0}, torch_schedulers.OneCycleLR,
         {"max_lr": LR, "total_steps": EPOCHS * 3, "pct_start": 0.5, "div_factor": 10.0}),
        ("cyclic", {"cycle_momentum": False}, torch_schedulers.CyclicLR,
         {"base_lr": LR / 10, "max_lr": LR, "step_size_up": 3, "cycle_momentum": False}),
    ],
)
def test_batch_schedules_step_per_batch_and_match_torch(iris, name, options, torch_cls, torch_options):
    # 150 rows in batches of 50: 3 optimizer steps per epoch
    est = _fit(iris, lr_scheduler=name, **{f"lr_scheduler__{k}": v for k, v in options.items()})
    sched = torch_cls(_optimizer(), **torch_options)
    expected = []
    for _ in range(EPOCHS * 3):
        expected.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        sched.step()
    np.testing.assert_allclose(_batch_lrs(est), expected, rtol=1e-12)
    np.testing.assert_allclose(est.history_[:, "lr"], expected[::3], rtol=1e-12)


def test_batch_schedule_counts_optimizer_steps_with_accumulation(iris):
    # batches of 25 -> 6 per epoch; accumulating 2 -> 3 optimizer steps per epoch
    X, y = iris
    est = TorchClassifier(lr=LR, max_epochs=2, batch_size=25, accumulate_grad_batches=2,
                          lr_scheduler="onecycle", random_state=0).fit(X, y)
    assert est.history_[:, "optimizer_steps"] == [3, 3]
    sched = torch_schedulers.OneCycleLR(_optimizer(), max_lr=LR, total_steps=6)
    expected = []
    for _ in range(6):
        expected.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        sched.step()
    np.testing.assert_allclose(_batch_lrs(est), expected, rtol=1e-12)


def test_derived_defaults(iris):
    assert default_options("cosine", lr=0.1, max_epochs=7, steps_per_epoch=3) == {"T_max": 7}
    assert default_options("onecycle", lr=0.1, max_epochs=7, steps_per_epoch=3) == {
        "max_lr": 0.1, "total_steps": 21}
    exp = default_options("exponential", lr=0.1, max_epochs=10, steps_per_epoch=1)["gamma"]
    assert exp**10 == pytest.approx(0.01)
    est = _fit(iris, lr_scheduler="cosine")
    expected = _epoch_sequence(torch_schedulers.CosineAnnealingLR(_optimizer(), T_max=EPOCHS))
    np.testing.assert_allclose(est.history_[:, "lr"], expected)
    assert est.history_[:, "lr"][0] == LR


def test_scheduler_class_and_callable(iris):
    by_class = _fit(iris, lr_scheduler=torch_schedulers.StepLR, lr_scheduler__step_size=1,
                    lr_scheduler__gamma=0.5)
    np.testing.assert_allclose(by_class.history_[:, "lr"], [LR * 0.5**e for e in range(EPOCHS)])
    by_callable = _fit(iris, lr_scheduler=_step_factory)
    np.testing.assert_allclose(by_callable.history_[:, "lr"], [LR * 0.5**e for e in range(EPOCHS)])


def _step_factory(optimizer):
    return torch_schedulers.StepLR(optimizer, step_size=1, gamma=0.5)


def test_warm_start_continues_the_schedule(iris):
    X, y = iris
    est = TorchClassifier(lr=LR, max_epochs=3, lr_scheduler="step", lr_scheduler__step_size=1,
                          lr_scheduler__gamma=0.5, warm_start=True, random_state=0).fit(X, y)
    est.fit(X, y)
    np.testing.assert_allclose(est.history_[:, "lr"], [LR * 0.5**e for e in range(6)])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"lr_scheduler": "cosinus"}, r"'lr_scheduler' parameter .*Did you mean 'cosine'"),
        ({"lr_scheduler": "step", "lr_scheduler__step_sise": 2}, r"StepLR takes no argument 'step_sise'.*'step_size'"),
        ({"lr_scheduler": "lambda"}, r"needs lr_scheduler__lr_lambda"),
        ({"lr_scheduler__gamma": 0.5}, r"lr_scheduler is None"),
        ({"lr_scheduler": "step", "lr_scheduler__step_every": "week"}, r"'epoch' or 'batch'"),
        ({"lr_scheduler": 3}, r"'lr_scheduler' parameter"),
    ],
)
def test_bad_schedules_are_named(iris, params, match):
    with pytest.raises(ValueError, match=match):
        _fit(iris, **params)


def test_grid_search_over_schedules_clones_cleanly(iris):
    X, y = iris
    base = TorchClassifier(lr=0.01, max_epochs=4, random_state=0)
    grid = [
        {"lr_scheduler": ["cosine", "onecycle", None]},
        {"lr_scheduler": ["step"], "lr_scheduler__step_size": [1, 2], "lr_scheduler__gamma": [0.5, 0.9]},
    ]
    search = GridSearchCV(base, grid, cv=2, error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 7
    best = search.best_estimator_
    assert len(best.history_[:, "lr"]) == 4
    assert clone(best).get_params() == best.get_params()
    assert base.get_params()["lr_scheduler"] is None


def test_scheduled_estimator_pickles(iris):
    est = _fit(iris, lr_scheduler="cosine_warmup")
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(iris[0]), est.predict_proba(iris[0]))


def test_get_and_list():
    assert {"step", "multistep", "exponential", "cosine", "cosine_warmup", "plateau", "onecycle",
            "cyclic", "lambda"} <= set(list_schedulers())
    sched = get_scheduler("onecycle", _optimizer(), max_epochs=4, steps_per_epoch=5)
    assert sched.total_steps == 20
    with pytest.raises(ValueError, match="Unknown scheduler 'cosin'.*Did you mean 'cosine'"):
        get_scheduler("cosin", _optimizer())


def test_warmup_cosine_shape():
    sched = WarmupCosineLR(_optimizer(lr=1.0), warmup_epochs=4, T_max=8, eta_min=0.1,
                           warmup_start_factor=0.2)
    rates = _epoch_sequence(sched, epochs=10)
    np.testing.assert_allclose(rates[:5], [0.2, 0.4, 0.6, 0.8, 1.0])
    expected_cos = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(5)]
    np.testing.assert_allclose(rates[4:9], expected_cos)
    assert rates[9] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="T_max"):
        WarmupCosineLR(_optimizer(), warmup_epochs=3, T_max=3)


def test_schedule_continues_after_unpickling_and_pickle_stays_small(iris):
    X, y = iris
    params = dict(lr=LR, max_epochs=3, lr_scheduler="step", lr_scheduler__step_size=1,
                  lr_scheduler__gamma=0.5, warm_start=True, random_state=0,
                  module__hidden_sizes=(256,))
    est = TorchClassifier(**params).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    restored.fit(X, y)
    np.testing.assert_allclose(restored.history_[:, "lr"], [LR * 0.5**e for e in range(6)])
    # The scheduler is pickled as its state, not with a second copy of the
    # optimizer (and through it of the weights).
    plain = TorchClassifier(**{k: v for k, v in params.items() if not k.startswith("lr_scheduler")})
    plain.fit(X, y)
    assert len(pickle.dumps(est)) < 1.1 * len(pickle.dumps(plain))
