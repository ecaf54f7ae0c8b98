"""Checkpoints of the whole training state, to resume an interrupted fit."""

from __future__ import annotations

import functools
import inspect
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch.callbacks import BatchScoring, Callback, EarlyStopping, EpochScoring, PassthroughScoring

from sktorch._utils._atomic import atomic_write
from sktorch._engine._net import FastHistory
from sktorch.callbacks._schedule import LRScheduler
from sktorch.exceptions import InvalidParameterError

# 2: the callbacks' state, the validation split's seed and the hyperparameters.
CHECKPOINT_VERSION = 2

# Hyperparameters a resumed fit may change: they do not change the training
# trajectory (where it runs, what it logs, what predicting does). The seed is
# free too: a resumed fit takes the split's seed and the random state from
# the checkpoint. Every other one, ``prefix__option`` ones included, must be
# as it was.
FREE_HYPERPARAMETERS = frozenset({
    "checkpoint_dir", "resume_from", "verbose", "tensorboard", "device", "strategy",
    "devices", "tta", "compile", "callbacks", "warm_start", "random_state",
})
FREE_PREFIXES = ("compile__", "callbacks__", "iterator_valid__")

# What each kind of stateful callback must carry over: what it has learned
# of the epochs so far (early stopping's best score, misses and best
# weights; a scoring callback's best score, behind the ``*_best`` flags of
# the history).
_CALLBACK_STATE: tuple[tuple[type, tuple[str, ...]], ...] = (
    (EarlyStopping, ("misses_", "dynamic_threshold_", "best_epoch_", "best_model_weights_")),
    (EpochScoring, ("best_score_",)),
    (BatchScoring, ("best_score_",)),
    (PassthroughScoring, ("best_score_",)),
)


def new_run_dir(root: str | os.PathLike) -> Path:
    """A fresh, unique subdirectory of ``root`` for one fit: the time, the
    process id and a random suffix, so parallel fits never collide."""
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-pid{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=False)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Cannot store {type(value).__name__} {value!r} of the history in a checkpoint.")


def describe(value: Any) -> str:
    """A hyperparameter's value as text that two processes agree on: the
    repr of plain values, the qualified name of classes and functions, the
    type's name for objects without a repr of their own."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{describe(k)}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, functools.partial):
        args = [describe(a) for a in value.args] + [f"{k}={describe(v)}" for k, v in value.keywords.items()]
        return f"partial({describe(value.func)}, {', '.join(args)})"
    if inspect.isclass(value) or inspect.isroutine(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, (os.PathLike, torch.device)):
        return str(value)
    if type(value).__repr__ is not object.__repr__:
        return repr(value)
    return f"<{type(value).__module__}.{type(value).__qualname__} object>"


def trajectory_hyperparameters(estimator: Any) -> dict[str, str]:
    """The hyperparameters of ``estimator`` a resumed fit must keep, described."""
    return {
        name: describe(value)
        for name, value in sorted(estimator.get_params(deep=False).items())
        if name not in FREE_HYPERPARAMETERS and not name.startswith(FREE_PREFIXES)
    }


def _stateful_callbacks(net) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """Name -> (callback, the attributes of its state), for the callbacks of
    ``net`` whose state a resumed fit must take over."""
    found = {}
    for name, callback in net.callbacks_:
        for kind, attributes in _CALLBACK_STATE:
            if isinstance(callback, kind):
                found[name] = (callback, attributes)
                break
    return found


def _callback_states(net) -> dict[str, dict[str, Any]]:
    states = {}
    for name, (callback, attributes) in _stateful_callbacks(net).items():
        state = {}
        for attribute in attributes:
            value = getattr(callback, attribute, None)
            state[attribute] = value.item() if isinstance(value, np.generic) else value
        states[name] = state
    return states


def _restore_callbacks(net, states: dict[str, dict[str, Any]]) -> None:
    for name, (callback, _) in _stateful_callbacks(net).items():
        vars(callback).update(states[name])


def _stopped_early(net, states: dict[str, dict[str, Any]]) -> bool:
    """Whether early stopping had ended the fit at the checkpoint's epoch."""
    return any(
        isinstance(callback, EarlyStopping) and states[name]["misses_"] >= callback.patience
        for name, (callback, _) in _stateful_callbacks(net).items()
    )


def _scheduler_callback(net) -> LRScheduler | None:
    for _, callback in net.callbacks_:
        if isinstance(callback, LRScheduler):
            return callback
    return None


def training_state(net) -> dict[str, Any]:
    """Everything needed to continue training ``net`` exactly where it is."""
    scheduler = _scheduler_callback(net)
    scheduler_state = None
    if scheduler is not None:
        scheduler_state = (scheduler.lr_scheduler_.state_dict() if scheduler.lr_scheduler_
                           is not None else scheduler.lr_scheduler_state_)
    device = torch.device(net.device)
    estimator = net.estimator
    return {
        "version": CHECKPOINT_VERSION,
        "epoch": len(net.history),
        "estimator": type(estimator).__qualname__ if estimator is not None else None,
        "hyperparameters": (json.dumps(trajectory_hyperparameters(estimator))
                            if estimator is not None else None),
        # The estimator seeds its validation split (and its DataLoader) with
        # the fit's split seed, which it gives the net as loader_seed.
        "split_seed": net.loader_seed,
        "callbacks": _callback_states(net),
        "module": net.module_.state_dict(),
        "optimizer": net.optimizer_.state_dict(),
        "scheduler": scheduler_state,
        "scaler": net.scaler_.state_dict() if net.scaler_ is not None else None,
        # As JSON text: the history holds NumPy scalars, which a weights-only
        # load (the safe one) refuses.
        "history": json.dumps(list(net.history), default=_plain),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def read_checkpoint(path: str | os.PathLike, device: torch.device) -> dict[str, Any]:
    """The training state saved at ``path`` (a checkpoint file, or a run
    directory whose ``last.pt`` is taken), its tensors on ``device``."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {str(path)!r}: resume_from takes a checkpoint file "
            "(last.pt, best.pt) or a run directory written by checkpoint_dir."
        )
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise ValueError(f"Could not read the checkpoint {str(path)!r}: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{str(path)!r} is not a checkpoint of this sktorch version (expected format "
            f"version {CHECKPOINT_VERSION}, found {state.get('version') if isinstance(state, dict) else None!r})."
        )
    state["path"] = str(path)
    return state


def check_resume(state: dict[str, Any], estimator: Any) -> None:
    """Refuse to resume ``estimator`` from ``state`` when a hyperparameter that
    changes the training trajectory differs from the checkpoint's: the
    resumed fit would not be the fit that was interrupted."""
    owner = type(estimator).__name__
    if state["estimator"] is not None and state["estimator"] != type(estimator).__qualname__:
        raise InvalidParameterError(
            f"The checkpoint {state['path']!r} (resume_from) was written by a "
            f"{state['estimator']}, not a {owner}."
        )
    if state["hyperparameters"] is None:
        return
    saved = json.loads(state["hyperparameters"])
    now = trajectory_hyperparameters(estimator)
    unset = "(not set)"
    differences = [
        f"{name}: {saved.get(name, unset)} in the checkpoint, {now.get(name, unset)} now"
        for name in sorted(saved.keys() | now.keys())
        if saved.get(name) != now.get(name)
    ]
    if differences:
        raise InvalidParameterError(
            f"{owner} cannot resume from {state['path']!r} (resume_from): these "
            "hyperparameters differ from the checkpoint's, so the fit would not continue the "
            "one that was interrupted:\n  " + "\n  ".join(differences) + "\n"
            "Set them as they were; to train on from a fitted estimator with other "
            "settings, use warm_start=True."
        )


def load_training_state(net, state: dict[str, Any]) -> tuple[int, bool]:
    """Put ``net`` back in the training ``state`` of :func:`read_checkpoint`.

    Returns the epochs done and whether early stopping had ended the fit
    then. The callbacks' state is put back when training starts, after
    their ``on_train_begin`` (which resets it). Also sets the global torch
    random state: call it inside the random-state context of the fit.
    """
    path = state["path"]
    try:
        net.module_.load_state_dict(state["module"])
    except RuntimeError as exc:
        raise ValueError(
            f"The checkpoint {path!r} does not fit this estimator's module (were the "
            f"hyperparameters changed?): {exc}"
        ) from exc
    net.optimizer_.load_state_dict(state["optimizer"])
    scheduler = _scheduler_callback(net)
    if state["scheduler"] is not None:
        if scheduler is None:
            raise ValueError(
                f"The checkpoint {path!r} was written with a learning-rate schedule, "
                "but this estimator has lr_scheduler=None."
            )
        scheduler.lr_scheduler_ = None
        scheduler.lr_scheduler_state_ = state["scheduler"]
    if state["scaler"] is not None and net.scaler_ is not None:
        net.scaler_.load_state_dict(state["scaler"])
    saved, now = sorted(state["callbacks"]), sorted(_stateful_callbacks(net))
    if saved != now:
        raise InvalidParameterError(
            f"The checkpoint {path!r} (resume_from) holds the state of the callbacks "
            f"{saved}; this fit has {now}. Resume with the same early_stopping, metrics "
            "and scoring callbacks."
        )
    net.__dict__["_restore_callbacks"] = functools.partial(_restore_callbacks,
                                                           states=state["callbacks"])
    net.history_ = FastHistory(json.loads(state["history"]))
    torch.set_rng_state(state["rng_cpu"].cpu())
    if state["rng_cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng_cuda"].cpu(), torch.device(net.device))
    return int(state["epoch"]), _stopped_early(net, state["callbacks"])


class Checkpoint(Callback):
    """Save the training state after every epoch: ``last.pt`` always, and
    ``best.pt`` when ``monitor`` reaches a new low.

    Each file holds the module's and the optimizer's state, the schedule's,
    the gradient scaler's, the history, the random state, the seed of the
    validation split, the state of early stopping (its best score, epochs
    without improvement and best weights) and of the scoring callbacks, and
    the estimator's hyperparameters, so that ``resume_from`` continues a fit
    exactly, or refuses to when a hyperparameter changed. It is saved once
    every callback has taken the epoch in (from the net's
    ``on_epoch_finished``), also when one ends training there, as early
    stopping does. Files are written to a temporary name and renamed, so an
    interrupted save never leaves a broken checkpoint.

    Parameters
    ----------
    dirname : str or path
        Directory of this fit's files (estimators make a fresh one per fit
        under ``checkpoint_dir``).
    monitor : str, default='valid_loss'
        History key whose lowest value marks the best epoch.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> with tempfile.TemporaryDirectory() as root:
    ...     clf = TorchClassifier(max_epochs=2, checkpoint_dir=root, random_state=0).fit(X, y)
    ...     sorted(p.name for p in clf.checkpoint_path_.iterdir())
    ['best.pt', 'last.pt']
    """

    def __init__(self, dirname: str | os.PathLike, monitor: str = "valid_loss") -> None:
        self.dirname = dirname
        self.monitor = monitor

    def initialize(self):
        self.best_ = np.inf
        return self

    def on_epoch_finished(self, net) -> None:
        """Save the epoch's state (called by ``SktorchNet`` after every
        callback's ``on_epoch_end``)."""
        path = Path(self.dirname)
        state = training_state(net)
        atomic_write(path / "last.pt", functools.partial(torch.save, state))
        score = net.history[-1].get(self.monitor)
        if score is not None and score < self.best_:
            self.best_ = score
            atomic_write(path / "best.pt", functools.partial(torch.save, state))
