"""Checkpoints of the whole training state, to resume an interrupted fit."""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback

from sktorch._engine._net import FastHistory
from sktorch._engine._state import (
    capture_training_state,
    restore_training_state,
    stopped_early,
    trajectory_hyperparameters,
)
from sktorch._utils._atomic import atomic_write
from sktorch._utils._rng import rng_state, set_rng_state
from sktorch.exceptions import InvalidParameterError

# 3: the training state of sktorch._engine._state, under "training".
CHECKPOINT_VERSION = 3


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


def checkpoint_state(net) -> dict[str, Any]:
    """What a checkpoint file holds: the training state of
    :func:`~sktorch._engine._state.capture_training_state` (``training``),
    and the checkpoint's own record: the epochs done, the estimator's class
    and hyperparameters, the validation split's seed, the module's weights
    and the history."""
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
        "module": net.module_.state_dict(),
        # As JSON text: the history holds NumPy scalars, which a weights-only
        # load (the safe one) refuses.
        "history": json.dumps(list(net.history), default=_plain),
        # Called while training: the global random state is the fit's.
        "training": capture_training_state(net, rng=rng_state(torch.device(net.device))),
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
    rng = restore_training_state(
        net, state["training"], source=f"the checkpoint {path!r} (resume_from)",
        error=InvalidParameterError,
        hint="Resume with the same hyperparameters and early_stopping, metrics and scoring "
             "callbacks.",
        at_train_begin=True)
    net.history_ = FastHistory(json.loads(state["history"]))
    set_rng_state(rng, torch.device(net.device))
    return int(state["epoch"]), stopped_early(net, state["training"])


class Checkpoint(Callback):
    """Save the training state after every epoch: ``last.pt`` always, and
    ``best.pt`` when ``monitor`` reaches a new low.

    Each file holds the module's and the optimizer's state, the schedule's,
    the gradient scaler's, the history, the random state, the seed of the
    validation split, the state of early stopping (its best score, epochs
    without improvement and best weights) and of the scoring callbacks, and
    the estimator's hyperparameters, so that ``resume_from`` continues a fit
    exactly, or refuses to when a hyperparameter changed. The training state
    (optimizer, schedule, scaler, random state, callbacks) is the one
    ``sktorch.save(..., include_optimizer=True)`` writes, under ``training``
    (see ``sktorch._engine._state``). It is saved once
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
        state = checkpoint_state(net)
        atomic_write(path / "last.pt", functools.partial(torch.save, state))
        score = net.history[-1].get(self.monitor)
        if score is not None and score < self.best_:
            self.best_ = score
            atomic_write(path / "best.pt", functools.partial(torch.save, state))
