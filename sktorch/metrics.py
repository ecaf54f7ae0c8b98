"""Segmentation metrics: mean intersection over union (Jaccard) and Dice,
as metric functions and as scikit-learn scorers.

The metric functions take label arrays of any shape (masks (n, H, W), or
flat); the scorers, made with :func:`sklearn.metrics.make_scorer`, score an
estimator's ``predict`` and serve as ``GridSearchCV(scoring=...)``,
``cross_validate(scoring=...)`` and in an sktorch estimator's ``metrics``,
where they are also known by name (``metrics=('mean_iou', 'dice')``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import get_scorer as sklearn_get_scorer
from sklearn.metrics import get_scorer_names, make_scorer

from sktorch._utils._registry import Registry

__all__ = [
    "dice_score",
    "dice_scorer",
    "get_scorer",
    "list_scorers",
    "mean_iou",
    "mean_iou_scorer",
    "register_scorer",
]


def _per_class_counts(y_true: Any, y_pred: Any, labels: Any, owner: str):
    """The labels scored, and their true positives, false positives and
    false negatives over every position of the arrays."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{owner} needs y_true and y_pred of the same shape; got {y_true.shape} and "
            f"{y_pred.shape}."
        )
    if y_true.size == 0:
        raise ValueError(f"{owner} needs at least one label; y_true is empty.")
    y_true, y_pred = y_true.ravel(), y_pred.ravel()
    try:
        present = np.union1d(np.unique(y_true), np.unique(y_pred))
        if labels is None:
            labels = present
        else:
            labels = np.asarray(labels)
            if labels.ndim != 1 or len(labels) == 0 or len(np.unique(labels)) != len(labels):
                raise ValueError(
                    f"The 'labels' argument of {owner} must be a 1-D sequence of distinct "
                    f"labels. Got {labels.tolist()!r} instead."
                )
        every = np.union1d(present, labels)
    except TypeError as exc:  # labels of types that do not sort together
        raise ValueError(f"{owner} could not sort the labels of y_true and y_pred: {exc}") from exc
    k = len(every)
    true = np.searchsorted(every, y_true)
    pred = np.searchsorted(every, y_pred)
    confusion = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    index = np.searchsorted(every, labels)
    tp = np.diag(confusion)[index].astype(np.float64)
    fp = confusion.sum(axis=0)[index] - tp
    fn = confusion.sum(axis=1)[index] - tp
    return labels, tp, fp, fn


def _average(values: np.ndarray, average: str | None, owner: str) -> float | np.ndarray:
    if average is None:
        return values
    if average != "macro":
        raise ValueError(
            f"The 'average' argument of {owner} must be 'macro' or None. Got {average!r} "
            "instead."
        )
    scored = values[~np.isnan(values)]
    return float(scored.mean()) if len(scored) else float("nan")


def mean_iou(
    y_true: Any, y_pred: Any, *, labels: Any = None, average: str | None = "macro"
) -> float | np.ndarray:
    """Mean intersection over union (Jaccard index) over the classes.

    For each class c, ``IoU_c = TP / (TP + FP + FN)``: the pixels labelled c
    in both arrays, over those labelled c in either, counted over every
    position of every mask at once (not per image). The mean is over the
    classes, each weighing the same whatever its size.

    Parameters
    ----------
    y_true : array-like of any shape
        True labels, e.g. masks of shape (n, H, W); any label type
        (integers, strings, booleans).
    y_pred : array-like of the same shape
        Predicted labels.
    labels : array-like or None, default=None
        The classes to score, in this order. None scores every label found
        in ``y_true`` or ``y_pred``. Pixels of other labels count as
        negatives of the scored classes, so ``labels=[1]`` gives the
        foreground IoU of a binary mask.
    average : {'macro', None}, default='macro'
        'macro' returns the mean over the classes; None returns one IoU per
        class, in the order of ``labels``.

    Returns
    -------
    score : float or ndarray of shape (n_labels,)
        In [0, 1]. A class absent from both arrays has no IoU (NaN with
        ``average=None``) and is left out of the mean; the mean of no class
        at all is NaN.

    See Also
    --------
    dice_score : The Dice coefficient (F1), ``2 IoU / (1 + IoU)`` per class.
    mean_iou_scorer : The scorer of an estimator's predictions.
    sklearn.metrics.jaccard_score : Equal, with ``average='macro'``, on the
        flattened arrays when ``labels`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from sktorch.metrics import mean_iou
    >>> y_true = np.array([[[0, 0], [1, 1]]])
    >>> y_pred = np.array([[[0, 1], [1, 1]]])
    >>> # class 0: 1 / 2; class 1: 2 / 3
    >>> round(mean_iou(y_true, y_pred), 4)
    0.5833
    >>> mean_iou(y_true, y_pred, average=None).round(4)
    array([0.5   , 0.6667])
    """
    owner = "mean_iou"
    _, tp, fp, fn = _per_class_counts(y_true, y_pred, labels, owner)
    union = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return _average(iou, average, owner)


def dice_score(
    y_true: Any, y_pred: Any, *, labels: Any = None, average: str | None = "macro"
) -> float | np.ndarray:
    """Mean Dice coefficient (F1 score of the pixels) over the classes.

    For each class c, ``Dice_c = 2 TP / (2 TP + FP + FN)``, counted over
    every position of every mask at once; the mean is over the classes.

    Parameters
    ----------
    y_true : array-like of any shape
        True labels, e.g. masks of shape (n, H, W).
    y_pred : array-like of the same shape
        Predicted labels.
    labels : array-like or None, default=None
        The classes to score, in this order; None scores every label found
        in ``y_true`` or ``y_pred``.
    average : {'macro', None}, default='macro'
        'macro' returns the mean over the classes; None one value per class.

    Returns
    -------
    score : float or ndarray of shape (n_labels,)
        In [0, 1]; a class absent from both arrays is left out of the mean
        (NaN with ``average=None``).

    See Also
    --------
    mean_iou : Intersection over union.
    dice_scorer : The scorer of an estimator's predictions.
    sklearn.metrics.f1_score : Equal, with ``average='macro'``, on the
        flattened arrays when ``labels`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from sktorch.metrics import dice_score
    >>> y_true = np.array([[[0, 0], [1, 1]]])
    >>> y_pred = np.array([[[0, 1], [1, 1]]])
    >>> # class 0: 2 * 1 / (2 + 0 + 1); class 1: 2 * 2 / (4 + 1 + 0)
    >>> round(dice_score(y_true, y_pred), 4)
    0.7333
    """
    owner = "dice_score"
    _, tp, fp, fn = _per_class_counts(y_true, y_pred, labels, owner)
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denominator > 0, 2 * tp / denominator, np.nan)
    return _average(dice, average, owner)


def _scorer(function: Callable, doc: str) -> Any:
    scorer = make_scorer(function)
    scorer.__doc__ = doc
    return scorer


mean_iou_scorer = _scorer(mean_iou, """Scorer of the mean IoU of an estimator's predictions.

``mean_iou_scorer(estimator, X, y)`` is ``mean_iou(y, estimator.predict(X))``
(:func:`sklearn.metrics.make_scorer` of :func:`mean_iou`); greater is
better. Use it as ``GridSearchCV(scoring=mean_iou_scorer)``, or in an
estimator's ``metrics``, where it is recorded as ``valid_mean_iou`` (the
name ``'mean_iou'`` works there too).

Examples
--------
>>> import numpy as np
>>> from sktorch.metrics import mean_iou_scorer
>>> class Threshold:  # any fitted estimator with predict
...     def predict(self, X):
...         return X > 0.5
>>> X = np.array([[[0.2, 0.7], [0.9, 0.4]]])
>>> float(mean_iou_scorer(Threshold(), X, X > 0.3))  # class False 1/2, True 2/3
0.5833333333333333
""")

dice_scorer = _scorer(dice_score, """Scorer of the mean Dice coefficient of an estimator's
predictions.

``dice_scorer(estimator, X, y)`` is ``dice_score(y, estimator.predict(X))``
(:func:`sklearn.metrics.make_scorer` of :func:`dice_score`); greater is
better; recorded as ``valid_dice_score`` in ``metrics`` (the name
``'dice'`` works there too).

Examples
--------
>>> import numpy as np
>>> from sktorch.metrics import dice_scorer
>>> class Threshold:
...     def predict(self, X):
...         return X > 0.5
>>> X = np.array([[[0.2, 0.7], [0.9, 0.4]]])
>>> round(float(dice_scorer(Threshold(), X, X > 0.3)), 4)  # 2/3 and 4/5
0.7333
""")

# Scorers known by name to the estimators' ``metrics`` (beside
# scikit-learn's own names).
SCORERS = Registry("scorer")
SCORERS.register("mean_iou", mean_iou_scorer)
SCORERS.register("dice", dice_scorer)


def get_scorer(name: str) -> Callable:
    """The scorer registered under ``name`` here, or scikit-learn's.

    Examples
    --------
    >>> from sktorch.metrics import get_scorer, mean_iou_scorer
    >>> get_scorer("mean_iou") is mean_iou_scorer
    True
    >>> get_scorer("accuracy")
    make_scorer(accuracy_score, response_method='predict')
    """
    if name in SCORERS:
        return SCORERS.get_class(name)
    return sklearn_get_scorer(name)


def list_scorers() -> list[str]:
    """Scorer names the estimators' ``metrics`` accept: sktorch's, then
    scikit-learn's (:func:`sklearn.metrics.get_scorer_names`).

    Examples
    --------
    >>> from sktorch.metrics import list_scorers
    >>> {"mean_iou", "dice", "accuracy"} <= set(list_scorers())
    True
    """
    return SCORERS.names() + sorted(get_scorer_names())


def register_scorer(name: str, scorer: Callable | None = None) -> Any:
    """Register a scorer ``scorer(estimator, X, y) -> float`` (greater is
    better) as ``metrics=(name,)``; usable as a decorator.

    Examples
    --------
    >>> from sklearn.metrics import make_scorer
    >>> from sktorch.metrics import list_scorers, mean_iou, register_scorer
    >>> _ = register_scorer("foreground_iou_doc_example",
    ...                     make_scorer(mean_iou, labels=[1]))
    >>> "foreground_iou_doc_example" in list_scorers()
    True
    """
    if isinstance(name, str) and name in get_scorer_names():
        raise ValueError(
            f"{name!r} is a scikit-learn scorer name already; choose another name."
        )
    return SCORERS.register(name, scorer)
