"""Net assembly: the skorch net of a fit, built from an estimator's hyperparameters.

:class:`NetAssembly` is a mixin of
:class:`~sktorch._estimators._base.BaseTorchEstimator`. Its one entry,
``_build_net``, resolves the module, loss, optimizer, initialization,
freezing, augmentation, metrics, schedule and callbacks, builds and
initializes the :class:`~sktorch._engine._net.SktorchNet`, and checks the
module's output on the first samples. Every caller builds through it: ``fit``,
``lr_find`` (which hands the engine a builder) and ``sktorch.load``
(``sktorch._io._rebuild.build_net``). The other methods are the hooks a leaf
overrides (``_module_spec``, ``_criterion_defaults``, ``_plan_loss``,
``_optimizer_options``, ``_task_callbacks``, ``_freeze_patterns``,
``_resolve_init``, ``_check_module_output``, ``_check_output_values``,
``_output_reason``). The loss comes from the estimator's ``_loss_plan``,
decided when y was encoded.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from typing import Any

import torch
from skorch.callbacks import EarlyStopping
from skorch.utils import params_for
from torch import nn

from sktorch._data._augment import resolve_augment
from sktorch._data._batches import batch_sizes, loader_options
from sktorch._engine._checks import NonFiniteLossCheck, check_scheduler_options
from sktorch._engine._inference import first_output
from sktorch._data._tensors import TensorDataset
from sktorch._engine._net import SktorchNet
from sktorch._utils._introspect import accepted_arguments, check_options
from sktorch.callbacks import (
    BatchProgress,
    Checkpoint,
    EpochTable,
    LearningRateLog,
    LRScheduler,
    TensorBoard,
    ValidationMetrics,
)
from sktorch.callbacks._checkpoint import new_run_dir
from sktorch.callbacks._metrics import metric_monitor, resolve_metrics
from sktorch.callbacks._schedule import call_factory
from sktorch.exceptions import InvalidParameterError
from sktorch.losses import LOSSES
from sktorch.losses._plan import LossPlan
from sktorch.models import INITIALIZERS, MODELS
from sktorch.optim import OPTIMIZERS
from sktorch.schedulers import SCHEDULERS, STEP_PER_BATCH, default_options


class NetAssembly:
    """Builds the skorch net of a fit from the estimator's hyperparameters.

    A mixin of ``BaseTorchEstimator``, whose hyperparameters (``module``,
    ``criterion``, ``optimizer``, ``lr``, ...) and helpers
    (``_option_params``, ``_patience``) it reads. A leaf changes how its net
    is assembled by overriding the hooks below, or extends ``_build_net``
    through ``super()``.
    """

    def _criterion_defaults(self, criterion_cls: Any, n_classes: int | None) -> dict[str, Any]:
        """Options the task sets on a loss class unless the user gives them."""
        return {}

    def _plan_loss(self, n_classes: int | None = None) -> LossPlan:
        """The fit's :class:`~sktorch.losses._plan.LossPlan`: the
        ``criterion`` resolved, its options with the task's defaults under
        them. Called once per fit, by the target adapter (which encodes y
        by it), and by ``sktorch.load``; ``_build_net`` and prediction read
        the estimator's ``_loss_plan``."""
        criterion, options = self._component(LOSSES, "criterion", self._option_params())
        if not isinstance(criterion, nn.Module):
            options = {**self._criterion_defaults(criterion, n_classes), **options}
        return LossPlan(criterion, options)

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
        criterion, criterion_options = self._loss_plan.build_arguments()

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
            augment_targets=self._target_adapter.augment_with_inputs,
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
            self._loss_plan = self._check_output_values(output, self._loss_plan)
        net.log_output = self._loss_plan.log_output
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

    def _check_output_values(self, output: torch.Tensor, plan: LossPlan) -> LossPlan:
        """Check the module's output on the first training samples against
        the loss; the plan, completed by what the check learns."""
        return plan

    def _output_reason(self, n_outputs: int) -> str:
        return f"{n_outputs} outputs"

