"""What a fit that continues training (``partial_fit``, ``warm_start``) may
change.

Such a fit trains the module, optimizer, loss, callbacks and schedule the
first fit built; most hyperparameters went into building them and changing
one afterwards would change nothing. :func:`remember` records the
hyperparameters a net was built with; :func:`check_and_apply` raises for a
hyperparameter changed since then that the running training cannot take,
naming it, and applies those it can (``applied_on_continuing`` in the one
table of :data:`sktorch._engine._state.CONTINUATION_RULES`).
"""

from __future__ import annotations

from numbers import Number
from typing import Any

import numpy as np
import torch

from sktorch._engine._state import APPLIED_ON_CONTINUING
from sktorch.exceptions import InvalidParameterError

# What a continuing fit applies: read at every fit or prediction, or set on
# the built net. ``lr`` only without a schedule or per-group learning rates
# (see check_and_apply).
APPLIED = ("batch_size", "lr", "max_epochs", "tta", "warm_start")

# The rule, for the docstrings of partial_fit (see sktorch._estimators._params.fill_doc).
# The rule, for the docstrings of partial_fit (see sktorch._estimators._base.fill_doc).
CONTINUING_DOC = """The hyperparameters are validated at every call, as ``fit``
        validates them. A call after the first continues training the module,
        optimizer, loss, callbacks and learning-rate schedule the first fit
        built, so it applies a change (``set_params``) since then only to
        ``lr`` (without ``lr_scheduler`` and ``optimizer__param_groups``,
        which decide the learning rate themselves), ``batch_size``,
        ``max_epochs``, ``tta`` and ``warm_start``. Any other change
        (``module``, ``criterion``, ``optimizer``, their options, ``device``,
        ``callbacks``, ``random_state``, ...) is an
        :class:`~sktorch.exceptions.InvalidParameterError` naming it: call
        ``fit`` to train anew with it. ``fit`` with ``warm_start=True``
        follows the same rule."""


def remember(estimator: Any) -> None:
    """Record the hyperparameters ``estimator.net_`` was just built with."""
    estimator._built_with = _copy(estimator.get_params(deep=False))


def check_and_apply(estimator: Any, method: str) -> None:
    """Before a fit continues training ``estimator.net_``: raise an
    :class:`~sktorch.exceptions.InvalidParameterError` naming every
    hyperparameter changed since the net was built that training cannot
    take mid-way; set the others on the net.

    An estimator without a record (loaded by ``sktorch.load``, which
    restores the hyperparameters it was saved with) starts one here.
    """
    params = estimator.get_params(deep=False)
    built = getattr(estimator, "_built_with", None)
    if built is None:
        estimator._built_with = _copy(params)
        return
    changed = sorted(
        name for name in built.keys() | params.keys()
        if name not in built or name not in params or not _same(built[name], params[name])
    )
    # What a continuing fit applies is read at every fit or prediction, or
    # set on the built net below; lr only without a schedule or per-group
    # learning rates.
    refused = [name for name in changed if name not in APPLIED_ON_CONTINUING]
    lr_fixed = params.get("lr_scheduler") is not None or "optimizer__param_groups" in params
    if "lr" in changed and lr_fixed:
        refused.append("lr")
    if refused:
        owner = type(estimator).__name__
        was = {name: built.get(name, "<not set>") for name in refused}
        now = {name: params.get(name, "<not set>") for name in refused}
        why = (" (lr goes through the learning-rate schedule or the optimizer's per-group "
               "learning rates, set up by the first fit)" if "lr" in refused else "")
        raise InvalidParameterError(
            f"{owner}.{method} continues training the module, optimizer and callbacks the "
            f"first fit built, and cannot apply the change of {refused} since then"
            f"{why}: they were {was}, and are now {now}. Call fit (with warm_start=False) "
            "to train anew with them, or set them back. A continuing fit applies changes "
            f"of {list(APPLIED_ON_CONTINUING)} only."
        )
    net = estimator.net_
    net.batch_size = params["batch_size"]
    if "lr" in changed:
        net.set_params(lr=params["lr"])
    estimator._built_with = _copy(params)


def _copy(value: Any) -> Any:
    """``value`` with its containers copied (what they hold is not)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(item) for item in value) if type(value) in (list, tuple) else value
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _same(a: Any, b: Any) -> bool:
    """Whether hyperparameter values ``a`` and ``b`` are the same: equal
    numbers, strings, classes and containers of them, equal arrays; other
    objects (module or callback instances) the same object or equal."""
    if a is b:
        return True
    if (isinstance(a, Number) and isinstance(b, Number)
            and not isinstance(a, bool) and not isinstance(b, bool)):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    if isinstance(a, torch.Tensor):
        return (a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
                and bool(torch.equal(a, b)))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    try:
        return bool(a == b)
    except Exception:
        return False
