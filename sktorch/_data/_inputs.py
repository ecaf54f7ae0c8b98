"""Input adapters: what an estimator accepts as X, and how it becomes the module's input.

An estimator names its adapter class (``_input_adapter``); the base builds one
per call around the estimator and never branches on the kind of X itself.
An adapter validates X (jointly with y at fit, since scikit-learn checks the
two together), converts it to the module's input tensor, records what the fit
learns about X (``n_features_in_``, ``feature_names_in_``, ``image_shape_``)
and checks later X against it, turns one item of a Dataset into a sample, and
gives validation inputs back in a form ``predict`` reads (for the metrics).

A new kind of X (categorical columns, dicts of inputs, sequences) is a new
subclass of :class:`InputAdapter`; the estimator that takes it names it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sktorch._data._images import image_sample, images_in_layout, images_to_tensor
from sktorch._data._tensors import float_sample
from sktorch._utils._validation import (
    as_array_input,
    check_is_fitted,
    to_tensor,
    validate_data,
    validate_predict_input,
)

if TYPE_CHECKING:
    from sktorch._data._targets import TargetAdapter


class InputAdapter:
    """How an estimator reads X: in-memory arrays, and the items of a Dataset.

    Parameters
    ----------
    estimator : BaseTorchEstimator
        The estimator whose fitted attributes the adapter records and reads.
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.owner = type(estimator).__name__

    def validate(self, X: Any, y: Any, target: TargetAdapter, reset: bool) -> tuple[torch.Tensor, Any]:
        """X and y of a fit, validated together: X as the module's input
        tensor, y as ``target`` validates it. With ``reset``, record what
        the fit learns about X; else check X against it."""
        raise NotImplementedError

    def predict_inputs(self, X: Any) -> torch.Tensor:
        """X of ``predict`` as the module's input tensor, checked against the fit."""
        raise NotImplementedError

    def sample_converter(self) -> Callable[[Any], torch.Tensor]:
        """Turns the input of one Dataset item into a sample tensor (a
        picklable function, for ``DataLoader`` workers)."""
        return float_sample

    def check_sample(self, sample: torch.Tensor, reset: bool) -> None:
        """Check the first sample of a Dataset (converted); with ``reset``,
        record what the fit learns from it; else check it against the fit."""
        estimator = self.estimator
        if sample.is_floating_point() and not torch.isfinite(sample).all():
            raise ValueError(
                f"Input X contains NaN or infinity: item 0 of the Dataset X of {self.owner}."
            )
        if reset:
            for attribute in ("n_features_in_", "feature_names_in_"):
                if attribute in vars(estimator):
                    delattr(estimator, attribute)
            if sample.ndim == 1:
                estimator.n_features_in_ = int(sample.shape[0])
        elif tuple(sample.shape) != tuple(estimator._input_shape):
            raise ValueError(
                f"The samples of the Dataset X have shape {tuple(sample.shape)}, but "
                f"{self.owner} was fitted on samples of shape {tuple(estimator._input_shape)}."
            )

    def decode(self, inputs: Any) -> Any:
        """Validation inputs, as the module takes them, as an X that
        ``predict`` reads back the same (for the validation metrics)."""
        return inputs


class ArrayInput(InputAdapter):
    """X as a table of numbers: a NumPy array, pandas DataFrame, list or
    tensor of shape (n_samples, n_features), cast to float32; feature names
    of a DataFrame are recorded as scikit-learn does."""

    def validate(self, X, y, target, reset):
        X = as_array_input(X)
        X, y = validate_data(self.estimator, X, y, dtype=np.float32, reset=reset,
                             **target.joint_checks)
        y = target.validate(y, X)
        return (X if isinstance(X, torch.Tensor) else to_tensor(X)), y

    def predict_inputs(self, X):
        return to_tensor(validate_predict_input(self.estimator, X))


class ImageInput(InputAdapter):
    """X as images: arrays (n, H, W) or (n, H, W, C) of uint8, float arrays
    or tensors in [0, 1] laid out as the estimator's ``channels`` says, PIL
    images or file paths; the fit records ``image_shape_`` (C, H, W)."""

    def validate(self, X, y, target, reset):
        images = images_to_tensor(X, self.owner, self.estimator.channels)
        if y is None:
            raise ValueError(f"{self.owner} requires y to be passed, but the target y is None.")
        y = target.validate(y, images)
        if reset:
            self.estimator.image_shape_ = tuple(images.shape[1:])
        else:
            self.check_shape(images)
        return images, y

    def predict_inputs(self, X):
        check_is_fitted(self.estimator)
        images = images_to_tensor(X, self.owner, self.estimator.channels)
        self.check_shape(images)
        return images

    def check_shape(self, images: torch.Tensor) -> None:
        """Images of ``predict`` (or of a continuing fit) have the fit's shape."""
        fitted = self.estimator.image_shape_
        if tuple(images.shape[1:]) != fitted:
            raise ValueError(
                f"X holds images of shape (C, H, W) = {tuple(images.shape[1:])}, but "
                f"{self.owner} was fitted on {fitted}."
            )

    def sample_converter(self):
        # A Dataset's images, one at a time, by the rules of arrays of images.
        return functools.partial(image_sample, owner=self.owner,
                                 channels=self.estimator.channels)

    def check_sample(self, sample, reset):
        super().check_sample(sample, reset)
        if reset:
            self.estimator.image_shape_ = tuple(sample.shape)

    def decode(self, inputs):
        if isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
            return images_in_layout(inputs, self.estimator.channels)
        return inputs
