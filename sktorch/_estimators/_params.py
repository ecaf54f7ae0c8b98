"""The estimators' parameters written once: their shared documentation and their defaults.

:data:`COMMON_PARAMETERS_DOC` documents the hyperparameters every estimator
takes, and :func:`fill_doc` puts it into a class docstring. :data:`DEFAULTS`
holds the default of every hyperparameter of every public estimator: the
leaves keep explicit ``__init__`` signatures (scikit-learn reads their
parameters there), and ``tests/test_defaults.py`` checks that those
signatures, and the "default=..." of their docstrings, agree with it.
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from sktorch._engine._checks import NONFINITE_LOSS_POLICIES
from sktorch._engine._net import PRECISIONS
from sktorch._estimators._continuing import CONTINUING_DOC
from sktorch._utils._validation import Interval, StrOptions

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


def fill_doc(cls: type, **values: str) -> type:
    """Put the shared parameter text into a class docstring.

    ``$common_parameters`` becomes :data:`COMMON_PARAMETERS_DOC`; other
    ``$name`` markers take ``values``. A class that documents ``module``
    itself, above the marker (an image estimator's networks are not the
    tabular ones), gets the shared text without its ``module`` entry.
    """
    common = COMMON_PARAMETERS_DOC
    if "\n    module : " in cls.__doc__.partition("$common_parameters")[0]:
        common = common[common.index("\n    criterion : ") + len("\n    "):]
    values = {"freeze_doc": FREEZE_DOC, "class_weight": CLASS_WEIGHT_DOC, **values}
    doc = cls.__doc__.replace("$common_parameters", common)
    for name, value in values.items():
        doc = doc.replace(f"${name}", value)
    cls.__doc__ = doc
    partial_fit = vars(cls).get("partial_fit")
    if partial_fit is not None and partial_fit.__doc__:
        partial_fit.__doc__ = partial_fit.__doc__.replace("$continuing_rule", CONTINUING_DOC)
    return cls


# The class_weight entry of the classifiers' docstrings.
CLASS_WEIGHT_DOC = """class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into the sample weights as
        scikit-learn does (each sample weighs ``sample_weight`` times its
        class's weight): the loss becomes the weighted mean, for every loss
        with a per-sample form. A dict maps labels of y to weights (classes
        not in it weigh 1); ``'balanced'`` weighs each class by
        ``n_samples / (n_classes * count)``, as
        :func:`sklearn.utils.class_weight.compute_class_weight` does (not
        with ``partial_fit``, which sees part of the data at a time)."""


# The defaults of the hyperparameters every estimator takes, those of
# BaseTorchEstimator.__init__ (where ``criterion`` has none: each task sets
# its own loss).
COMMON_DEFAULTS: dict[str, Any] = {
    "module": "mlp",
    "optimizer": "adam",
    "lr": 1e-3,
    "lr_scheduler": None,
    "max_epochs": 20,
    "batch_size": 32,
    "precision": "32",
    "max_grad_norm": None,
    "accumulate_grad_batches": 1,
    "on_nonfinite_loss": "raise",
    "init": None,
    "freeze": None,
    "augment": None,
    "tta": None,
    "device": "auto",
    "strategy": None,
    "devices": None,
    "compile": False,
    "random_state": None,
    "validation_fraction": None,
    "early_stopping": None,
    "early_stopping_monitor": "valid_loss",
    "metrics": None,
    "tensorboard": None,
    "checkpoint_dir": None,
    "resume_from": None,
    "warm_start": False,
    "verbose": 0,
    "callbacks": None,
}

# The hyperparameters the image estimators add.
_IMAGE_DEFAULTS: dict[str, Any] = {
    "weights": None,
    "image_size": None,
    "channels": "auto",
    "backbone_lr": None,
    "memory_format": "contiguous",
}

#: The default of every hyperparameter of each public estimator, by class
#: name: the common ones and each estimator's own and overridden ones.
DEFAULTS: dict[str, dict[str, Any]] = {
    "TorchClassifier": {**COMMON_DEFAULTS, "criterion": "cross_entropy", "class_weight": None},
    "TorchRegressor": {**COMMON_DEFAULTS, "criterion": "mse"},
    "ImageClassifier": {**COMMON_DEFAULTS, **_IMAGE_DEFAULTS, "module": "cnn",
                        "criterion": "cross_entropy", "class_weight": None},
    "ImageSegmenter": {**COMMON_DEFAULTS, **_IMAGE_DEFAULTS, "module": "unet",
                       "criterion": "dice_ce", "weights_backbone": None},
}


# The constraints of the hyperparameters every estimator has (scikit-learn
# validates them at fit); leaves add their own.
COMMON_CONSTRAINTS: dict = {
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
