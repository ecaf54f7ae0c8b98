"""Checkpoints every epoch, and a resumed fit equal to an uninterrupted one."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, EpochScoring

from sktorch import TorchClassifier
from sktorch.exceptions import InvalidParameterError


class _StopAfter(Callback):
    """Interrupt training at the end of an epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


PARAMS = dict(module__hidden_sizes=(32, 16), module__dropout=0.2, lr=0.01, max_epochs=6,
              lr_scheduler="cosine", validation_fraction=0.2, batch_size=16, random_state=0)

# A fit that early stopping ends at epoch 6 of 10, its validation loss going
# up and down before (a large learning rate).
ES_PARAMS = dict(module__hidden_sizes=(8,), lr=1.0, optimizer="sgd", max_epochs=10,
                 validation_fraction=0.3, early_stopping=2, batch_size=16, random_state=0)


def _epochs_done(net, X, y):
    return float(len(net.history))


def _history(est):
    """The history, without the epochs' durations."""
    return [{k: v for k, v in row.items() if k != "dur"} for row in est.history_]


def _assert_same_fit(expected, got, X):
    for key, value in expected.module_.state_dict().items():
        assert torch.equal(value, got.module_.state_dict()[key]), key
    np.testing.assert_array_equal(got.predict_proba(X), expected.predict_proba(X))
    assert _history(got) == _history(expected)


def test_interrupted_fit_resumes_to_the_same_weights(iris, tmp_path):
    X, y = iris
    full = TorchClassifier(**PARAMS).fit(X, y)

    cut = TorchClassifier(**PARAMS, checkpoint_dir=tmp_path, callbacks=[_StopAfter(3)]).fit(X, y)
    assert len(cut.history_) == 3
    run_dir = cut.checkpoint_path_
    assert run_dir.parent == tmp_path

    resumed = TorchClassifier(**PARAMS, resume_from=run_dir).fit(X, y)
    assert len(resumed.history_) == 6
    _assert_same_fit(full, resumed, X)


def test_resume_with_early_stopping_matches_the_uninterrupted_fit(iris, tmp_path):
    # Early stopping's best score, epochs without improvement and best
    # weights, and the valid_loss_best flags, continue from the checkpoint.
    X, y = iris
    full = TorchClassifier(**ES_PARAMS).fit(X, y)
    assert len(full.history_) == 6
    assert full.history_[:, "valid_loss_best"] == [True, True, False, True, False, False]
    for cut in (2, 5):
        cut_fit = TorchClassifier(**ES_PARAMS, checkpoint_dir=tmp_path,
                                  callbacks=[_StopAfter(cut)]).fit(X, y)
        resumed = TorchClassifier(**ES_PARAMS, resume_from=cut_fit.checkpoint_path_).fit(X, y)
        _assert_same_fit(full, resumed, X)


def test_resuming_a_fit_early_stopping_ended_trains_no_more(iris, tmp_path):
    X, y = iris
    done = TorchClassifier(**ES_PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    assert torch.load(done.checkpoint_path_ / "last.pt", weights_only=True)["epoch"] == 6
    resumed = TorchClassifier(**ES_PARAMS, resume_from=done.checkpoint_path_).fit(X, y)
    _assert_same_fit(done, resumed, X)


def test_resume_keeps_the_validation_split_and_random_state_of_the_checkpoint(iris, tmp_path):
    # random_state may change (or be None) on resume: the split's seed and
    # the random state come from the checkpoint.
    X, y = iris
    full = TorchClassifier(**PARAMS).fit(X, y)
    cut = TorchClassifier(**PARAMS, checkpoint_dir=tmp_path, callbacks=[_StopAfter(4)]).fit(X, y)
    resumed = TorchClassifier(**{**PARAMS, "random_state": 1},
                              resume_from=cut.checkpoint_path_).fit(X, y)
    _assert_same_fit(full, resumed, X)


def test_resume_with_changed_hyperparameters_is_an_error(iris, tmp_path):
    X, y = iris
    params = {**PARAMS, "max_epochs": 3, "lr_scheduler": "onecycle"}
    cut = TorchClassifier(**params, checkpoint_dir=tmp_path, callbacks=[_StopAfter(2)]).fit(X, y)
    changed = {**params, "lr": 0.05, "max_epochs": 4, "optimizer": "sgd",
               "module__hidden_sizes": (8,)}
    with pytest.raises(InvalidParameterError) as info:
        TorchClassifier(**changed, resume_from=cut.checkpoint_path_).fit(X, y)
    message = str(info.value)
    assert "cannot resume from" in message
    for line in ("lr: 0.01 in the checkpoint, 0.05 now",
                 "max_epochs: 3 in the checkpoint, 4 now",
                 "module__hidden_sizes: (32, 16) in the checkpoint, (8,) now",
                 "optimizer: 'adam' in the checkpoint, 'sgd' now"):
        assert line in message
    assert "lr_scheduler:" not in message and "random_state" not in message
    # What does not change the trajectory may change.
    free = {**params, "verbose": 0, "device": "cpu", "random_state": None}
    TorchClassifier(**free, resume_from=cut.checkpoint_path_).fit(X, y)
    # A scoring callback's state is in the checkpoint: resuming without it
    # would lose its best score.
    scored = TorchClassifier(**params, checkpoint_dir=tmp_path, callbacks=[
        EpochScoring(_epochs_done, name="acc", lower_is_better=False), _StopAfter(2)]).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"state of the callbacks \['EpochScoring', 'train_loss'"):
        TorchClassifier(**params, resume_from=scored.checkpoint_path_).fit(X, y)


def test_resume_with_an_epoch_schedule_and_accumulation(iris, tmp_path):
    X, y = iris
    params = {**PARAMS, "lr_scheduler": "onecycle", "accumulate_grad_batches": 2,
              "optimizer": "sgd", "optimizer__momentum": 0.9}
    full = TorchClassifier(**params).fit(X, y)
    cut = TorchClassifier(**params, checkpoint_dir=tmp_path, callbacks=[_StopAfter(2)]).fit(X, y)
    resumed = TorchClassifier(**params, resume_from=cut.checkpoint_path_ / "last.pt").fit(X, y)
    for key, value in full.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key


def test_last_and_best_files(iris, tmp_path):
    X, y = iris
    est = TorchClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    files = sorted(p.name for p in est.checkpoint_path_.iterdir())
    assert files == ["best.pt", "last.pt"]  # no temporary files left behind
    last = torch.load(est.checkpoint_path_ / "last.pt", weights_only=True)
    best = torch.load(est.checkpoint_path_ / "best.pt", weights_only=True)
    assert last["epoch"] == 6
    valid = est.history_[:, "valid_loss"]
    assert best["epoch"] == int(np.argmin(valid)) + 1
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, last["module"][key])


def test_parallel_fits_write_their_own_directories(iris, tmp_path):
    X, y = iris
    GridSearchCV(TorchClassifier(max_epochs=1, checkpoint_dir=tmp_path, random_state=0),
                 {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2, error_score="raise").fit(X, y)
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 2 * 2 + 1  # every fold of every candidate, and the refit
    assert all((run / "last.pt").is_file() for run in runs)


def test_resume_errors(iris, tmp_path):
    X, y = iris
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        TorchClassifier(resume_from=tmp_path / "nothing").fit(X, y)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="Could not read the checkpoint"):
        TorchClassifier(resume_from=broken).fit(X, y)
    est = TorchClassifier(max_epochs=1, checkpoint_dir=tmp_path, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"module__hidden_sizes: \(not set\) in the checkpoint"):
        TorchClassifier(max_epochs=1, module__hidden_sizes=(7,),
                        resume_from=est.checkpoint_path_).fit(X, y)
