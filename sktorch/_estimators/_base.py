"""The base every sktorch estimator extends.

Design: composition, not inheritance from skorch. The estimator is a plain
scikit-learn ``BaseEstimator`` whose ``__init__`` only stores; ``fit``
validates the data, resolves names through the registries and builds a skorch
``NeuralNet`` (``net_``), which runs the training loop, the callbacks and the
history. skorch's ``NeuralNet`` itself sets attributes in ``__init__`` and
returns private keys from ``get_params``, which breaks scikit-learn's
``check_no_attributes_set_in_init`` and ``check_set_params``; keeping it as a
fitted attribute keeps those contracts intact while reusing all of skorch's
training machinery, including its pickling with CUDA-to-CPU remapping.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from skorch.helper import predefined_split

from sktorch._data._augment import resolve_tta
from sktorch._data._batches import check_iterator_options
from sktorch._data._inputs import ArrayInput, InputAdapter
from sktorch._data._split import split_validation
from sktorch._data._targets import TargetAdapter
from sktorch._engine._checks import (
    check_callbacks,
    check_loss_task,
    warn_if_not_converged,
)
from sktorch._estimators._build import NetAssembly
from sktorch._estimators._prepare import DataPreparation
from sktorch._estimators._fitted import FittedViews
from sktorch._estimators._params import COMMON_CONSTRAINTS
from sktorch._estimators._predict import Predicting
from sktorch._estimators._continuing import check_and_apply, remember
from sktorch._data._tensors import EncodedDataset, TensorDataset, is_dataset
from sktorch._utils._device import to_device_if_room
from sktorch._engine._distributed import check_distributed, fit_distributed
from sktorch._engine._lr_find import LRFinderResult, check_lr_find_arguments, lr_find
from sktorch._engine._net import SktorchNet
from sktorch._engine._net_hooks import NetHooksMixin
from sktorch._utils._introspect import did_you_mean
from sktorch._utils._rng import fit_random_state, rng_state, set_rng_state
from sktorch.exceptions import InvalidParameterError
from sktorch.callbacks._needs import check_validation_needs
from sktorch.callbacks._checkpoint import check_resume, load_training_state, read_checkpoint


class BaseTorchEstimator(DataPreparation, NetAssembly, Predicting, FittedViews, NetHooksMixin,
                         BaseEstimator):
    """Base class of sktorch estimators; not meant to be used directly.

    Subclasses set the task: how targets are encoded, how many outputs the
    module needs and how outputs become predictions. A user's subclass may
    override skorch's customization points (``get_loss``, ``train_step``,
    ``train_step_single``, ``validation_step``; see ``NetHooksMixin`` in
    ``sktorch/_engine/_net_hooks.py``) and add hyperparameters of
    its own (see :meth:`_get_param_names`).
    """

    _parameter_constraints: dict = dict(COMMON_CONSTRAINTS)

    # The fitted state sktorch.save writes and sktorch.load restores, and the
    # only names load writes into an estimator (a file cannot plant an
    # attribute over a method). ``net_`` is rebuilt from the weights;
    # ``checkpoint_path_`` names a directory of the machine that fitted.
    _fitted_attributes: tuple[str, ...] = (
        "n_outputs_", "n_features_in_", "feature_names_in_", "_input_shape", "_rng_state",
        "_split_seed", "_trimmed", "_loss_plan", "_validating",
    )
    # Set by fit but deliberately not saved: the hyperparameters the net was
    # built with (sktorch._estimators._continuing), which a loaded estimator takes anew
    # from its hyperparameters at its first continuing fit.
    _unsaved_attributes: tuple[str, ...] = ("_built_with",)
    # Prefixes of the ``prefix__option`` hyperparameters an estimator accepts.
    _option_prefixes: tuple[str, ...] = (
        "module", "criterion", "optimizer", "lr_scheduler", "init", "callbacks", "compile",
        "augment", "iterator_train", "iterator_valid",
    )

    def __init__(
        self,
        module: Any = "mlp",
        *,
        criterion: Any,
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
        self.module = module
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.lr_scheduler = lr_scheduler
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.precision = precision
        self.max_grad_norm = max_grad_norm
        self.accumulate_grad_batches = accumulate_grad_batches
        self.on_nonfinite_loss = on_nonfinite_loss
        self.init = init
        self.freeze = freeze
        self.augment = augment
        self.tta = tta
        self.device = device
        self.strategy = strategy
        self.devices = devices
        self.compile = compile
        self.random_state = random_state
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.early_stopping_monitor = early_stopping_monitor
        self.metrics = metrics
        self.tensorboard = tensorboard
        self.checkpoint_dir = checkpoint_dir
        self.resume_from = resume_from
        self.warm_start = warm_start
        self.verbose = verbose
        self.callbacks = callbacks
        # ``prefix__option`` keywords, stored as given and checked at fit,
        # like every other parameter.
        vars(self).update(kwargs)

    # ------------------------------------------------------------------ params
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The named hyperparameters: those of the ``__init__`` of ``cls``
        and, while an ``__init__`` takes ``**kwargs`` (a subclass adding its
        own parameters and passing the rest on with
        ``super().__init__(**kwargs)``), those of its parent classes' up to
        this base, whose ``**kwargs`` are the ``prefix__option`` ones.
        """
        names: set[str] = set()
        for klass in cls.__mro__:
            if "__init__" not in vars(klass):
                continue
            parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
            for parameter in parameters:
                if parameter.kind == parameter.VAR_POSITIONAL:
                    raise RuntimeError(
                        f"{klass.__name__}.__init__ takes *{parameter.name}; scikit-learn "
                        "estimators must name their parameters (keywords, or **kwargs "
                        "passed on to the parent class)."
                    )
                if parameter.kind != parameter.VAR_KEYWORD:
                    names.add(parameter.name)
            takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in parameters)
            if klass is BaseTorchEstimator or not takes_kwargs:
                break
        return sorted(names)

    def _option_params(self) -> dict[str, Any]:
        """The keywords stored beyond the signature (``prefix__option`` ones).

        Fitted attributes end with ``_`` and private state starts with it;
        every other attribute not in the signature came in through
        ``**kwargs`` or ``set_params``.
        """
        named = super().get_params(deep=False)
        return {
            key: value
            for key, value in vars(self).items()
            if key not in named and not key.startswith("_") and not key.endswith("_")
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the hyperparameters, ``prefix__option`` ones included."""
        params = super().get_params(deep=deep)
        params.update(self._option_params())
        return params

    def set_params(self, **params: Any) -> BaseTorchEstimator:
        """Set hyperparameters, ``prefix__option`` ones included.

        As in ``__init__``, values are stored as given and checked at fit,
        where an unknown name is an :class:`~sktorch.exceptions.InvalidParameterError`.
        """
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _check_option_names(self) -> None:
        named = sorted(super().get_params(deep=False))
        for key in self._option_params():
            prefix = key.split("__", 1)[0]
            if "__" in key and prefix in self._option_prefixes:
                continue
            valid = named + [f"{p}__<option>" for p in self._option_prefixes]
            raise InvalidParameterError(
                f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                f"Valid parameters are: {valid}."
                + did_you_mean(prefix, named + list(self._option_prefixes))
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    # ----------------------------------------------------------- data seam
    # The kinds of X and y the estimator takes: adapter classes of
    # sktorch._data._inputs and sktorch._data._targets. A new kind of data is
    # a new adapter named here, not a branch in fit.
    _input_adapter: type[InputAdapter] = ArrayInput
    _target_adapter: type[TargetAdapter] = TargetAdapter

    def _adapters(self) -> tuple[InputAdapter, TargetAdapter]:
        """The estimator's input and target adapters, around it."""
        return self._input_adapter(self), self._target_adapter(self)

    # ------------------------------------------------------- subclass hooks

    # --------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, *, X_val: Any = None,
            y_val: Any = None, sample_weight_val: Any = None) -> BaseTorchEstimator:
        """Train the module on X and y.

        With ``warm_start=True`` on a fitted estimator, training continues
        from the current weights for ``max_epochs`` more epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or Dataset
            Training data: NumPy array, pandas DataFrame, list or torch
            tensor; cast to float32. Or a map-style
            ``torch.utils.data.Dataset`` whose items are ``(x, y)`` pairs
            (tensors, arrays or scalars), with ``y=None``: it trains through
            skorch's ``DataLoader`` path (``iterator_train__num_workers``
            and other ``iterator_train__``/``iterator_valid__`` options go to
            the ``DataLoader``), shuffled as arrays are, so the same data
            gives the same weights either way. Every target is read once
            before training (for ``classes_`` and the validation split):
            from the dataset's ``targets`` attribute when it has one (as
            torchvision's datasets do) without loading any input, else by
            loading each item once. Only the first item's input is checked
            (finite values; for images, the rules of arrays of images).
            Iterable-style datasets are not accepted.
        y : array-like or None, default=None
            Targets; None when X is a Dataset.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample: the training loss is the weighted mean of
            the samples' losses (a sample's weight applies to every element
            of its loss: each output, each pixel), and so are the validation
            loss and the validation metrics. A weight of 0 removes a sample;
            an integer weight k counts it k times; equal weights are the
            same as None. Finite and >= 0. Not yet with a Dataset X.
            Batch normalization layers still average a batch's rows
            unweighted.
        X_val, y_val : array-like, default=None
            A validation set, as X and y (arrays, not a Dataset), as
            scikit-learn's ``HistGradientBoostingClassifier.fit`` takes one:
            early stopping, plateau schedules, checkpoints and ``metrics``
            watch it, and no rows of X are held out
            (``validation_fraction`` must then be None). For data whose rows
            are not exchangeable (time series, groups), where a random split
            would leak. Its labels must be among the training labels.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation rows, as ``sample_weight``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_not_trimmed("fit")
        self._check_params()
        epochs_before = len(self.history_) if self.warm_start and self._is_fitted() else 0
        validation = None
        if X_val is not None or y_val is not None or sample_weight_val is not None:
            validation = (X_val, y_val, sample_weight_val)
        self._fit(X, y, classes=None, epochs=self.max_epochs, warm=self.warm_start,
                  method="fit", sample_weight=sample_weight, validation=validation)
        warn_if_not_converged(self, len(self.history_) - epochs_before)
        return self

    def _partial_fit(self, X: Any, y: Any, classes: Any,
                     sample_weight: Any = None) -> BaseTorchEstimator:
        self._check_not_trimmed("partial_fit")
        self._check_params()
        if not self._is_fitted():
            self._target_adapter(self).check_first_partial_fit(classes)
        return self._fit(X, y, classes=classes, epochs=1, warm=True, method="partial_fit",
                         sample_weight=sample_weight)

    def lr_find(
        self,
        X: Any,
        y: Any,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_iter: int = 100,
        smoothing: float = 0.98,
        diverge_threshold: float = 4.0,
    ) -> LRFinderResult:
        """Learning-rate range test (Smith, 2017), on a copy of this estimator.

        Trains a fresh copy of the estimator, one batch per step, while the
        learning rate grows exponentially from ``start_lr`` to ``end_lr``
        over ``num_iter`` steps, recording the training loss; stops early
        when the smoothed loss exceeds ``diverge_threshold`` times its
        minimum. The estimator itself is left exactly as it was.

        Parameters
        ----------
        X, y : array-like
            Training data, as for ``fit``.
        start_lr, end_lr : float, default=1e-7, 10.0
            First and last learning rate of the ramp.
        num_iter : int, default=100
            Number of steps (batches; the data is cycled as needed).
        smoothing : float in [0, 1), default=0.98
            Weight of the past in the exponential moving average of the loss.
        diverge_threshold : float, default=4.0
            Stop when the smoothed loss exceeds this multiple of its minimum.

        Returns
        -------
        result : LRFinderResult
            ``lrs``, ``losses`` (smoothed), ``raw_losses``, ``suggestion``
            (the learning rate of the steepest descent of the smoothed loss)
            and ``plot()``.

        References
        ----------
        .. [1] L. N. Smith, "Cyclical Learning Rates for Training Neural
           Networks", WACV 2017, https://arxiv.org/abs/1506.01186
        """
        self._check_not_trimmed("lr_find")
        if is_dataset(X):
            raise TypeError(
                f"{type(self).__name__}.lr_find needs in-memory data (arrays or tensors); "
                "X is a Dataset. Run it on a sample loaded into arrays."
            )
        options = dict(start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                       smoothing=smoothing, diverge_threshold=diverge_threshold)
        check_lr_find_arguments(type(self).__name__, **options)
        # A clone: the estimator the user holds is not touched, fitted or not.
        probe = clone(self).set_params(
            lr=start_lr, lr_scheduler=None, early_stopping=None, validation_fraction=None,
            accumulate_grad_batches=1, warm_start=False, verbose=0, checkpoint_dir=None,
            resume_from=None, metrics=None, tensorboard=None,
        )
        for key in list(probe._option_params()):
            if key.startswith("lr_scheduler__"):
                delattr(probe, key)
        probe._check_params()
        inputs, targets, n_outputs, device, seed = probe._prepare_fit(X, y, classes=None,
                                                                      reset=True)
        build = functools.partial(probe._build_net, device, inputs, n_outputs, validating=False)
        return lr_find(build, inputs, targets, device, seed, **options)

    # The task of the losses the estimator accepts ('classification' or
    # 'regression'); None accepts any.
    _loss_task: str | None = None

    def _check_params(self) -> None:
        self._validate_params()
        self._check_option_names()
        owner = type(self).__name__
        if self._loss_task is not None:
            check_loss_task(self.criterion, self._loss_task, owner)
        check_callbacks(self.callbacks, owner)
        resolve_tta(self.tta, owner)  # a bad view is an error at fit, not at predict

    def _patience(self) -> int | None:
        """The early-stopping patience: ``early_stopping`` with True as
        scikit-learn's default ``n_iter_no_change`` (10) and False as None."""
        if isinstance(self.early_stopping, (bool, np.bool_)):
            return 10 if self.early_stopping else None
        return self.early_stopping

    def _is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def __sklearn_is_fitted__(self) -> bool:
        # Not "any attribute ending in _": a fit that failed after validating
        # X has set n_features_in_ but trained nothing.
        return self._is_fitted()

    def _fit(self, X: Any, y: Any, *, classes: Any, epochs: int, warm: bool,
             method: str, sample_weight: Any = None,
             validation: tuple[Any, Any, Any] | None = None) -> BaseTorchEstimator:
        initialize = not (warm and self._is_fitted())
        if not initialize:
            # Hyperparameters changed since the net was built: applied, or refused.
            check_and_apply(self, method)
        else:
            # Recorded again once the new net is built (a fit failing before
            # that leaves no record of a net it replaced).
            self.__dict__.pop("_built_with", None)
        world = None
        if self.strategy is not None or self.devices is not None:
            world = check_distributed(self)
        inputs, targets, n_outputs, device, seed = self._prepare_fit(X, y, classes, initialize,
                                                                      sample_weight, method)
        check_iterator_options(self._option_params(), type(self).__name__,
                               arrays=not isinstance(inputs, EncodedDataset))
        if validation is not None:
            validation = self._prepare_validation(inputs, *validation)
        if world is not None and world > 1:
            # Data, targets and seed are prepared here, once: every process
            # trains from the same ones.
            fit_distributed(self, world, inputs, targets, n_outputs, device, seed,
                            initialize=initialize, epochs=epochs, validation=validation)
        else:
            self._train(inputs, targets, n_outputs, device, seed,
                        initialize=initialize, epochs=epochs, validation=validation)
        # (Also after a continuing fit: data-parallel workers hand back
        # copies of the hyperparameters' objects.)
        remember(self)
        return self

    def _train(
        self,
        inputs: Any,
        targets: Any,
        n_outputs: int,
        device: torch.device,
        seed: int | None,
        *,
        initialize: bool,
        epochs: int,
        validation: tuple[Any, Any] | None = None,
        wrap: Callable[[SktorchNet], Any] = lambda net: contextlib.nullcontext(),
    ) -> BaseTorchEstimator:
        """Train on prepared data; ``validation`` is a prepared validation
        set (inputs, targets), else ``validation_fraction`` decides;
        ``wrap(net)`` is the context the training loop runs in (data-parallel
        training wraps the module there)."""
        cuda = [device.index or 0] if device.type == "cuda" else []
        # The caller's global torch random state is restored afterwards:
        # seeding is ours to do, but the user's own random stream is not ours
        # to change. Fits in other threads wait meanwhile (see sktorch._utils._rng):
        # they would draw from this fit's stream.
        with fit_random_state(cuda):
            resume = None
            if initialize:
                torch.manual_seed(seed)
                # One split seed per fit: warm calls on the same data hold
                # out the same validation rows.
                self._split_seed = int(torch.randint(0, np.iinfo(np.int32).max, (1,)))
                if self.resume_from is not None:
                    # The interrupted fit's split, whatever random_state is now.
                    resume = read_checkpoint(self.resume_from, device)
                    check_resume(resume, self)
                    self._split_seed = resume["split_seed"]
            else:
                set_rng_state(self._rng_state, device)
            if validation is None:
                train, valid = split_validation(inputs, targets, self._validation_share(),
                                                self._split_seed, self._target_adapter(self))
            else:
                train, valid = (inputs, targets), validation
            if initialize:
                # Whether the net is built validating (sktorch.load builds it so).
                self._validating = valid is not None
            general = isinstance(inputs, EncodedDataset)
            if initialize:
                if general:
                    # The first two samples stand for the data in building.
                    sample = torch.stack([train[0][i][0] for i in range(min(2, len(train[0])))])
                    self.net_ = self._build_net(device, sample, n_outputs,
                                                validating=bool(valid), n_train=len(train[0]))
                else:
                    # One sample's shape, for summary() and exporters.
                    self._input_shape = tuple(inputs.shape[1:])
                    self.net_ = self._build_net(device, train[0], n_outputs,
                                                validating=bool(valid))
                self.net_.estimator = self
                remember(self)
                if not valid:
                    check_validation_needs(self.net_, type(self).__name__)
                if resume is not None:
                    done, stopped = load_training_state(self.net_, resume)
                    # Early stopping that had ended the fit only restores
                    # the best weights, when training ends.
                    epochs = 0 if stopped else max(0, epochs - done)
            net = self.net_
            if general:
                net.train_split = predefined_split(valid[0]) if valid else None
            else:
                train, valid = to_device_if_room(train, device), valid and to_device_if_room(valid, device)
                net.train_split = predefined_split(TensorDataset(*valid)) if valid else None
            net.max_epochs = epochs
            with wrap(net):
                net.partial_fit(*train)
            # The validation data must not live on in the fitted net (or its
            # pickle); the next warm call continues the same random stream.
            net.train_split = None
            self._rng_state = rng_state(device)
        net.module_.eval()
        return self

    def _validation_share(self) -> float | None:
        if self.validation_fraction is not None:
            return float(self.validation_fraction)
        return 0.1 if self._patience() is not None else None

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "net_" in state:
            self.net_.estimator = self
