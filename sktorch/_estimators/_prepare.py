"""The data of a fit: X, y and weights through the estimator's adapters, and a given validation set.

:class:`DataPreparation` is a mixin of
:class:`~sktorch._estimators._base.BaseTorchEstimator`: the "adapt data"
step of its fit. It asks the estimator's input and target adapters
(``_adapters()``) to validate and convert X, encode y and weigh the samples,
for arrays and for a torch ``Dataset`` X, and prepares a validation set the
user gives (``X_val``, ``y_val``) against the training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from sktorch._data._tensors import (
    EncodedDataset,
    WeightedTargets,
    collect_targets,
    is_dataset,
    split_item,
)
from sktorch._utils._device import resolve_device
from sktorch._utils._validation import as_array_input, check_sample_weight


class DataPreparation:
    """The data of a fit, prepared through the estimator's adapters."""

    def _prepare_fit(self, X: Any, y: Any, classes: Any, reset: bool,
                     sample_weight: Any = None, method: str = "fit"):
        """Validate and convert the data; with ``reset``, also pick the device
        and draw the seed of a new fit.

        ``inputs`` is a tensor, or for a Dataset X an :class:`EncodedDataset`
        (its items converted, its targets ``targets``). With
        ``sample_weight``, the targets come with their weights
        (:class:`~sktorch._data._tensors.WeightedTargets`)."""
        adapt_inputs, adapt_targets = self._adapters()
        owner = type(self).__name__
        if is_dataset(X):
            if sample_weight is not None:
                raise TypeError(
                    f"{owner} does not take sample_weight with a Dataset X yet: pass X and "
                    "y as arrays, or leave sample_weight=None."
                )
            inputs, targets, n_outputs = self._prepare_dataset(X, y, classes, reset)
        else:
            inputs, y = adapt_inputs.validate(X, as_array_input(y), adapt_targets, reset)
            weights = check_sample_weight(sample_weight, len(inputs), owner)
            targets, n_outputs = adapt_targets.encode(y, classes, reset=reset)
            weights = adapt_targets.weigh(targets, weights, method)
            if weights is not None and not (weights == weights[0]).all():
                # (Equal weights weigh nothing: training stays unweighted, to the bit.)
                if weights.sum() <= 0:
                    raise ValueError(
                        f"The sample weights of {owner} (sample_weight times class_weight) "
                        "are zero for every sample. Give some samples a positive weight."
                    )
                targets = WeightedTargets(targets, torch.from_numpy(weights.astype(np.float32)))
        if reset:
            device = resolve_device(self.device, type(self).__name__)
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        else:
            device, seed = torch.device(self.net_.device), None
        return inputs, targets, n_outputs, device, seed

    def _prepare_dataset(self, X: Any, y: Any, classes: Any, reset: bool):
        """The general path's ``_prepare_fit``: check the first item, collect
        and encode every target, wrap X."""
        owner = type(self).__name__
        adapt_inputs, adapt_targets = self._adapters()
        if adapt_targets.refuses_datasets is not None:
            raise TypeError(adapt_targets.refuses_datasets.format(owner=owner))
        if y is not None:
            raise ValueError(
                f"{owner}.fit got a Dataset as X and a y as well; a Dataset's items carry "
                "their own targets as (x, y) pairs. Pass y=None."
            )
        if len(X) == 0:
            raise ValueError(f"{owner} needs at least one sample; the Dataset X is empty.")
        convert = adapt_inputs.sample_converter()
        sample = convert(split_item(X[0], 0, owner)[0])
        adapt_inputs.check_sample(sample, reset)
        if reset:
            self._input_shape = tuple(sample.shape)
        y = adapt_targets.validate_collected(collect_targets(X, owner))
        targets, n_outputs = adapt_targets.encode(y, classes, reset=reset)
        return EncodedDataset(X, targets, convert), targets, n_outputs

    def _prepare_validation(self, inputs: Any, X_val: Any, y_val: Any,
                            sample_weight_val: Any) -> tuple[Any, Any]:
        """The given validation set as the module's inputs and the encoded
        (and weighted) targets, checked against the training data."""
        owner = type(self).__name__
        if X_val is None or y_val is None:
            given = "X_val" if X_val is not None else "y_val" if y_val is not None else (
                "sample_weight_val")
            raise ValueError(
                f"{owner}.fit got {given} but not both X_val and y_val: a validation set "
                "needs its inputs and its targets."
            )
        if self.validation_fraction is not None:
            raise ValueError(
                f"{owner}.fit got a validation set (X_val, y_val) and "
                f"validation_fraction={self.validation_fraction}: use one. Set "
                "validation_fraction=None to validate on X_val."
            )
        if isinstance(inputs, EncodedDataset) or is_dataset(X_val):
            raise TypeError(
                f"{owner}.fit takes X_val as arrays (as X), not with a Dataset X or as a "
                "Dataset yet; with a Dataset, use validation_fraction."
            )
        adapt_inputs, adapt_targets = self._adapters()
        try:
            val_inputs = adapt_inputs.predict_inputs(X_val)
        except ValueError as exc:
            raise ValueError(f"The validation inputs X_val of {owner} do not fit the "
                             f"training data: {exc}") from exc
        y_val = adapt_targets.validate(as_array_input(y_val), val_inputs)
        try:
            val_targets, _ = adapt_targets.encode(y_val, None, reset=False)
        except ValueError as exc:
            raise ValueError(f"The validation targets y_val of {owner} do not fit the "
                             f"training data: {exc}") from exc
        weights = check_sample_weight(sample_weight_val, len(val_inputs), owner,
                                      param="sample_weight_val")
        weights = adapt_targets.weigh(val_targets, weights, "fit")
        if weights is not None and not (weights == weights[0]).all():
            val_targets = WeightedTargets(val_targets,
                                          torch.from_numpy(weights.astype(np.float32)))
        return val_inputs, val_targets

