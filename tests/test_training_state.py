"""One training-state format: a checkpoint and sktorch.save(include_optimizer=True) hold the same."""

import numpy as np
import pytest
import torch
from helpers import read_document, rewrite

import sktorch
from sktorch import TorchClassifier
from sktorch._engine._state import (
    APPLIED_ON_CONTINUING,
    CONTINUATION_RULES,
    capture_training_state,
    free_on_resume,
    restore_training_state,
    trajectory_hyperparameters,
)
from sktorch._io._archive import read_archive
from sktorch._io._codec import Decoder
from sktorch._io._trust import Trust
from sktorch.exceptions import InvalidParameterError, WeightsMismatchError

pytestmark = pytest.mark.filterwarnings("ignore::sktorch.exceptions.ResetOnLoadWarning")

# Early stopping (its best weights among the state), a schedule, validation.
PARAMS = dict(module__hidden_sizes=(8,), lr=0.05, optimizer="sgd", optimizer__momentum=0.9,
              max_epochs=4, lr_scheduler="cosine", validation_fraction=0.3, early_stopping=5,
              batch_size=16, random_state=0, device="cpu")


def assert_same(a, b, where="state"):
    """Same keys, equal tensors and values, all the way down."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a, key=repr) == sorted(b, key=repr), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def saved_training_state(path):
    document, _, tensors = read_archive(path)
    return Decoder(Trust(()), tensors, path).decode(document["training"], "training")


@pytest.fixture(scope="module")
def fitted(iris, tmp_path_factory):
    X, y = iris
    est = TorchClassifier(**PARAMS, checkpoint_dir=tmp_path_factory.mktemp("runs")).fit(X, y)
    path = tmp_path_factory.mktemp("files") / "full.sktorch"
    sktorch.save(est, path, include_optimizer=True)
    return est, path, X, y


def test_checkpoint_and_save_hold_the_same_training_state(fitted):
    est, path, _, _ = fitted
    checkpoint = torch.load(est.checkpoint_path_ / "last.pt", weights_only=True)
    saved = saved_training_state(path)
    assert sorted(saved) == ["callbacks", "optimizer", "rng", "scaler", "scheduler"]
    assert sorted(saved["callbacks"]) == ["early_stopping", "train_loss", "valid_loss"]
    assert saved["callbacks"]["early_stopping"]["best_model_weights_"]  # weights, not None
    assert saved["optimizer"]["state"]  # momentum buffers
    assert saved["scheduler"] is not None
    assert_same(checkpoint["training"], saved)
    # And both are what the fitted estimator holds now.
    assert_same(capture_training_state(est.net_, rng=est._rng_state), saved)


def test_a_loaded_estimator_continues_with_the_callbacks_state(iris, tmp_path):
    # The scoring callbacks' best scores come back too: the *_best flags of
    # the next epochs are the ones the saved estimator would write.
    X, y = iris
    est = TorchClassifier(**PARAMS).fit(X, y)
    sktorch.save(est, tmp_path / "full.sktorch", include_optimizer=True)
    loaded = sktorch.load(tmp_path / "full.sktorch")
    for model in (est, loaded):
        model.set_params(max_epochs=2, warm_start=True).fit(X, y)
    for a, b in zip(est.module_.state_dict().values(), loaded.module_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    keys = ("valid_loss", "valid_loss_best", "train_loss_best", "lr")
    assert [[row[k] for k in keys] for row in loaded.history_] == [
        [row[k] for k in keys] for row in est.history_]
    # Not vacuous: the first epoch after the save is no new best, which a
    # scoring callback starting afresh would have flagged as one.
    assert loaded.history_[:, "valid_loss_best"][4:] == [False, True]


def test_a_format_1_file_loads_without_the_callbacks_and_random_state(iris, tmp_path):
    X, y = iris
    params = {k: v for k, v in PARAMS.items() if k != "early_stopping"}
    est = TorchClassifier(**params).fit(X, y)
    path = tmp_path / "old.sktorch"
    sktorch.save(est, path, include_optimizer=True)
    document = read_document(path)
    document["format_version"] = 1
    for key in ("rng", "callbacks"):
        del document["training"][key]
    rewrite(path, document)
    loaded = sktorch.load(path)
    for model in (est, loaded):
        model.partial_fit(X, y)
    for a, b in zip(est.module_.state_dict().values(), loaded.module_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("edit, match", [
    (lambda t: t["callbacks"]["valid_loss"].update(misses_=1), "must hold \\['best_score_'\\]"),
    (lambda t: t["callbacks"]["valid_loss"].update(best_score_="x"), "invalid best_score_"),
    (lambda t: t["callbacks"].pop("valid_loss"), "state of the callbacks"),
    (lambda t: t["rng"].update(cpu=[1, 2]), "not a torch random state"),
    (lambda t: t.pop("scaler"), "must hold \\['optimizer'"),
])
def test_a_crafted_training_state_is_refused(fitted, tmp_path, edit, match):
    _, path, _, _ = fitted
    crafted = tmp_path / "crafted.sktorch"
    crafted.write_bytes(path.read_bytes())
    document = read_document(crafted)
    edit(document["training"])
    rewrite(crafted, document)
    with pytest.raises(WeightsMismatchError, match=match):
        sktorch.load(crafted)


def test_restore_errors_name_the_source_and_the_fix(fitted):
    est, _, _, _ = fitted
    state = capture_training_state(est.net_, rng=est._rng_state)
    state["callbacks"] = {"other": {}}
    with pytest.raises(InvalidParameterError,
                       match=r"in the checkpoint 'x' holds the state of the callbacks \['other'\]; "
                             r"this TorchClassifier has .*Do this\.$"):
        restore_training_state(est.net_, state, source="the checkpoint 'x'",
                               error=InvalidParameterError, hint="Do this.", at_train_begin=True)


def test_one_table_of_hyperparameter_rules():
    # What a continuing fit applies, and what a resumed one may change.
    assert APPLIED_ON_CONTINUING == ("batch_size", "lr", "max_epochs", "tta", "warm_start")
    assert [n for n in ("tta", "warm_start", "device", "verbose", "random_state",
                        "compile__mode", "callbacks__x__y", "iterator_valid__num_workers")
            if free_on_resume(n)] == ["tta", "warm_start", "device", "verbose", "random_state",
                                      "compile__mode", "callbacks__x__y",
                                      "iterator_valid__num_workers"]
    for name in ("lr", "batch_size", "max_epochs", "module", "optimizer__momentum",
                 "iterator_train__shuffle", "module__hidden_sizes"):
        assert not free_on_resume(name), name
    assert all(isinstance(rule.free_on_resume, bool) and isinstance(rule.applied_on_continuing,
                                                                     bool)
               for rule in CONTINUATION_RULES.values())
    described = trajectory_hyperparameters(TorchClassifier(**PARAMS))
    assert described["lr"] == "0.05" and described["module__hidden_sizes"] == "(8,)"
    assert "device" not in described and "random_state" not in described
    assert np.all([not free_on_resume(name) for name in described])
