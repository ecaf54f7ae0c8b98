"""Checkpoints every epoch, and a resumed fit equal to an uninterrupted one."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sktorch import TorchClassifier


class _StopAfter(Callback):
    """Interrupt training at the end of an epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


PARAMS = dict(module__hidden_sizes=(32, 16), module__dropout=0.2, lr=0.01, max_epochs=6,
              lr_scheduler="cosine", validation_fraction=0.2, batch_size=16, random_state=0)


def test_interrupted_fit_resumes_to_the_same_weights(iris, tmp_path):
    X, y = iris
    full = TorchClassifier(**PARAMS).fit(X, y)

    cut = TorchClassifier(**PARAMS, checkpoint_dir=tmp_path, callbacks=[_StopAfter(3)]).fit(X, y)
    assert len(cut.history_) == 3
    run_dir = cut.checkpoint_path_
    assert run_dir.parent == tmp_path

    resumed = TorchClassifier(**PARAMS, resume_from=run_dir).fit(X, y)
    assert len(resumed.history_) == 6
    for key, value in full.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key
    assert resumed.history_[:, "train_loss"] == full.history_[:, "train_loss"]
    assert resumed.history_[:, "lr"] == full.history_[:, "lr"]
    np.testing.assert_array_equal(resumed.predict_proba(X), full.predict_proba(X))


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
    with pytest.raises(ValueError, match="does not fit this estimator's module"):
        TorchClassifier(module__hidden_sizes=(7,), resume_from=est.checkpoint_path_).fit(X, y)
