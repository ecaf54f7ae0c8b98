"""The one place where sktorch imports scikit-learn's validation helpers.

Some of them live in private modules (``sklearn.utils._param_validation``);
keeping every such import here means a scikit-learn upgrade touches one file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import (  # noqa: F401 (re-exported)
    Interval as _SklearnInterval,
    InvalidParameterError as SklearnInvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets  # noqa: F401
from sklearn.utils.validation import (  # noqa: F401
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)


class Interval(_SklearnInterval):
    """scikit-learn's ``Interval``, except that it refuses bools.

    ``True`` is an ``Integral`` (``isinstance(True, int)``), so scikit-learn's
    own ``Interval(Integral, 1, None)`` takes ``batch_size=True`` as a batch
    of one sample, and ``Interval(Real, 0, None)`` takes ``lr=True`` as 1.0.
    A bool is never a count, a size, a number of epochs or a rate.
    """

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        return super().is_satisfied_by(val)


def as_array_input(X):
    """Turn a torch tensor into a NumPy array; leave anything else as it is.

    scikit-learn's ``validate_data`` understands arrays, lists and DataFrames
    but not CUDA tensors or tensors that require grad.
    """
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    return X


def validate_predict_input(estimator, X) -> np.ndarray:
    """``validate_data(estimator, X, dtype=float32, reset=False)``, with a
    shortcut for the common case of prediction.

    A 2-D numeric NumPy array with the fitted number of features, for an
    estimator fitted without feature names, is what every check would accept:
    only its dtype and finiteness need looking at. Per call, that saves the
    tens of microseconds ``validate_data`` spends recognising DataFrames,
    which is most of the latency of a one-row prediction. Anything else, and
    any input the shortcut would reject, goes through ``validate_data``, so
    errors and warnings are scikit-learn's own.
    """
    X = as_array_input(X)
    if (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype.kind in "biuf"
        and X.shape[0] > 0
        and X.shape[1] == estimator.n_features_in_
        and not hasattr(estimator, "feature_names_in_")
    ):
        # Overflow (a float64 beyond float32's range, or a sum of large finite
        # values) only sends the input down the full check, which decides.
        with np.errstate(over="ignore"):
            X32 = X.astype(np.float32, copy=False)
            finite = np.isfinite(X32.sum())
        if finite:
            return X32
    return validate_data(estimator, X, dtype=np.float32, reset=False)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """Wrap a validated NumPy array as a CPU tensor without a needless copy.

    A read-only array (e.g. a memory map) is copied, since torch cannot share
    memory it may not write to.
    """
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


def check_finite_float32(y: np.ndarray, owner: str) -> np.ndarray:
    """``y`` as float32, refusing values float32 cannot hold (beyond about
    3.4e38, which would become inf and make every loss inf or NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(y, dtype=np.float32)
    if not np.isfinite(cast).all():
        values = np.asarray(y, dtype=np.float64)
        bad = values[~np.isfinite(cast)]
        raise ValueError(
            f"y holds values that float32 cannot represent (largest magnitude "
            f"{np.abs(bad).max():.3g}; float32 holds up to {np.finfo(np.float32).max:.3g}): "
            f"{owner} trains in float32, where they become inf. Scale y, e.g. with "
            "sklearn.compose.TransformedTargetRegressor(regressor, "
            "transformer=StandardScaler())."
        )
    return cast


def check_sample_weight(sample_weight: Any, n_samples: int, owner: str,
                        param: str = "sample_weight") -> np.ndarray | None:
    """``sample_weight`` as a float64 array of one weight per sample, or None.

    None and a scalar are as scikit-learn takes them (a scalar: every sample
    that weight). Weights must be finite and non-negative with a positive
    sum; their length must be the number of samples. Equal weights are
    returned as None: they weigh every sample alike, which is training
    without weights, to the bit.
    """
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The {param!r} argument of {owner} must be numbers, one per sample. Got "
            f"{type(sample_weight).__name__} values that are not: {exc}"
        ) from exc
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.ndim != 1 or len(weights) != n_samples:
        raise ValueError(
            f"The {param!r} argument of {owner} must hold one weight per sample: shape "
            f"({n_samples},). Got shape {weights.shape}."
        )
    if not np.isfinite(weights).all():
        raise ValueError(
            f"The {param!r} argument of {owner} holds NaN or infinite values "
            f"(at positions {np.flatnonzero(~np.isfinite(weights))[:5].tolist()}); weights "
            "must be finite."
        )
    if (weights < 0).any():
        raise ValueError(
            f"The {param!r} argument of {owner} holds negative weights (the smallest is "
            f"{weights.min():.6g}); weights must be >= 0. A weight of 0 removes a sample."
        )
    if n_samples and weights.sum() <= 0:
        raise ValueError(
            f"The {param!r} argument of {owner} is zero for every sample: every "
            "sample would be removed. Give some samples a positive weight."
        )
    if n_samples and (weights == weights[0]).all():
        return None
    return weights
