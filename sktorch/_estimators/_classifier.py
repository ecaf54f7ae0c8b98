"""TorchClassifier: a PyTorch network as a scikit-learn classifier."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from torch import nn

from sktorch._data._targets import LabelTarget
from sktorch._estimators._base import BaseTorchEstimator
from sktorch._estimators._params import fill_doc
from sktorch._engine._checks import check_output_fits_loss, output_kind
from sktorch._utils._introspect import accepted_arguments
from sktorch._utils._validation import StrOptions
from sktorch.losses._plan import LossPlan


class LabelsMixin:
    """What estimators of class labels share (:class:`TorchClassifier`,
    :class:`~sktorch.ImageClassifier`, :class:`~sktorch.ImageSegmenter`):
    ``classes_`` learned at fit, one logit per class (softmax) or one logit
    for a binary loss (sigmoid), and probabilities out. Mixed in before
    :class:`BaseTorchEstimator`; the estimator names its target adapter."""

    _label_attributes = ("classes_",)
    _loss_task = "classification"

    def _plan_loss(self, n_classes: int | None = None) -> LossPlan:
        """The base's plan, with the output function: a sigmoid of one
        logit for binary cross entropy or a loss in binary mode, else a
        softmax over one logit per class."""
        n_classes = len(self.classes_) if n_classes is None else n_classes
        plan = super()._plan_loss(n_classes)
        criterion = plan.criterion
        if isinstance(criterion, nn.Module):
            mode = getattr(criterion, "mode", None)
        else:
            mode = plan.options.get("mode")
        if issubclass(criterion if isinstance(criterion, type) else type(criterion),
                      nn.BCEWithLogitsLoss):
            mode = "binary"
        if mode == "multilabel":
            raise ValueError(
                f"{type(self).__name__} predicts one label per sample; the criterion's "
                "mode='multilabel' needs one target column per label. Use mode='binary' "
                "or 'multiclass'."
            )
        return dataclasses.replace(plan, link="sigmoid" if mode == "binary" else "softmax")

    def _check_output_values(self, output, plan):
        kind = "scores" if plan.sigmoid else output_kind(output)
        check_output_fits_loss(kind, plan.criterion, plan.options, self.criterion,
                               type(self).__name__)
        return plan.with_output(kind)

    def _criterion_defaults(self, criterion_cls, n_classes):
        defaults = {"mode": "binary" if n_classes == 2 else "multiclass", "batch": True}
        return accepted_arguments(criterion_cls, defaults)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of the class probabilities for X.

        The natural logarithm of :meth:`predict_proba`, as scikit-learn's
        ``MLPClassifier`` computes it (meta-estimators such as
        ``BaggingClassifier`` and ``Pipeline`` call it). For
        :class:`~sktorch.ImageSegmenter` it is per pixel, as its
        probabilities are.

        Parameters
        ----------
        X : array-like, Dataset or images
            As for :meth:`predict_proba`.

        Returns
        -------
        log_proba : ndarray
            The shape and dtype of :meth:`predict_proba`: (n_samples,
            n_classes), in the order of ``classes_``; (n_samples, n_classes,
            H, W) for :class:`~sktorch.ImageSegmenter`. ``-inf`` where a
            probability is 0 (it underflowed).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sktorch import TorchClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
        >>> log_proba = clf.predict_log_proba(X[:3])
        >>> log_proba.shape
        (3, 3)
        >>> bool(np.allclose(np.exp(log_proba), clf.predict_proba(X[:3])))
        True
        """
        proba = self.predict_proba(X)
        # In place: the probabilities are ours (a segmenter's are large). A
        # probability of 0 is a log of -inf, as np.log gives it, without the
        # warning.
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba if proba.flags.writeable else None)


class TorchClassifier(LabelsMixin, ClassifierMixin, BaseTorchEstimator):
    """A PyTorch network trained by skorch, as a scikit-learn classifier.

    Labels of any type (strings, non-contiguous integers, booleans) are
    encoded at fit and given back by ``predict``; the input width and the
    number of classes are handed to the module. With a cross-entropy-style
    loss the network has one output per class and ``predict_proba`` is their
    softmax; with ``criterion='bce'``, or a loss in ``mode='binary'`` (binary
    problems only), it has one output and ``predict_proba`` is its sigmoid.

    A module that outputs probabilities (it ends in a softmax: checked at
    fit on the first training samples) is trained with ``criterion='nll'``,
    which then takes their log, as skorch's ``NeuralNetClassifier`` does,
    and ``predict_proba`` returns them as they are; a loss that applies its
    own softmax to logits ('cross_entropy', 'focal', ...) refuses such a
    module. With ``criterion='nll'`` a module ending in a log-softmax works
    too; one returning logits is refused. Regression losses ('mse', ...)
    are refused.

    Losses that take a ``mode`` (``'focal'``, ``'dice'``, ``'tversky'``,
    ``'dice_ce'``) get it from the task unless ``criterion__mode`` is given:
    ``'binary'`` for two classes, ``'multiclass'`` otherwise; those that take
    ``batch`` get ``batch=True``, since a tabular sample has one position
    and a per-sample overlap ratio would carry almost no signal.

    Parameters
    ----------
    $common_parameters
    $class_weight

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of X, when X was a DataFrame with string column names.
    n_outputs_ : int
        Width of the module's output: the number of classes, or 1 with a
        binary (sigmoid) loss.
    module_ : nn.Module
        The trained network.
    history_ : skorch.History
        Per-epoch record: ``train_loss``, ``valid_loss`` (when validating),
        ``dur`` and per-batch losses.
    net_ : skorch.NeuralNet
        The skorch net that trained ``module_``.

    See Also
    --------
    TorchRegressor : The same for regression.
    sklearn.neural_network.MLPClassifier : scikit-learn's own MLP.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sktorch import TorchClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TorchClassifier(module__hidden_sizes=(16,), lr=0.01, max_epochs=5,
    ...                       random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.predict_proba(X[:3]).sum(axis=1).round(6)
    array([1., 1., 1.])
    """

    _fitted_attributes = (*BaseTorchEstimator._fitted_attributes, *LabelsMixin._label_attributes)
    _target_adapter = LabelTarget
    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        module: Any = "mlp",
        *,
        criterion: Any = "cross_entropy",
        class_weight: dict | str | None = None,
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
        self.class_weight = class_weight
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

    def partial_fit(self, X: Any, y: Any, classes: Any = None,
                    sample_weight: Any = None) -> TorchClassifier:
        """Train for one epoch on X and y, from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Labels; each must be one of ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every label the estimator will ever see. Required on the first
            call (the module's output width depends on it), ignored after.
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
        return self._partial_fit(X, y, classes, sample_weight)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or Dataset
            Input data; or a map-style Dataset of samples or (x, y) pairs,
            loaded ``batch_size`` at a time.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``; each row sums to 1.
        """
        return self._forward(X).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels for X, as they were given in ``y`` at fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or Dataset
            Input data; or a map-style Dataset of samples or (x, y) pairs,
            loaded ``batch_size`` at a time.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ------------------------------------------------------------- hooks
    def _output_reason(self, n_outputs):
        if self._loss_plan.sigmoid:
            return "one logit for a binary loss"
        return f"one logit per class, {n_outputs} classes"


fill_doc(TorchClassifier, criterion="'cross_entropy'")
