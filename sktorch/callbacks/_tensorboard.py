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
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback

from sktorch._utils._introspect import uncompiled, uncompiled_name
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
def _short(value: Any) -> str:
    """A compact text for a hyperparameter value, for a directory name."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return f"{float(value):g}"
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return "-".join(_short(v) for v in value)
    if inspect.isclass(value) or inspect.isfunction(value):
        return value.__name__
    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    text = repr(value)
    return type(value).__name__ if " at 0x" in text else text


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
def _hparam_value(value: Any) -> bool | int | float | str:
    """A value the HParams plugin can show: numbers, strings and booleans as
    they are, anything else as compact text (``None`` is ``'None'``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return _short(value) if not isinstance(value, (tuple, list)) else _sequence_text(value)


def _sequence_text(value: tuple | list) -> str:
    items = ", ".join(
        repr(v) if isinstance(v, str) else str(_hparam_value(v)) for v in value
    )
    return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"


def _hparams_of(owner: Any) -> dict[str, bool | int | float | str]:
    """The hyperparameters of ``owner`` as HParams values: an sktorch
    estimator's ``get_params(deep=False)`` (``prefix__option`` ones
    included), or a bare skorch net's, less its callbacks."""
    from skorch import NeuralNet

    params = owner.get_params(deep=False)
    if isinstance(owner, NeuralNet):
        params = {k: v for k, v in params.items() if not k.startswith("callbacks")}
    return {name: _hparam_value(value) for name, value in sorted(params.items())}


def _final_metrics(history: Any) -> dict[str, float]:
    """The last epoch's losses and validation metrics, and the best
    validation loss (of the training loss without validation)."""
    last = history[-1]
    metrics = {}
    for key, value in last.items():
        if _is_number(value) and (key in ("train_loss", "valid_loss") or (
                key.startswith("valid_") and _is_metric_key(key))):
            metrics[key] = float(value)
    for key in ("valid_loss", "train_loss"):
        values = [row[key] for row in history if _is_number(row.get(key))]
        if values:
            metrics[f"best_{key}"] = float(min(values))
            break
    return metrics


def _is_metric_key(key: str) -> bool:
    """Whether a per-epoch history key is a metric (``valid_accuracy``...):
    a ``train_``/``valid_`` key other than the losses, the ``*_best`` flags
    and skorch's batch counts."""
    return (
        key.startswith(("train_", "valid_"))
        and key not in ("train_loss", "valid_loss")
        and not key.endswith(("_best", "_batch_count", "_batch_size"))
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _hparams_summaries(hparams: dict[str, bool | int | float | str], start_time: float):
    """The session start and end summaries of the HParams plugin.

    No experiment summary is written: TensorBoard takes the first one it
    finds for the whole log directory, so hyperparameters that only some
    runs have would be dropped; without one it builds the experiment from
    every run's session start info (the union of their hyperparameters) and
    takes each run's scalars as its metrics.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.api_pb2 import Status
    from tensorboard.plugins.hparams.plugin_data_pb2 import (
        HParamsPluginData,
        SessionEndInfo,
        SessionStartInfo,
    )

    start = SessionStartInfo(start_time_secs=start_time)
    for name, value in hparams.items():
        # bool before number: True is an int to Python, not to TensorBoard.
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = value
    end = SessionEndInfo(status=Status.Value("STATUS_SUCCESS"), end_time_secs=time.time())

    def summary(tag: str, **data: Any) -> Summary:
        plugin_data = HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **data)
        return Summary(value=[Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(plugin_data))])

    return (summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))


# -------------------------------------------------------------------- images
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
def _graph_def(module: torch.nn.Module, inputs: Any) -> tuple[Any, Any]:
    """TensorBoard's graph of one forward pass of ``module`` on ``inputs``
    (a tensor, or a tuple of the module's arguments), as
    ``SummaryWriter.add_graph`` writes it: the ``GraphDef`` and a
    ``RunMetadata``, for ``FileWriter.add_graph``.

    ``add_graph`` traces with ``torch.jit.trace``, which registers a new
    TorchScript class per module and submodule (twice: it traces again to
    check the trace) in torch's global compilation unit, compiles and runs
    them; torch never frees that unit, so each traced fit kept a few hundred
    kilobytes, and a ``ConcreteModuleType`` per submodule in
    ``torch.jit._recursive.concrete_type_store``, for the life of the
    process. Here the module is traced as the ONNX exporter traces it, into
    a free-standing graph that goes with its last reference, with the
    module hierarchy recorded as scopes named as ``add_graph`` names them
    (``MLP/Sequential[layers]/Linear[0]``): parameters and buffers are
    inputs of the graph, shown in the scope of their module.
    """
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue
    from tensorboard.compat.proto.config_pb2 import RunMetadata
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef
    from tensorboard.compat.proto.step_stats_pb2 import DeviceStepStats, StepStats
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.compat.proto.versions_pb2 import VersionDef

    root = type(module).__name__
    scopes = {"": root}  # module path -> scope
    segments = {module: root}  # module -> the scope it pushes when called
    for path, submodule in module.named_modules():
        if path:
            parent, _, leaf = path.rpartition(".")
            segments[submodule] = f"{type(submodule).__name__}[{leaf}]"
            scopes[path] = f"{scopes[parent]}/{segments[submodule]}"
    state = list(torch.jit._unique_state_dict(module, keep_vars=True))
    saved = torch.jit._trace._trace_module_map
    torch.jit._trace._trace_module_map = segments
    try:
        with torch.no_grad():
            graph, _ = torch.jit._get_trace_graph(module, inputs)
    finally:
        torch.jit._trace._trace_module_map = saved

    nodes = []
    names: dict[str, str] = {}  # value's debug name -> name of the node giving it
    taken: set[str] = set()

    def add(value: Any, name: str, op: str, node_inputs: list[str], attributes: str = "") -> None:
        if name in taken:  # a value named like a parameter of its scope
            name = f"{name}.{value.debugName()}"
        taken.add(name)
        names[value.debugName()] = name
        attr = {"attr": AttrValue(s=attributes.encode())} if attributes else {}
        if value.isCompleteTensor():
            shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=size)
                                          for size in value.type().sizes()])
            attr["_output_shapes"] = AttrValue(list=AttrValue.ListValue(shape=[shape]))
        nodes.append(NodeDef(name=name, op=op, input=node_inputs, attr=attr))

    graph_inputs = list(graph.inputs())
    n_data = len(graph_inputs) - len(state)
    for i, value in enumerate(graph_inputs):
        if i < n_data:
            add(value, f"input/input.{i + 1}", "IO Node", [])
        elif value.uses():
            owner, _, leaf = state[i - n_data].rpartition(".")
            add(value, f"{scopes.get(owner, root)}/{leaf}", "Parameter", [])
    for node in graph.nodes():
        scope = node.scopeName() or root
        node_inputs = [names[value.debugName()] for value in node.inputs()]
        attributes = {key: getattr(node, node.kindOf(key))(key) for key in node.attributeNames()}
        # Quotes confuse TensorBoard's attribute display (add_graph drops them too).
        text = str(attributes).replace("'", " ") if attributes else ""
        for value in node.outputs():
            add(value, f"{scope}/{value.debugName()}", node.kind(), node_inputs, text)
    for i, value in enumerate(graph.outputs()):
        nodes.append(NodeDef(name=f"output/output.{i + 1}", op="IO Node",
                             input=[names[value.debugName()]]))
    # The producer version add_graph writes.
    graph_def = GraphDef(node=nodes, versions=VersionDef(producer=22))
    metadata = RunMetadata(step_stats=StepStats(dev_stats=[DeviceStepStats(device="/device:CPU:0")]))
    return graph_def, metadata


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

