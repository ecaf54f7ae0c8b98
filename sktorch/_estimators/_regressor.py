"""TorchRegressor: a PyTorch network as a scikit-learn regressor."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin

from sktorch._data._targets import RegressionTarget
from sktorch._estimators._base import BaseTorchEstimator
from sktorch._estimators._params import fill_doc



class TorchRegressor(RegressorMixin, BaseTorchEstimator):
    """A PyTorch network trained by skorch, as a scikit-learn regressor.

    Single- and multi-output: y of shape (n_samples,) or (n_samples,
    n_outputs); the module gets one output per target column, and
    ``predict`` returns the shape y had at fit.

    Parameters
    ----------
    $common_parameters

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of X, when X was a DataFrame with string column names.
    n_outputs_ : int
        Number of target columns, the width of the module's output.
    module_ : nn.Module
        The trained network.
    history_ : skorch.History
        Per-epoch record: ``train_loss``, ``valid_loss`` (when validating),
        ``dur`` and per-batch losses.
    net_ : skorch.NeuralNet
        The skorch net that trained ``module_``.

    See Also
    --------
    TorchClassifier : The same for classification.
    sklearn.neural_network.MLPRegressor : scikit-learn's own MLP.

    Examples
    --------
    >>> import numpy as np
    >>> from sktorch import TorchRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5])
    >>> reg = TorchRegressor(lr=0.01, max_epochs=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:4]).shape
    (4,)
    """

    _fitted_attributes = (*BaseTorchEstimator._fitted_attributes, "_y_was_1d")
    _loss_task = "regression"
    _target_adapter = RegressionTarget

    def __init__(
        self,
        module: Any = "mlp",
        *,
        criterion: Any = "mse",
        optimizer: Any = "adam",
        lr: float = 1e-3,
        lr_scheduler: Any = None,
        max_epochs: int = 20,
        batch_size: int = 32,
        precision: str = "32",
        max_grad_norm: float | None = None,
        accumulate_grad_batches: int = 1,
        on_nonfinite_loss: str = "raise",
        init: Any = None,
        freeze: tuple[str, ...] | None = None,
        augment: Any = None,
        tta: Any = None,
        device: str | torch.device = "auto",
        strategy: str | None = None,
        devices: int | None = None,
        compile: bool = False,
        random_state: Any = None,
        validation_fraction: float | None = None,
        early_stopping: int | bool | None = None,
        early_stopping_monitor: str = "valid_loss",
        metrics: Any = None,
        tensorboard: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume_from: str | os.PathLike | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        callbacks: list | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            lr_scheduler=lr_scheduler,
            max_epochs=max_epochs,
            batch_size=batch_size,
            precision=precision,
            max_grad_norm=max_grad_norm,
            accumulate_grad_batches=accumulate_grad_batches,
            on_nonfinite_loss=on_nonfinite_loss,
            init=init,
            freeze=freeze,
            augment=augment,
            tta=tta,
            device=device,
            strategy=strategy,
            devices=devices,
            compile=compile,
            random_state=random_state,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            early_stopping_monitor=early_stopping_monitor,
            metrics=metrics,
            tensorboard=tensorboard,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
            warm_start=warm_start,
            verbose=verbose,
            callbacks=callbacks,
            **kwargs,
        )

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> TorchRegressor:
        """Train for one epoch on X and y, from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, with as many columns as at the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample, as for ``fit``.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.

        Notes
        -----
        $continuing_rule
        """
        return self._partial_fit(X, y, None, sample_weight)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or Dataset
            Input data; or a map-style Dataset of samples or (x, y) pairs,
            loaded ``batch_size`` at a time.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            float64 predictions, shaped as y was at fit.
        """
        output = self._forward(X).double().numpy()
        return output.ravel() if self._y_was_1d else output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------- hooks
    def _output_reason(self, n_outputs):
        return f"one output per target column, {n_outputs} column(s)"


fill_doc(TorchRegressor, criterion="'mse'")
