"""Log a fit to TensorBoard: curves, histograms, images, graph, hyperparameters.

skorch ships a ``TensorBoard`` callback too, but it takes an open
``SummaryWriter`` as a constructor parameter; a writer holds a file handle
and a thread, so it can be neither deep-copied nor pickled, and an estimator
carrying that callback breaks ``sklearn.base.clone`` and ``GridSearchCV``
(skorch issue #818). Here the callback only holds a directory: the writer is
opened when training begins, closed when it ends and never pickled, and each
fit writes a run directory of its own.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import time
import uuid
import warnings
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback

from sktorch._utils._introspect import uncompiled, uncompiled_name
from sktorch.callbacks._tensorboard_summaries import (
    _final_metrics,
    _graph_def,
    _hparams_of,
    _hparams_summaries,
    _is_metric_key,
    _is_number,
    _short,
)
from sktorch.exceptions import InvalidParameterError

__all__ = ["TensorBoard", "TensorBoardWarning", "run_name"]

# Hyperparameters left out of run names: where things are written, how much
# is printed and the callbacks (this one among them) do not tell runs apart.
_NOT_IN_RUN_NAME = frozenset(
    {"callbacks", "checkpoint_dir", "resume_from", "tensorboard", "verbose", "warm_start"}
)
_MAX_PARAMS_IN_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


class TensorBoardWarning(UserWarning):
    """Something could not be logged to TensorBoard; training goes on."""


# ------------------------------------------------------------------ run names
def _same(value: Any, default: Any) -> bool:
    if value is default:
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # arrays and other values without a plain equality
        return False


def _changed_params(estimator: Any) -> str:
    """``name=value`` pairs, sorted by name, of the hyperparameters that
    differ from the defaults of ``type(estimator).__init__``."""
    params = estimator.get_params(deep=False)
    signature = inspect.signature(type(estimator).__init__).parameters
    defaults = {
        name: p.default for name, p in signature.items() if p.default is not inspect.Parameter.empty
    }
    pairs = []
    for name in sorted(params):
        if name in _NOT_IN_RUN_NAME or name.startswith("callbacks__"):
            continue
        value = params[name]
        if name in defaults and _same(value, defaults[name]):
            continue
        pairs.append(f"{name}={_short(value)}")
    text = _UNSAFE.sub("-", ",".join(pairs))
    text = re.sub(r"-*([,=])-*", r"\1", re.sub("-{2,}", "-", text)).strip("-")
    if len(text) > _MAX_PARAMS_IN_NAME:
        # Cut, but keep runs with different long settings apart.
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = f"{text[: _MAX_PARAMS_IN_NAME - 9]}~{digest}"
    return text


def run_name(estimator: Any = None) -> str:
    """The name of a fresh run directory for one fit of ``estimator``.

    The local time, the hyperparameters that differ from the estimator's
    defaults (``name=value``, sorted, comma-separated; characters other than
    letters, digits and ``._=,+-`` replaced by ``-``; cut at 100 characters
    with a hash of the whole) and a unique suffix, the process id and a
    random part, so that parallel fits, in processes or threads, never share
    a directory. Hyperparameters that only say where to write or what to
    print (``callbacks``, ``checkpoint_dir``, ``resume_from``,
    ``tensorboard``, ``verbose``, ``warm_start``) are left out.

    Parameters
    ----------
    estimator : estimator or None, default=None
        An estimator with ``get_params``; None gives the time and the suffix
        only.

    Returns
    -------
    name : str
        E.g. ``'20261122-101530_lr=0.01,max_epochs=3_4242-9f3a1c'``.

    Examples
    --------
    >>> from sktorch import TorchClassifier
    >>> from sktorch.callbacks._tensorboard import run_name
    >>> name = run_name(TorchClassifier(lr=0.01, max_epochs=3))
    >>> "_lr=0.01,max_epochs=3_" in name
    True
    """
    parts = [time.strftime("%Y%m%d-%H%M%S")]
    if estimator is not None:
        parts.append(_changed_params(estimator))
    parts.append(f"{os.getpid()}-{uuid.uuid4().hex[:6]}")
    return "_".join(part for part in parts if part)


def _make_run_dir(root: Path, name: str) -> Path:
    """Create ``root / name``; when it exists, a suffixed name instead
    (``mkdir`` without ``exist_ok`` is atomic, so two fits never both win)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    while True:
        try:
            path.mkdir(exist_ok=False)
            return path
        except FileExistsError:
            path = root / f"{name}_{os.getpid()}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------ hyperparameters
def _image_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A (3, H, W) grid in [0, 1] of a batch (N, C, H, W): uint8 divided by
    255, other types min-max scaled per image; 1 or 3 channels as they are,
    the first 3 of 4, the first one otherwise."""
    from torchvision.utils import make_grid

    images = images.detach().cpu()
    channels = images.shape[1]
    if channels == 4:
        images = images[:, :3]
    elif channels not in (1, 3):
        images = images[:, :1]
    if images.dtype == torch.uint8:
        return make_grid(images.float() / 255, nrow=nrow)
    return make_grid(images.float(), nrow=nrow, normalize=True, scale_each=True)


# ------------------------------------------------------------------ callback
class TensorBoard(Callback):
    """Log a fit to TensorBoard, one run directory per fit.

    Each fit writes a fresh directory under ``log_dir``, named by
    :func:`run_name` (time, changed hyperparameters, unique suffix), so the
    fits of a ``GridSearchCV``, parallel ones included, never collide and
    show side by side in TensorBoard. The directory is ``run_dir_``. It
    holds:

    - scalars, per epoch, equal to ``history_``: ``loss/train`` and
      ``loss/valid``; ``metrics/<key>`` for the other ``train_*`` and
      ``valid_*`` keys (``valid_accuracy``... from
      :class:`~sktorch.callbacks.ValidationMetrics`); the learning rate of
      each parameter group as ``lr/group_<i>``; the epoch's duration as
      ``time/epoch_seconds``;
    - histograms of the weights (``weights/<parameter>``) and of the
      gradients of the epoch's last training batch (``gradients/<parameter>``,
      after unscaling and clipping, as the optimizer used them);
    - for 4-D (N, C, H, W) inputs, a grid of the first training batch of the
      epoch (``images/train_batch``, up to ``max_images`` images; uint8
      divided by 255, other types min-max scaled per image);
    - the module's graph, traced once on two samples of the first batch (in
      eval mode and without touching the random state, so training is the
      same with or without this callback; traced as the ONNX exporter
      traces, not with ``torch.jit.trace``, which kept memory per fit);
    - at the end of each fit, an HParams session: every hyperparameter of
      the estimator (``prefix__option`` ones included; values other than
      numbers, strings and booleans as text) and, as ``hparams/<key>``
      scalars, the last epoch's losses and validation metrics and the best
      validation loss, for TensorBoard's HParams tab.

    Parameters
    ----------
    log_dir : str or path
        Root of the run directories (created if missing). View with
        ``tensorboard --logdir <log_dir>``.
    histograms : bool, default=True
        Write weight and gradient histograms.
    images : bool, default=True
        Write a grid of training images when the inputs are 4-D.
    graph : bool, default=True
        Write the module's graph. Tracing fails for some modules; that is a
        :class:`TensorBoardWarning`, not an error.
    histogram_every : int, default=1
        Write histograms at the first epoch and every ``histogram_every``
        epochs after it.
    image_every : int or None, default=None
        Write images at the first epoch and every ``image_every`` epochs
        after it; None writes them at the first epoch of the run only.
    max_images : int, default=16
        Images in a grid, at most.
    run_name : str or None, default=None
        Name of the run directory; a suffix is added when it exists. None
        builds one with :func:`run_name`.

    Attributes
    ----------
    run_dir_ : pathlib.Path
        The run directory of the fit, set when training begins.
    writer_ : torch.utils.tensorboard.SummaryWriter or None
        The open writer during training; None otherwise, and never pickled.
    image_batch_ : torch.Tensor or None
        The images (on the CPU) of the last grid written, for
        :meth:`add_extra_images`; not pickled.
    target_batch_ : torch.Tensor or None
        The targets of those images (as the loss takes them), when they are
        a tensor; not pickled.

    See Also
    --------
    ValidationMetrics : Records validation metrics that this logs.

    Notes
    -----
    Place it after the callbacks that record metrics and before
    ``EarlyStopping``: that one ends training by raising inside its
    ``on_epoch_end``, and the callbacks after it miss the last epoch (its
    scalars are still written when training ends, its histograms are not).

    A later ``partial_fit`` or warm-started ``fit`` of the same net writes
    to the same run directory, continuing the epoch numbering.

    A fit that raises closes the writer too (skorch calls no
    ``on_train_end`` then; sktorch's net calls :meth:`on_train_error`): its
    thread ends, and the run keeps the scalars of the epochs that ended.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> from sktorch.callbacks import TensorBoard
    >>> X, y = load_iris(return_X_y=True)
    >>> with tempfile.TemporaryDirectory() as logs:
    ...     clf = TorchClassifier(max_epochs=2, random_state=0,
    ...                           callbacks=[("tensorboard", TensorBoard(logs))]).fit(X, y)
    ...     run = dict(clf.net_.callbacks_)["tensorboard"].run_dir_
    ...     str(run.parent) == logs, any(run.glob("events.out.tfevents.*"))
    (True, True)
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        histograms: bool = True,
        images: bool = True,
        graph: bool = True,
        histogram_every: int = 1,
        image_every: int | None = None,
        max_images: int = 16,
        run_name: str | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.histograms = histograms
        self.images = images
        self.graph = graph
        self.histogram_every = histogram_every
        self.image_every = image_every
        self.max_images = max_images
        self.run_name = run_name

    # ------------------------------------------------------------- lifecycle
    def initialize(self) -> TensorBoard:
        self._check_params()
        self.writer_ = None
        self.run_dir_ = None
        self.image_batch_ = None
        self.target_batch_ = None
        self.epochs_logged_ = 0
        self.first_epoch_ = None
        self.graph_done_ = False
        self.batches_seen_ = 0
        self.batches_per_epoch_ = None
        self.gradients_ = None
        return self

    def _check_params(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise InvalidParameterError(
                f"The {name!r} parameter of TensorBoard must be {expected}. "
                f"Got {getattr(self, name)!r} instead."
            )

        if not isinstance(self.log_dir, (str, os.PathLike)):
            fail("log_dir", "a str or path")
        for name in ("histograms", "images", "graph"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                fail(name, "a bool")
        for name in ("histogram_every", "max_images"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                fail(name, "an int >= 1")
        every = self.image_every
        if every is not None and (not isinstance(every, Integral) or isinstance(every, bool)
                                  or every < 1):
            fail("image_every", "an int >= 1 or None")
        if self.run_name is not None and (not isinstance(self.run_name, str) or not self.run_name
                                          or _UNSAFE.search(self.run_name)):
            fail("run_name", "None or a non-empty str of letters, digits and '._=,+-'")

    def __getstate__(self) -> dict[str, Any]:
        # The writer holds a file and a thread; the image batch and the
        # gradients are per-epoch scratch. None of them belongs in a pickle
        # or a deep copy.
        state = self.__dict__.copy()
        for key in ("writer_", "image_batch_", "target_batch_", "gradients_"):
            if key in state:
                state[key] = None
        return state

    def on_train_begin(self, net, X=None, y=None, **kwargs: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if self.run_dir_ is None:
            estimator = getattr(net, "estimator", None)
            name = self.run_name or run_name(estimator)
            self.run_dir_ = _make_run_dir(Path(self.log_dir), name)
            self.first_epoch_ = len(net.history) + 1
        self.train_start_ = time.time()
        self.writer_ = SummaryWriter(log_dir=str(self.run_dir_))

    def on_train_end(self, net, X=None, y=None, **kwargs: Any) -> None:
        if self.writer_ is None:
            return
        try:
            self._log_scalars(net)
            if len(net.history):
                self._log_hparams(net)
        finally:
            self._close()

    def on_train_error(self, net, exc: BaseException, X=None, y=None, **kwargs: Any) -> None:
        """Training raised: write the scalars of the epochs not written yet
        (those recorded when a callback placed before this one raised at an
        epoch's end) and close the writer, which ends its thread and
        completes the event file. No HParams session: the run did not end.

        :class:`~sktorch._engine._net.SktorchNet` calls this hook; skorch calls no
        ``on_train_end`` after an exception.
        """
        if getattr(self, "writer_", None) is None:
            return
        try:
            self._log_scalars(net)
        finally:
            self._close()

    def _close(self) -> None:
        """Close the writer (flushing it and joining its thread) and drop
        the per-fit scratch."""
        writer = self.writer_
        self.writer_ = None
        self.image_batch_ = None
        self.target_batch_ = None
        self.gradients_ = None
        writer.close()

    # ----------------------------------------------------------------- epochs
    def _epoch(self, net) -> int:
        return len(net.history)

    def _selected(self, net, every: int | None) -> bool:
        """Whether the current epoch is the run's first or, with ``every``,
        ``every`` epochs after one that was."""
        since_first = self._epoch(net) - self.first_epoch_
        return since_first == 0 if every is None else since_first % every == 0

    def _histogram_epoch(self, net) -> bool:
        return self.histograms and self._selected(net, self.histogram_every)

    def _image_epoch(self, net) -> bool:
        return self.images and self._selected(net, self.image_every)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs: Any) -> None:
        self.batches_seen_ = 0
        self.gradients_ = None
        try:
            self.batches_per_epoch_ = len(net.get_iterator(dataset_train, training=True))
        except TypeError:  # an iterable dataset without a length
            self.batches_per_epoch_ = None

    def on_batch_begin(self, net, batch=None, training=None, **kwargs: Any) -> None:
        if not training:
            return
        self.batches_seen_ += 1
        if self.batches_seen_ != 1:
            return
        X = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.graph and not self.graph_done_:
            self.graph_done_ = True
            self._log_graph(net, X)
        if isinstance(X, torch.Tensor) and X.ndim == 4 and self._image_epoch(net):
            self.image_batch_ = X[: self.max_images].detach().cpu()
            y = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
            self.target_batch_ = (
                y[: self.max_images].detach().cpu() if isinstance(y, torch.Tensor) else None
            )
            grid = _image_grid(self.image_batch_)
            self.writer_.add_image("images/train_batch", grid, global_step=self._epoch(net))

    def on_grad_computed(self, net, named_parameters, **kwargs: Any) -> None:
        # Only the epoch's last batch is kept: one copy per epoch, not per step.
        last = self.batches_per_epoch_ is None or self.batches_seen_ == self.batches_per_epoch_
        if last and self._histogram_epoch(net):
            self.gradients_ = {
                uncompiled_name(name): param.grad.detach().float().cpu()
                for name, param in named_parameters
                if param.grad is not None
            }

    def on_epoch_end(self, net, **kwargs: Any) -> None:
        epoch = self._epoch(net)
        writer = self.writer_
        self._log_scalars(net)
        if self._histogram_epoch(net):
            for name, param in net.module_.named_parameters():
                self._histogram(f"weights/{uncompiled_name(name)}", param, epoch)
            for name, grad in (self.gradients_ or {}).items():
                self._histogram(f"gradients/{name}", grad, epoch)
            self.gradients_ = None
        if self._image_epoch(net):
            self.add_extra_images(writer, net, epoch)
        writer.flush()

    def add_extra_images(self, writer, net, epoch: int) -> None:
        """Hook for subclasses: write more images at an image epoch.

        Called at the end of the epochs where images are written (whatever
        the input's shape), after the epoch's scalars and histograms.
        :attr:`image_batch_` holds the images of the epoch's grid, when there
        is one, and :attr:`target_batch_` their targets. Here it hands them
        to the estimator being trained when that one draws images of its own
        (:class:`~sktorch.ImageSegmenter` writes each image beside its true
        and its predicted mask, as ``images/masks``); otherwise it does
        nothing.

        Parameters
        ----------
        writer : torch.utils.tensorboard.SummaryWriter
            The run's open writer.
        net : skorch.NeuralNet
            The net being trained (``net.module_``, ``net.estimator``).
        epoch : int
            The epoch, 1-based: the ``global_step`` to write at.
        """
        draw = getattr(getattr(net, "estimator", None), "_tensorboard_images", None)
        if draw is not None and self.image_batch_ is not None:
            draw(writer, net, epoch, self.image_batch_, self.target_batch_)

    # --------------------------------------------------------------- writing
    def _log_scalars(self, net) -> None:
        """Write the scalars of every epoch of the history not written yet
        (normally the current one; also those a resumed fit loaded, and the
        last one when a callback placed before this one ended training)."""
        writer = self.writer_
        history = net.history
        for index in range(self.epochs_logged_, len(history)):
            row = history[index]
            epoch = row.get("epoch", index + 1)
            for key, value in row.items():
                if not _is_number(value) or key.endswith("_best"):
                    continue
                tag = _scalar_tag(key)
                if tag is not None:
                    writer.add_scalar(tag, float(value), global_step=epoch)
            rates = row.get("lr_groups")
            if rates is None and _is_number(row.get("lr")):
                rates = [row["lr"]]
            for group, rate in enumerate(rates or ()):
                writer.add_scalar(f"lr/group_{group}", float(rate), global_step=epoch)
        self.epochs_logged_ = len(history)

    def _histogram(self, tag: str, values: torch.Tensor, epoch: int) -> None:
        values = values.detach().float().cpu().reshape(-1)
        values = values[torch.isfinite(values)]
        if values.numel():
            self.writer_.add_histogram(tag, values, global_step=epoch)

    def _log_graph(self, net, X: Any) -> None:
        module = net.module_
        module = uncompiled(module)  # the eager module of a compiled one
        sample = X[:2] if isinstance(X, torch.Tensor) else X
        was_training = module.training
        device = torch.device(net.device)
        devices = [device.index or 0] if device.type == "cuda" else []
        try:
            # Eval mode and a forked random state: the trace must not update
            # batch-norm statistics nor draw dropout masks from the fit's stream.
            with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                module.eval()
                graph = _graph_def(module, sample)
            self.writer_.file_writer.add_graph(graph)
        except Exception as exc:  # tracing fails for some modules; the log goes on
            reason = (str(exc).strip().splitlines() or [""])[0]
            warnings.warn(
                f"TensorBoard could not trace the graph of {type(module).__name__} "
                f"({type(exc).__name__}: {reason}); the run has no graph. Pass "
                "graph=False to skip it.",
                TensorBoardWarning,
                stacklevel=2,
            )
        finally:
            module.train(was_training)

    def _log_hparams(self, net) -> None:
        writer = self.writer_
        estimator = getattr(net, "estimator", None)
        hparams = _hparams_of(estimator if estimator is not None else net)
        epoch = len(net.history)
        for key, value in _final_metrics(net.history).items():
            writer.add_scalar(f"hparams/{key}", value, global_step=epoch)
        start, end = _hparams_summaries(hparams, self.train_start_)
        writer.file_writer.add_summary(start, epoch)
        writer.file_writer.add_summary(end, epoch)


# --------------------------------------------------------------------- graph
def _scalar_tag(key: str) -> str | None:
    """The TensorBoard tag of a per-epoch history key, or None to skip it."""
    if key == "train_loss":
        return "loss/train"
    if key == "valid_loss":
        return "loss/valid"
    if key == "dur":
        return "time/epoch_seconds"
    if _is_metric_key(key):
        return f"metrics/{key}"
    return None

