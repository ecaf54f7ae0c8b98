"""The skorch net sktorch drives, with an in-memory batch path.

skorch's default path wraps the data in a ``Dataset`` and lets a
``DataLoader`` index it row by row and collate the rows back into a batch.
For data that is already one tensor in memory that is pure overhead: here a
batch is one indexing operation on the whole tensor with a slice of a
shuffled permutation, drawn from torch's random state (which sktorch seeds
from ``random_state``). Everything else -- the training step, callbacks,
history -- is skorch's.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import get_len, unpack_data
from skorch.history import History
from skorch.utils import TeeGenerator

from sktorch._data._batches import (
    AugmentedBatches,
    ShardedBatches,
    TensorBatches,
    batch_sizes,
    check_iterator_options,
    loader_options,
)
from sktorch._data._tensors import TensorDataset, WeightedTargets
from sktorch._engine._net_hooks import NetHooks, overridden_hooks
from sktorch._engine._scoring import ScoringView
from sktorch._engine._weighting import SampleWeighting
from sktorch.exceptions import InvalidParameterError

# precision name -> autocast dtype (None: no autocast)
PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None,
    "16-mixed": torch.float16,
    "bf16-mixed": torch.bfloat16,
}


class FastHistory(History):
    """skorch's ``History``, with the two per-batch writes indexing the last
    epoch directly rather than through ``History.__getitem__``'s general
    key handling (a few microseconds per batch)."""

    def new_batch(self):
        list.__getitem__(self, -1)["batches"].append({})

    def record_batch(self, attr, value):
        list.__getitem__(self, -1)["batches"][-1][attr] = value


@functools.lru_cache(maxsize=None)
def _as_device(device: str | torch.device) -> torch.device:
    return torch.device(device)


@functools.lru_cache(maxsize=None)
def _overrides(cls: type, hook: str) -> bool:
    """Whether callback class ``cls`` does something on ``hook`` (the base
    ``Callback`` hooks do nothing)."""
    return getattr(cls, hook, None) is not getattr(Callback, hook, None)


class SktorchNet(NetHooks, ScoringView, SampleWeighting, NeuralNet):
    """skorch's ``NeuralNet`` with the in-memory batch path and sktorch's
    training options.

    A :class:`TensorDataset` is cut into batches by :class:`TensorBatches`;
    any other dataset goes through skorch's ``DataLoader`` path, shuffled
    for training in the order the in-memory path would draw. Both take the
    ``iterator_train__``/``iterator_valid__`` options that choose the
    batches (``batch_size``, ``shuffle``, ``sampler``, ``batch_sampler``,
    ``drop_last``) alike (see :mod:`sktorch._data._batches`).

    With mixed precision, gradient clipping or gradient accumulation, the
    training step is sktorch's: forward and loss under ``torch.autocast``,
    the loss scaled by a ``GradScaler`` for float16, gradients accumulated
    over ``accumulate_grad_batches`` batches (each batch's loss weighted by
    its share of the samples of its group, so the gradient is that of one
    batch of the whole group), then unscaled, clipped to ``max_grad_norm``,
    and one optimizer step. Otherwise skorch's own step runs unchanged
    (it alone supports closure-based optimizers such as LBFGS).

    When training raises, skorch skips ``on_train_end``; callbacks with an
    ``on_train_error`` method are called there instead (see
    :meth:`on_train_error`), so that what they opened for the fit is closed.
    Callbacks with an ``on_epoch_finished(net)`` method are called once
    every callback's ``on_epoch_end`` has run (also when early stopping
    ends training there).

    ``get_loss``, ``train_step``, ``train_step_single`` and
    ``validation_step`` call the estimator's method when its class
    overrides it (see ``sktorch._engine._net_hooks``).

    With an estimator, ``predict`` and ``predict_proba`` are the
    estimator's, and skorch's scoring callbacks score the user's labels
    (see ``sktorch._engine._scoring``).

    Parameters
    ----------
    precision : {'32', '16-mixed', 'bf16-mixed'}
    max_grad_norm : float or None
    accumulate_grad_batches : int
    init : callable or None
        Called as ``init(weight, **init_options)`` on the weight of every
        linear and convolution layer after the module is built; biases are
        zeroed.
    freeze : tuple of str
        ``fnmatch`` patterns of parameter names to freeze.
    augment : callable or None
        Applied to the inputs of every training batch (on the device the
        batch is on), before the callbacks see the batch; never to
        validation batches.
    augment_targets : bool
        Transform inputs and targets together with ``augment.pair(X, y)``
        (segmentation: a flip moves the image and its mask alike).
    loader_seed : int or None
        Seeds the generator of the training ``DataLoader`` of a general
        (not in-memory) dataset, which seeds its worker processes; None
        leaves it to the ``DataLoader``, which then draws from torch's
        random state.
    log_output : bool
        Give the loss the log of the module's output (plus float epsilon),
        for a module that outputs probabilities trained with ``NLLLoss``,
        as skorch's ``NeuralNetClassifier`` does.
    """

    def __init__(
        self,
        *args: Any,
        precision: str = "32",
        max_grad_norm: float | None = None,
        accumulate_grad_batches: int = 1,
        init: Callable[..., Any] | None = None,
        init_options: dict[str, Any] | None = None,
        freeze: tuple[str, ...] = (),
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        augment_targets: bool = False,
        loader_seed: int | None = None,
        log_output: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.max_grad_norm = max_grad_norm
        self.accumulate_grad_batches = accumulate_grad_batches
        self.init = init
        self.init_options = init_options
        self.freeze = freeze
        self.augment = augment
        self.augment_targets = augment_targets
        self.loader_seed = loader_seed
        self.log_output = log_output
        # Per-epoch accumulation plan, set at each epoch's start; empty
        # outside an epoch (e.g. single steps of a learning-rate range test).
        self._batch_weights: list[tuple[float, bool]] = []
        self._batch_index = 0
        # Data-parallel training (sktorch._engine._distributed): (rank, world size)
        # while a worker process trains, with the sizes of the epoch's global
        # batches; None otherwise.
        self._shard: tuple[int, int] | None = None
        self._global_sizes: list[int] = []
        # Weighted batches (sample_weight): the loss's denominator D of the
        # batch just scored (see sktorch.losses._weighted), read by the step
        # and the epoch loop that scored it; the D summed over the current
        # accumulation group; the loss copy giving element losses.
        self._batch_weight: torch.Tensor | None = None
        self._group_weight: torch.Tensor | None = None
        self._unreduced: tuple[Any, Any] | None = None

    @property
    def estimator(self) -> Any:
        """The sktorch estimator that built this net, or None.

        Held as a weak reference (the estimator owns the net, not the other
        way round) and dropped from pickles; the estimator sets it again
        when it is unpickled. Callbacks use it to read the estimator's
        hyperparameters and to score validation predictions as the user
        would see them (labels, probabilities).
        """
        ref = self.__dict__.get("_estimator_ref")
        return ref() if ref is not None else None

    @estimator.setter
    def estimator(self, value: Any) -> None:
        self.__dict__["_estimator_ref"] = weakref.ref(value) if value is not None else None
        self._hooks = overridden_hooks(type(value)) if value is not None else frozenset()

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_estimator_ref", None)
        state["_unreduced"] = None  # a copy of criterion_, made again when needed
        state["_batch_weight"] = state["_group_weight"] = None
        return state

    def notify(self, method_name, **cb_kwargs):
        # skorch calls every callback's hook three times per batch, though
        # most callbacks only act at epoch boundaries; skipping the base
        # class's no-op hooks saves tens of microseconds per batch. A hook
        # set on an instance is still called.
        getattr(self, method_name)(self, **cb_kwargs)
        if method_name == "on_epoch_end":
            self._notify_epoch_end(cb_kwargs)
            return
        if method_name == "on_batch_end" and self._user_batch_scorers:
            self._notify_user_batch_end(cb_kwargs)
            return
        for _, callback in self.callbacks_:
            if _overrides(type(callback), method_name) or method_name in vars(callback):
                getattr(callback, method_name)(self, **cb_kwargs)

    def _notify_user_batch_end(self, cb_kwargs: dict[str, Any]) -> None:
        """``on_batch_end`` when a ``BatchScoring`` scores without caching:
        it gets the batch's inputs as the user gives them (see
        ``sktorch._engine._scoring``)."""
        for _, callback in self.callbacks_:
            if _overrides(type(callback), "on_batch_end") or "on_batch_end" in vars(callback):
                kwargs = cb_kwargs
                if callback in self._user_batch_scorers:
                    kwargs = self._user_batch_kwargs(cb_kwargs, callback)
                callback.on_batch_end(self, **kwargs)

    def _notify_epoch_end(self, cb_kwargs: dict[str, Any]) -> None:
        """``on_epoch_end`` on the callbacks, then ``on_epoch_finished(net)``
        on those that have it, once every callback has taken the epoch in:
        after the last one, or when early stopping ends training there by
        raising ``KeyboardInterrupt`` (sktorch's ``Checkpoint`` saves the
        state then). An epoch whose end another callback interrupts does not
        finish: the callbacks after it have not seen it.

        An ``EpochScoring`` that scores without caching gets the dataset it
        scores as the user would give it (see ``sktorch._engine._scoring``).
        """
        user_datasets: dict[str, Any] = {}
        for _, callback in self.callbacks_:
            if _overrides(type(callback), "on_epoch_end") or "on_epoch_end" in vars(callback):
                kwargs = cb_kwargs
                if callback in self._user_epoch_scorers:
                    kwargs = self._user_dataset_kwargs(cb_kwargs, callback, user_datasets)
                try:
                    callback.on_epoch_end(self, **kwargs)
                except KeyboardInterrupt:
                    if isinstance(callback, EarlyStopping):
                        self._notify_epoch_finished()
                    raise
        self._notify_epoch_finished()

    def _notify_epoch_finished(self) -> None:
        for _, callback in self.callbacks_:
            hook = getattr(callback, "on_epoch_finished", None)
            if hook is not None:
                hook(self)

    # ------------------------------------------------------------ failures
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # skorch notifies on_train_end only when the training loop returns
        # (or is interrupted with Ctrl-C): after any other exception, a
        # callback that opened something in on_train_begin (TensorBoard's
        # writer and its thread) would never close it. fit() goes through
        # here too.
        try:
            return super().partial_fit(X, y, classes=classes, **fit_params)
        except BaseException as exc:
            self._notify_train_error(exc, X=X, y=y)
            raise

    def on_train_error(self, net, exc: BaseException, X=None, y=None, **kwargs) -> None:
        """Hook: training raised ``exc``; release what ``on_train_begin``
        acquired.

        Called on the net, then on every callback that has a method of this
        name, when ``partial_fit`` (which ``fit`` calls) raises: in
        ``on_train_begin``, in the training loop, or in ``on_train_end``,
        which skorch then does not call or did not finish. A callback may
        thus get it after its own ``on_train_begin`` failed, or after its
        ``on_train_end`` ran, and must not release anything twice. ``exc``
        propagates unchanged afterwards: a hook that raises is reported as a
        ``RuntimeWarning``, and the next one is still called. Here it gives
        the scoring callbacks back the target extractor the fit replaced
        (``sktorch._engine._scoring``).

        Parameters
        ----------
        net : SktorchNet
            The net being trained.
        exc : BaseException
            What training raised.
        X, y
            The data ``partial_fit`` was given.
        """
        # The scoring callbacks get skorch's target extractor back.
        super().on_train_error(net, exc, X=X, y=y, **kwargs)

    def _notify_train_error(self, exc: BaseException, **kwargs: Any) -> None:
        """Call ``on_train_error`` on the net and every callback that has it,
        each even when an earlier one fails; never raise."""
        hooks = [("net", self), *getattr(self, "callbacks_", ())]
        for name, callback in hooks:
            hook = getattr(callback, "on_train_error", None)
            if hook is None:
                continue
            try:
                hook(self, exc=exc, **kwargs)
            except Exception as hook_exc:
                message = (
                    f"The on_train_error hook of {name!r} ({type(callback).__name__}) "
                    f"failed while training was failing with {type(exc).__name__}: "
                    f"{type(hook_exc).__name__}: {hook_exc}"
                )
                # Even with warnings turned into errors, the training error
                # is what propagates.
                with contextlib.suppress(Exception):
                    warnings.warn(message, RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------ building
    def initialize_history(self):
        self.history_ = FastHistory()
        return self

    def initialize_module(self):
        super().initialize_module()
        module = self.module_
        if self.init is not None:
            options = self.init_options or {}
            for layer in module.modules():
                if isinstance(layer, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
                    self.init(layer.weight, **options)
                    if layer.bias is not None:
                        torch.nn.init.zeros_(layer.bias)
        if self.freeze:
            names = [name for name, _ in module.named_parameters()]
            for pattern in self.freeze:
                if not fnmatch.filter(names, pattern):
                    raise ValueError(
                        f"The freeze pattern {pattern!r} matches no parameter of the module; "
                        f"its parameters are named like {names[:6]}."
                    )
            for name, param in module.named_parameters():
                if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.freeze):
                    param.requires_grad_(False)
        return self

    def get_all_learnable_params(self):
        # Frozen parameters stay out of the optimizer altogether.
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        device_type = torch.device(self.device).type
        use_scaler = self.precision == "16-mixed" and device_type == "cuda"
        self.scaler_ = torch.amp.GradScaler(device_type) if use_scaler else None
        if use_scaler and "scaler_" not in self.cuda_dependent_attributes_:
            # Its state lives on the GPU: pickle it with the other CUDA
            # attributes, so a CUDA pickle still loads on a CPU machine.
            self.cuda_dependent_attributes_ = [*self.cuda_dependent_attributes_, "scaler_"]
        return self

    # ------------------------------------------------------------ training
    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the forward pass and the loss."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=dtype)

    def _custom_step(self) -> bool:
        return (self.precision != "32" or self.max_grad_norm is not None
                or self.accumulate_grad_batches > 1 or self._shard is not None)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        self._batch_weights = self._accumulation_weights(dataset_train)
        self._global_sizes = self._batch_sizes(dataset_train) if self._shard else []
        self._batch_index = 0

    def _batch_sizes(self, dataset) -> list[int]:
        """The sizes of the epoch's training batches."""
        sizes = batch_sizes(self._loader_options(dataset, training=True), len(dataset))
        if sizes is None:
            raise InvalidParameterError(
                "iterator_train__batch_sampler cannot be combined with "
                "accumulate_grad_batches > 1 or strategy='ddp', which need the sizes of the "
                "epoch's batches before it starts. Use iterator_train__sampler and "
                "batch_size instead."
            )
        return sizes

    def _accumulation_weights(self, dataset) -> list[tuple[float, bool]]:
        """Per training batch of the epoch: the weight of its loss, and
        whether the optimizer steps after it."""
        k = self.accumulate_grad_batches
        if dataset is None or k == 1:
            return []
        sizes = self._batch_sizes(dataset)
        weights = []
        for group_start in range(0, len(sizes), k):
            group = sizes[group_start : group_start + k]
            total = sum(group)
            weights += [(s / total, i == len(group) - 1) for i, s in enumerate(group)]
        return weights

    def infer(self, x, **fit_params):
        # skorch's to_tensor handles dicts, lists, arrays and parses the
        # device string on every call; a batch of the in-memory path is
        # already a tensor, so that work is skipped for it.
        if isinstance(x, torch.Tensor) and not fit_params:
            return self.module_(x.to(_as_device(self.device)))
        return super().infer(x, **fit_params)

    def _get_loss(self, y_pred, y_true, X=None, training=False):
        if self.log_output and isinstance(y_pred, torch.Tensor):
            y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        if isinstance(y_true, WeightedTargets):
            return self._weighted_loss(y_pred, y_true)
        if isinstance(y_true, torch.Tensor):
            return self.criterion_(y_pred, y_true.to(_as_device(self.device)))
        return NeuralNet.get_loss(self, y_pred, y_true, X=X, training=training)

    def _train_step(self, batch, **fit_params):
        if not self._custom_step():
            # (optimizer_stepped_ is only ever set by the custom step; readers
            # default to True.)
            return NeuralNet.train_step(self, batch, **fit_params)
        if self._batch_weights:
            weight, last_in_group = self._batch_weights[self._batch_index]
        else:
            weight, last_in_group = 1.0, True
        first_in_group = (
            not self._batch_weights
            or self._batch_index == 0
            or self._batch_weights[self._batch_index - 1][1]
        )
        if self._shard is not None:
            # Each process has the rows rank::world of a global batch of n
            # and the mean loss over them; DistributedDataParallel averages
            # the gradients over processes. Weighing the loss by
            # n_rank * world / n makes that average the gradient of the mean
            # loss over the whole batch, also when the shares are unequal
            # (a stand-in row of an empty share weighs zero).
            rank, world = self._shard
            n_global = self._global_sizes[self._batch_index]
            n_local = len(range(rank, n_global, world))
            weight = weight * n_local * world / n_global
        self._batch_index += 1
        if first_in_group:
            self._zero_grad_optimizer()

        self._set_training(True)
        Xi, yi = unpack_data(batch)
        # Weighted batches over several backward passes (accumulation) or
        # processes: each backward pass takes the batch's S, and the
        # gradients are divided by the step's D before the optimizer steps.
        summed = isinstance(yi, WeightedTargets) and (
            self.accumulate_grad_batches > 1 or self._shard is not None)
        with self.autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if summed:
            denominator = self._batch_weight
            scaled = loss * denominator
            self._group_weight = (denominator if first_in_group
                                  else self._group_weight + denominator)
        else:
            scaled = loss * weight if weight != 1.0 else loss
        if self.scaler_ is not None:
            scaled = self.scaler_.scale(scaled)
        scaled.backward()

        self.optimizer_stepped_ = last_in_group
        if last_in_group:
            if self.scaler_ is not None:
                for name in self._optimizers:
                    self.scaler_.unscale_(getattr(self, name + "_"))
            if summed:
                self._divide_grads(self._group_weight)
            if self.max_grad_norm is not None:
                params = [p for _, p in self.get_all_learnable_params()]
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
            if self.scaler_ is not None:
                for name in self._optimizers:
                    self.scaler_.step(getattr(self, name + "_"))
                self.scaler_.update()
            else:
                self._step_optimizer(None)
        if self._shard is not None:
            # The history records the loss of the global batch, as a single
            # process training on it would.
            import torch.distributed as dist

            if summed:
                terms = torch.stack([loss.detach().float() * self._batch_weight,
                                     self._batch_weight.float()])
                dist.all_reduce(terms)
                self._batch_weight = terms[1]
                return {"loss": terms[0] / terms[1].clamp_min(torch.finfo(terms.dtype).tiny),
                        "y_pred": y_pred, "batch_size": n_global}
            total = loss.detach().float() * n_local
            dist.all_reduce(total)
            return {"loss": total / n_global, "y_pred": y_pred, "batch_size": n_global}
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        # skorch's loop. It records a data-parallel step's global batch
        # (loss and size) rather than this process's share of it, and a
        # weighted batch's weight D (``<prefix>_batch_weight``), by which
        # the epoch's loss averages the batches' losses.
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            self._batch_weight = None
            step = step_fn(batch, **fit_params)
            self.history.record_batch(prefix + "_loss", step["loss"].item())
            size = step.pop("batch_size", None)
            if size is None:
                size = get_len(batch[0]) if isinstance(batch, (tuple, list)) else get_len(batch)
            self.history.record_batch(prefix + "_batch_size", size)
            if self._batch_weight is not None:
                self.history.record_batch(prefix + "_batch_weight", self._batch_weight.item())
                self._batch_weight = None
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)

    def _validation_step(self, batch, **fit_params):
        with self.autocast():
            return NeuralNet.validation_step(self, batch, **fit_params)

    def _set_training(self, training=True):
        # skorch calls this before every batch, and ``Module.train`` walks the
        # whole module tree each time: for a deep network that walk costs more
        # than a small batch. Walk only when the mode actually changes.
        # A side effect users may rely on: a submodule a callback put in eval
        # mode (e.g. frozen batch-norm statistics) stays so during training.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def _loader_options(self, dataset, training: bool) -> dict[str, Any]:
        """The ``DataLoader`` arguments of a pass over ``dataset`` (see
        :func:`sktorch._data._batches.loader_options`); both paths cut their
        batches by them."""
        prefix = "iterator_train" if training else "iterator_valid"
        return loader_options(self.get_params_for(prefix), len(dataset), self.batch_size,
                              training, prefix)

    def _loader(self, dataset, training):
        """skorch's ``DataLoader`` for a general dataset. For training it is
        shuffled as the in-memory path shuffles (unless ``iterator_train__``
        options say otherwise): a ``torch.randperm`` order drawn from torch's
        random state each epoch. Its own generator, seeded from
        ``loader_seed`` and the epoch, seeds worker processes, so the loader
        draws nothing else from torch's random state (a ``DataLoader``
        without one draws its workers' base seed there, on every pass)."""
        kwargs = self._loader_options(dataset, training)
        if "generator" not in kwargs and self.loader_seed is not None:
            seed = self.loader_seed + len(self.history)
            kwargs["generator"] = torch.Generator().manual_seed(seed)
        prefix = "iterator_train" if training else "iterator_valid"
        return getattr(self, prefix)(dataset, **kwargs)

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, TensorDataset):
            prefix = "iterator_train" if training else "iterator_valid"
            owner = type(self.estimator or self).__name__
            check_iterator_options({f"{prefix}__{k}": v for k, v in
                                    self.get_params_for(prefix).items()}, owner, arrays=True)
            iterator = TensorBatches.from_options(dataset, self._loader_options(dataset, training))
        else:
            iterator = self._loader(dataset, training)
        if training and self._shard is not None:
            iterator = ShardedBatches(iterator, *self._shard)
        if training and self.augment is not None:
            return AugmentedBatches(iterator, self.augment, _as_device(self.device),
                                    joint=self.augment_targets)
        return iterator

