"""Plot the training history of a fitted estimator."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

__all__ = ["plot_history"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _series(history: Any, key: str) -> tuple[list[int], list[float]]:
    """Epochs and values of ``key``, over the epochs that recorded it."""
    epochs, values = [], []
    for index, row in enumerate(history):
        value = row.get(key)
        if _is_number(value):
            epochs.append(row.get("epoch", index + 1))
            values.append(float(value))
    return epochs, values


def _metric_keys(history: Any) -> list[str]:
    """``train_*``/``valid_*`` keys other than the losses, in the order
    first recorded."""
    keys: dict[str, None] = {}
    for row in history:
        for key, value in row.items():
            if (
                key.startswith(("train_", "valid_"))
                and key not in ("train_loss", "valid_loss")
                and not key.endswith(("_best", "_batch_count", "_batch_size"))
                and _is_number(value)
            ):
                keys[key] = None
    return list(keys)


def _fitted_history(estimator: Any) -> Any:
    fitted = getattr(estimator, "__sklearn_is_fitted__", None)
    is_fitted = fitted() if fitted is not None else getattr(estimator, "initialized_", False)
    history = getattr(estimator, "history_", None) if is_fitted else None
    if history is None:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; plot_history "
            "needs its training history. Call 'fit' first."
        )
    return history


def plot_history(estimator: Any, ax: Any = None) -> Any:
    """Plot the losses, validation metrics and learning rate per epoch.

    One panel per quantity, side by side: the losses (``train_loss``, and
    ``valid_loss`` when validating); the other recorded metrics
    (``valid_accuracy``..., when there are any); the learning rate
    (``lr``, or one line per parameter group from ``lr_groups``) on a log
    scale (linear when a rate is 0). Each line is labelled with its history
    key.

    Parameters
    ----------
    estimator : fitted sktorch estimator or skorch net
        Anything with a ``history_``.
    ax : matplotlib Axes or array-like of Axes, default=None
        Where to draw: one Axes per panel, in the order above. None makes a
        new figure.

    Returns
    -------
    ax : matplotlib Axes or ndarray of Axes
        The Axes when there is a single panel; otherwise an array of them,
        one per panel in the order above (a fit always records the learning
        rate, so an sktorch estimator gives at least two: loss, lr).

    Raises
    ------
    NotFittedError
        When the estimator is not fitted.
    ValueError
        When ``ax`` has not one Axes per panel.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> from sktorch._engine._plotting import plot_history
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TorchClassifier(max_epochs=3, validation_fraction=0.2, random_state=0).fit(X, y)
    >>> axes = plot_history(clf)
    >>> [a.get_title() for a in axes]
    ['loss', 'learning rate']
    >>> [line.get_label() for line in axes[0].lines]
    ['train_loss', 'valid_loss']
    >>> import matplotlib.pyplot as plt
    >>> plt.close("all")
    """
    history = _fitted_history(estimator)
    try:
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:  # pragma: no cover - matplotlib is in the dev extra
        raise ImportError("plot_history needs matplotlib: pip install 'sktorch[plot]'.") from exc

    panels: list[tuple[str, list[tuple[str, list[int], list[float]]]]] = []
    losses = [(key, *_series(history, key)) for key in ("train_loss", "valid_loss")]
    panels.append(("loss", [line for line in losses if line[1]]))
    metrics = [(key, *_series(history, key)) for key in _metric_keys(history)]
    if metrics:
        panels.append(("metrics", metrics))
    rates = _lr_lines(history)
    if rates:
        panels.append(("learning rate", rates))

    if ax is None:
        _, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5),
                               squeeze=False, layout="constrained")
        axes = axes[0]
    else:
        axes = np.ravel(np.asarray(ax, dtype=object))
        if len(axes) != len(panels):
            raise ValueError(
                f"plot_history draws {len(panels)} panel(s) for this history "
                f"({', '.join(title for title, _ in panels)}); the 'ax' parameter must hold "
                f"that many Axes, e.g. plt.subplots(1, {len(panels)})[1]. Got {len(axes)}."
            )

    for axis, (title, lines) in zip(axes, panels):
        for label, epochs, values in lines:
            axis.plot(epochs, values, marker="o", markersize=3, label=label)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "learning rate" and all(v > 0 for _, _, vs in lines for v in vs):
            axis.set_yscale("log")
        if lines:
            axis.legend(fontsize="small")
    return axes[0] if len(axes) == 1 else axes


def _lr_lines(history: Any) -> list[tuple[str, list[int], list[float]]]:
    groups = max((len(row["lr_groups"]) for row in history
                  if isinstance(row.get("lr_groups"), (list, tuple))), default=0)
    if groups:
        lines = []
        for group in range(groups):
            epochs, values = [], []
            for index, row in enumerate(history):
                rates = row.get("lr_groups")
                if isinstance(rates, (list, tuple)) and len(rates) > group:
                    epochs.append(row.get("epoch", index + 1))
                    values.append(float(rates[group]))
            lines.append((f"lr group {group}", epochs, values))
        return lines
    epochs, values = _series(history, "lr")
    return [("lr", epochs, values)] if values else []
