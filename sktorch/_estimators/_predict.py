"""Predicting: how an estimator feeds X to the one inference loop of the engine."""

from __future__ import annotations

from typing import Any

import torch
from skorch.utils import params_for
from torch import nn

from sktorch._data._augment import resolve_tta
from sktorch._data._tensors import EncodedDataset, InputsOf, is_dataset
from sktorch._engine._inference import (
    PREDICT_CHUNK_ROWS,
    InferenceModule,
    chunks,
    plain_inference_module,
    run_inference,
)
from sktorch._utils._validation import check_is_fitted


class Predicting:
    """The prediction side of :class:`~sktorch._estimators._base.BaseTorchEstimator`:
    X through the input adapter, batched (arrays in chunks, a Dataset by a
    ``DataLoader``), through :class:`~sktorch._engine._inference.InferenceModule`
    (the module, the ``tta`` views and their inverses, the output function
    of the fit's loss plan). Leaves turn the result into predictions."""

    def _predict_inputs(self, X: Any) -> torch.Tensor:
        """X validated against the fit and converted to the module's input
        tensor (on the CPU)."""
        return self._input_adapter(self).predict_inputs(X)

    def _inference_module(self, module: nn.Module | None = None) -> InferenceModule:
        """What predicting computes per batch: the module (the fitted one,
        or ``module``, e.g. a CPU copy to export), the test-time views of
        ``tta`` and the output function of the fit's loss plan
        (``_loss_plan.link``). The one place prediction resolves them;
        ``export_onnx`` exports this module."""
        if module is None and self.tta is None:
            return plain_inference_module(self, self.net_.module_, self._loss_plan.link)
        module = self.net_.module_ if module is None else module
        return InferenceModule(module, self._loss_plan.link,
                               resolve_tta(self.tta, type(self).__name__))

    def _forward(self, X: Any) -> torch.Tensor:
        """The outputs of :meth:`_inference_module` for X, as one float64
        tensor on the CPU: one validation, then batched forward passes
        through the inference loop (:func:`~sktorch._engine._inference.run_inference`).

        Returns
        -------
        output : torch.Tensor of shape (n_samples, ...)
            float64: the linked outputs averaged over the views.
        """
        check_is_fitted(self)
        if is_dataset(X):
            n_rows = len(X)
            batches = self._dataset_batches(X)
        else:
            inputs = self._predict_inputs(X)
            n_rows = len(inputs)
            batches = chunks(inputs, PREDICT_CHUNK_ROWS)
        return run_inference(self.net_, batches, n_rows, self._inference_module(),
                             owner=type(self).__name__)

    def _dataset_batches(self, X: Any) -> Any:
        """Batches of the inputs of a Dataset X (items (x, y) or x), checked
        against the fit on the first, loaded by a ``DataLoader`` in order
        (``batch_size`` samples at a time; ``iterator_valid__`` options
        apply)."""
        owner = type(self).__name__
        if len(X) == 0:
            raise ValueError(f"{owner} needs at least one sample; the Dataset X is empty.")
        adapt_inputs = self._input_adapter(self)
        inputs = X.inputs() if isinstance(X, EncodedDataset) else InputsOf(
            X, adapt_inputs.sample_converter())
        adapt_inputs.check_sample(inputs[0], reset=False)
        options = params_for("iterator_valid", self._option_params())
        options.pop("shuffle", None)
        options.setdefault("batch_size", self.batch_size)
        # Its own generator: without one a DataLoader draws from the user's
        # global random state, which predicting must not change.
        options.setdefault("generator", torch.Generator())
        return torch.utils.data.DataLoader(inputs, **options)
