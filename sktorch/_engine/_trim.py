"""Trimming a fitted estimator's net for inference: what only training needs goes."""

from __future__ import annotations

from typing import Any


def epoch_row(row: dict[str, Any]) -> dict[str, Any]:
    """A history row without its per-batch records."""
    return {key: value for key, value in row.items() if key != "batches"}


def trim_for_inference(estimator: Any) -> Any:
    """Drop what only training needs from a fitted estimator, in place.

    The optimizer (and gradient scaler) state, the callbacks, the per-batch
    records of the history (its per-epoch rows stay), the parameters'
    gradients and the saved random state go; predictions are unchanged.
    The estimator is marked trimmed, and its ``fit``, ``partial_fit`` and
    ``lr_find`` refuse to run. Called by
    ``estimator.trim_for_inference()``.
    """
    net = estimator.net_
    for name in getattr(net, "_optimizers", None) or ["optimizer"]:
        # None rather than deleted: code reading net.optimizer_ finds "no
        # optimizer" rather than an AttributeError, and skorch's pickling,
        # which walks these names, stores a None.
        setattr(net, f"{name}_", None)
    if hasattr(net, "scaler_"):
        net.scaler_ = None
    net.callbacks_ = []
    net.callbacks = []
    history = net.history_
    net.history_ = type(history)(epoch_row(row) for row in history)
    for parameter in net.module_.parameters():
        parameter.grad = None
    estimator.__dict__.pop("_rng_state", None)
    estimator._trimmed = True
    return estimator
