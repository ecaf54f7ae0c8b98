"""What a fit prints: the epoch table on stdout, the batch bar on stderr."""

import math
import pickle
import re

import pytest
from skorch.callbacks import Callback

from sktorch import TorchClassifier
from sktorch.callbacks._metrics import ValidationMetrics
from sktorch.callbacks._progress import BatchProgress, EpochTable


def parse_table(text):
    lines = [line for line in text.splitlines() if line.strip()]
    header, rule, rows = lines[0].split(), lines[1], lines[2:]
    assert set(rule.replace(" ", "")) == {"-"}
    return header, [row.split() for row in rows], lines


def test_one_row_per_epoch_with_the_history_values(iris, capsys):
    X, y = iris
    clf = TorchClassifier(max_epochs=4, lr=0.02, validation_fraction=0.25, random_state=0,
                          callbacks=[("metrics", ValidationMetrics(("accuracy", "f1_macro"))),
                                     ("table", EpochTable())]).fit(X, y)
    out, err = capsys.readouterr()
    assert err == ""
    header, rows, lines = parse_table(out)
    assert header == ["epoch", "train_loss", "valid_loss", "valid_accuracy", "valid_f1_macro",
                      "lr", "dur"]
    assert len(rows) == len(clf.history_) == 4
    best = math.inf
    for row, record in zip(rows, clf.history_):
        marked = row[2].endswith("*")
        cells = [cell.rstrip("*") for cell in row]
        assert int(cells[0]) == record["epoch"]
        for cell, key in zip(cells[1:5], header[1:5]):
            assert cell == f"{record[key]:.4f}", key
        assert cells[5] == f"{record['lr']:.4g}"
        assert cells[6] == f"{record['dur']:.2f}"
        # The mark: a new lowest validation loss.
        assert marked == (record["valid_loss"] < best)
        best = min(best, record["valid_loss"])
    assert rows[0][2].endswith("*")
    # Aligned: every column ends at the same position on every line.
    ends = [[m.end() for m in re.finditer(r"\S+", line)] for line in lines]
    normalized = [[end - (1 if line[end - 1] == "*" else 0) for end in row]
                  for row, line in zip(ends, lines)]
    assert all(row == normalized[0] for row in normalized[2:])


def test_without_validation_the_training_loss_is_marked(iris):
    X, y = iris
    lines = []
    TorchClassifier(max_epochs=3, lr=0.02, random_state=0,
                    callbacks=[EpochTable(sink=lines.append)]).fit(X, y)
    header, rows, _ = parse_table("\n".join(lines))
    assert header == ["epoch", "train_loss", "lr", "dur"]
    assert len(rows) == 3 and rows[0][1].endswith("*")


def test_table_prints_the_epoch_another_callback_ended(iris):
    class StopAtTwo(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    X, y = iris
    lines = []
    # StopAtTwo runs first and ends epoch 2 before the table prints it.
    TorchClassifier(max_epochs=5, random_state=0, callbacks=[
        ("stop", StopAtTwo()), ("table", EpochTable(sink=lines.append))]).fit(X, y)
    _, rows, _ = parse_table("\n".join(lines))
    assert [row[0] for row in rows] == ["1", "2"]


def test_warm_start_continues_the_table_without_a_second_header(iris):
    X, y = iris
    lines = []
    clf = TorchClassifier(max_epochs=2, warm_start=True, random_state=0,
                          callbacks=[EpochTable(sink=lines.append)])
    clf.fit(X, y).fit(X, y)
    header, rows, _ = parse_table("\n".join(lines))
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]


def test_batch_progress_bar_on_stderr(iris, capsys):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, batch_size=16, validation_fraction=0.2, random_state=0,
                          callbacks=[("bar", BatchProgress(mininterval=0))]).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    # 120 training rows in batches of 16, 30 validation rows: 8 + 2 batches.
    frames = err.split("\r")
    for epoch in (1, 2):
        final = [f for f in frames if f.startswith(f"epoch {epoch}:") and "10/10" in f]
        assert final, err[-500:]
        record = clf.history_[epoch - 1]
        assert f"train_loss={record['train_loss']:.4f}" in final[-1]
        assert f"valid_loss={record['valid_loss']:.4f}" in final[-1]
    callback = dict(clf.net_.callbacks_)["bar"]
    assert callback.bar_ is None
    pickle.loads(pickle.dumps(clf))


class PickleMidEpoch(Callback):
    def on_batch_end(self, net, **kwargs):
        self.size_ = len(pickle.dumps(net.estimator))


def test_bar_is_dropped_from_pickles_mid_epoch(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, callbacks=[
        ("bar", BatchProgress()), ("pickle", PickleMidEpoch())])
    clf.fit(X, y)
    assert dict(clf.net_.callbacks_)["pickle"].size_ > 0


@pytest.mark.parametrize("callback", [EpochTable(), BatchProgress(leave=True)])
def test_clone(callback):
    from sklearn.base import clone

    clf = TorchClassifier(callbacks=[callback])
    assert clone(clf).callbacks[0].get_params() == callback.get_params()


def test_replaces_skorchs_print_log_and_prints_before_early_stopping(iris, capsys):
    # The estimators' wiring for verbose=1: skorch's PrintLog disabled, the
    # table after the metrics and before EarlyStopping.
    X, y = iris
    clf = TorchClassifier(max_epochs=40, lr=0.05, verbose=1, early_stopping=2, random_state=0,
                          metrics=("accuracy",)).fit(X, y)
    names = [name for name, _ in clf.net_.callbacks_]
    assert "print_log" not in names
    assert names.index("metrics") < names.index("epoch_table") < names.index("early_stopping")
    lines = capsys.readouterr().out.splitlines()
    n_epochs = len(clf.history_)
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "valid_accuracy", "lr", "dur"]
    assert [line.split()[0] for line in lines[2:2 + n_epochs]] == [
        str(e) for e in range(1, n_epochs + 1)]
    if n_epochs < 40:
        assert lines[2 + n_epochs].startswith("Stopping since valid_loss has not improved")
