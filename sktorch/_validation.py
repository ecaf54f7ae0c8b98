"""The one place where sktorch imports scikit-learn's validation helpers.

Some of them live in private modules (``sklearn.utils._param_validation``);
keeping every such import here means a scikit-learn upgrade touches one file.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils._param_validation import (  # noqa: F401 (re-exported)
    Interval,
    InvalidParameterError as SklearnInvalidParameterError,
    StrOptions,
)
from sklearn.utils.multiclass import check_classification_targets  # noqa: F401
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: F401


def as_array_input(X):
    """Turn a torch tensor into a NumPy array; leave anything else as it is.

    scikit-learn's ``validate_data`` understands arrays, lists and DataFrames
    but not CUDA tensors or tensors that require grad.
    """
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    return X


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """Wrap a validated NumPy array as a CPU tensor without a needless copy.

    A read-only array (e.g. a memory map) is copied, since torch cannot share
    memory it may not write to.
    """
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))
