"""Rebuild an estimator from a decoded sktorch file, as a data-only operation.

What a file may do to the process that loads it is bounded here:

- hyperparameters are restored under the names the estimator class declares
  (its signature and its ``prefix__option`` prefixes), and those that reach
  a compiler, the file system or other processes are reset to their
  defaults (:data:`RESET_ON_LOAD`), with a
  :class:`~sktorch.exceptions.ResetOnLoadWarning`;
- fitted attributes are restored only under the names the class lists in
  ``_fitted_attributes``, with their structure checked;
- the network is first built on the ``meta`` device, where nothing is
  allocated and nothing computed, and compared with the saved weights: a
  module whose sizes do not match them, or whose state would outgrow them,
  is refused before the real one is built;
- no forward pass runs and nothing is compiled or written.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from typing import Any

import numpy as np
import torch

from sktorch._io._codec import Decoder, Encoder
from sktorch._utils._introspect import uncompiled
from sktorch._utils._rng import fit_random_state
from sktorch._utils._device import resolve_device
from sktorch.exceptions import (
    DeviceError,
    DeviceWarning,
    InvalidFileError,
    ResetOnLoadWarning,
    WeightsMismatchError,
)

# Hyperparameters load resets to their defaults: each reaches a compiler
# (torch.compile and its options), the file system (checkpoints,
# TensorBoard logs, resuming) or other processes (data-parallel workers,
# DataLoader workers and their callables), and none is needed to predict.
RESET_ON_LOAD = ("compile", "checkpoint_dir", "tensorboard", "resume_from", "strategy",
                 "devices")
_RESET_PREFIXES = ("compile__", "callbacks__")
# The DataLoader options load keeps (plain numbers and flags); the others
# (num_workers, collate_fn, sampler, worker_init_fn, ...) are reset.
_LOADER_OPTIONS = frozenset({"batch_size", "shuffle", "drop_last", "pin_memory"})
# A rebuilt module's state may exceed the saved tensors by this many bytes:
# buffers that are not saved (normalization constants and the like).
_STATE_SLACK = 64 << 20
_MAX_DIM = 1 << 31


def hyperparameters(
    cls: type, document: dict[str, Any], decoder: Decoder, where: str
) -> dict[str, Any]:
    """The saved hyperparameters, names checked, unsafe ones reset."""
    owner = cls.__name__
    saved = document["params"]
    if not isinstance(saved, dict):
        raise InvalidFileError(f"{where!r}: the hyperparameters must be a mapping.")
    names = set(cls._get_param_names())
    defaults = {
        name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    params, reset = {}, []
    for key, value in saved.items():
        prefix, sep, option = key.partition("__")
        if key not in names and not (sep and option and prefix in cls._option_prefixes):
            raise InvalidFileError(
                f"{where!r} sets {key!r}, which is not a hyperparameter of {owner}; the "
                "file was not written by sktorch.save (or was edited)."
            )
        if key in RESET_ON_LOAD:
            default = defaults.get(key)
            if value != Encoder().encode(default, key):
                reset.append(key)
            params[key] = default
            continue
        if key.startswith(_RESET_PREFIXES) or (
            prefix in ("iterator_train", "iterator_valid") and option not in _LOADER_OPTIONS
        ):
            reset.append(key)
            continue
        params[key] = decoder.decode(value, f"the {key!r} parameter of {owner}")
    if reset:
        warnings.warn(
            f"sktorch.load reset {sorted(reset)} of the {owner} in {where!r} to their "
            "defaults: they reach a compiler, the file system or other processes, and a "
            "file must not choose those. If you trust the file, set them again with "
            "set_params() after loading.",
            ResetOnLoadWarning,
            stacklevel=4,  # the caller of sktorch.load
        )
    return params


def restore_fitted(estimator: Any, fitted: Any, decoder: Decoder, where: str,
                   version: int) -> None:
    """Set the saved fitted attributes, under the names the class declares;
    the loss plan made anew from the hyperparameters, completed by what the
    file kept of it."""
    owner = type(estimator).__name__
    if not isinstance(fitted, dict):
        raise InvalidFileError(f"{where!r}: the fitted attributes must be a mapping.")
    if version < 3:
        fitted = _legacy_loss_plan(fitted, where)
    allowed = type(estimator)._fitted_attributes
    for key, value in fitted.items():
        if key not in allowed:
            raise InvalidFileError(
                f"{where!r} sets the fitted attribute {key!r}, which {owner} does not have "
                f"(it has {list(allowed)}); the file was edited."
            )
        value = decoder.decode(value, f"the fitted attribute {key!r} of {owner}")
        _check_fitted(key, value, where)
        estimator.__dict__[key] = value
    missing = [key for key in ("n_outputs_", "_input_shape", "_loss_plan") if key not in fitted]
    if missing:
        raise InvalidFileError(f"{where!r} lacks the fitted attributes {missing}.")
    try:
        estimator._loss_plan = estimator._plan_loss().restored(estimator.__dict__["_loss_plan"])
    except ValueError as exc:
        raise InvalidFileError(f"{where!r} holds an invalid loss plan: {exc}.") from exc


def _legacy_loss_plan(fitted: dict[str, Any], where: str) -> dict[str, Any]:
    """Format versions 1 and 2 kept the loss plan's output function as two
    flags (``_sigmoid_output``, ``_probability_output``; a regressor
    neither)."""
    fitted = dict(fitted)
    sigmoid = fitted.pop("_sigmoid_output", None)
    probabilities = fitted.pop("_probability_output", None)
    if not all(flag is None or isinstance(flag, bool) for flag in (sigmoid, probabilities)):
        raise InvalidFileError(f"{where!r} holds an invalid output flag: {sigmoid!r:.50}, "
                               f"{probabilities!r:.50}.")
    if sigmoid is None and probabilities is None:
        link = "identity"
    elif sigmoid is True:
        link = "sigmoid"
    else:
        link = "identity" if probabilities is True else "softmax"
    fitted.setdefault("_loss_plan", {"link": link})
    return fitted


def _is_int(value: Any, low: int, high: int) -> bool:
    return (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
            and low <= value < high)


def _check_fitted(key: str, value: Any, where: str) -> None:
    if key in ("_input_shape", "image_shape_"):
        valid = (isinstance(value, tuple) and 1 <= len(value) <= 8
                 and all(_is_int(n, 1, _MAX_DIM) for n in value))
    elif key in ("n_outputs_", "n_features_in_"):
        valid = _is_int(value, 1, _MAX_DIM)
    elif key == "_split_seed":
        valid = _is_int(value, 0, 1 << 63)
    elif key in ("_y_was_1d", "_trimmed", "_validating"):
        valid = isinstance(value, bool)
    elif key == "_rng_state":
        valid = (isinstance(value, dict) and isinstance(value.get("cpu"), torch.Tensor)
                 and value["cpu"].dtype == torch.uint8)
    else:
        valid = True
    if not valid:
        raise InvalidFileError(f"{where!r} holds an invalid value for {key!r}: {value!r:.200}.")


def build_net(estimator: Any, document: dict[str, Any], weights: dict[str, torch.Tensor],
              tensors: dict[str, torch.Tensor], device: torch.device | None, where: str) -> Any:
    """The estimator's net, checked on the meta device against ``weights``,
    then built on its device with ``weights`` loaded."""
    target = _load_device(estimator, device)
    shape = tuple(estimator._input_shape)
    # Building needs the input shape only; meta tensors allocate nothing.
    inputs = torch.zeros((2, *shape), device="meta")
    n_train = (document.get("net") or {}).get("n_train")
    if n_train is not None and not _is_int(n_train, 1, 1 << 40):
        raise InvalidFileError(f"{where!r} holds an invalid number of training rows {n_train!r}.")
    # Files before the fitted _validating derived it from the hyperparameters.
    validating = estimator.__dict__.get("_validating",
                                        estimator._validation_share() is not None)
    overrides: dict[str, Any] = {}
    if getattr(estimator, "precision", "32") == "16-mixed" and target.type != "cuda":
        overrides["precision"] = "32"  # float16 autocast with a GradScaler needs CUDA

    def build(on: torch.device) -> Any:
        cuda = [on.index or 0] if on.type == "cuda" else []
        # Building draws initial weights; the caller's random state is not ours.
        with fit_random_state(cuda), _overridden(estimator, **overrides):
            return estimator._build_net(on, inputs, estimator.n_outputs_, validating,
                                        pretrained=False, n_train=n_train, check_output=False)

    with torch.device("meta"):
        probe = build(torch.device("meta"))
    budget = _nbytes(weights.values()) + _nbytes(tensors.values()) + _STATE_SLACK
    _check_module(probe, weights, budget, type(estimator).__name__, where)
    net = build(target)
    _load_weights(uncompiled(net.module_), weights, type(estimator).__name__, where)
    return net


def _load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], owner: str,
                  where: str, probe: bool = False) -> None:
    try:
        module.load_state_dict(weights, strict=True, assign=probe)
    except RuntimeError as exc:
        checked = " It was checked on the meta device: nothing was allocated." if probe else ""
        raise WeightsMismatchError(
            f"The weights in {where!r} do not fit the module of {owner} built from the saved "
            f"hyperparameters (was the file edited?): {exc}{checked}"
        ) from exc


def _check_module(probe: Any, weights: dict[str, torch.Tensor], budget: int, owner: str,
                  where: str) -> None:
    module = uncompiled(probe.module_)
    # The module's own strict loading checks keys and shapes (and lets it
    # take extra keys it declares); assigned rather than copied, the saved
    # tensors stand in for the meta ones at no cost.
    _load_weights(module, weights, owner, where, probe=True)
    state = [*module.parameters(), *module.buffers()]
    criterion = getattr(probe, "criterion_", None)
    if isinstance(criterion, torch.nn.Module):
        state += [*criterion.parameters(), *criterion.buffers()]
    size = _nbytes(t for t in state
                   if not isinstance(t, torch.nn.parameter.UninitializedParameter))
    if size > budget:
        raise WeightsMismatchError(
            f"The module of {owner} built from the hyperparameters in {where!r} would hold "
            f"{size} bytes of parameters and buffers, more than the file's tensors allow "
            f"({budget}); the file was edited. Nothing was allocated."
        )


def _nbytes(tensors: Any) -> int:
    return sum(math.prod(t.shape) * t.element_size() for t in tensors)


def _load_device(estimator: Any, device: torch.device | None) -> torch.device:
    if device is not None:  # resolved by load
        return device
    saved = getattr(estimator, "device", "auto")
    try:
        return resolve_device(saved, type(estimator).__name__)
    except DeviceError:
        warnings.warn(
            f"The {type(estimator).__name__} was saved with device={str(saved)!r}, which "
            "this machine does not have; loading it on the CPU instead. Pass "
            "sktorch.load(path, device=...) to choose.",
            DeviceWarning,
            stacklevel=5,  # the caller of sktorch.load
        )
        return torch.device("cpu")


@contextlib.contextmanager
def _overridden(estimator: Any, **values: Any):
    """Set hyperparameters for the duration of the block, then restore them."""
    saved = {key: estimator.__dict__[key] for key in values if key in estimator.__dict__}
    estimator.__dict__.update(values)
    try:
        yield
    finally:
        for key in values:
            estimator.__dict__.pop(key, None)
        estimator.__dict__.update(saved)
