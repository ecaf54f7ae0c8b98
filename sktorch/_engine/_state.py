"""The training state of a net: what continuing its training needs, captured and put back.

One format, written by two containers: a checkpoint (``Checkpoint``, read
back by ``resume_from``) stores it with ``torch.save``; ``sktorch.save(...,
include_optimizer=True)`` stores it through its JSON codec and safetensors.
:func:`capture_training_state` returns it as plain values and tensors:

- ``optimizer``: the optimizer's ``state_dict``;
- ``scheduler``: the learning-rate schedule's ``state_dict``, or None
  without a schedule;
- ``scaler``: the gradient scaler's ``state_dict``, or None without one;
- ``rng``: the random state the training draws from, as estimators record
  it (``{'cpu': tensor}``, with ``'cuda'`` and ``'cuda_index'`` on CUDA);
- ``callbacks``: callback name -> the state a continued fit takes over
  (:data:`STATEFUL_CALLBACKS`).

The module's weights, the history and the estimator's own record (its
hyperparameters, the validation split's seed) are the containers' own.

This module also holds the one table of how each hyperparameter relates to
a fit that continues training (:data:`CONTINUATION_RULES`), which resuming a
checkpoint and ``partial_fit``/``warm_start`` both read.
"""

from __future__ import annotations

import functools
import inspect
import os
from numbers import Number
from typing import Any, NamedTuple

import numpy as np
import torch
from skorch.callbacks import BatchScoring, EarlyStopping, EpochScoring, PassthroughScoring
from skorch.callbacks import LRScheduler as SkorchLRScheduler

__all__ = [
    "APPLIED_ON_CONTINUING",
    "CONTINUATION_RULES",
    "STATEFUL_CALLBACKS",
    "capture_training_state",
    "describe",
    "free_on_resume",
    "restore_training_state",
    "scheduler_callback",
    "stopped_early",
    "trajectory_hyperparameters",
]


# ------------------------------------------------------------------ hyperparameters
class Rule(NamedTuple):
    """How a hyperparameter relates to a fit that continues training."""

    #: It does not change the training trajectory (where training runs, what
    #: it logs, what predicting does; the seed, which a resumed fit takes
    #: from its checkpoint), so a fit resumed from a checkpoint
    #: (``resume_from``) may change it.
    free_on_resume: bool
    #: A fit that continues the built net (``partial_fit``, ``fit`` with
    #: ``warm_start=True``) applies a change of it (``lr`` only without a
    #: schedule or per-group learning rates: see
    #: ``sktorch._estimators._continuing``).
    applied_on_continuing: bool


# The one table of those rules. A hyperparameter it does not list, and every
# ``prefix__option`` of a prefix it does not list, is neither: a resumed fit
# must keep it as it was, and a continuing fit refuses a change of it.
CONTINUATION_RULES: dict[str, Rule] = {
    #                     free on resume  applied on continuing
    "batch_size":     Rule(False,          True),
    "lr":             Rule(False,          True),
    "max_epochs":     Rule(False,          True),
    "tta":            Rule(True,           True),
    "warm_start":     Rule(True,           True),
    "callbacks":      Rule(True,           False),
    "checkpoint_dir": Rule(True,           False),
    "compile":        Rule(True,           False),
    "device":         Rule(True,           False),
    "devices":        Rule(True,           False),
    "random_state":   Rule(True,           False),
    "resume_from":    Rule(True,           False),
    "strategy":       Rule(True,           False),
    "tensorboard":    Rule(True,           False),
    "verbose":        Rule(True,           False),
    # prefix__option hyperparameters, by their prefix
    "compile__":        Rule(True,         False),
    "callbacks__":      Rule(True,         False),
    "iterator_valid__": Rule(True,         False),
}

# The hyperparameters a continuing fit applies, in the order error messages
# list them.
APPLIED_ON_CONTINUING: tuple[str, ...] = tuple(sorted(
    name for name, rule in CONTINUATION_RULES.items() if rule.applied_on_continuing))


def _rule(name: str) -> Rule:
    prefix, sep, _ = name.partition("__")
    rule = CONTINUATION_RULES.get(prefix + sep if sep else name)
    return rule if rule is not None else Rule(False, False)


def free_on_resume(name: str) -> bool:
    """Whether a fit resumed from a checkpoint may change hyperparameter ``name``."""
    return _rule(name).free_on_resume


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
        if not free_on_resume(name)
    }


# ------------------------------------------------------------------ callbacks
# What each kind of stateful callback must carry over: what it has learned
# of the epochs so far (early stopping's best score, misses and best
# weights; a scoring callback's best score, behind the ``*_best`` flags of
# the history).
STATEFUL_CALLBACKS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (EarlyStopping, ("misses_", "dynamic_threshold_", "best_epoch_", "best_model_weights_")),
    (EpochScoring, ("best_score_",)),
    (BatchScoring, ("best_score_",)),
    (PassthroughScoring, ("best_score_",)),
)


def _stateful_callbacks(net: Any) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """Name -> (callback, the attributes of its state), for the callbacks of
    ``net`` whose state a continued fit takes over."""
    found = {}
    for name, callback in net.callbacks_:
        for kind, attributes in STATEFUL_CALLBACKS:
            if isinstance(callback, kind):
                found[name] = (callback, attributes)
                break
    return found


def scheduler_callback(net: Any) -> Any:
    """The callback of ``net`` that runs its learning-rate schedule and keeps
    it across fits, or None: sktorch's ``LRScheduler``, known by what it
    adds to skorch's (``lr_scheduler_state_``, the schedule's state while no
    scheduler is built)."""
    for _, callback in getattr(net, "callbacks_", None) or []:
        if isinstance(callback, SkorchLRScheduler) and hasattr(callback, "lr_scheduler_state_"):
            return callback
    return None


# ------------------------------------------------------------------ random state
def _is_rng_state(value: Any) -> bool:
    def generator(tensor: Any) -> bool:
        return isinstance(tensor, torch.Tensor) and tensor.dtype == torch.uint8 and tensor.dim() == 1

    if not isinstance(value, dict) or not generator(value.get("cpu")):
        return False
    if set(value) == {"cpu"}:
        return True
    index = value.get("cuda_index")
    return (set(value) == {"cpu", "cuda", "cuda_index"} and generator(value["cuda"])
            and isinstance(index, int) and not isinstance(index, bool) and index >= 0)


# ------------------------------------------------------------------ capture and restore
TRAINING_STATE_KEYS = ("optimizer", "scheduler", "scaler", "rng", "callbacks")


def capture_training_state(net: Any, *, rng: dict[str, Any]) -> dict[str, Any]:
    """What continuing the training of ``net`` exactly needs (see the module
    docstring), as plain values and tensors.

    Parameters
    ----------
    net : SktorchNet
        An initialized net with an optimizer.
    rng : dict
        The random state training continues from: :func:`rng_state` while
        training, the estimator's recorded ``_rng_state`` after its fit.
    """
    scheduler = scheduler_callback(net)
    scheduler_state = None
    if scheduler is not None:
        live = scheduler.lr_scheduler_
        scheduler_state = live.state_dict() if live is not None else scheduler.lr_scheduler_state_
    scaler = getattr(net, "scaler_", None)
    callbacks = {}
    for name, (callback, attributes) in _stateful_callbacks(net).items():
        callbacks[name] = {}
        for attribute in attributes:
            value = getattr(callback, attribute, None)
            callbacks[name][attribute] = value.item() if isinstance(value, np.generic) else value
    return {
        "optimizer": net.optimizer_.state_dict(),
        "scheduler": scheduler_state,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": dict(rng),
        "callbacks": callbacks,
    }


def restore_training_state(
    net: Any,
    state: dict[str, Any],
    *,
    source: str,
    error: type[Exception],
    hint: str,
    at_train_begin: bool,
) -> dict[str, Any] | None:
    """Put the training ``state`` of :func:`capture_training_state` back into
    ``net``, after checking that it fits; return its random state, for the
    caller to put where its fit draws from.

    ``state`` may come from an untrusted file: only the optimizer's,
    schedule's and scaler's ``load_state_dict`` and the attributes of
    :data:`STATEFUL_CALLBACKS` are set, each checked first. A state without
    ``callbacks`` and ``rng`` (None: an sktorch file of format version 1)
    leaves the callbacks as they are and returns None.

    Parameters
    ----------
    net : SktorchNet
        The initialized net, built from the same hyperparameters.
    state : dict
        The training state.
    source : str
        Where the state comes from, for error messages ("the checkpoint
        '...' (resume_from)").
    error : exception class
        What to raise when the state does not fit ``net``.
    hint : str
        The last sentence of those errors: what to do.
    at_train_begin : bool
        Whether the callbacks' state is put back when training starts
        (after their ``on_train_begin``, which resets it: a fit resumed
        mid-way) rather than now (a net loaded to be trained further, as
        the saved one would be).
    """
    owner = _owner(net)

    def fail(message: str, cause: BaseException | None = None) -> None:
        raise error(f"{message} {hint}") from cause

    if not isinstance(state, dict) or set(state) != set(TRAINING_STATE_KEYS):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        fail(f"The training state in {source} must hold {list(TRAINING_STATE_KEYS)}; it holds "
             f"{got}.")
    try:
        net.optimizer_.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        fail(f"The optimizer state in {source} does not fit the optimizer of {owner} "
             f"({type(exc).__name__}: {exc}).", exc)
    scheduler = scheduler_callback(net)
    if state["scheduler"] is not None:
        if scheduler is None:
            fail(f"The training state in {source} holds a learning-rate schedule state, but "
                 f"this {owner} has no schedule (lr_scheduler=None).")
        if not isinstance(state["scheduler"], dict):
            fail(f"The learning-rate schedule state in {source} must be a mapping.")
        # Built from this state when training starts (see LRScheduler).
        scheduler.lr_scheduler_ = None
        scheduler.lr_scheduler_state_ = state["scheduler"]
    scaler = getattr(net, "scaler_", None)
    if state["scaler"] is not None and scaler is not None:
        try:
            scaler.load_state_dict(state["scaler"])
        except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as exc:
            fail(f"The gradient scaler state in {source} does not fit ({exc}).", exc)
    if state["callbacks"] is not None:
        states = _checked_callback_states(net, state["callbacks"], source, fail)
        if at_train_begin:
            net.__dict__["_restore_callbacks"] = functools.partial(_set_callbacks, states=states)
        else:
            _set_callbacks(net, states)
    if state["rng"] is not None and not _is_rng_state(state["rng"]):
        fail(f"The random state in {source} is not a torch random state.")
    return state["rng"]


def _owner(net: Any) -> str:
    estimator = getattr(net, "estimator", None)
    return type(estimator if estimator is not None else net).__name__


def _checked_callback_states(net: Any, saved: Any, source: str, fail: Any) -> dict[str, Any]:
    owner = _owner(net)
    stateful = _stateful_callbacks(net)
    names = sorted(saved) if isinstance(saved, dict) else saved
    if not isinstance(saved, dict) or names != sorted(stateful):
        fail(f"The training state in {source} holds the state of the callbacks {names}; this "
             f"{owner} has {sorted(stateful)}.")
    for name, (_, attributes) in stateful.items():
        values = saved[name]
        if not isinstance(values, dict) or set(values) != set(attributes):
            fail(f"The state of the callback {name!r} in {source} must hold {list(attributes)}.")
        for attribute, value in values.items():
            if not _is_callback_value(attribute, value):
                fail(f"The state of the callback {name!r} in {source} holds an invalid "
                     f"{attribute}: {value!r:.200}.")
    return saved


def _is_callback_value(attribute: str, value: Any) -> bool:
    if value is None:
        return True
    if attribute == "best_model_weights_":
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    return isinstance(value, Number) and not isinstance(value, (bool, complex))


def _set_callbacks(net: Any, states: dict[str, dict[str, Any]]) -> None:
    for name, (callback, _) in _stateful_callbacks(net).items():
        for attribute, value in states[name].items():
            setattr(callback, attribute, value)


def stopped_early(net: Any, state: dict[str, Any]) -> bool:
    """Whether early stopping had ended the fit when ``state`` was captured."""
    callbacks = state.get("callbacks") or {}
    return any(
        isinstance(callback, EarlyStopping)
        and (callbacks[name].get("misses_") or 0) >= callback.patience
        for name, (callback, _) in _stateful_callbacks(net).items()
    )
