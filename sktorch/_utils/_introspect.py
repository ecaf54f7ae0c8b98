"""Reading what callables take and objects hold: arguments, constructor arguments, wrappers.

One place for the questions sktorch asks of user-given classes, functions and
modules: which of some values a callable accepts (:func:`accepted_arguments`,
:func:`check_options`), which arguments rebuild an object
(:func:`constructor_arguments`), the nearest valid name for a misspelt one
(:func:`did_you_mean`), and the module under ``torch.compile``'s wrapper
(:func:`uncompiled`, :func:`uncompiled_name`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from sktorch.exceptions import InvalidParameterError

__all__ = [
    "accepted_arguments",
    "check_options",
    "constructor_arguments",
    "did_you_mean",
    "uncompiled",
    "uncompiled_name",
]

# The attribute under which ``torch.compile`` keeps the module it wraps, and
# the prefix it adds to the names of that module's parameters.
_COMPILED_ATTRIBUTE = "_orig_mod"
_COMPILED_PREFIX = _COMPILED_ATTRIBUTE + "."


def did_you_mean(name: str, candidates: list[str]) -> str:
    """`` Did you mean 'x'?`` for the candidate closest to ``name``, or ``''``
    when none is close; to end an error message with."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def accepted_arguments(target: Callable[..., Any], values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` whose names are arguments of ``target``
    (nothing when its signature cannot be read)."""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in values.items() if name in parameters}


def check_options(
    target: Callable[..., Any],
    options: dict[str, Any],
    *,
    prefix: str,
    owner: str,
    reserved: tuple[str, ...] = (),
) -> None:
    """Check that every ``prefix__option`` names an argument of ``target``.

    ``target`` is the class (or callable) the options will be passed to.
    Targets that take ``**kwargs`` accept anything. ``reserved`` names are
    arguments the estimator supplies itself (e.g. an optimizer's ``params``).

    Raises
    ------
    InvalidParameterError
        Naming the option, ``owner``, the valid options and the nearest one.
    """
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    valid = [
        name
        for name, p in parameters.items()
        if name not in reserved and p.kind is not p.VAR_POSITIONAL
    ]
    for key in options:
        if key not in valid:
            target_name = getattr(target, "__qualname__", repr(target))
            raise InvalidParameterError(
                f"Invalid parameter '{prefix}__{key}' for {owner}: {target_name} "
                f"takes no argument {key!r}. Valid {prefix}__ options are "
                f"{sorted(valid)}." + did_you_mean(key, valid)
            )


def constructor_arguments(obj: Any, *, strict: bool = True) -> dict[str, Any] | None:
    """The keyword arguments that rebuild ``obj`` as ``type(obj)(**arguments)``,
    or None when they cannot be read back from it.

    The arguments are read under one of two rules:

    - ``strict=True``, for a copy that must be the same object, written to a
      file (:func:`sktorch.save`): ``obj.get_params(deep=False)`` when it has
      one (scikit-learn and skorch objects); otherwise every argument of
      ``type(obj).__init__`` must be an attribute of ``obj`` of the same
      name, held in its ``__dict__`` or a property or slot of its class
      (not one that ``__getattr__`` answers, as ``nn.Module`` answers with
      its parameters and buffers). An ``__init__`` with ``*args`` or
      ``**kwargs`` gives None: those arguments cannot be named.
    - ``strict=False``, for a copy built again with some options replaced
      (``augment__<option>`` applied to a transform instance): every named
      argument of ``type(obj).__init__`` must be readable with ``getattr``,
      ``__getattr__`` included; ``*args`` and ``**kwargs`` are skipped, the
      copy taking their defaults. ``get_params`` is not used.

    Under both rules an argument missing from ``obj``, or an ``__init__``
    whose signature cannot be read, gives None; arguments equal to their
    defaults (the same object, or an equal bool, number, string or tuple)
    are left out, so a default function such as skorch's ``sink=print``
    never needs to be named.

    Parameters
    ----------
    obj : object
        The object to read.
    strict : bool, default=True
        Which rule to read the arguments under (see above).

    Returns
    -------
    arguments : dict or None
        Argument name -> value, without the defaults; None when the
        arguments cannot be read.
    """
    try:
        parameters = dict(inspect.signature(type(obj).__init__).parameters)
    except (TypeError, ValueError):
        parameters = None
    parameters = None if parameters is None else {
        name: p for name, p in parameters.items() if name != "self"}
    arguments = _get_params(obj) if strict else None
    if arguments is None:
        if parameters is None:
            return None
        attributes = _own_attributes(obj) if strict else None
        arguments = {}
        for name, parameter in parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                if strict:
                    return None  # arguments that cannot be named
                continue
            readable = name in attributes if strict else hasattr(obj, name)
            if not readable:
                return None
            arguments[name] = getattr(obj, name)
    defaults = {
        name: parameter.default
        for name, parameter in (parameters or {}).items()
        if parameter.default is not inspect.Parameter.empty
    }
    return {
        name: argument
        for name, argument in arguments.items()
        if not (name in defaults and _is_default(argument, defaults[name]))
    }


def _get_params(obj: Any) -> dict[str, Any] | None:
    get_params = getattr(obj, "get_params", None)
    if not callable(get_params):
        return None
    try:
        arguments = get_params(deep=False)
    except TypeError:  # a get_params of another meaning (torchvision v1 transforms)
        return None
    return dict(arguments) if isinstance(arguments, dict) else None


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if type(value) is not type(default) or not isinstance(value, (bool, int, float, str, tuple)):
        return False
    try:
        return bool(value == default)
    except Exception:  # an __eq__ that does not return a bool
        return False


def _own_attributes(obj: Any) -> set[str]:
    names = set(getattr(obj, "__dict__", {}))
    # Properties and slots are readable attributes too.
    return names | {name for name in dir(type(obj)) if hasattr(obj, name)}


def uncompiled(module: nn.Module) -> nn.Module:
    """The module itself under a ``torch.compile`` wrapper (whose weights are
    the module's), or ``module`` when it is not compiled."""
    return getattr(module, _COMPILED_ATTRIBUTE, module)


def uncompiled_name(name: str) -> str:
    """A parameter's or submodule's name as in the module itself, also when
    the name was read through a ``torch.compile`` wrapper (which prefixes
    ``_orig_mod.``)."""
    return name.replace(_COMPILED_PREFIX, "")
