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

from sktorch._atomic import atomic_write
from sktorch._net import FastHistory
from sktorch.callbacks._schedule import LRScheduler

CHECKPOINT_VERSION = 1


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
    return {
        "version": CHECKPOINT_VERSION,
        "epoch": len(net.history),
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


def load_training_state(net, path: str | os.PathLike) -> int:
    """Put ``net`` back in the state saved at ``path`` (a checkpoint file or a
    run directory, whose ``last.pt`` is taken); return the epochs done.

    Also sets the global torch random state: call it inside the random-state
    context of the fit.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {str(path)!r}: resume_from takes a checkpoint file "
            "(last.pt, best.pt) or a run directory written by checkpoint_dir."
        )
    try:
        state = torch.load(path, map_location=torch.device(net.device), weights_only=True)
    except Exception as exc:
        raise ValueError(f"Could not read the checkpoint {str(path)!r}: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{str(path)!r} is not a checkpoint of this sktorch version (expected format "
            f"version {CHECKPOINT_VERSION}, found {state.get('version') if isinstance(state, dict) else None!r})."
        )
    try:
        net.module_.load_state_dict(state["module"])
    except RuntimeError as exc:
        raise ValueError(
            f"The checkpoint {str(path)!r} does not fit this estimator's module (were the "
            f"hyperparameters changed?): {exc}"
        ) from exc
    net.optimizer_.load_state_dict(state["optimizer"])
    scheduler = _scheduler_callback(net)
    if state["scheduler"] is not None:
        if scheduler is None:
            raise ValueError(
                f"The checkpoint {str(path)!r} was written with a learning-rate schedule, "
                "but this estimator has lr_scheduler=None."
            )
        scheduler.lr_scheduler_ = None
        scheduler.lr_scheduler_state_ = state["scheduler"]
    if state["scaler"] is not None and net.scaler_ is not None:
        net.scaler_.load_state_dict(state["scaler"])
    net.history_ = FastHistory(json.loads(state["history"]))
    torch.set_rng_state(state["rng_cpu"].cpu())
    if state["rng_cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng_cuda"].cpu(), torch.device(net.device))
    return int(state["epoch"])


class Checkpoint(Callback):
    """Save the training state after every epoch: ``last.pt`` always, and
    ``best.pt`` when ``monitor`` reaches a new low.

    Each file holds the module's and the optimizer's state, the schedule's,
    the gradient scaler's, the history and the random state, so that
    ``resume_from`` continues a fit exactly. Files are written to a
    temporary name and renamed, so an interrupted save never leaves a broken
    checkpoint.

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

    def on_epoch_end(self, net, **kwargs: Any) -> None:
        path = Path(self.dirname)
        state = training_state(net)
        atomic_write(path / "last.pt", functools.partial(torch.save, state))
        score = net.history[-1].get(self.monitor)
        if score is not None and score < self.best_:
            self.best_ = score
            atomic_write(path / "best.pt", functools.partial(torch.save, state))
