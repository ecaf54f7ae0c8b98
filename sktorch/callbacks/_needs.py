"""Which callbacks need validation data, checked before a fit trains."""

from __future__ import annotations

from typing import Any

from skorch.callbacks import BatchScoring, EpochScoring

from sktorch.exceptions import InvalidParameterError


def validation_need(callback: Any) -> tuple[str, str] | None:
    """What ``callback`` reads of the validation data and how else to set
    it, in words, or None.

    A callback monitoring a ``valid_*`` key of the history (skorch's
    ``EarlyStopping`` and ``Checkpoint`` by default, a scheduler told to
    watch ``valid_loss``), or a scoring callback scoring the validation data
    (``EpochScoring``/``BatchScoring`` with ``on_train=False``, their
    default), which without it would record nothing.
    """
    monitor = getattr(callback, "monitor", None)
    if isinstance(monitor, str) and monitor.startswith("valid_"):
        return f"monitors {monitor!r}", "monitor a training score (monitor='train_loss')"
    if isinstance(callback, (EpochScoring, BatchScoring)) and not callback.on_train:
        return "scores the validation data (on_train=False)", "score the training data (on_train=True)"
    return None


def check_validation_needs(net: Any, owner: str) -> None:
    """Raise when a callback of ``net`` needs validation data the fit does
    not hold out; call it on an initialized net of a fit without it."""
    for name, callback in net.callbacks_:
        need = validation_need(callback)
        if need is not None:
            what, instead = need
            raise InvalidParameterError(
                f"The callback {name!r} ({type(callback).__name__}) in the callbacks of "
                f"{owner} {what}, but this fit holds out no validation data: set "
                f"validation_fraction (e.g. 0.2), or {instead}."
            )
