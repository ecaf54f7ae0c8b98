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
import copy
import functools
import inspect
import math
import os
from numbers import Integral, Real
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from skorch.utils import params_for
from torch import nn

from sktorch._data._augment import resolve_augment, resolve_tta
from sktorch._data._batches import batch_sizes, check_iterator_options, loader_options
from sktorch._engine._checks import (
    NONFINITE_LOSS_POLICIES,
    NonFiniteLossCheck,
    check_callbacks,
    check_loss_task,
    check_scheduler_options,
    warn_if_not_converged,
)
from sktorch._estimators._continuing import CONTINUING_DOC, check_and_apply, remember
from sktorch._data._tensors import (
    EncodedDataset,
    InputsOf,
    collect_targets,
    float_sample,
    is_dataset,
    split_item,
)
from sktorch._utils._device import resolve_device
from sktorch._engine._distributed import check_distributed, fit_distributed
from sktorch._engine._inference import (
    PREDICT_CHUNK_ROWS,
    InferenceModule,
    chunks,
    first_output,
    run_inference,
)
from sktorch._engine._lr_find import LRFinderResult, lr_find
from sktorch._engine._net import PRECISIONS, SktorchNet, TensorDataset
from sktorch._engine._net_hooks import NetHooksMixin
from sktorch._engine._plotting import plot_history
from sktorch._engine._summary import summary
from sktorch._engine._trim import trim_for_inference
from sktorch._utils._registry import _did_you_mean, accepted_arguments, check_options
from sktorch._utils._rng import fit_random_state
from sktorch._utils._validation import (
    Interval,
    StrOptions,
    as_array_input,
    check_is_fitted,
    to_tensor,
    validate_predict_input,
)
from sktorch.exceptions import InvalidParameterError
from sktorch.callbacks import (
    BatchProgress,
    Checkpoint,
    EpochTable,
    LearningRateLog,
    LRScheduler,
    TensorBoard,
    ValidationMetrics,
)
from sktorch.callbacks._metrics import metric_monitor, resolve_metrics
from sktorch.callbacks._needs import check_validation_needs
from sktorch.callbacks._checkpoint import (
    check_resume,
    load_training_state,
    new_run_dir,
    read_checkpoint,
)
from sktorch.callbacks._schedule import call_factory
from sktorch.losses import LOSSES
from sktorch.models import INITIALIZERS, MODELS
from sktorch.optim import OPTIMIZERS
from sktorch.schedulers import SCHEDULERS, STEP_PER_BATCH, default_options

COMMON_PARAMETERS_DOC = """\
module : str, nn.Module class or nn.Module instance, default='mlp'
        The network. A name from :func:`sktorch.list_models`; an ``nn.Module``
        subclass, built at fit with the ``module__<name>`` options (its
        ``in_features`` and ``out_features`` are filled in from the data when
        its ``__init__`` takes them and they are not set); or an instance,
        which is copied at fit so its weights are the starting point of every
        fit. Options go as ``module__<name>``, e.g.
        ``module__hidden_sizes=(256, 128)``, ``module__dropout=0.1``.
    criterion : str, nn.Module class or nn.Module instance, default=$criterion
        The loss. A name from :func:`sktorch.list_losses`, a loss class or an
        instance. Options go as ``criterion__<name>``, e.g.
        ``criterion__label_smoothing=0.1``.
    optimizer : str or torch.optim.Optimizer class, default='adam'
        A name from :func:`sktorch.list_optimizers` or an optimizer class.
        Options go as ``optimizer__<name>``, e.g.
        ``optimizer__weight_decay=1e-4``; skorch's
        ``optimizer__param_groups`` sets per-layer options.
    lr : float, default=1e-3
        Learning rate.
    lr_scheduler : str, LRScheduler class, callable or None, default=None
        Learning-rate schedule: a name from
        :func:`sktorch.schedulers.list_schedulers` ('step', 'multistep',
        'exponential', 'cosine', 'cosine_warmup', 'plateau', 'onecycle',
        'cyclic', 'lambda'), a ``torch.optim.lr_scheduler`` class, or a
        callable taking the optimizer and returning a scheduler. Options go
        as ``lr_scheduler__<name>`` (``__step_size``, ``__gamma``,
        ``__milestones``, ``__T_max``, ``__warmup_epochs``, ``__lr_lambda``,
        ...); options not given are derived from ``lr``, ``max_epochs`` and
        the number of batches (see
        :func:`sktorch.schedulers.default_options`). 'onecycle' and 'cyclic'
        step after every optimizer step, the others after every epoch
        (``lr_scheduler__step_every`` overrides); 'plateau' watches
        ``valid_loss``, or ``train_loss`` without validation
        (``lr_scheduler__monitor`` overrides). Each epoch's learning rate is
        in ``history_`` as ``lr``.
    max_epochs : int, default=20
        Number of passes over the training data in ``fit``.
    batch_size : int, default=32
        Number of samples per gradient step; with ``strategy='ddp'``, over
        all the processes together.
    device : str or torch.device, default='auto'
        ``'auto'`` trains on CUDA when available, else on the CPU; ``'cpu'``,
        ``'cuda'``, ``'cuda:1'``... ask for a device, and asking for one this
        machine lacks is an error at fit.
    strategy : {'ddp'} or None, default=None
        None trains in this process. 'ddp' trains one model in ``devices``
        processes with ``torch.distributed`` (NCCL on CUDA, gloo on the
        CPU): every global batch of ``batch_size`` samples is split across
        the processes, each computes the gradient of its share and
        ``DistributedDataParallel`` averages them, so the weights follow
        the single-process fit with the same ``batch_size`` and
        ``random_state`` (up to float rounding, without dropout or
        augmentation). The fitted estimator is an ordinary single-process
        one. The processes are started by ``torch.multiprocessing``
        ('forkserver', else 'spawn'): hyperparameters must be picklable,
        module classes importable, and a script needs the
        ``if __name__ == '__main__':`` guard. ``checkpoint_dir``,
        ``tensorboard`` and ``resume_from`` are not supported with it. See
        the "Data-parallel training" section of ``docs/scaling.md``.
    devices : int or None, default=None
        Number of processes of ``strategy='ddp'``: on CUDA, one per GPU
        (``cuda:0`` to ``cuda:<devices - 1>``), None meaning every visible
        GPU; on the CPU it must be given. 1 trains in this process. Needs
        ``strategy``.
    precision : {'32', '16-mixed', 'bf16-mixed'}, default='32'
        '16-mixed' and 'bf16-mixed' run the forward pass and the loss under
        ``torch.autocast`` in float16 or bfloat16, in training and in
        prediction, while the weights stay float32; '16-mixed' scales the
        loss with a ``GradScaler`` and needs CUDA. 'bf16-mixed' also runs
        on the CPU.
    max_grad_norm : float or None, default=None
        Clip the gradients to this total norm before each optimizer step
        (after unscaling with '16-mixed').
    accumulate_grad_batches : int, default=1
        Take one optimizer step every this many batches, with the gradient
        of one batch that many times larger; the last, partial group of an
        epoch still steps.
    on_nonfinite_loss : {'raise', 'warn', 'ignore'}, default='raise'
        What a training batch whose loss is NaN or inf does: 'raise' stops
        the fit with a ``ValueError`` naming the epoch and the batch (the
        usual causes: a learning rate too high, inputs or targets far from
        unit scale); 'warn' emits one ``RuntimeWarning`` per fit and trains
        on; 'ignore' trains on silently.
    init : str, callable or None, default=None
        Initialization of the weights of every linear and convolution layer
        of a module built at fit (biases are zeroed): a name from
        :func:`sktorch.models.list_initializers` ('kaiming_normal',
        'xavier_uniform', 'orthogonal', ...) or a function of the weight
        tensor; options go as ``init__<name>`` (``init__nonlinearity``...).
        None keeps torch's defaults.
    freeze : $freeze_doc
    augment : transform, str, list of them, or None, default=None
        Training-time augmentation, applied to each training batch on the
        training device, never at validation or prediction: a transform of
        :mod:`sktorch.transforms` (``SaltAndPepperNoise``, ``GaussianNoise``)
        or a name from :func:`sktorch.transforms.list_transforms`, a
        torchvision v2 transform, any callable on a tensor, or a list of
        them applied in order. sktorch's transforms draw independently for
        each sample of a batch in one call; other transforms are called
        sample by sample. Options go as ``augment__<name>``
        (``augment__amount=0.02``), to the one transform of a list that
        takes ``<name>``, or as ``augment__<i>__<name>`` to the i-th.
    tta : 'hflip', transform, list of them, or None, default=None
        Test-time augmentation: predictions are the average, over the input
        and each of its transformed views, of the probabilities (classifiers)
        or outputs (regressors). 'hflip' adds the left-right mirror image.
        A view's output is first mapped back by the transform's
        ``inverse(output)`` method when it has one ('hflip' mirrors a
        segmenter's per-pixel scores back).
    compile : bool, default=False
        Compile the module (and loss) with ``torch.compile``; options go as
        ``compile__<name>``, e.g. ``compile__mode='max-autotune'``. The first
        epoch pays for the compilation.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, shuffling, dropout and the validation
        split. An int gives identical fits, in this process or another, and
        in threads (fits in threads of one process train one at a time:
        torch's global random state is one per process; see
        ``docs/scaling.md``). The global torch random state is left as it
        was.
    validation_fraction : float in (0, 1) or None, default=None
        Share of the training data held out to compute ``valid_loss`` each
        epoch (stratified for classifiers when every class has at least two
        samples). None holds out nothing, unless ``early_stopping`` is set,
        which then holds out 0.1.
    early_stopping : int, bool or None, default=None
        Patience: stop when the monitored value (``early_stopping_monitor``)
        has not improved for this many epochs, and restore the weights of
        the best epoch. None trains for ``max_epochs``. As in scikit-learn's
        ``MLPClassifier``, True means a patience of 10 epochs (its default
        ``n_iter_no_change``) and False is None.
    early_stopping_monitor : str, default='valid_loss'
        What early stopping watches: 'valid_loss' (lower is better) or the
        name of one of ``metrics`` ('accuracy', 'f1_macro'...; higher is
        better, as for every scikit-learn scorer).
    metrics : str, callable, tuple/list/dict of them, or None, default=None
        Validation metrics computed each epoch on the validation split and
        recorded in ``history_`` as ``valid_<name>``: scikit-learn scorer
        names (``'accuracy'``, ``'f1_macro'``, ``'neg_log_loss'``, ``'r2'``,
        ...) or scorer callables ``scorer(estimator, X, y)``, scored on the
        labels and probabilities as ``predict`` and ``predict_proba`` give
        them. Needs ``validation_fraction`` (or ``early_stopping``).
    tensorboard : str, path or None, default=None
        A log directory: each fit writes its own run there (named from the
        time and the hyperparameters that differ from the defaults) with
        losses, metrics, learning rates, weight and gradient histograms,
        image batches, the model graph and an HParams entry, for
        ``tensorboard --logdir <dir>``. Finer control: the
        :class:`sktorch.callbacks.TensorBoard` callback.
    checkpoint_dir : str, path or None, default=None
        Save the training state (module, optimizer, schedule, gradient
        scaler, history, random state, validation split, the state of early
        stopping and of scoring callbacks, the hyperparameters) after every
        epoch, once every callback has taken it in, as ``last.pt`` and
        ``best.pt`` (lowest ``valid_loss``, or ``train_loss`` without
        validation) in a fresh subdirectory per fit, named from the time, the
        process and a random suffix so that parallel fits never collide;
        ``checkpoint_path_`` is that subdirectory.
    resume_from : str, path or None, default=None
        A checkpoint file, or a run directory (its ``last.pt``): a fresh fit
        continues from that state up to ``max_epochs`` epochs in all (none
        when early stopping had ended the fit), and gives the weights and
        history of the uninterrupted fit, with its validation split and
        random state (``random_state`` may differ). A hyperparameter that
        shapes training (``lr``, ``max_epochs``, ``optimizer``, ``module__``
        options...) set otherwise than in the checkpoint is an
        :class:`~sktorch.exceptions.InvalidParameterError` listing each
        difference; ``device``, ``verbose``, ``tensorboard``,
        ``checkpoint_dir``, ``tta``, ``compile`` and ``callbacks`` may
        change.
    warm_start : bool, default=False
        When True, ``fit`` on a fitted estimator continues training from its
        current weights instead of starting over; hyperparameters changed
        since the first fit are applied or refused as ``partial_fit`` does.
    verbose : int, default=0
        0 is silent; 1 prints a table with one row per epoch (epoch, losses,
        metrics, learning rate, time; the best validation loss starred); 2
        adds a tqdm progress bar over the batches of each epoch.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, instances or ``(name, callback)`` tuples;
        they are copied at fit. Options go as ``callbacks__<name>__<option>``.
        One that reads validation scores (skorch's ``EarlyStopping``,
        ``Checkpoint``, ``EpochScoring`` by default) in a fit without
        ``validation_fraction`` is an
        :class:`~sktorch.exceptions.InvalidParameterError` at fit.
    **kwargs : dict
        ``module__``, ``criterion__``, ``optimizer__``, ``lr_scheduler__``,
        ``init__``, ``callbacks__`` and ``compile__`` options, as above, and
        ``iterator_train__``/``iterator_valid__`` options: arguments of
        ``torch.utils.data.DataLoader`` for training and validation
        batches. With arrays only ``batch_size``, ``shuffle``, ``sampler``,
        ``batch_sampler`` and ``drop_last`` apply (they cut the batches a
        Dataset's ``DataLoader`` would); the others are an error. Any other
        keyword is an error."""


FREEZE_DOC = """tuple of str or None, default=None
        ``fnmatch`` patterns of parameter names (``'layers.0.*'``) to freeze:
        they get ``requires_grad=False``, stay out of the optimizer and are
        unchanged by fit. Per-group learning rates go through skorch's
        ``optimizer__param_groups=[('layers.0.*', {'lr': 1e-4})]``."""


class BaseTorchEstimator(NetHooksMixin, BaseEstimator):
    """Base class of sktorch estimators; not meant to be used directly.

    Subclasses set the task: how targets are encoded, how many outputs the
    module needs and how outputs become predictions. A user's subclass may
    override skorch's customization points (``get_loss``, ``train_step``,
    ``train_step_single``, ``validation_step``; see ``NetHooksMixin`` in
    ``sktorch/_engine/_net_hooks.py``) and add hyperparameters of
    its own (see :meth:`_get_param_names`).
    """

    _parameter_constraints: dict = {
        "module": [str, type, nn.Module],
        "criterion": [str, type, nn.Module],
        "optimizer": [str, type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_scheduler": [str, type, callable, None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "strategy": [StrOptions({"ddp"}), None],
        "devices": [Interval(Integral, 1, None, closed="left"), None],
        "precision": [StrOptions(set(PRECISIONS))],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "accumulate_grad_batches": [Interval(Integral, 1, None, closed="left")],
        "on_nonfinite_loss": [StrOptions(set(NONFINITE_LOSS_POLICIES))],
        "init": [str, callable, None],
        "freeze": [tuple, list, None],
        "augment": [str, type, callable, list, tuple, None],
        "tta": [StrOptions({"hflip"}), callable, list, tuple, None],
        "compile": ["boolean"],
        "random_state": ["random_state"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "early_stopping": [Interval(Integral, 1, None, closed="left"), "boolean", None],
        "early_stopping_monitor": [str],
        "metrics": [tuple, list, str, callable, dict, None],
        "tensorboard": [str, os.PathLike, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "resume_from": [str, os.PathLike, None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
    }

    # The fitted state sktorch.save writes and sktorch.load restores, and the
    # only names load writes into an estimator (a file cannot plant an
    # attribute over a method). ``net_`` is rebuilt from the weights;
    # ``checkpoint_path_`` names a directory of the machine that fitted.
    _fitted_attributes: tuple[str, ...] = (
        "n_outputs_", "n_features_in_", "feature_names_in_", "_input_shape", "_rng_state",
        "_split_seed", "_trimmed",
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
                + _did_you_mean(prefix, named + list(self._option_prefixes))
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    # ------------------------------------------------------- subclass hooks
    def _validate_targets(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, Any]:
        """Validate X and y together; return X as a float32 array (or the
        module's input tensor) and y."""
        raise NotImplementedError

    def _encode_targets(self, y: Any, classes: Any, reset: bool) -> tuple[torch.Tensor, int]:
        """Return the training target tensor and the module's output width."""
        raise NotImplementedError

    def _criterion_defaults(self, criterion_cls: Any) -> dict[str, Any]:
        """Options the task sets on a loss class unless the user gives them."""
        return {}

    def _decode_targets(self, targets: torch.Tensor) -> np.ndarray:
        """Training targets back as the user gave ``y`` (labels, shape), so
        validation metrics can be scored as on the user's own data."""
        raise NotImplementedError

    def _decode_inputs(self, inputs: Any) -> Any:
        """Validation inputs, as the module takes them, as an X that
        ``predict`` reads back the same (for the validation metrics)."""
        return inputs

    def _stratify_labels(self, y: torch.Tensor) -> np.ndarray | None:
        """Labels to stratify the validation split on, or None."""
        return None

    def _validate_dataset_targets(self, y: np.ndarray) -> np.ndarray:
        """Check the targets collected from a Dataset, as ``_validate_targets``
        checks y."""
        raise NotImplementedError

    def _sample_converter(self) -> Callable[[Any], torch.Tensor]:
        """Turns one sample of a Dataset into the module's input tensor (a
        picklable function, for DataLoader workers)."""
        return float_sample

    def _check_dataset_sample(self, sample: torch.Tensor, reset: bool) -> None:
        """Check the first sample of a Dataset (converted); with ``reset``,
        record what the fit learns from it (``n_features_in_`` for 1-D
        samples); else check it against the fit."""
        owner = type(self).__name__
        if sample.is_floating_point() and not torch.isfinite(sample).all():
            raise ValueError(f"Input X contains NaN or infinity: item 0 of the Dataset X of {owner}.")
        if reset:
            for attribute in ("n_features_in_", "feature_names_in_"):
                if attribute in vars(self):
                    delattr(self, attribute)
            if sample.ndim == 1:
                self.n_features_in_ = int(sample.shape[0])
        elif tuple(sample.shape) != tuple(self._input_shape):
            raise ValueError(
                f"The samples of the Dataset X have shape {tuple(sample.shape)}, but {owner} "
                f"was fitted on samples of shape {tuple(self._input_shape)}."
            )

    # --------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None) -> BaseTorchEstimator:
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

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_not_trimmed("fit")
        self._check_params()
        epochs_before = len(self.history_) if self.warm_start and self._is_fitted() else 0
        self._fit(X, y, classes=None, epochs=self.max_epochs, warm=self.warm_start,
                  method="fit")
        warn_if_not_converged(self, len(self.history_) - epochs_before)
        return self

    def _partial_fit(self, X: Any, y: Any, classes: Any) -> BaseTorchEstimator:
        self._check_not_trimmed("partial_fit")
        self._check_params()
        if not self._is_fitted():
            self._check_first_partial_fit(classes)
        return self._fit(X, y, classes=classes, epochs=1, warm=True, method="partial_fit")

    def _check_first_partial_fit(self, classes: Any) -> None:
        """Check the arguments of the first ``partial_fit`` call, after the
        hyperparameters (a subclass needing ``classes`` says so here)."""

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
        return lr_find(self, X, y, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                       smoothing=smoothing, diverge_threshold=diverge_threshold)

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

    def _prepare_fit(self, X: Any, y: Any, classes: Any, reset: bool):
        """Validate and convert the data; with ``reset``, also pick the device
        and draw the seed of a new fit.

        ``inputs`` is a tensor, or for a Dataset X an :class:`EncodedDataset`
        (its items converted, its targets ``targets``)."""
        if is_dataset(X):
            inputs, targets, n_outputs = self._prepare_dataset(X, y, classes, reset)
        else:
            X, y = self._validate_targets(X, as_array_input(y), reset=reset)
            targets, n_outputs = self._encode_targets(y, classes, reset=reset)
            inputs = X if isinstance(X, torch.Tensor) else to_tensor(X)
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
        if y is not None:
            raise ValueError(
                f"{owner}.fit got a Dataset as X and a y as well; a Dataset's items carry "
                "their own targets as (x, y) pairs. Pass y=None."
            )
        if len(X) == 0:
            raise ValueError(f"{owner} needs at least one sample; the Dataset X is empty.")
        convert = self._sample_converter()
        sample = convert(split_item(X[0], 0, owner)[0])
        self._check_dataset_sample(sample, reset)
        if reset:
            self._input_shape = tuple(sample.shape)
        y = self._validate_dataset_targets(collect_targets(X, owner))
        targets, n_outputs = self._encode_targets(y, classes, reset=reset)
        return EncodedDataset(X, targets, convert), targets, n_outputs

    def _fit(self, X: Any, y: Any, *, classes: Any, epochs: int, warm: bool,
             method: str) -> BaseTorchEstimator:
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
        inputs, targets, n_outputs, device, seed = self._prepare_fit(X, y, classes, initialize)
        check_iterator_options(self._option_params(), type(self).__name__,
                               arrays=not isinstance(inputs, EncodedDataset))
        if world is not None and world > 1:
            # Data, targets and seed are prepared here, once: every process
            # trains from the same ones.
            fit_distributed(self, world, inputs, targets, n_outputs, device, seed,
                            initialize=initialize, epochs=epochs)
        else:
            self._train(inputs, targets, n_outputs, device, seed,
                        initialize=initialize, epochs=epochs)
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
        wrap: Callable[[SktorchNet], Any] = lambda net: contextlib.nullcontext(),
    ) -> BaseTorchEstimator:
        """Train on prepared data; ``wrap(net)`` is the context the training
        loop runs in (data-parallel training wraps the module there)."""
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
                self._set_rng_state(self._rng_state)
            train, valid = self._split(inputs, targets, self._split_seed)
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
                train, valid = _to_device(train, device), valid and _to_device(valid, device)
                net.train_split = predefined_split(TensorDataset(*valid)) if valid else None
            net.max_epochs = epochs
            with wrap(net):
                net.partial_fit(*train)
            # The validation data must not live on in the fitted net (or its
            # pickle); the next warm call continues the same random stream.
            net.train_split = None
            self._rng_state = self._get_rng_state(cuda)
        net.module_.eval()
        return self

    @staticmethod
    def _get_rng_state(cuda: list[int]) -> dict[str, Any]:
        state = {"cpu": torch.get_rng_state()}
        if cuda:
            state["cuda"] = torch.cuda.get_rng_state(cuda[0])
            state["cuda_index"] = cuda[0]
        return state

    @staticmethod
    def _set_rng_state(state: dict[str, Any]) -> None:
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"], state["cuda_index"])

    def _validation_share(self) -> float | None:
        if self.validation_fraction is not None:
            return float(self.validation_fraction)
        return 0.1 if self._patience() is not None else None

    def _split(self, inputs: torch.Tensor, targets: torch.Tensor, seed: int):
        """Hold out the validation data: tensors are indexed; an
        :class:`EncodedDataset` is split into two subsets of it."""
        share = self._validation_share()
        general = isinstance(inputs, EncodedDataset)
        if share is None:
            return ((inputs,) if general else (inputs, targets)), None
        n_samples = len(inputs)
        n_valid = int(np.ceil(share * n_samples))
        if n_valid < 1 or n_samples - n_valid < 1:
            raise ValueError(
                f"validation_fraction={share} of {n_samples} samples leaves "
                f"{n_samples - n_valid} for training and {n_valid} for validation; "
                "both need at least 1. Use more data or validation_fraction=None "
                "(and early_stopping=None)."
            )
        labels = self._stratify_labels(targets)
        if labels is not None:
            counts = np.unique(labels, return_counts=True)[1]
            n_classes = len(counts)
            if counts.min() < 2 or n_valid < n_classes or n_samples - n_valid < n_classes:
                labels = None
        train_idx, valid_idx = train_test_split(
            np.arange(n_samples), test_size=n_valid, random_state=seed, stratify=labels
        )
        if general:
            return (inputs.subset(train_idx),), (inputs.subset(valid_idx),)
        train_idx, valid_idx = torch.from_numpy(train_idx), torch.from_numpy(valid_idx)
        return (inputs[train_idx], targets[train_idx]), (inputs[valid_idx], targets[valid_idx])

    def _build_net(
        self,
        device: torch.device,
        inputs: torch.Tensor,
        n_outputs: int,
        validating: bool,
        *,
        pretrained: bool = True,
        n_train: int | None = None,
        check_output: bool = True,
    ) -> SktorchNet:
        """Build and initialize the skorch net for a fit.

        ``inputs`` is the training data, or a batch of its first samples
        with ``n_train`` the number of training samples (a Dataset).
        ``pretrained=False`` builds the same architecture without reading
        pretrained weights, for a caller that loads every weight itself
        (``sktorch.load``). ``check_output=False`` skips the forward pass
        that checks the module's output shape (``sktorch.load`` runs none:
        it checks the module against the saved weights instead).
        """
        owner = type(self).__name__
        if self.precision == "16-mixed" and device.type != "cuda":
            raise InvalidParameterError(
                f"The 'precision' parameter of {owner} is '16-mixed', which needs a CUDA "
                f"device (float16 autocast with a GradScaler); the device here is "
                f"{device.type!r}. Use precision='bf16-mixed' on the CPU."
            )
        options = self._option_params()

        module, module_options = self._module_spec(options, inputs, n_outputs, pretrained)
        criterion, criterion_options = self._component(LOSSES, "criterion", options)
        if not isinstance(criterion, nn.Module):
            criterion_options = {**self._criterion_defaults(criterion), **criterion_options}

        optimizer = OPTIMIZERS.resolve(self.optimizer, param="optimizer", owner=owner)
        if not isinstance(optimizer, type):
            raise InvalidParameterError(
                f"The 'optimizer' parameter of {owner} must be a name or an optimizer "
                f"class (it is built over the module's parameters at fit). Got "
                f"{self.optimizer!r} instead."
            )
        optimizer_options = self._optimizer_options(options, module)
        check_options(
            optimizer,
            {k: v for k, v in optimizer_options.items() if k != "param_groups"},
            prefix="optimizer",
            owner=owner,
            reserved=("params",),
        )

        compile_options = params_for("compile", options)
        check_options(torch.compile, compile_options, prefix="compile", owner=owner,
                      reserved=("model",))

        init, init_options = self._resolve_init(options, module)
        freeze = self._freeze_patterns(module)
        augment = resolve_augment(self.augment, params_for("augment", options), owner)
        resolve_tta(self.tta, owner)

        metrics = resolve_metrics(self.metrics, param="metrics", owner=owner)
        if metrics and not validating:
            raise InvalidParameterError(
                f"The 'metrics' parameter of {owner} needs validation data to score: set "
                "validation_fraction (e.g. 0.2) or early_stopping."
            )
        stop_monitor = None
        if self._patience() is not None:
            stop_monitor = metric_monitor(self.early_stopping_monitor, self.metrics, owner=owner)

        # Order matters: metrics are recorded first, so the schedule, the
        # checkpoint, TensorBoard, the table and early stopping all read them;
        # early stopping comes after everything that reports the epoch.
        callbacks = [("lr_log", LearningRateLog())]
        if self.on_nonfinite_loss != "ignore":
            # First: a diverged batch stops the fit before any callback
            # records or saves its result.
            callbacks.insert(0, ("nonfinite_loss",
                                 NonFiniteLossCheck(self.on_nonfinite_loss, owner)))
        if metrics:
            callbacks.append(("metrics", ValidationMetrics(self.metrics)))
        n_train = len(inputs) if n_train is None else n_train
        schedule = self._scheduler_callback(options, n_train, validating)
        if schedule is not None:
            callbacks.append(("lr_scheduler", schedule))
        if self.checkpoint_dir is not None:
            # Before the user's callbacks, which may end training at an epoch's end.
            self.checkpoint_path_ = new_run_dir(self.checkpoint_dir)
            monitor = "valid_loss" if validating else "train_loss"
            callbacks.append(("checkpoint", Checkpoint(self.checkpoint_path_, monitor=monitor)))
        callbacks += self._task_callbacks(module)
        callbacks += list(copy.deepcopy(self.callbacks) or [])
        if self.tensorboard is not None:
            callbacks.append(("tensorboard", TensorBoard(self.tensorboard)))
        if self.verbose >= 1:
            callbacks.append(("epoch_table", EpochTable()))
        if stop_monitor is not None:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor=stop_monitor.key,
                        lower_is_better=stop_monitor.lower_is_better,
                        patience=self._patience(),
                        load_best=True,
                    ),
                )
            )
        if self.verbose >= 2:
            callbacks.append(("progress_bar", BatchProgress()))

        net = SktorchNet(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=callbacks,
            predict_nonlinearity=None,
            warm_start=False,
            verbose=self.verbose,
            device=str(device),
            compile=self.compile,
            dataset=TensorDataset,
            precision=self.precision,
            max_grad_norm=self.max_grad_norm,
            accumulate_grad_batches=self.accumulate_grad_batches,
            init=init,
            init_options=init_options,
            freeze=freeze,
            augment=augment,
            loader_seed=getattr(self, "_split_seed", None),
            **{f"module__{k}": v for k, v in module_options.items()},
            **{k: v for k, v in options.items() if k.startswith(("iterator_train__",
                                                                  "iterator_valid__"))},
            **{f"criterion__{k}": v for k, v in criterion_options.items()},
            **{f"optimizer__{k}": v for k, v in optimizer_options.items()},
            **{f"compile__{k}": v for k, v in compile_options.items()},
            # sktorch's EpochTable replaces skorch's PrintLog (unless the
            # user's callbacks__print_log says otherwise).
            **{
                "callbacks__print_log": None,
                **{k: v for k, v in options.items() if k.startswith("callbacks__")},
            },
        )
        net.initialize()
        if check_output:
            output = self._check_module_output(net, inputs[:2], n_outputs)
            self._check_output_values(output, criterion, criterion_options)
        net.log_output = self._log_output(criterion)
        return net

    def _module_spec(
        self, options: dict[str, Any], inputs: torch.Tensor, n_outputs: int, pretrained: bool
    ):
        """The module (class or instance) and its options, sizes filled in;
        with ``pretrained``, loaded with pretrained weights where the
        estimator has any."""
        module, module_options = self._component(MODELS, "module", options)
        if not isinstance(module, nn.Module):
            module_options = {
                **accepted_arguments(
                    module, {"in_features": inputs.shape[1], "out_features": n_outputs}
                ),
                **module_options,
            }
        return module, module_options

    def _optimizer_options(self, options: dict[str, Any], module: Any) -> dict[str, Any]:
        """The ``optimizer__`` options the optimizer is built with."""
        return params_for("optimizer", options)

    def _task_callbacks(self, module: Any) -> list[tuple[str, Any]]:
        """Callbacks a subclass adds, before the user's."""
        return []

    def _freeze_patterns(self, module: Any) -> tuple[str, ...]:
        freeze = tuple(self.freeze or ())
        if not all(isinstance(pattern, str) for pattern in freeze):
            raise InvalidParameterError(
                f"The 'freeze' parameter of {type(self).__name__} must be a tuple of "
                f"parameter-name patterns such as ('layers.0.*',). Got {self.freeze!r} "
                "instead."
            )
        return freeze

    def _component(self, registry: Any, param: str, options: dict[str, Any]):
        """Resolve the ``module`` or ``criterion`` hyperparameter and its
        ``param__`` options: an instance is copied (it is the starting point of
        every fit, never trained in place) and takes no options; a class's
        options must be arguments of its ``__init__``."""
        owner = type(self).__name__
        component = registry.resolve(getattr(self, param), param=param, owner=owner)
        component_options = params_for(param, options)
        if isinstance(component, nn.Module):
            if component_options:
                raise InvalidParameterError(
                    f"{param}__ options {sorted(component_options)} of {owner} cannot be "
                    f"applied to a {param} instance, which is used as given. Pass its class "
                    "instead to build it with options."
                )
            return copy.deepcopy(component), component_options
        check_options(component, component_options, prefix=param, owner=owner)
        return component, component_options

    def _resolve_init(self, options: dict[str, Any], module: Any):
        owner = type(self).__name__
        init_options = params_for("init", options)
        if self.init is None:
            if init_options:
                raise InvalidParameterError(
                    f"init__ options {sorted(init_options)} of {owner} were given, but "
                    "init is None. Set init to a name or a function."
                )
            return None, None
        if isinstance(self.module, nn.Module):
            raise InvalidParameterError(
                f"The 'init' parameter of {owner} would overwrite the weights of the module "
                "instance given as 'module'. Pass the module class to build it with init, "
                "or init=None to keep the instance's weights."
            )
        init = INITIALIZERS.resolve(self.init, param="init", owner=owner)
        check_options(init, init_options, prefix="init", owner=owner, reserved=("tensor",))
        return init, init_options

    def _scheduler_callback(self, options: dict[str, Any], n_train: int, validating: bool):
        owner = type(self).__name__
        spec = self.lr_scheduler
        scheduler_options = params_for("lr_scheduler", options)
        if spec is None:
            if scheduler_options:
                raise InvalidParameterError(
                    f"lr_scheduler__ options {sorted(scheduler_options)} of {owner} were "
                    "given, but lr_scheduler is None. Set lr_scheduler to a name, a class "
                    "or a callable."
                )
            return None
        step_every = scheduler_options.pop("step_every", None)
        monitor = scheduler_options.pop("monitor", "valid_loss" if validating else "train_loss")
        if step_every not in (None, "epoch", "batch"):
            raise InvalidParameterError(
                f"The 'lr_scheduler__step_every' parameter of {owner} must be 'epoch' or "
                f"'batch'. Got {step_every!r} instead."
            )
        reserved = ("optimizer", "last_epoch")
        if isinstance(spec, str):
            policy = SCHEDULERS.resolve(spec, param="lr_scheduler", owner=owner)
            check_options(policy, scheduler_options, prefix="lr_scheduler", owner=owner,
                          reserved=reserved)
            if spec == "lambda" and "lr_lambda" not in scheduler_options:
                raise InvalidParameterError(
                    f"lr_scheduler='lambda' of {owner} needs lr_scheduler__lr_lambda, a "
                    "function of the epoch returning the factor applied to lr."
                )
            # The batches of an epoch, as the training iterator cuts them.
            sizes = batch_sizes(loader_options(params_for("iterator_train", options), n_train,
                                               self.batch_size, True, "iterator_train"), n_train)
            batches = math.ceil(n_train / self.batch_size) if sizes is None else len(sizes)
            steps_per_epoch = math.ceil(batches / self.accumulate_grad_batches)
            check_scheduler_options(spec, scheduler_options, owner)
            defaults = default_options(spec, lr=self.lr, max_epochs=self.max_epochs,
                                       steps_per_epoch=steps_per_epoch)
            scheduler_options = {**defaults, **scheduler_options}
            step_every = step_every or ("batch" if spec in STEP_PER_BATCH else "epoch")
        elif inspect.isclass(spec):
            policy = SCHEDULERS.resolve(spec, param="lr_scheduler", owner=owner)
            check_options(policy, scheduler_options, prefix="lr_scheduler", owner=owner,
                          reserved=reserved)
        elif callable(spec):
            policy = functools.partial(call_factory, factory=spec)
        else:
            raise InvalidParameterError(
                f"The 'lr_scheduler' parameter of {owner} must be a name from "
                f"{SCHEDULERS.names()}, a torch.optim.lr_scheduler class, a callable "
                f"taking the optimizer, or None. Got {spec!r} instead."
            )
        return LRScheduler(policy=policy, monitor=monitor, step_every=step_every or "epoch",
                           **scheduler_options)

    def _check_module_output(self, net: SktorchNet, sample: torch.Tensor,
                             n_outputs: int) -> torch.Tensor:
        """Run one forward pass on two samples so a module of the wrong shape
        fails now, with a message that says what was expected; return the
        output."""
        module = net.module_
        owner = type(self).__name__
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                output = first_output(module(sample.to(net.device)))
        except Exception as exc:
            raise ValueError(
                f"The module of {owner} failed on a batch of shape "
                f"{tuple(sample.shape)} taken from X: {exc}"
            ) from exc
        finally:
            module.train(was_training)
        expected = (len(sample), n_outputs)
        if tuple(output.shape) != expected:
            raise ValueError(
                f"The module of {owner} returned an output of shape "
                f"{tuple(output.shape)} for an input of shape {tuple(sample.shape)}; "
                f"{owner} needs shape {expected} here ({self._output_reason(n_outputs)}). "
                "Give the module an output layer of that width, or use a module "
                "class whose __init__ takes out_features."
            )
        return output

    def _check_output_values(self, output: torch.Tensor, criterion: Any,
                             criterion_options: dict[str, Any]) -> None:
        """Check the module's output on the first training samples against
        the loss (a subclass records what it learns there)."""

    def _log_output(self, criterion: Any) -> bool:
        """Whether the loss gets the log of the module's output (see
        ``SktorchNet.log_output``)."""
        return False

    def _output_reason(self, n_outputs: int) -> str:
        return f"{n_outputs} outputs"

    # ------------------------------------------------------------ prediction
    def _predict_inputs(self, X: Any) -> torch.Tensor:
        """X validated against the fit and converted to the module's input
        tensor (on the CPU)."""
        return to_tensor(validate_predict_input(self, X))

    def _link(self) -> str:
        """The output function of ``predict`` ('identity', 'sigmoid' or
        'softmax', see :data:`~sktorch._engine._inference.LINKS`): identity
        here, the outputs as the module gives them."""
        return "identity"

    def _inference_module(self, module: nn.Module | None = None) -> InferenceModule:
        """What predicting computes per batch: the module (the fitted one,
        or ``module``, e.g. a CPU copy to export), the test-time views of
        ``tta`` and the output function of :meth:`_link`. The one place
        prediction resolves them; ``export_onnx`` exports this module."""
        return InferenceModule(self.net_.module_ if module is None else module, self._link(),
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
        inputs = X.inputs() if isinstance(X, EncodedDataset) else InputsOf(
            X, self._sample_converter())
        self._check_dataset_sample(inputs[0], reset=False)
        options = params_for("iterator_valid", self._option_params())
        options.pop("shuffle", None)
        options.setdefault("batch_size", self.batch_size)
        # Its own generator: without one a DataLoader draws from the user's
        # global random state, which predicting must not change.
        options.setdefault("generator", torch.Generator())
        return torch.utils.data.DataLoader(inputs, **options)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "net_" in state:
            self.net_.estimator = self

    # ------------------------------------------------------------ inspection
    def summary(self) -> str:
        """A per-layer table of the fitted module: output shapes for one
        sample and parameter counts, trainable and frozen.

        Returns
        -------
        table : str
            The table, one row per layer, with totals at the end; also what
            ``print(estimator.summary())`` shows.
        """
        check_is_fitted(self)
        return summary(self)

    def plot_history(self, ax: Any = None) -> Any:
        """Plot losses, validation metrics and the learning rate per epoch.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            One Axes per panel (losses, metrics when there are any, learning
            rate); None makes a new figure.

        Returns
        -------
        axes : ndarray of matplotlib Axes
            The panels.
        """
        return plot_history(self, ax=ax)

    def trim_for_inference(self) -> BaseTorchEstimator:
        """Drop what only training needs: optimizer state, the per-batch
        records of ``history_`` and the callbacks.

        The estimator still predicts exactly as before and pickles and saves
        smaller; ``fit``, ``partial_fit`` and ``lr_find`` afterwards are an
        error.

        Returns
        -------
        self : object
            The trimmed estimator.
        """
        check_is_fitted(self)
        trim_for_inference(self)
        return self

    def _check_not_trimmed(self, method: str) -> None:
        if getattr(self, "_trimmed", False):
            raise RuntimeError(
                f"{type(self).__name__}.{method} cannot train this estimator: it was "
                "trimmed for inference (trim_for_inference dropped the optimizer state "
                "and callbacks). Fit a clone instead: sklearn.base.clone(estimator)."
            )

    # -------------------------------------------------------- fitted views
    @property
    def module_(self) -> nn.Module:
        """The trained ``nn.Module``."""
        return self.net_.module_

    @property
    def history_(self):
        """skorch ``History``: one dict per epoch (``train_loss``,
        ``valid_loss`` when validating, ``dur``, ...)."""
        return self.net_.history


def _to_device(tensors: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Move the training data to the device once, when it fits there with
    room to spare; otherwise batches move one at a time as they are used."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if sum(t.numel() * t.element_size() for t in tensors) > free // 4:
            return tensors
    return tuple(t.to(device) for t in tensors)


def fill_doc(cls: type, **values: str) -> type:
    """Put the shared parameter text into a class docstring.

    ``$common_parameters`` becomes :data:`COMMON_PARAMETERS_DOC`; other
    ``$name`` markers take ``values``.
    """
    common = COMMON_PARAMETERS_DOC
    values = {"freeze_doc": FREEZE_DOC, **values}
    for name, value in values.items():
        common = common.replace(f"${name}", value)
    cls.__doc__ = cls.__doc__.replace("$common_parameters", common)
    partial_fit = vars(cls).get("partial_fit")
    if partial_fit is not None and partial_fit.__doc__:
        partial_fit.__doc__ = partial_fit.__doc__.replace("$continuing_rule", CONTINUING_DOC)
    return cls
