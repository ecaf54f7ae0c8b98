"""What a fit prints: a table row per epoch, a progress bar over batches."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from numbers import Real
from typing import Any

from skorch.callbacks import Callback

__all__ = ["BatchProgress", "EpochTable"]


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


class EpochTable(Callback):
    """Print one aligned row per epoch: losses, validation metrics, learning
    rate and duration.

    The columns are ``epoch``, ``train_loss``, ``valid_loss``, every other
    ``valid_*`` metric of the history (in the order recorded), ``lr`` and
    ``dur`` (seconds), those present at the first epoch; the header is
    printed once. A ``*`` follows the validation loss (the training loss
    without validation) of each epoch that improves on all before it.
    Losses and metrics have ``floatfmt`` digits, the learning rate 4
    significant ones.

    Place it after the callbacks that record metrics and before
    ``EarlyStopping``, so each row is printed before that one's message
    about stopping. An epoch that a callback before it ended (skorch's
    ``EarlyStopping`` raises inside ``on_epoch_end``) is printed when
    training ends. Estimators that print this table disable skorch's own
    ``PrintLog`` (``callbacks__print_log=None``).

    Parameters
    ----------
    sink : callable, default=print
        Called with each line (header, rule, rows).
    floatfmt : str, default='.4f'
        Format of losses and metrics.

    Attributes
    ----------
    columns_ : list of str or None
        The history keys printed, fixed at the first row.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> from sktorch.callbacks import EpochTable
    >>> X, y = load_iris(return_X_y=True)
    >>> lines = []
    >>> clf = TorchClassifier(max_epochs=2, random_state=0,
    ...                       callbacks=[("table", EpochTable(sink=lines.append))]).fit(X, y)
    >>> lines[0].split()
    ['epoch', 'train_loss', 'lr', 'dur']
    >>> len(lines)  # header, rule, one row per epoch
    4
    """

    def __init__(self, sink: Callable[[str], Any] = print, floatfmt: str = ".4f") -> None:
        self.sink = sink
        self.floatfmt = floatfmt

    def initialize(self) -> EpochTable:
        self.columns_ = None
        self.rows_printed_ = 0
        self.best_ = math.inf
        return self

    def on_epoch_end(self, net, **kwargs: Any) -> None:
        self._print_pending(net)

    def on_train_end(self, net, **kwargs: Any) -> None:
        self._print_pending(net)

    # ----------------------------------------------------------------- table
    def _choose_columns(self, row: dict[str, Any]) -> list[str]:
        columns = ["epoch", "train_loss"]
        if "valid_loss" in row:
            columns.append("valid_loss")
        columns += [
            key for key in row
            if key.startswith("valid_") and key != "valid_loss"
            and not key.endswith(("_best", "_batch_count")) and _is_number(row[key])
        ]
        columns += [key for key in ("lr", "dur") if key in row]
        return columns

    def _width(self, key: str) -> int:
        return max(len(key), 8 if key != "epoch" else 5)

    def _format(self, key: str, value: Any) -> str:
        if not _is_number(value):
            return ""
        if key == "epoch":
            return str(int(value))
        if key == "lr":
            return f"{value:.4g}"
        if key == "dur":
            return f"{value:.2f}"
        return format(value, self.floatfmt)

    def _line(self, cells: list[str]) -> str:
        # Each cell is right-aligned and followed by one mark character.
        return "  ".join(
            f"{cell:>{self._width(key)}}{mark}" for key, (cell, mark) in zip(self.columns_, cells)
        ).rstrip()

    def _print_pending(self, net) -> None:
        history = net.history
        for index in range(self.rows_printed_, len(history)):
            row = history[index]
            if self.columns_ is None:
                self.columns_ = self._choose_columns(row)
                self._emit(self._line([(key, " ") for key in self.columns_]))
                self._emit(self._line([("-" * self._width(key), " ") for key in self.columns_]))
            watched = "valid_loss" if "valid_loss" in self.columns_ else "train_loss"
            cells = []
            for key in self.columns_:
                value = row.get(key)
                mark = " "
                if key == watched and _is_number(value) and value < self.best_:
                    self.best_ = value
                    mark = "*"
                cells.append((self._format(key, value), mark))
            self._emit(self._line(cells))
        self.rows_printed_ = len(history)

    def _emit(self, text: str) -> None:
        self.sink(text)
        if self.sink is print:
            sys.stdout.flush()


class BatchProgress(Callback):
    """A tqdm progress bar over the batches of each epoch, on stderr.

    The bar counts the training and validation batches of the epoch and
    shows the running mean (weighted by batch size) of the training loss
    and, during validation, of the validation loss; it is erased when the
    epoch ends, unless ``leave=True``.

    Parameters
    ----------
    leave : bool, default=False
        Keep each epoch's finished bar on screen.
    mininterval : float, default=0.1
        Least time in seconds between two redraws (tqdm's option).

    Examples
    --------
    >>> from sktorch.callbacks import BatchProgress
    >>> BatchProgress().leave
    False
    """

    def __init__(self, leave: bool = False, mininterval: float = 0.1) -> None:
        self.leave = leave
        self.mininterval = mininterval

    def initialize(self) -> BatchProgress:
        self.bar_ = None
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["bar_"] = None  # a bar holds a stream and a lock
        return state

    def _batches(self, net, dataset, training: bool) -> int | None:
        if dataset is None:
            return 0
        try:
            return len(net.get_iterator(dataset, training=training))
        except TypeError:  # an iterable dataset without a length
            return None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs: Any) -> None:
        import tqdm

        self._close()
        train = self._batches(net, dataset_train, True)
        valid = self._batches(net, dataset_valid, False)
        total = None if train is None or valid is None else train + valid
        self.sums_ = {"train": [0.0, 0], "valid": [0.0, 0]}
        self.bar_ = tqdm.tqdm(total=total, leave=self.leave, desc=f"epoch {len(net.history)}",
                              unit="batch", mininterval=self.mininterval, dynamic_ncols=True)

    def on_batch_end(self, net, batch=None, training=None, **kwargs: Any) -> None:
        if self.bar_ is None:
            return
        prefix = "train" if training else "valid"
        record = net.history[-1]["batches"][-1]
        loss = record.get(f"{prefix}_loss")
        if _is_number(loss):
            size = record.get(f"{prefix}_batch_size", 1)
            total = self.sums_[prefix]
            total[0] += loss * size
            total[1] += size
        postfix = {
            f"{name}_loss": f"{total / count:.4f}"
            for name, (total, count) in self.sums_.items() if count
        }
        self.bar_.set_postfix(postfix, refresh=False)
        self.bar_.update()

    def on_epoch_end(self, net, **kwargs: Any) -> None:
        self._close()

    def on_train_end(self, net, **kwargs: Any) -> None:
        self._close()

    def _close(self) -> None:
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
            self.bar_ = None
