"""strategy='ddp': data-parallel training in worker processes (gloo on the CPU).

Each data-parallel fit starts two fresh Python processes (a few seconds of
imports), so the fits are shared between tests where they can be.
"""

import json
import os
import pickle
import tempfile

import numpy as np
import pytest
import torch
from torch import nn
from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException

from sktorch import TorchClassifier, TorchRegressor
from sktorch._engine._distributed import _first_error, _write_error
from sktorch._utils._validation import SklearnInvalidParameterError
from sktorch.exceptions import DeviceError, InvalidParameterError

# 120 training rows after the validation split; batches of 17 leave a last
# batch of one row, so the two processes get unequal shares (9 and 8 rows)
# and, in the last batch, process 1 none at all.
PARAMS = dict(max_epochs=2, batch_size=17, lr=0.01, random_state=0, device="cpu",
              validation_fraction=0.2, module__hidden_sizes=(16,))


class FailsOnRank1(nn.Module):
    """A module whose training forward pass raises in the process of rank 1,
    while rank 0 goes on to wait for it in the gradient all-reduce."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        if self.training and torch.distributed.is_initialized() \
                and torch.distributed.get_rank() == 1:
            raise RuntimeError("forward failed on rank 1")
        return self.linear(x)


@pytest.fixture(scope="module")
def fits(iris):
    X, y = iris
    single = TorchClassifier(**PARAMS).fit(X, y)
    state = torch.get_rng_state()
    parallel = TorchClassifier(strategy="ddp", devices=2, **PARAMS).fit(X, y)
    # The caller's global random state is left as it was, as by any fit.
    assert torch.equal(torch.get_rng_state(), state)
    return single, parallel


def test_ddp_gives_the_weights_of_the_single_process_fit(fits, iris):
    single, parallel = fits
    expected, got = single.module_.state_dict(), parallel.module_.state_dict()
    assert list(got) == list(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6)
    # Not merely the same initial weights: one epoch fewer differs.
    shorter = TorchClassifier(**{**PARAMS, "max_epochs": 1}).fit(*iris)
    assert not torch.allclose(shorter.module_.state_dict()["layers.0.weight"],
                              got["layers.0.weight"], atol=1e-4)


def test_ddp_history_records_the_global_batches(fits):
    single, parallel = fits
    assert len(parallel.history_) == 2
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(parallel.history_[:, key], single.history_[:, key], rtol=1e-5)
    # One row per global batch, with the global batch's size: 7 of 17, then 1.
    sizes = parallel.history_[-1, "batches", :, "train_batch_size"]
    assert sizes == [17] * 7 + [1]
    np.testing.assert_allclose(parallel.history_[-1, "batches", :, "train_loss"],
                               single.history_[-1, "batches", :, "train_loss"], rtol=1e-5)


def test_ddp_fit_is_an_ordinary_estimator(fits, iris):
    single, parallel = fits
    X, _ = iris
    assert not isinstance(parallel.module_, nn.parallel.DistributedDataParallel)
    assert parallel.net_._shard is None
    assert not torch.distributed.is_initialized()
    restored = pickle.loads(pickle.dumps(parallel))
    np.testing.assert_array_equal(restored.predict(X), single.predict(X))
    np.testing.assert_allclose(restored.predict_proba(X), single.predict_proba(X), atol=1e-5)
    assert restored.get_params()["strategy"] == "ddp"
    assert restored.net_.estimator is restored


def _leftovers(directory):
    """What a fit left in ``directory``, the temporary directory it used:
    everything but torch's compile cache, a per-user directory torch keeps
    there by design (it appears at the first fit of any kind)."""
    return sorted(name for name in os.listdir(directory)
                  if not name.startswith("torchinductor_"))


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    """A temporary directory of this test's own, so that files other
    processes leave in the system's do not count."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_crashing_worker_fails_fit(iris, private_tempdir):
    X, y = iris
    clf = TorchClassifier(FailsOnRank1, strategy="ddp", devices=2, device="cpu", max_epochs=1,
                          random_state=0)
    with pytest.raises(RuntimeError,
                       match=r"(?s)failed in process 1 \(pid \d+\).*forward failed on rank 1"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")
    # Neither the launcher's error files (pytorch-errorfile-*) nor the
    # fit's own directory are left behind.
    assert _leftovers(private_tempdir) == []


def test_a_cut_short_launcher_report_still_names_the_process(iris, private_tempdir,
                                                            monkeypatch):
    # A worker killed while torch's launcher wrapper writes its report
    # leaves the file cut short, and the launcher's join then raises
    # EOFError: the fit must still fail with the process named. The report
    # is cut short here, after the worker wrote it and before join reads it.
    join = torch.multiprocessing.ProcessContext.join

    def join_after_cutting(self, *args, **kwargs):
        # Rank 1 fails; rank 0 then fails too, its peer gone.
        for process in self.processes:
            process.join(60)
        for path in self.error_files:
            if os.path.exists(path):
                open(path, "wb").close()
        return join(self, *args, **kwargs)

    monkeypatch.setattr(torch.multiprocessing.ProcessContext, "join", join_after_cutting)
    clf = TorchClassifier(FailsOnRank1, strategy="ddp", devices=2, device="cpu", max_epochs=1,
                          random_state=0)
    with pytest.raises(RuntimeError,
                       match=r"(?s)failed in process 1 \(pid \d+\).*forward failed on rank 1",
                       ) as info:
        clf.fit(*iris)
    # The launcher could not read the report it picked.
    assert isinstance(info.value.__cause__, ProcessExitedException)
    assert "could not be read" in str(info.value.__cause__)
    assert _leftovers(private_tempdir) == []


def test_an_interrupted_fit_ends_its_workers(iris, private_tempdir, monkeypatch):
    # Ctrl-C while the parent waits for its workers: they must not train on
    # unattended, nor write into the temporary directory being removed.
    started = []

    def start_processes(*args, **kwargs):
        context = start(*args, **kwargs)
        started.append(context)
        return context

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    start = torch.multiprocessing.start_processes
    monkeypatch.setattr(torch.multiprocessing, "start_processes", start_processes)
    monkeypatch.setattr(torch.multiprocessing.ProcessContext, "join", interrupted)
    clf = TorchClassifier(strategy="ddp", devices=2, **PARAMS)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(*iris)
    (context,) = started
    assert [process.exitcode is not None for process in context.processes] == [True, True]
    assert _leftovers(private_tempdir) == []


def _write_record(directory, rank, when, pid, traceback):
    with open(directory / f"error-{rank}.json", "w") as file:
        json.dump({"time": when, "pid": pid, "traceback": traceback}, file)


def test_the_first_error_is_the_earliest_record(tmp_path):
    # The launcher reports rank 0, which exited first, but rank 1 failed
    # first and brought rank 0 down.
    _write_record(tmp_path, 0, 2.0, 100, "Connection closed by peer")
    _write_record(tmp_path, 1, 1.0, 101, "forward failed on rank 1")
    raised = ProcessRaisedException("Connection closed by peer", error_index=0, error_pid=100)
    assert _first_error(str(tmp_path), raised) == (1, 101, "forward failed on rank 1")


def test_a_worker_records_its_error_whole(tmp_path):
    _write_error(str(tmp_path), 1, "Traceback: forward failed on rank 1")
    # The record is renamed into place: no partial file remains beside it.
    assert os.listdir(tmp_path) == ["error-1.json"]
    raised = ProcessRaisedException("launcher", error_index=1, error_pid=0)
    assert _first_error(str(tmp_path), raised) == (
        1, os.getpid(), "Traceback: forward failed on rank 1")


@pytest.mark.parametrize("content", ["", '{"time": 1.0, "pid": 101, "trace',
                                     '{"time": 1.0}', "1.0\nTraceback", "[]"])
def test_an_unreadable_record_falls_back_to_the_launcher(tmp_path, content):
    # A record the launcher's process did not finish (ended as it wrote,
    # by an older writer, or by anything else) names no time to compare:
    # the launcher's report names the process, its pid and traceback.
    (tmp_path / "error-1.json").write_text(content)
    _write_record(tmp_path, 0, 2.0, 100, "Connection closed by peer")
    raised = ProcessRaisedException(
        "\n\n-- Process 1 terminated with the following error:\nforward failed on rank 1",
        error_index=1, error_pid=101)
    assert _first_error(str(tmp_path), raised) == (
        1, 101, "-- Process 1 terminated with the following error:\nforward failed on rank 1")


def test_a_killed_worker_is_named_by_the_launcher(tmp_path):
    # Killed (say, for memory), rank 1 recorded nothing; rank 0's record is
    # the consequence, the lost connection, not the cause.
    _write_record(tmp_path, 0, 2.0, 100, "Connection closed by peer")
    killed = ProcessExitedException("process 1 terminated with signal SIGKILL", error_index=1,
                                    error_pid=101, exit_code=-9, signal_name="SIGKILL")
    assert _first_error(str(tmp_path), killed) == (
        1, 101, "process 1 terminated with signal SIGKILL")


def test_one_device_trains_in_this_process(regression_data):
    X, Y = regression_data
    params = dict(max_epochs=2, random_state=0, device="cpu")
    single = TorchRegressor(**params).fit(X, Y)
    one = TorchRegressor(strategy="ddp", devices=1, **params).fit(X, Y)
    np.testing.assert_array_equal(one.predict(X), single.predict(X))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(devices=2), r"'devices' parameter of TorchClassifier is 2, but strategy is None"),
        (dict(strategy="ddp"), r"needs the number of processes: set devices"),
        (dict(strategy="ddp", devices=0), r"'devices' parameter of TorchClassifier must be an"),
        (dict(strategy="dp", devices=2), r"'strategy' parameter of TorchClassifier must be a"),
        (dict(strategy="ddp", devices=2, checkpoint_dir="runs"),
         r"'checkpoint_dir' parameter of TorchClassifier is not supported"),
        (dict(strategy="ddp", devices=2, tensorboard="runs"),
         r"'tensorboard' parameter of TorchClassifier is not supported"),
    ],
)
def test_ddp_parameter_errors(iris, params, match):
    # (scikit-learn's InvalidParameterError, sktorch's subclasses it.)
    with pytest.raises(SklearnInvalidParameterError, match=match):
        TorchClassifier(device="cpu", **params).fit(*iris)


def test_ddp_on_more_gpus_than_there_are_is_an_error(iris):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        with pytest.raises(DeviceError, match="CUDA is not available"):
            TorchClassifier(strategy="ddp", devices=2, device="cuda").fit(*iris)
    devices = torch.cuda.device_count() + 1
    if device == "cuda":
        with pytest.raises(InvalidParameterError, match=f"has {devices - 1} CUDA device"):
            TorchClassifier(strategy="ddp", devices=devices, device="cuda").fit(*iris)


def test_weighted_ddp_gives_the_weights_of_the_weighted_single_process_fit(iris):
    """Each process's share of a batch holds a different total weight: the
    step divides by the global batch's weight, as one process would."""
    X, y = iris
    weights = np.random.RandomState(1).randint(0, 4, len(y)).astype(float)
    single = TorchClassifier(**PARAMS).fit(X, y, sample_weight=weights)
    parallel = TorchClassifier(strategy="ddp", devices=2, **PARAMS).fit(
        X, y, sample_weight=weights)
    expected, got = single.module_.state_dict(), parallel.module_.state_dict()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6)
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(parallel.history_[:, key], single.history_[:, key], rtol=1e-5)
