"""Leaks and memory: a failed fit releases what its callbacks opened, graph
logging keeps nothing alive from one fit to the next, and predicting
allocates its output once."""

import gc
import sys
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
from skorch.callbacks import Callback
from tensorboard.backend.event_processing import event_accumulator
from torch import nn

from helpers import run_python
from sktorch import TorchClassifier
from sktorch.callbacks import TensorBoard
from sktorch.callbacks import _tensorboard as tensorboard_module

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads resident sizes in /proc"
)


def _data(n=60, p=4):
    rng = np.random.RandomState(0)
    return rng.normal(size=(n, p)).astype(np.float32), np.arange(n) % 2


class TrainingFailure(Exception):
    """What the failing module and callbacks below raise."""


class FailsInTraining(nn.Module):
    """A linear layer whose forward raises on the ``fail_at``-th training
    batch; the raised exception is kept in ``FailsInTraining.raised``."""

    raised = []

    def __init__(self, in_features, out_features, fail_at=3):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.fail_at = fail_at
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.fail_at:
                FailsInTraining.raised.append(TrainingFailure("forward failed at epoch 2"))
                raise FailsInTraining.raised[-1]
        return self.linear(x)


class FailsAt(Callback):
    """Raises in ``hook``: at once for ``on_train_begin``, in epoch 2 for the
    others; the raised exception is kept in ``raised_``."""

    def __init__(self, hook="on_epoch_end"):
        self.hook = hook

    def initialize(self):
        self.raised_ = None
        return self

    def _fail(self, net, hook):
        if hook == self.hook and (hook == "on_train_begin" or len(net.history) == 2):
            self.raised_ = TrainingFailure(f"{hook} failed")
            raise self.raised_

    def on_train_begin(self, net, **kwargs):
        self._fail(net, "on_train_begin")

    def on_batch_begin(self, net, **kwargs):
        self._fail(net, "on_batch_begin")

    def on_epoch_end(self, net, **kwargs):
        self._fail(net, "on_epoch_end")


class ErrorRecorder(Callback):
    """Records its ``on_train_error`` calls; raises there with ``fail``."""

    def __init__(self, fail=False):
        self.fail = fail

    def initialize(self):
        self.errors_ = []
        return self

    def on_train_error(self, net, exc, X=None, y=None, **kwargs):
        self.errors_.append((exc, X is not None, y is not None))
        if self.fail:
            raise OSError("could not release the resource")


def _new_threads(before):
    return [thread.name for thread in threading.enumerate() if thread not in before]


def _read_run(run_dir):
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    return acc.Reload()


# ------------------------------------------------------------ failed fits
def test_a_fit_whose_module_fails_closes_its_tensorboard_writer(tmp_path):
    X, y = _data()
    FailsInTraining.raised.clear()
    before = set(threading.enumerate())
    clf = TorchClassifier(FailsInTraining, max_epochs=4, batch_size=32, random_state=0,
                          tensorboard=tmp_path)
    with pytest.raises(TrainingFailure) as info:
        clf.fit(X, y)
    # The very exception the module raised, not a wrapper or a successor.
    assert info.value is FailsInTraining.raised[0]
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert _new_threads(before) == []
    callback = dict(clf.net_.callbacks_)["tensorboard"]
    assert callback.writer_ is None
    # The event file is complete: epoch 1, which ended, is all there.
    acc = _read_run(callback.run_dir_)
    train_loss = clf.net_.history[0]["train_loss"]
    assert [(e.step, e.value) for e in acc.Scalars("loss/train")] == [
        (1, pytest.approx(train_loss, rel=1e-6))]
    assert acc.Tags()["graph"]


@pytest.mark.parametrize("hook, steps", [
    # After the writer opened: nothing logged yet, but a thread to end.
    ("on_train_begin", []),
    ("on_batch_begin", [1]),
    # Epoch 2 ended before its on_epoch_end failed: its scalars, which the
    # tensorboard callback placed after the failing one did not write then,
    # are written on the failure.
    ("on_epoch_end", [1, 2]),
])
def test_a_fit_whose_callback_fails_closes_its_tensorboard_writer(tmp_path, hook, steps):
    X, y = _data()
    before = set(threading.enumerate())
    fails = [("fails", FailsAt(hook))]
    tensorboard = [("tb", TensorBoard(tmp_path))]
    callbacks = tensorboard + fails if hook == "on_train_begin" else fails + tensorboard
    clf = TorchClassifier(max_epochs=4, batch_size=32, random_state=0, callbacks=callbacks)
    with pytest.raises(TrainingFailure, match=f"{hook} failed") as info:
        clf.fit(X, y)
    callbacks = dict(clf.net_.callbacks_)
    assert info.value is callbacks["fails"].raised_
    assert _new_threads(before) == []
    assert callbacks["tb"].writer_ is None
    acc = _read_run(callbacks["tb"].run_dir_)
    logged = acc.Scalars("loss/train") if "loss/train" in acc.Tags()["scalars"] else []
    assert [event.step for event in logged] == steps


def test_repeated_failed_fits_leave_no_threads(tmp_path):
    X, y = _data()
    before = set(threading.enumerate())
    for _ in range(3):
        with pytest.raises(TrainingFailure):
            TorchClassifier(max_epochs=3, callbacks=[("fails", FailsAt())],
                            tensorboard=tmp_path).fit(X, y)
    assert _new_threads(before) == []
    assert len(list(tmp_path.iterdir())) == 3


def test_on_train_error_reaches_every_callback_and_the_error_propagates(tmp_path):
    X, y = _data()
    FailsInTraining.raised.clear()
    clf = TorchClassifier(FailsInTraining, max_epochs=3, batch_size=32, random_state=0,
                          callbacks=[("first", ErrorRecorder(fail=True)),
                                     ("second", ErrorRecorder())])
    with pytest.warns(RuntimeWarning, match=r"on_train_error hook of 'first' \(ErrorRecorder\) "
                                            r"failed .*TrainingFailure: OSError: could not "
                                            r"release the resource"):
        with pytest.raises(TrainingFailure) as info:
            clf.fit(X, y)
    assert info.value is FailsInTraining.raised[0]
    callbacks = dict(clf.net_.callbacks_)
    # The failing hook did not keep the next one from running.
    for name in ("first", "second"):
        assert callbacks[name].errors_ == [(info.value, True, True)]


def test_a_hook_failing_under_warnings_as_errors_still_lets_the_error_through():
    X, y = _data()
    FailsInTraining.raised.clear()
    clf = TorchClassifier(FailsInTraining, max_epochs=3, batch_size=32, random_state=0,
                          callbacks=[("first", ErrorRecorder(fail=True))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingFailure) as info:
            clf.fit(X, y)
    assert info.value is FailsInTraining.raised[0]


def test_a_fit_that_succeeds_calls_no_on_train_error():
    X, y = _data()
    clf = TorchClassifier(max_epochs=2, callbacks=[("recorder", ErrorRecorder())]).fit(X, y)
    assert dict(clf.net_.callbacks_)["recorder"].errors_ == []


# ---------------------------------------------------------- graph logging
def test_graph_logging_keeps_nothing_from_one_fit_to_the_next(tmp_path):
    # torch.jit.trace, which SummaryWriter.add_graph used, left a TorchScript
    # class per submodule (about 70 Python objects and 30 kB that tracemalloc
    # sees for this module, and more outside Python's heap) alive per fit.
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing, maybe with too few frames")
    X, y = _data()

    def fit():
        TorchClassifier(max_epochs=1, module__hidden_sizes=(8, 8), random_state=0,
                        callbacks=[("tb", TensorBoard(tmp_path, histograms=False))]).fit(X, y)

    # Memory still held that was allocated under the callback's code: the
    # rest of the process (skorch's, torch's caches) may grow a little
    # between fits for reasons of its own.
    under_callback = [tracemalloc.Filter(True, tensorboard_module.__file__, all_frames=True)]

    def held():
        snapshot = tracemalloc.take_snapshot().filter_traces(under_callback)
        return sum(stat.size for stat in snapshot.statistics("filename"))

    for _ in range(3):
        fit()
    # Enough frames to reach the callback from deep inside torch.jit.
    tracemalloc.start(64)
    try:
        objects, traced = [], []
        for _ in range(5):  # fits 4 to 8
            fit()
            gc.collect()
            objects.append(len(gc.get_objects()))
            traced.append(held())
    finally:
        tracemalloc.stop()
    fits = len(objects) - 1
    assert (objects[-1] - objects[0]) / fits < 5, objects
    # About 0.5 kB per fit stays (protobuf's); torch.jit.trace kept 32 kB.
    assert (traced[-1] - traced[0]) / fits < 5_000, traced


@linux_only
def test_graph_logging_does_not_grow_the_process(tmp_path):
    # What torch.jit.trace kept lives mostly outside Python's heap (about
    # 475 kB per fit of this module): the resident size tells.
    code = f"""
import gc, os
import numpy as np
from sktorch import TorchClassifier
X = np.random.RandomState(0).normal(size=(60, 4)).astype(np.float32)
y = np.arange(60) % 2

def fit():
    TorchClassifier(max_epochs=1, module__hidden_sizes=(8, 8), tensorboard={str(tmp_path)!r}).fit(X, y)

def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

for _ in range(5):
    fit()
gc.collect()
start = resident()
for _ in range(15):
    fit()
gc.collect()
print((resident() - start) / 15)
"""
    per_fit = float(run_python(code, tmp_path).stdout.split()[-1])
    assert per_fit < 100_000, f"the process grew by {per_fit:.0f} bytes per fit"


# -------------------------------------------------------------- prediction
@linux_only
def test_predict_proba_allocates_its_output_once(tmp_path):
    # 200,000 x 20 float32 inputs (16 MB), 20 classes: the float64
    # probabilities are 32 MB. Collecting the batch outputs, concatenating
    # them and casting the whole raised the peak by about 3x the output;
    # written into a preallocated output it rises by the output alone.
    # The peak is the process's VmHWM, reset just before the call: torch's
    # CPU allocations are invisible to tracemalloc, and ru_maxrss keeps,
    # across exec, the peak of the pytest process that started this one.
    code = """
import numpy as np
from torch import nn
from sktorch import TorchClassifier

def status(key):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key))

rng = np.random.RandomState(0)
clf = TorchClassifier(nn.Linear, max_epochs=1, random_state=0).fit(
    rng.normal(size=(200, 20)).astype(np.float32), np.arange(200) % 20)
clf.predict_proba(rng.normal(size=(5000, 20)).astype(np.float32))  # warm up
X = np.random.default_rng(0).standard_normal((200_000, 20), dtype=np.float32)
try:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM := VmRSS
except OSError:
    pass
resident, peak_before = status("VmRSS:"), status("VmHWM:")
proba = clf.predict_proba(X)
print(resident, peak_before, status("VmHWM:"), proba.nbytes)
"""
    resident, peak_before, peak, output = map(
        int, run_python(code, tmp_path).stdout.split()[-4:])
    if peak_before > resident + 4_000_000:
        pytest.skip("the peak resident size could not be reset (/proc/self/clear_refs)")
    assert output == 200_000 * 20 * 8
    growth = peak - resident
    assert growth < 1.5 * output, (
        f"predict_proba raised the peak memory by {growth / output:.2f}x its output")
