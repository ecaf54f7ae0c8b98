"""The trust list of :func:`sktorch.load`: what a file may name, and what it may build.

A file names classes and functions by import path; nothing is ever imported
from a path. Each path is looked up in a table of objects that are safe to
*name* (a reference builds nothing: sktorch's registries and public classes,
``torch.nn`` modules, ``torch.optim`` optimizers and schedules,
``torch.nn.init`` functions, torchvision v2 transforms) and, for a value the
file asks to *build* (``__object__``), in a narrower table of classes whose
construction is free of side effects, each with the constructor options a
file may set:

- ``nn.Module`` classes: every named option; the instance is first built on
  the ``meta`` device and refused if it holds any parameter or buffer
  (:func:`sktorch.save` never writes such an instance, and building one from
  file sizes could allocate without bound);
- sktorch's and torchvision's v2 transforms: every named option, except
  ``v2.Lambda`` (it calls a function);
- callbacks, audited one by one (the ``_CALLBACK_OPTIONS`` table): options
  that take a callable (``sink``, ``target_extractor``) or a path are left
  out, and callbacks that write or read files, start processes or reach the
  network (skorch's ``Checkpoint``, ``TrainEndCheckpoint``,
  ``LoadInitState``, ``TensorBoard`` and loggers, sktorch's ``Checkpoint``
  and ``TensorBoard``) are not in the table at all.

Objects the caller passes as ``trusted`` may be named and built with any
named option: trusting them is the caller's decision.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sktorch._estimators import ESTIMATORS, BaseTorchEstimator
from sktorch._utils._registry import Registry
from sktorch.exceptions import InvalidFileError, UntrustedObjectError

# Packages whose public classes may be named in a file (besides the registries).
_PUBLIC_PACKAGES = (
    "sktorch.losses", "sktorch.models", "sktorch.optim", "sktorch.schedulers",
    "sktorch.callbacks", "sktorch.transforms",
)

# Callbacks a file may build, with the options it may set. Audited against
# skorch 1.x and sktorch's own: each of these only records, prints to the
# default sink, or changes training in memory.
_CALLBACK_OPTIONS: dict[str, frozenset[str]] = {
    "skorch.callbacks.logging.EpochTimer": frozenset(),
    "skorch.callbacks.logging.PrintLog": frozenset(
        {"keys_ignored", "tablefmt", "floatfmt", "stralign"}),  # not sink
    "skorch.callbacks.logging.ProgressBar": frozenset(
        {"batches_per_epoch", "detect_notebook", "postfix_keys"}),
    "skorch.callbacks.scoring.EpochScoring": frozenset(
        {"scoring", "lower_is_better", "on_train", "name", "use_caching"}),
    "skorch.callbacks.scoring.BatchScoring": frozenset(
        {"scoring", "lower_is_better", "on_train", "name", "use_caching"}),
    "skorch.callbacks.scoring.PassthroughScoring": frozenset(
        {"name", "lower_is_better", "on_train"}),
    "skorch.callbacks.training.EarlyStopping": frozenset(
        {"monitor", "patience", "threshold", "threshold_mode", "lower_is_better",
         "load_best"}),  # not sink; load_best keeps the best weights in memory
    "skorch.callbacks.regularization.GradientNormClipping": frozenset(
        {"gradient_clip_value", "gradient_clip_norm_type"}),
    "skorch.callbacks.lr_scheduler.WarmRestartLR": frozenset(
        {"min_lr", "max_lr", "base_period", "period_mult", "last_epoch"}),
    "skorch.callbacks.training.Freezer": frozenset({"patterns", "at"}),
    "skorch.callbacks.training.Unfreezer": frozenset({"patterns", "at"}),
    "skorch.callbacks.training.ParamMapper": frozenset({"patterns", "fn", "at", "schedule"}),
    "skorch.callbacks.training.Initializer": frozenset({"patterns", "fn"}),
    "skorch.callbacks.lr_scheduler.LRScheduler": frozenset(
        {"policy", "monitor", "event_name", "step_every"}),
    "sktorch.callbacks._schedule.LRScheduler": frozenset(
        {"policy", "monitor", "event_name", "step_every"}),
    "sktorch.callbacks._schedule.LearningRateLog": frozenset(),
    "sktorch.callbacks._metrics.ValidationMetrics": frozenset({"metrics"}),
    "sktorch.callbacks._progress.EpochTable": frozenset({"floatfmt"}),  # not sink
    "sktorch.callbacks._progress.BatchProgress": frozenset({"leave", "mininterval"}),
}
# These pass further keyword options on to a torch schedule; the file may set
# them when their values are plain data (numbers, strings, lists of them).
_PLAIN_EXTRA_OPTIONS = frozenset({
    "skorch.callbacks.lr_scheduler.LRScheduler", "sktorch.callbacks._schedule.LRScheduler",
})
# Transforms that call a function they are given.
_NOT_BUILDABLE = frozenset({"torchvision.transforms.v2._misc.Lambda"})


def object_path(obj: Any) -> str:
    """The import path a file names ``obj`` by."""
    return f"{obj.__module__}.{obj.__qualname__}"


@dataclass(frozen=True)
class _Entry:
    obj: Any
    # Options a file may pass when it builds the class; None: not buildable.
    options: frozenset[str] | None = None
    plain_extras: bool = False


def named_options(cls: type) -> frozenset[str]:
    """The named keyword arguments of ``cls.__init__`` (no ``**kwargs``)."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(
        name for name, p in parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def is_plain(value: Any) -> bool:
    """Numbers, strings, booleans, None, and lists, tuples and dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


class Trust:
    """The classes and functions a file may name or build, by import path."""

    def __init__(self, trusted: Any) -> None:
        if inspect.isclass(trusted) or inspect.isroutine(trusted) or isinstance(trusted, str):
            trusted = [trusted]
        try:
            trusted = list(trusted)
        except TypeError:
            trusted = [trusted]
        self.trusted: dict[str, _Entry] = {}
        for obj in trusted:
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                raise TypeError(
                    "sktorch.load(trusted=...) takes the classes and functions themselves "
                    f"(e.g. trusted=[MyNet]), not import paths or other values. Got {obj!r}."
                )
            options = named_options(obj) if inspect.isclass(obj) else None
            self.trusted[object_path(obj)] = _Entry(obj, options)
        self._builtin: dict[str, _Entry] | None = None

    @property
    def builtin(self) -> dict[str, _Entry]:
        if self._builtin is None:
            self._builtin = _builtin_entries()
        return self._builtin

    def _entry(self, path: Any, where: str) -> _Entry:
        if not isinstance(path, str):
            raise InvalidFileError(f"{where}: an import path must be a string, got {path!r}.")
        if path in self.trusted:
            return self.trusted[path]
        if path in self.builtin:
            return self.builtin[path]
        qualname = path.rsplit(".", 1)[-1]
        # The same object may be found under another module path: a class
        # saved from __main__ and trusted from its module, or a torch class
        # that moved between torch releases.
        candidates = [
            entry for entry in self.trusted.values()
            if entry.obj.__qualname__.rsplit(".", 1)[-1] == qualname
        ]
        if len(candidates) == 1:
            return candidates[0]
        package = path.split(".", 1)[0]
        candidates = [
            entry for key, entry in self.builtin.items()
            if key.split(".", 1)[0] == package and key.rsplit(".", 1)[-1] == qualname
        ]
        if len(candidates) == 1:
            return candidates[0]
        raise UntrustedObjectError(
            f"sktorch.load refuses to build {path!r} ({where}): it is not among the sktorch "
            f"and torch classes and functions a file may name. If you trust it and this "
            f"file, pass it to load, e.g. sktorch.load(path, trusted=[{qualname}])."
        )

    def resolve(self, path: Any, where: str) -> Any:
        """The class or function a file names (nothing is built)."""
        return self._entry(path, where).obj

    def build(self, path: Any, options: Any, where: str) -> Any:
        """Build the instance a file describes, if its class may be built with
        these options."""
        entry = self._entry(path, where)
        cls = entry.obj
        if not inspect.isclass(cls):
            raise InvalidFileError(f"{where}: {path!r} is not a class.")
        if entry.options is None:
            raise UntrustedObjectError(
                f"sktorch.load refuses to build a {path} ({where}): building it can write "
                "files, run a function or allocate without bound, so a file may name it "
                "but not build it. If you trust this file, pass the class to load, e.g. "
                f"sktorch.load(path, trusted=[{cls.__name__}]); or remove it before saving "
                "and set it again after loading."
            )
        if not isinstance(options, dict):
            raise InvalidFileError(f"{where}: the options of {path!r} must be a mapping.")
        for name, value in options.items():
            if name in entry.options:
                continue
            if entry.plain_extras and isinstance(name, str) and is_plain(value):
                continue
            raise UntrustedObjectError(
                f"sktorch.load refuses the option {name!r} of {path} ({where}): a file may "
                f"set only {sorted(entry.options)} on it. Pass the class in trusted=[...] "
                "if you trust this file."
            )
        if issubclass(cls, nn.Module):
            return _build_stateless_module(cls, options, path, where)
        return cls(**options)

    def estimator_class(self, spec: Any, where: str) -> type:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidFileError(f"{where!r} does not name its estimator class.")
        name, path = spec["name"], spec.get("path", "")
        classes = [entry.obj for entry in self.trusted.values()
                   if inspect.isclass(entry.obj) and issubclass(entry.obj, BaseTorchEstimator)]
        for obj in classes:
            if object_path(obj) == path:
                return obj
        estimators = ESTIMATORS
        if isinstance(path, str) and path.split(".", 1)[0] == "sktorch" and name in estimators:
            return estimators[name]
        candidates = [obj for obj in classes if obj.__name__ == name]
        if len(candidates) == 1:
            return candidates[0]
        raise UntrustedObjectError(
            f"sktorch.load refuses to build {path or name!r} (the estimator class of "
            f"{where!r}): it is not one of sktorch's estimators {sorted(estimators)}. If "
            f"you trust it, pass it to load, e.g. sktorch.load(path, trusted=[{name}])."
        )


def _build_stateless_module(cls: type, options: dict[str, Any], path: str, where: str) -> Any:
    # On the meta device first: sizes taken from the file allocate nothing.
    with torch.device("meta"):
        probe = cls(**options)
    if next(probe.parameters(), None) is not None or next(probe.buffers(), None) is not None:
        raise InvalidFileError(
            f"{where}: the {path} instance in the file has parameters or buffers; "
            "sktorch.save never writes such an instance (the file was edited)."
        )
    return cls(**options)


def _builtin_entries() -> dict[str, _Entry]:
    """The table of objects a file may name, and of those it may build."""
    import skorch.callbacks
    import torchvision.transforms.v2 as v2
    from torchvision.transforms import InterpolationMode

    named: list[Any] = [InterpolationMode]
    for package in _PUBLIC_PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        named.extend(obj for obj in (getattr(module, n, None) for n in getattr(module, "__all__", ()))
                     if inspect.isclass(obj))
    for name, module in list(sys.modules.items()):
        if name == "sktorch" or name.startswith("sktorch."):
            for value in list(vars(module).values()):
                if isinstance(value, Registry):
                    named.extend(value.get_class(key) for key in value.names())
    bases = (nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler,
             torch.optim.lr_scheduler.ReduceLROnPlateau)
    for module in (torch.nn, torch.nn.modules, torch.optim, torch.optim.lr_scheduler):
        named.extend(value for value in vars(module).values()
                     if inspect.isclass(value) and issubclass(value, bases))
    named.extend(value for name, value in vars(torch.nn.init).items()
                 if not name.startswith("_") and inspect.isfunction(value)
                 and value.__module__ == "torch.nn.init")
    named.extend(value for value in vars(v2).values()
                 if inspect.isclass(value) and issubclass(value, v2.Transform))
    named.extend(value for value in (getattr(skorch.callbacks, n, None)
                                     for n in skorch.callbacks.__all__)
                 if inspect.isclass(value))

    table: dict[str, _Entry] = {}
    for obj in named:
        qualname = getattr(obj, "__qualname__", None)
        if not getattr(obj, "__module__", None) or not qualname or "<" in qualname:
            continue
        path = object_path(obj)
        if _is_subclass(obj, skorch.callbacks.Callback) and path not in _CALLBACK_OPTIONS:
            # skorch builds a callback named by its class, so a file may not
            # even name one that writes files or reaches the network.
            continue
        table[path] = _Entry(obj, *_build_policy(obj, path, v2.Transform))
    return table


def _is_subclass(obj: Any, base: type) -> bool:
    return inspect.isclass(obj) and issubclass(obj, base)


def _build_policy(obj: Any, path: str, transform_base: type) -> tuple[frozenset[str] | None, bool]:
    if path in _CALLBACK_OPTIONS:
        return _CALLBACK_OPTIONS[path], path in _PLAIN_EXTRA_OPTIONS
    if not inspect.isclass(obj) or path in _NOT_BUILDABLE or issubclass(obj, enum.Enum):
        return None, False
    if issubclass(obj, nn.Module) or issubclass(obj, transform_base):
        return named_options(obj), False
    return None, False
