"""The net as scorers and callbacks see it: data as the user gave it,
predictions as the estimator makes them.

skorch's scoring callbacks (``EpochScoring``, ``BatchScoring``) score the
net itself, ``scorer(net, X, y)``, through ``net.predict`` and
``net.predict_proba``; the training data they read are the fit's encoded
ones (label indices, float 0/1 columns, module-layout tensors). A net that
an sktorch estimator built answers them as the estimator would:

- ``predict``/``predict_proba`` return what the estimator's return
  (labels of the user's type, probabilities in the order of ``classes_``),
  and the net's scikit-learn tags and ``classes_`` are the estimator's, so
  scorers that need probabilities (``'neg_log_loss'``, ``'roc_auc'``) read
  it as a classifier;
- while a scoring callback caches the predictions of the epoch's batches
  (skorch's ``use_caching``), the net reads them from skorch's cache and
  links them as prediction does: no second forward pass;
- the targets a scoring callback reads go through its ``target_extractor``:
  skorch's default one (``to_numpy``) is replaced, for the fit, by the
  net's decoding (:meth:`ScoringView.decode_targets`), so ``y_true`` holds
  the user's labels;
- a scoring callback that does not cache is handed the data as the user
  gave them (:meth:`ScoringView.decode_inputs`): a skorch ``Dataset`` of the
  decoded inputs for ``EpochScoring``, decoded batch inputs for
  ``BatchScoring``.

Without an estimator, the net is skorch's ``NeuralNet`` in all of this.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from skorch.callbacks import BatchScoring, EpochScoring
from skorch.callbacks.scoring import ScoringBase
from skorch.dataset import Dataset as SkorchDataset
from skorch.dataset import unpack_data
from skorch.utils import to_numpy
from torch import nn

from sktorch._data._tensors import TensorDataset, WeightedTargets, plain_targets
from sktorch._engine._inference import InferenceModule, chunks, first_output, run_inference

__all__ = ["ScoringView"]


def _has_predict_proba(net: Any) -> bool:
    estimator = net.estimator
    return estimator is None or hasattr(estimator, "predict_proba")


class ScoringView:
    """What a net offers scorers and callbacks, mixed into ``SktorchNet``
    before skorch's ``NeuralNet`` (see the module's docstring)."""

    # The fit's scoring callbacks that score data as the user gave them (no
    # caching): EpochScoring ones, handed decoded datasets at an epoch's end,
    # and BatchScoring ones, handed decoded batches. Set for a fit by
    # on_train_begin, dropped at its end; empty otherwise.
    _user_epoch_scorers: tuple[Any, ...] = ()
    _user_batch_scorers: tuple[Any, ...] = ()

    # ------------------------------------------------------------ decoding
    def decode_inputs(self, inputs: Any) -> Any:
        """Inputs of the fit's data, as the module takes them, as an X that
        the estimator's ``predict`` reads back as them.

        A tensor (a batch, or a whole split) comes back on the CPU: a NumPy
        array for tables (a DataFrame with the fitted column names when the
        estimator was fitted on one, so scikit-learn does not warn about
        feature names), images (n, C, H, W) laid out as the estimator's
        ``channels`` reads them. A Dataset (the items of a Dataset X) comes
        back as it is: ``predict`` takes it. Unchanged without an
        estimator.
        """
        estimator = self.estimator
        if estimator is None:
            return inputs
        if isinstance(inputs, torch.Tensor):
            inputs = inputs.detach().cpu()
            # Images stay a tensor: the input adapter lays them out as
            # `channels` reads them.
            inputs = inputs if inputs.ndim == 4 else inputs.numpy()
        X = estimator._adapters()[0].decode(inputs)
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None and getattr(X, "ndim", None) == 2:
            import pandas as pd

            X = pd.DataFrame(X, columns=names)
        return X

    def decode_targets(self, targets: Any) -> Any:
        """Training or validation targets back as the user gave ``y``
        (labels for classifiers, masks for segmenters); unchanged without an
        estimator."""
        estimator = self.estimator
        targets = plain_targets(targets)  # without their weights (sample_weight)
        return targets if estimator is None else estimator._adapters()[1].decode(targets)

    # --------------------------------------------------------- predictions
    @property
    def classes_(self) -> np.ndarray:
        """The estimator's ``classes_`` (scikit-learn's classification
        scorers read them from the net they score)."""
        estimator = self.estimator
        classes = getattr(estimator, "classes_", None) if estimator is not None else None
        if classes is None:
            owner = type(estimator).__name__ if estimator is not None else "no estimator"
            raise AttributeError(
                f"This {type(self).__name__} has no classes_: it was built by {owner}, "
                "which predicts no class labels."
            )
        return classes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        estimator = self.estimator
        if estimator is not None:
            # A classifier's net is scored as a classifier (probabilities of
            # classes_), a regressor's as a regressor.
            tags.estimator_type = get_tags(estimator).estimator_type
        return tags

    @available_if(_has_predict_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """The estimator's ``predict_proba(X)``; skorch's (the module's
        outputs) without an estimator.

        ``X`` is as the estimator takes it, or a dataset of the fit (what
        skorch's scoring callbacks pass). Inside a scoring callback that
        caches, the predictions are the epoch's cached outputs, linked as
        prediction links them (softmax, sigmoid or none), but without the
        ``tta`` views: those of the batches as they were trained or
        validated. Absent when the estimator has no ``predict_proba``.

        Parameters
        ----------
        X : array-like, Dataset or tensor
            Input data.

        Returns
        -------
        proba : ndarray
            As the estimator's ``predict_proba``.
        """
        estimator = self.estimator
        if estimator is None:
            return super().predict_proba(X)
        if self._scoring_cached_outputs():
            return self._cached_predictions(X, proba=True)
        return estimator.predict_proba(self._estimator_input(X))

    def predict(self, X: Any) -> np.ndarray:
        """The estimator's ``predict(X)``: labels of the user's type for a
        classifier; skorch's (the module's outputs) without an estimator.

        ``X`` as for :meth:`predict_proba`, and from the same cache inside a
        scoring callback that caches.

        Parameters
        ----------
        X : array-like, Dataset or tensor
            Input data.

        Returns
        -------
        y_pred : ndarray
            As the estimator's ``predict``.
        """
        estimator = self.estimator
        if estimator is None:
            return super().predict(X)
        if self._scoring_cached_outputs():
            return self._cached_predictions(X, proba=False)
        return estimator.predict(self._estimator_input(X))

    def _scoring_cached_outputs(self) -> bool:
        # skorch's scoring callbacks, when they cache, set the net's
        # forward_iter to one yielding the epoch's cached outputs, for the
        # time of the scoring (skorch.callbacks.scoring._cache_net_forward_iter).
        return "forward_iter" in vars(self)

    def _estimator_input(self, X: Any) -> Any:
        # A dataset of the in-memory path holds module inputs; any other X
        # (a Dataset of the fit's included) the estimator reads itself.
        return self.decode_inputs(X.X) if isinstance(X, TensorDataset) else X

    def _cached_predictions(self, X: Any, proba: bool) -> np.ndarray:
        """Predictions from the outputs skorch's scoring cache holds for X:
        through the inference loop with the fit's output function (as
        ``predict_proba`` links them), then decoded as ``predict`` decodes
        its probabilities."""
        estimator = self.estimator
        owner = type(estimator).__name__
        outputs = [first_output(output).detach() for output in self.forward_iter(X, training=False)]
        if not outputs:
            raise ValueError(
                f"The net of {owner} has no cached predictions left for this scorer: with "
                "use_caching=True, a scoring callback's predictions can be read once. For a "
                "scorer that calls predict or predict_proba more than once, pass "
                "use_caching=False to its callback."
            )
        outputs = torch.cat(outputs)
        link = InferenceModule(nn.Identity(), estimator._loss_plan.link)
        # Masks of probabilities are float32, as the segmenter predicts them.
        dense = getattr(estimator._target_adapter, "dense", False)
        linked = run_inference(self, chunks(outputs), len(outputs), link, owner=owner,
                               dtype=torch.float32 if dense else torch.float64)
        if proba:
            return linked.numpy()
        return self.decode_targets(linked.argmax(dim=1) if is_classifier(estimator) else linked)

    # ------------------------------------------------------------- scoring
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._end_scoring()
        if self.estimator is None:
            return
        epoch, batch = [], []
        for _, callback in self.callbacks_:
            if not isinstance(callback, ScoringBase):
                continue
            if callback.target_extractor is to_numpy:
                callback.target_extractor = self._scoring_targets
            if isinstance(callback, (EpochScoring, BatchScoring)) and not self._caches(callback):
                (epoch if isinstance(callback, EpochScoring) else batch).append(callback)
        self._user_epoch_scorers, self._user_batch_scorers = tuple(epoch), tuple(batch)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self._end_scoring()
        super().on_train_end(net, X=X, y=y, **kwargs)

    def on_train_error(self, net, exc: BaseException, X=None, y=None, **kwargs) -> None:
        self._end_scoring()

    def _end_scoring(self) -> None:
        """Give the scoring callbacks back skorch's target extractor, and
        forget which ones score the user's data."""
        for _, callback in getattr(self, "callbacks_", None) or ():
            if getattr(callback, "target_extractor", None) == self._scoring_targets:
                callback.target_extractor = to_numpy
        self.__dict__.pop("_user_epoch_scorers", None)
        self.__dict__.pop("_user_batch_scorers", None)

    def _scoring_targets(self, y: Any) -> Any:
        """The target extractor of the fit's scoring callbacks (in place of
        skorch's ``to_numpy``): the fit's target tensors decoded as the user
        gave ``y``."""
        if isinstance(y, WeightedTargets):
            y = y.targets  # skorch's scorers take no weights
        return self.decode_targets(y) if isinstance(y, torch.Tensor) else to_numpy(y)

    def _caches(self, callback: Any) -> bool:
        """Whether a scoring callback caches its predictions (skorch's rule:
        the net's ``use_caching`` decides unless it is ``'auto'``)."""
        caching = callback.use_caching if self.use_caching == "auto" else self.use_caching
        return bool(caching)

    def _user_dataset_kwargs(self, cb_kwargs: dict[str, Any], callback: Any,
                             memo: dict[str, Any]) -> dict[str, Any]:
        """The ``on_epoch_end`` arguments of an ``EpochScoring`` that does not
        cache: the dataset it scores as a skorch ``Dataset`` of the inputs as
        the user gives them and of the targets (which its target extractor
        decodes), so that skorch reads X and y from it. Made once per epoch
        (``memo``) for all such callbacks."""
        key = "dataset_train" if callback.on_train else "dataset_valid"
        if key not in memo:
            dataset = cb_kwargs.get(key)
            memo[key] = dataset if dataset is None else SkorchDataset(
                self.decode_inputs(dataset.X), dataset.y, length=len(dataset))
        return {**cb_kwargs, key: memo[key]}

    def _user_batch_kwargs(self, cb_kwargs: dict[str, Any], callback: Any) -> dict[str, Any]:
        """The ``on_batch_end`` arguments of a ``BatchScoring`` that does not
        cache: the batch's inputs as the user gives them, for a batch of the
        kind it scores."""
        if cb_kwargs.get("training") != callback.on_train:
            return cb_kwargs
        Xi, yi = unpack_data(cb_kwargs["batch"])
        return {**cb_kwargs, "batch": (self.decode_inputs(Xi), yi)}
