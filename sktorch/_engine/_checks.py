"""Checks that keep a fit from ending in a silently wrong result.

Each one turns a fit that would train on regardless (a loss gone NaN, a loss
of the wrong task, a softmax applied twice, a schedule option that fails deep
inside torch) into an error at fit that names the parameter, or into a
warning scikit-learn users already know (``ConvergenceWarning``).
"""

from __future__ import annotations

import inspect
import math
import warnings
from numbers import Integral, Real
from typing import Any

import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback
from torch import nn

from sktorch._utils._validation import (
    Interval,
    SklearnInvalidParameterError,
    validate_parameter_constraints,
)
from sktorch.exceptions import InvalidParameterError
from sktorch.losses import LOGIT_LOSSES, LOSSES, loss_task

# ---------------------------------------------------------------- the loss
NONFINITE_LOSS_POLICIES = ("raise", "warn", "ignore")


class NonFiniteLossCheck(Callback):
    """Stop (or warn) at the first training batch whose loss is NaN or inf.

    Reads the loss skorch has just recorded for the batch, so it costs no
    device synchronization of its own.

    Parameters
    ----------
    policy : {'raise', 'warn'}
        'raise' raises a ``ValueError``; 'warn' emits one ``RuntimeWarning``
        per fit and lets training go on.
    owner : str
        The estimator's class name, for the message.
    """

    def __init__(self, policy: str = "raise", owner: str = "the estimator") -> None:
        self.policy = policy
        self.owner = owner

    def initialize(self):
        self.warned_ = False
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        epoch = list.__getitem__(net.history, -1)
        batches = epoch["batches"]
        loss = batches[-1].get("train_loss")
        if loss is None or math.isfinite(loss):
            return
        message = (
            f"Training of {self.owner} diverged: the training loss is {loss} at epoch "
            f"{epoch['epoch']}, batch {len(batches)}. The usual causes are a learning rate "
            f"too high (lr={net.lr!r}; try one 10 times smaller, or lr_find) and inputs or "
            "targets far from unit scale (standardize X, e.g. with "
            "sklearn.preprocessing.StandardScaler, and a regressor's y, e.g. with "
            "sklearn.compose.TransformedTargetRegressor)."
        )
        if self.policy == "raise":
            raise ValueError(message + " Set on_nonfinite_loss='warn' or 'ignore' to train "
                             "on regardless.")
        message += " Training goes on (on_nonfinite_loss='warn')."
        if not self.warned_:
            self.warned_ = True
            warnings.warn(message, RuntimeWarning, stacklevel=2)


# ---------------------------------------------------------------- the criterion
def check_loss_task(criterion: Any, task: str, owner: str) -> None:
    """Refuse a loss known to serve another task than the estimator's.

    ``criterion`` is the hyperparameter as given (a name, a class or an
    instance); losses of unknown task (a user's own class) pass.
    """
    resolved = LOSSES.resolve(criterion, param="criterion", owner=owner)
    found = loss_task(resolved)
    if found is None or found == task:
        return
    suitable = sorted(name for name in LOSSES.names()
                      if loss_task(LOSSES.get_class(name)) == task)
    other = "TorchClassifier" if found == "classification" else "TorchRegressor"
    raise InvalidParameterError(
        f"The 'criterion' parameter of {owner} is {criterion!r}, a {found} loss, but {owner} "
        f"needs a {task} loss: one of {suitable}, or a loss class of your own. Use {other} "
        f"for {found}."
    )


def output_kind(output: torch.Tensor, atol: float = 1e-3) -> str:
    """What a classification module's output holds, read along dim 1 (the
    classes): 'probabilities' (every value in [0, 1], each row summing to
    1), 'log_probabilities' (every value <= 0, each row's exponentials
    summing to 1), else 'scores' (logits)."""
    values = output.detach().float()
    if values.ndim < 2 or values.shape[1] < 2 or values.numel() == 0:
        return "scores"
    if ((values >= 0) & (values <= 1)).all() and torch.allclose(
            values.sum(dim=1), torch.ones(()), atol=atol):
        return "probabilities"
    if (values <= 0).all() and torch.allclose(
            torch.logsumexp(values, dim=1), torch.zeros(()), atol=atol):
        return "log_probabilities"
    return "scores"


def check_output_fits_loss(kind: str, criterion: Any, options: dict[str, Any], spec: Any,
                           owner: str) -> None:
    """Refuse a module whose output (of ``kind``, see :func:`output_kind`)
    the loss would misread: probabilities given to a loss that applies its
    own softmax, or logits given to ``NLLLoss``."""
    cls = criterion if inspect.isclass(criterion) else type(criterion)
    if kind == "probabilities" and issubclass(cls, LOGIT_LOSSES):
        if inspect.isclass(criterion):
            from_logits = options.get("from_logits", True)
        else:
            from_logits = getattr(criterion, "from_logits", True)
        if from_logits:
            takes = (" (or criterion__from_logits=False)"
                     if "from_logits" in inspect.signature(cls).parameters else "")
            raise ValueError(
                f"The module of {owner} outputs probabilities (each row of its output on "
                f"the first training samples lies in [0, 1] and sums to 1: it ends in a "
                f"softmax), but criterion={spec!r} applies a softmax of its own to logits, "
                "which would squash the probabilities a second time. Drop the softmax from "
                "the module so it returns logits, or use criterion='nll', which takes the "
                f"log of the probabilities{takes}."
            )
    if kind == "scores" and issubclass(cls, nn.NLLLoss):
        raise ValueError(
            f"criterion={spec!r} of {owner} needs a module that outputs probabilities (ending "
            "in a softmax; their log is taken) or log-probabilities (ending in a "
            "log_softmax), but each row of the module's output on the first training "
            "samples is neither. For a module that returns logits use "
            "criterion='cross_entropy'."
        )


# ---------------------------------------------------------------- other options
def check_callbacks(callbacks: Any, owner: str) -> None:
    """Each entry of ``callbacks`` is a skorch callback (instance or class)
    or a ``(name, callback)`` pair."""
    for position, entry in enumerate(callbacks or ()):
        callback = entry
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            callback = entry[1]
        if isinstance(callback, Callback) or (
                inspect.isclass(callback) and issubclass(callback, Callback)):
            continue
        raise InvalidParameterError(
            f"The 'callbacks' parameter of {owner} must be a list of skorch callbacks "
            "(instances of skorch.callbacks.Callback) or (name, callback) tuples. Got "
            f"{entry!r} at position {position} instead."
        )


# Options of the named schedules that torch does not check when the schedule
# is built, and that would fail later, inside training (step_size=0 is a
# ZeroDivisionError at the first epoch's end), or silently train badly.
_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
_POSITIVE = [Interval(Real, 0, None, closed="neither")]
SCHEDULER_OPTION_CONSTRAINTS: dict[str, dict[str, list]] = {
    "step": {"step_size": _POSITIVE_INT, "gamma": _POSITIVE},
    "multistep": {"milestones": [list, tuple], "gamma": _POSITIVE},
    "exponential": {"gamma": _POSITIVE},
    "cosine": {"T_max": _POSITIVE_INT, "eta_min": [Interval(Real, 0, None, closed="left")]},
}


def check_scheduler_options(name: str, options: dict[str, Any], owner: str) -> None:
    """Check the ``lr_scheduler__`` options given to the schedule ``name``."""
    constraints = SCHEDULER_OPTION_CONSTRAINTS.get(name)
    if not constraints:
        return
    try:
        validate_parameter_constraints(
            {f"lr_scheduler__{key}": value for key, value in constraints.items()},
            {f"lr_scheduler__{key}": value for key, value in options.items()},
            caller_name=f"{owner} (with lr_scheduler={name!r})",
        )
    except SklearnInvalidParameterError as exc:
        raise InvalidParameterError(str(exc)) from None
    for milestone in options.get("milestones", ()):
        if not isinstance(milestone, Integral) or isinstance(milestone, bool) or milestone < 1:
            raise InvalidParameterError(
                f"The 'lr_scheduler__milestones' parameter of {owner} (with "
                f"lr_scheduler={name!r}) must be a list of epochs, ints >= 1. Got "
                f"{options['milestones']!r} instead."
            )


# ---------------------------------------------------------------- convergence
# Relative improvement of the last epoch's training loss over the best of the
# epochs before it above which training is taken to be still progressing.
CONVERGENCE_TOL = 1e-3


def warn_if_not_converged(estimator: Any, epochs_run: int) -> None:
    """Warn with ``ConvergenceWarning`` when ``fit`` ran all its
    ``max_epochs`` epochs and the training loss was still falling.

    As ``MLPClassifier`` warns when it reaches ``max_iter`` before its loss
    stops improving by ``tol``: here, when the last epoch's training loss is
    below the lowest of every earlier epoch (of this fit and, warm, of the
    fits before) by more than ``CONVERGENCE_TOL`` of it.
    """
    history = estimator.history_
    if epochs_run < estimator.max_epochs or len(history) < 2:
        return
    losses = [row.get("train_loss") for row in history]
    last, earlier = losses[-1], [loss for loss in losses[:-1] if loss is not None]
    if last is None or not earlier or not math.isfinite(last):
        return
    best = min(earlier)
    if math.isfinite(best) and best - last > CONVERGENCE_TOL * abs(best):
        warnings.warn(
            f"{type(estimator).__name__} reached max_epochs={estimator.max_epochs} while "
            f"its training loss was still falling ({best:.6g} before the last epoch, "
            f"{last:.6g} after it); it may not have converged. Train longer (a larger "
            "max_epochs, or warm_start=True and fit again) or set early_stopping.",
            ConvergenceWarning,
            stacklevel=3,
        )
