"""Score the validation data with scikit-learn scorers after every epoch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.metrics import check_scoring, get_scorer_names
from skorch.callbacks import Callback

from sktorch._data._tensors import plain_targets, target_weights
from sktorch._utils._introspect import did_you_mean
from sktorch.exceptions import InvalidParameterError
from sktorch.metrics import SCORERS

__all__ = ["Monitor", "ValidationMetrics", "metric_monitor", "resolve_metrics"]

# History keys a metric name must not take: they hold the losses.
_RESERVED = ("loss",)


def _name_of(scorer: Callable) -> str | None:
    name = getattr(scorer, "__name__", None)
    if name is None:
        # A make_scorer object has no name of its own; its metric has one.
        name = getattr(getattr(scorer, "_score_func", None), "__name__", None)
    return None if name in (None, "<lambda>") else name


def resolve_metrics(
    metrics: Any, *, param: str = "metrics", owner: str = "ValidationMetrics"
) -> dict[str, str | Callable]:
    """Check ``metrics`` and name each one.

    Parameters
    ----------
    metrics : str, callable, (name, callable) pair, sequence of those, dict or None
        scikit-learn scorer names (:func:`sklearn.metrics.get_scorer_names`:
        ``'accuracy'``, ``'f1_macro'``, ``'neg_log_loss'``, ``'r2'``...),
        sktorch's scorer names (``'mean_iou'``, ``'dice'``; these resolve to
        their scorer objects),
        scorers ``scorer(estimator, X, y) -> float`` (named by their
        ``__name__``, or by their metric's for :func:`~sklearn.metrics.make_scorer`
        objects), ``(name, scorer)`` pairs, or a dict of those.
    param, owner : str
        Which parameter of which class, for error messages.

    Returns
    -------
    scorers : dict
        Metric name (without the ``valid_`` prefix) to scorer name or
        callable, in the order given.

    Raises
    ------
    InvalidParameterError
        For an unknown scorer name (listing the valid ones and the nearest),
        a metric function passed where a scorer is expected, a scorer without
        a usable name, or a name given twice.

    Examples
    --------
    >>> from sktorch.callbacks._metrics import resolve_metrics
    >>> resolve_metrics(("accuracy", "f1_macro"))
    {'accuracy': 'accuracy', 'f1_macro': 'f1_macro'}
    """
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    items = metrics.items() if isinstance(metrics, Mapping) else metrics
    if not isinstance(items, (tuple, list)) and not isinstance(metrics, Mapping):
        raise InvalidParameterError(
            f"The {param!r} parameter of {owner} must be a tuple of scikit-learn scorer "
            f"names or scorers. Got {metrics!r} instead."
        )
    valid = sorted(get_scorer_names())
    scorers: dict[str, str | Callable] = {}
    for item in items:
        if isinstance(item, str):
            if item in SCORERS:
                # sktorch's own scorer names (sktorch.metrics: 'mean_iou', 'dice').
                name, scorer = item, SCORERS.get_class(item)
            elif item not in valid:
                ours = SCORERS.names()
                raise InvalidParameterError(
                    f"The {param!r} parameter of {owner} got the unknown scorer name "
                    f"{item!r}. Valid names are those of sklearn.metrics.get_scorer_names(): "
                    f"{valid}, and sktorch.metrics.list_scorers()' own: {ours}."
                    + did_you_mean(item, valid + ours)
                )
            else:
                name, scorer = item, item
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            name, scorer = item
            if not (isinstance(scorer, str) or callable(scorer)):
                raise InvalidParameterError(
                    f"The metric {name!r} in the {param!r} parameter of {owner} must be a "
                    f"scorer name or a callable scorer(estimator, X, y). Got {scorer!r}."
                )
            if isinstance(scorer, str):
                resolve_metrics((scorer,), param=param, owner=owner)
        elif callable(item):
            name, scorer = _name_of(item), item
            if name is None:
                raise InvalidParameterError(
                    f"The scorer {item!r} in the {param!r} parameter of {owner} has no "
                    "name to record it under; pass it as a pair ('my_metric', scorer)."
                )
        else:
            raise InvalidParameterError(
                f"The {param!r} parameter of {owner} takes scorer names, callable scorers "
                f"scorer(estimator, X, y) and (name, scorer) pairs. Got {item!r}."
            )
        if callable(scorer):
            _check_is_scorer(scorer, name, param, owner)
        if name in _RESERVED or name.startswith("valid_"):
            raise InvalidParameterError(
                f"The metric name {name!r} in the {param!r} parameter of {owner} is not "
                "allowed: it is recorded as 'valid_<name>', and 'valid_loss' is the loss. "
                "Pass it as a pair with another name."
            )
        if name in scorers:
            raise InvalidParameterError(
                f"The {param!r} parameter of {owner} names the metric {name!r} twice."
            )
        scorers[name] = scorer
    return scorers


def _check_is_scorer(scorer: Callable, name: str, param: str, owner: str) -> None:
    # The mistake worth catching early: sklearn.metrics.accuracy_score (a
    # metric of y_true, y_pred) where a scorer of (estimator, X, y) belongs.
    module = getattr(scorer, "__module__", None) or ""
    if module.startswith("sklearn.metrics.") and not module.startswith("sklearn.metrics._scorer"):
        raise InvalidParameterError(
            f"The metric {name!r} in the {param!r} parameter of {owner} is the metric "
            f"function {scorer.__module__}.{name}, which takes (y_true, y_pred); a scorer "
            "takes (estimator, X, y). Pass its scorer name (e.g. 'accuracy') or "
            "sklearn.metrics.make_scorer(...) of it."
        )


class Monitor(NamedTuple):
    """What early stopping watches: a history key and its direction.

    Returned by :func:`metric_monitor`; its fields are the ``monitor`` and
    ``lower_is_better`` arguments of skorch's ``EarlyStopping``.

    Examples
    --------
    >>> from skorch.callbacks import EarlyStopping
    >>> from sktorch.callbacks import metric_monitor
    >>> key, lower_is_better = metric_monitor("f1_macro")
    >>> stop = EarlyStopping(monitor=key, lower_is_better=lower_is_better, patience=5)
    >>> stop.monitor, stop.lower_is_better
    ('valid_f1_macro', False)
    """

    key: str
    lower_is_better: bool


def metric_monitor(
    name: str | Callable,
    metrics: Any = None,
    *,
    param: str = "early_stopping_monitor",
    owner: str = "estimator",
) -> Monitor:
    """The history key, and its direction, of a loss or a validation metric.

    Parameters
    ----------
    name : str or callable
        ``'valid_loss'`` or ``'train_loss'`` (lower is better); a scorer
        name (``'accuracy'``, or its history key ``'valid_accuracy'``), a
        scorer callable or a metric name given in ``metrics`` (greater is
        better: scikit-learn scorers are, which is why losses appear negated
        as ``'neg_log_loss'``).
    metrics : as for :func:`resolve_metrics`, default=None
        When given, a metric ``name`` must be one of them, since only those
        are recorded.
    param, owner : str
        Which parameter of which class, for error messages.

    Returns
    -------
    monitor : Monitor
        ``(key, lower_is_better)``, e.g. for skorch's ``EarlyStopping``.

    Examples
    --------
    >>> from sktorch.callbacks import metric_monitor
    >>> metric_monitor("accuracy")
    Monitor(key='valid_accuracy', lower_is_better=False)
    >>> metric_monitor("valid_loss")
    Monitor(key='valid_loss', lower_is_better=True)
    """
    if isinstance(name, str) and name in ("valid_loss", "train_loss"):
        return Monitor(name, True)
    recorded = resolve_metrics(metrics, param="metrics", owner=owner)
    if callable(name):
        metric = _name_of(name)
        if metric is None:
            metric = next((k for k, v in recorded.items() if v is name), None)
    elif isinstance(name, str):
        metric = name[len("valid_"):] if name.startswith("valid_") else name
        if metric not in recorded:
            resolve_metrics((metric,), param=param, owner=owner)
    else:
        metric = None
    if metric is None:
        raise InvalidParameterError(
            f"The {param!r} parameter of {owner} must be 'valid_loss', 'train_loss', a "
            f"scorer name or a named scorer. Got {name!r} instead."
        )
    if metrics is not None and metric not in recorded:
        raise InvalidParameterError(
            f"The {param!r} parameter of {owner} is {name!r}, but that metric is not "
            f"computed: add it to metrics (now {tuple(recorded) or None}), or monitor "
            "'valid_loss'."
        )
    return Monitor(f"valid_{metric}", False)


class ValidationMetrics(Callback):
    """Record scikit-learn metrics of the validation data after every epoch.

    At each epoch's end, each metric is computed as ``scorer(estimator,
    X_valid, y_valid)`` with the estimator being trained, its current weights
    and its user-facing ``predict``/``predict_proba`` (labels as the user
    gave them, ``classes_``), and recorded in the history as
    ``valid_<name>``. Scorers that need the same predictions share one
    forward pass (scikit-learn's multimetric scorer caches them).

    Parameters
    ----------
    metrics : str, callable, sequence or dict
        scikit-learn scorer names (``'accuracy'``, ``'balanced_accuracy'``,
        ``'f1_macro'``, ``'roc_auc_ovr'``, ``'neg_log_loss'``, ``'r2'``,
        ``'neg_mean_squared_error'``...: any of
        :func:`sklearn.metrics.get_scorer_names`), sktorch's
        (``'mean_iou'``, ``'dice'``: :func:`sktorch.metrics.list_scorers`),
        callable scorers
        ``scorer(estimator, X, y) -> float`` recorded under their
        ``__name__``, ``(name, scorer)`` pairs, or a dict of those. Checked
        when the net is initialized.

    Attributes
    ----------
    scorers_ : dict
        Metric name to scorer, as resolved by :func:`resolve_metrics`.

    See Also
    --------
    metric_monitor : The history key and direction of a metric, for early
        stopping.

    Notes
    -----
    It needs validation data (``validation_fraction``, or
    ``early_stopping``). Place it before the callbacks that read its
    metrics: ``EarlyStopping``, checkpoints, loggers; skorch calls callbacks
    in order.

    ``X_valid`` is what ``net.decode_inputs`` gives back: a NumPy array (a
    DataFrame with the fitted column names when the estimator was fitted on
    one; a CPU tensor for images (n, C, H, W)); ``y_valid`` is what
    ``net.decode_targets`` gives back: labels for a classifier, the
    target array for a regressor. In a bare skorch net (no sktorch
    estimator), the net itself is scored with ``y`` as a NumPy array.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> from sktorch.callbacks import ValidationMetrics
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TorchClassifier(max_epochs=2, validation_fraction=0.2, random_state=0,
    ...                       callbacks=[("metrics", ValidationMetrics(("accuracy", "f1_macro")))])
    >>> clf = clf.fit(X, y)
    >>> len(clf.history_[:, "valid_accuracy"]), len(clf.history_[:, "valid_f1_macro"])
    (2, 2)
    """

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def initialize(self) -> ValidationMetrics:
        self.scorers_ = resolve_metrics(self.metrics)
        # A dict of scorers gives one callable returning a dict of scores;
        # with raise_exc=False a failing scorer's traceback comes back as its
        # score, so the error can name the metric.
        self.scorer_ = (
            check_scoring(None, scoring=dict(self.scorers_), raise_exc=False)
            if self.scorers_ else None
        )
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs: Any) -> None:
        if self.scorers_ and net.train_split is None:
            raise _no_validation_error(net, self.scorers_)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs: Any) -> None:
        if self.scorer_ is None:
            return
        if dataset_valid is None:
            raise _no_validation_error(net, self.scorers_)
        estimator = getattr(net, "estimator", None)
        X, y = dataset_valid.X, dataset_valid.y
        # Weighted validation rows (sample_weight) are scored with their weights.
        weights = target_weights(y)
        y = plain_targets(y)
        if estimator is not None:
            # As the user gives them: the net's decoding (sktorch._engine._scoring).
            X, y = net.decode_inputs(X), net.decode_targets(y)
        else:
            estimator = net
            if isinstance(X, torch.Tensor):
                X = X.detach().cpu()
                X = X if X.ndim == 4 else X.numpy()
            y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if weights is None:
            scores = self.scorer_(estimator, X, y)
        else:
            scores = self.scorer_(estimator, X, y, sample_weight=weights.detach().cpu().numpy())
        for name, score in scores.items():
            if isinstance(score, str):  # the traceback of a failed scorer
                raise ValueError(
                    f"The validation metric {name!r} failed at epoch {len(net.history)}:\n{score}"
                )
            net.history.record(f"valid_{name}", float(score))


def _no_validation_error(net, scorers: dict[str, Any]) -> InvalidParameterError:
    estimator = getattr(net, "estimator", None)
    owner = type(estimator).__name__ if estimator is not None else type(net).__name__
    return InvalidParameterError(
        f"{owner} computes the validation metrics {tuple(scorers)} every epoch, but this "
        "fit holds out no validation data. Set validation_fraction (e.g. 0.2) or "
        "early_stopping, or drop the metrics."
    )
