"""Save and load fitted estimators without pickle; trim them for inference.

A file written by :func:`save` is a zip archive of three members:

- ``sktorch.json``: the estimator's class, its hyperparameters, its fitted
  attributes, its history, the library versions and the format version;
- ``model.safetensors``: the module's ``state_dict`` (the key names are the
  module's own, so the member can be read by any safetensors tool);
- ``state.safetensors`` (only when there are any): every other tensor the
  document refers to by key (the random state, the optimizer's state).

Loading parses JSON and safetensors, nothing else: no pickle, no
``torch.load``. A class or function named in the document is looked up in a
table of objects known to be safe to build (sktorch's estimators and
registries, sktorch's public classes, ``torch.nn`` modules, ``torch.optim``
optimizers and schedulers, ``torch.nn.init`` functions, torchvision v2
transforms, skorch callbacks) and in the objects the caller passes as
``trusted``; a name
found in neither is refused, and never imported.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import json
import os
import platform
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from sktorch.exceptions import (  # noqa: F401 (the errors are documented here too)
    DeviceWarning,
    InvalidFileError,
    PersistenceError,
    UnsavableValueError,
    UnsupportedFormatError,
    UntrustedObjectError,
    WeightsMismatchError,
)

__all__ = [
    "FORMAT_VERSION",
    "InvalidFileError",
    "PersistenceError",
    "UnsavableValueError",
    "UnsupportedFormatError",
    "UntrustedObjectError",
    "WeightsMismatchError",
    "load",
    "save",
    "trim_for_inference",
]

FORMAT_NAME = "sktorch.estimator"
FORMAT_VERSION = 1

_DOCUMENT = "sktorch.json"
_WEIGHTS = "model.safetensors"
_STATE = "state.safetensors"
_MEMBERS = (_DOCUMENT, _WEIGHTS, _STATE)

# Tags of the JSON objects that stand for a value JSON has no type for. A
# plain dict is written as a JSON object unless it could be mistaken for one.
_TAGS = frozenset({
    "__tuple__", "__dict__", "__ndarray__", "__tensor__", "__device__", "__dtype__",
    "__path__", "__random_state__", "__class__", "__function__", "__object__", "__enum__",
})

# Estimator attributes that are neither hyperparameters nor saved as fitted state.
_NOT_SAVED = frozenset({"net_", "_sklearn_version"})

# Packages whose public classes may be built at load (besides the registries).
_PUBLIC_PACKAGES = (
    "sktorch", "sktorch.losses", "sktorch.models", "sktorch.optim", "sktorch.schedulers",
    "sktorch.callbacks", "sktorch.transforms",
)




# ------------------------------------------------------------------ public API
def save(estimator: Any, path: str | os.PathLike, *, include_optimizer: bool = False) -> None:
    """Save an estimator to one file, without pickle.

    The file is a zip archive holding a JSON document (the estimator's class,
    its hyperparameters, ``classes_``, ``feature_names_in_`` and the other
    fitted attributes, the training history, the sktorch and torch versions)
    and the module's weights as safetensors. :func:`load` rebuilds the
    estimator from it without unpickling anything.

    The file is written to a temporary name in the same directory and then
    renamed, so an interrupted save never leaves a partial file under
    ``path`` (an existing file there stays as it was).

    Parameters
    ----------
    estimator : TorchClassifier, TorchRegressor or another sktorch estimator
        The estimator, fitted or not (an unfitted one saves its
        hyperparameters only).
    path : str or path-like
        The file to write; its directory must exist. An existing file is
        replaced. The extension is free; ``.sktorch`` is a good one.
    include_optimizer : bool, default=False
        Also save what continuing training needs: the optimizer's state,
        the learning-rate schedule's state, the gradient scaler's and the
        full history (with per-batch records). A loaded estimator then
        continues with ``partial_fit`` or ``fit`` with ``warm_start=True``
        exactly as the saved one would. Without it, the file holds the
        weights, the random state and the per-epoch history; training a
        loaded estimator further starts from a fresh optimizer.

    Raises
    ------
    UnsavableValueError
        If a hyperparameter holds a value that cannot be stored without
        pickle: a lambda or a function defined inside another function, an
        ``nn.Module`` instance with weights (pass its class and
        ``module__<option>`` values instead), or an object whose constructor
        arguments cannot be read back from attributes of the same names.
    PersistenceError
        If ``include_optimizer=True`` and the estimator has no optimizer
        state (it is unfitted, or was trimmed for inference).

    See Also
    --------
    load : Read the file back.
    export_onnx : Export the fitted network for other runtimes.

    Notes
    -----
    Hyperparameters are stored as JSON: strings, numbers, booleans, None,
    lists, tuples (kept distinct from lists), dicts, NumPy arrays, torch
    devices and dtypes, paths, ``RandomState`` instances, classes and
    functions (as their import paths), and objects whose constructor
    arguments are attributes of the same names (sktorch's transforms,
    torchvision v2 transforms, skorch callbacks), recursively. Tensors go
    to the safetensors part.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import sktorch
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = sktorch.TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "iris.sktorch")
    ...     sktorch.save(clf, path)
    ...     loaded = sktorch.load(path)
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    _check_estimator(estimator, "sktorch.save")
    path = Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"sktorch.save needs a file path; {str(path)!r} is a directory.")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot save to {str(path)!r}: the directory {str(path.parent)!r} does not exist."
        )
    owner = type(estimator).__name__
    encoder = _Encoder()
    params = estimator.get_params(deep=False)
    document: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "estimator": {"name": owner, "path": _object_path(type(estimator))},
        "params": {
            key: encoder.encode(value, f"the {key!r} parameter of {owner}")
            for key, value in params.items()
        },
        "fitted": None,
    }
    weights: dict[str, torch.Tensor] = {}
    if estimator._is_fitted():
        net = estimator.net_
        fitted = {
            key: value
            for key, value in vars(estimator).items()
            if key not in params and key not in _NOT_SAVED
        }
        document["fitted"] = {
            key: encoder.encode(value, f"the fitted attribute {key!r} of {owner}")
            for key, value in fitted.items()
        }
        history = list(net.history)
        keep_batches = include_optimizer
        document["history"] = encoder.encode(
            [row if keep_batches else _epoch_row(row) for row in history],
            f"the history of {owner}",
        )
        document["net"] = {"device": str(net.device), "n_train": _n_train(history)}
        document["training"] = (
            _training_state(estimator, encoder) if include_optimizer else None
        )
        weights = _module_weights(estimator)
    elif include_optimizer:
        raise PersistenceError(
            f"sktorch.save(include_optimizer=True) needs a fitted {owner}; this one is "
            "not fitted, so it has no optimizer state. Save it with include_optimizer=False "
            "to keep its hyperparameters."
        )
    _write(path, document, weights, encoder.tensors)


def load(
    path: str | os.PathLike,
    *,
    trusted: Any = (),
    device: str | torch.device | None = None,
) -> Any:
    """Load an estimator written by :func:`save`, without unpickling anything.

    The estimator is rebuilt from its saved hyperparameters through its own
    fitting code (the module is built as at fit, with the saved input shape
    and number of outputs), then the saved weights are loaded into it: it
    predicts exactly as the saved estimator did.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    trusted : sequence of classes and functions, default=()
        Objects outside sktorch and torch that the file may name, such as
        your own ``nn.Module`` class given as ``module=MyNet``: a class or
        function named in the file is built only if it is one of sktorch's
        (its estimators, registries and public classes), a ``torch.nn``
        module, a ``torch.optim`` optimizer or schedule, a ``torch.nn.init``
        function, a torchvision v2 transform, a skorch callback, or one of
        these. The file's
        import paths are matched against them and never imported.
    device : str, torch.device or None, default=None
        Where to put the module. None follows the saved ``device``
        hyperparameter: ``'auto'`` takes CUDA when available, and a CUDA
        device this machine lacks falls back to the CPU with a
        :class:`~sktorch.exceptions.DeviceWarning`. The ``device``
        hyperparameter itself is kept as saved.

    Returns
    -------
    estimator : object
        The estimator, of the saved class, fitted if it was saved fitted.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    InvalidFileError
        If the file is not a readable sktorch file (truncated, corrupted, or
        not written by :func:`save`); :class:`UnsupportedFormatError` if it
        was written by a newer sktorch; :class:`WeightsMismatchError` if the
        weights do not fit the module built from its hyperparameters.
    UntrustedObjectError
        If the file names a class or function that is neither sktorch's nor
        torch's nor in ``trusted``.

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sktorch
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 3)).astype(np.float32)
    >>> reg = sktorch.TorchRegressor(max_epochs=2, random_state=0).fit(X, X.sum(axis=1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "reg.sktorch")
    ...     sktorch.save(reg, path)
    ...     loaded = sktorch.load(path, device="cpu")
    >>> np.array_equal(loaded.predict(X), reg.predict(X))
    True
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(
            f"No file at {str(path)!r} to load; sktorch.load takes a file written by "
            "sktorch.save."
        )
    trust = _Trust(trusted)
    if device is not None:
        from sktorch._device import resolve_device

        device = resolve_device(device, "sktorch.load")
    document, weights, state = _read(path)
    decoder = _Decoder(trust, state, path)
    try:
        return _rebuild(document, weights, decoder, trust, path, device)
    except PersistenceError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # What a well-formed file never causes: a document edited by hand.
        raise InvalidFileError(
            f"{str(path)!r} is not a consistent sktorch file (was it edited?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def trim_for_inference(estimator: Any) -> Any:
    """Drop what only training needs from a fitted estimator, in place.

    The optimizer (and gradient scaler) state, the callbacks, the per-batch
    records of the history (its per-epoch rows stay), the parameters'
    gradients and the saved random state go; predictions are unchanged.
    The estimator is marked trimmed, and its ``fit``, ``partial_fit`` and
    ``lr_find`` refuse to run. Called by
    ``estimator.trim_for_inference()``.
    """
    net = estimator.net_
    for name in getattr(net, "_optimizers", None) or ["optimizer"]:
        # None rather than deleted: code reading net.optimizer_ finds "no
        # optimizer" rather than an AttributeError, and skorch's pickling,
        # which walks these names, stores a None.
        setattr(net, f"{name}_", None)
    if hasattr(net, "scaler_"):
        net.scaler_ = None
    net.callbacks_ = []
    net.callbacks = []
    history = net.history_
    net.history_ = type(history)(_epoch_row(row) for row in history)
    for parameter in net.module_.parameters():
        parameter.grad = None
    estimator.__dict__.pop("_rng_state", None)
    estimator._trimmed = True
    return estimator


# ------------------------------------------------------------------ writing
def _check_estimator(estimator: Any, caller: str) -> None:
    from sktorch._base import BaseTorchEstimator

    if not isinstance(estimator, BaseTorchEstimator):
        raise TypeError(
            f"{caller} takes a sktorch estimator (TorchClassifier, TorchRegressor, ...). "
            f"Got {type(estimator).__name__} instead; for a scikit-learn pipeline around "
            "one, save the sktorch step and use joblib or skops for the rest."
        )


def _versions() -> dict[str, str]:
    import sklearn
    import skorch

    from sktorch._version import __version__

    return {
        "sktorch": __version__,
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def _epoch_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "batches"}


def _n_train(history: list[dict[str, Any]]) -> int | None:
    """Number of training rows of the fit, from the first epoch's batches:
    the net's schedule defaults (e.g. batches per epoch) depend on it."""
    if not history:
        return None
    sizes = [batch.get("train_batch_size") for batch in history[0].get("batches", ())]
    sizes = [size for size in sizes if size is not None]
    return int(sum(sizes)) if sizes else None


def _uncompiled(module: nn.Module) -> nn.Module:
    # torch.compile wraps the module; its weights are the original's.
    return getattr(module, "_orig_mod", module)


def _module_weights(estimator: Any) -> dict[str, torch.Tensor]:
    owner = type(estimator).__name__
    weights = {}
    for key, value in _uncompiled(estimator.net_.module_).state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise UnsavableValueError(
                f"The module of {owner} has a non-tensor entry {key!r} in its state_dict "
                f"({type(value).__name__}); sktorch.save stores tensors only. Pickle the "
                "estimator instead, or keep that state out of the state_dict."
            )
        # A copy of its own: safetensors refuses tensors that share memory
        # (tied weights), and a CUDA tensor must come to the CPU anyway.
        weights[key] = value.detach().to("cpu", copy=True).contiguous()
    return weights


def _scheduler_callback(net: Any) -> Any:
    from sktorch.callbacks import LRScheduler

    for _, callback in getattr(net, "callbacks_", None) or []:
        if isinstance(callback, LRScheduler):
            return callback
    return None


def _training_state(estimator: Any, encoder: _Encoder) -> dict[str, Any]:
    owner = type(estimator).__name__
    net = estimator.net_
    if getattr(net, "optimizer_", None) is None:
        raise PersistenceError(
            f"sktorch.save(include_optimizer=True): this {owner} has no optimizer state "
            "(it was trimmed for inference). Save it with include_optimizer=False."
        )
    scheduler = _scheduler_callback(net)
    scheduler_state = None
    if scheduler is not None:
        live = getattr(scheduler, "lr_scheduler_", None)
        scheduler_state = (
            live.state_dict() if live is not None
            else getattr(scheduler, "lr_scheduler_state_", None)
        )
    scaler = getattr(net, "scaler_", None)
    return {
        "optimizer": encoder.encode(net.optimizer_.state_dict(), f"the optimizer state of {owner}"),
        "scheduler": encoder.encode(
            scheduler_state, f"the learning-rate schedule state of {owner}"
        ),
        "scaler": encoder.encode(
            scaler.state_dict() if scaler is not None else None,
            f"the gradient scaler state of {owner}",
        ),
    }


def _write(
    path: Path,
    document: dict[str, Any],
    weights: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
) -> None:
    """Write the archive to a temporary file beside ``path``, then rename it
    over ``path``: readers see the old file or the complete new one."""
    text = json.dumps(document, indent=1, allow_nan=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as archive:
                archive.writestr(_DOCUMENT, text, compress_type=zipfile.ZIP_DEFLATED)
                metadata = {"format": "pt"}
                # Weights barely compress; stored as they are, they read fast.
                archive.writestr(_WEIGHTS, safetensors.torch.save(weights, metadata=metadata),
                                 compress_type=zipfile.ZIP_STORED)
                if state:
                    archive.writestr(_STATE, safetensors.torch.save(state, metadata=metadata),
                                     compress_type=zipfile.ZIP_STORED)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Encoder:
    """Turn Python values into JSON-able values; tensors go to ``tensors``
    and are referred to by key."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def encode(self, value: Any, where: str) -> Any:
        if value is None:
            return None
        if isinstance(value, enum.Enum):  # before int and str: IntEnum, StrEnum
            return self._enum(value, where)
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return float(value)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, where) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, where) for v in value]
        if isinstance(value, dict):
            plain = all(isinstance(k, str) and k not in _TAGS for k in value)
            if plain:
                return {k: self.encode(v, where) for k, v in value.items()}
            return {"__dict__": [[self.encode(k, where), self.encode(v, where)]
                                 for k, v in value.items()]}
        if isinstance(value, torch.Tensor):
            key = f"t{len(self.tensors)}"
            self.tensors[key] = value.detach().to("cpu", copy=True).contiguous()
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            return self._ndarray(value, where)
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).removeprefix("torch.")}
        if isinstance(value, PurePath):
            return {"__path__": str(value)}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self.encode(value.get_state(legacy=True), where)}
        if inspect.isclass(value):
            return {"__class__": _importable_path(value, where)}
        if inspect.isfunction(value) or inspect.isbuiltin(value):
            return {"__function__": _importable_path(value, where)}
        return self._object(value, where)

    def _ndarray(self, array: np.ndarray, where: str) -> Any:
        if array.dtype.kind in "biufU":
            data = array.tolist()
        elif array.dtype == object:
            data = [self.encode(v, where) for v in array.ravel().tolist()]
        else:
            raise UnsavableValueError(
                f"sktorch.save cannot store {where}: a NumPy array of dtype {array.dtype}."
            )
        return {"__ndarray__": {"dtype": array.dtype.str if array.dtype != object else "object",
                                "shape": list(array.shape), "data": data}}

    def _enum(self, value: enum.Enum, where: str) -> Any:
        return {"__enum__": _importable_path(type(value), where), "name": value.name}

    def _object(self, value: Any, where: str) -> Any:
        cls = type(value)
        name = cls.__qualname__
        if isinstance(value, nn.Module) and next(iter(value.state_dict()), None) is not None:
            raise UnsavableValueError(
                f"sktorch.save cannot store {where}: it is a {name} instance with weights or "
                "buffers, which only pickle could keep. Pass the class and its options "
                f"instead, e.g. module={name}, module__<option>=... (the fitted weights are "
                "saved either way)."
            )
        arguments = _constructor_arguments(value)
        if arguments is None:
            raise UnsavableValueError(
                f"sktorch.save cannot store {where}: a {name} instance whose constructor "
                "arguments cannot be read back from it (it has no get_params(), and not "
                "every argument of its __init__ is an attribute of the same name). Pass "
                "a class or a registered name with prefix__option values instead, or "
                "pickle the estimator."
            )
        return {
            "__object__": _importable_path(cls, where),
            "params": {k: self.encode(v, f"{where} ({name}.{k})") for k, v in arguments.items()},
        }


def _constructor_arguments(value: Any) -> dict[str, Any] | None:
    """The keyword arguments that rebuild ``value``: its ``get_params(deep=False)``
    (scikit-learn and skorch objects), else the attributes named like the
    arguments of its ``__init__``; None when they cannot be read. Arguments
    left at their defaults are left out (a default function, such as
    skorch's ``sink=print``, then needs no trust to load)."""
    try:
        parameters = dict(inspect.signature(type(value).__init__).parameters)
    except (TypeError, ValueError):
        parameters = None
    get_params = getattr(value, "get_params", None)
    arguments = None
    if callable(get_params):
        try:
            arguments = get_params(deep=False)
        except TypeError:
            arguments = None
        arguments = dict(arguments) if isinstance(arguments, dict) else None
    if arguments is None:
        if parameters is None:
            return None
        arguments = {}
        for name, parameter in parameters.items():
            if name == "self":
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                return None  # arguments that cannot be named
            if name not in _instance_attributes(value):
                return None
            arguments[name] = getattr(value, name)
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


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if type(value) is not type(default) or not isinstance(value, (bool, int, float, str, tuple)):
        return False
    try:
        return bool(value == default)
    except Exception:  # an __eq__ that does not return a bool
        return False


def _instance_attributes(value: Any) -> set[str]:
    names = set(getattr(value, "__dict__", {}))
    # Properties and slots are readable attributes too.
    return names | {name for name in dir(type(value)) if hasattr(value, name)}


def _object_path(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _importable_path(obj: Any, where: str) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise UnsavableValueError(
            f"sktorch.save cannot store {where}: {obj!r} has no import path (a lambda, or "
            "a function or class defined inside a function). Define it at the top level "
            "of a module, so that it can be named in the file."
        )
    return f"{module}.{qualname}"


# ------------------------------------------------------------------ reading
def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            unexpected = sorted(set(names) - set(_MEMBERS))
            if unexpected or _DOCUMENT not in names or len(names) != len(set(names)):
                raise InvalidFileError(
                    f"{where!r} is not a file written by sktorch.save: it holds "
                    f"{sorted(names)}, where sktorch.save writes {list(_MEMBERS)}. It was "
                    "not loaded (nothing in it was executed)."
                )
            document = json.loads(archive.read(_DOCUMENT).decode("utf-8"))
            _check_format(document, where)
            if _WEIGHTS not in names:
                raise InvalidFileError(f"{where!r} has no {_WEIGHTS} member; it is incomplete.")
            weights = _read_tensors(archive, _WEIGHTS, where)
            state = _read_tensors(archive, _STATE, where) if _STATE in names else {}
    except PersistenceError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise InvalidFileError(
            f"{where!r} is not a readable sktorch file (truncated or corrupted?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return document, weights, state


def _read_tensors(archive: zipfile.ZipFile, member: str, where: str) -> dict[str, torch.Tensor]:
    data = archive.read(member)
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors parses only; nothing runs
        raise InvalidFileError(
            f"The {member} member of {where!r} is not valid safetensors data (truncated, "
            f"corrupted, or not written by sktorch.save): {exc}"
        ) from exc


def _check_format(document: Any, where: str) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise InvalidFileError(f"{where!r} is not a file written by sktorch.save.")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidFileError(
            f"{where!r} has an invalid format version {version!r}; it is corrupted."
        )
    if version > FORMAT_VERSION:
        written_by = (document.get("versions") or {}).get("sktorch", "a newer version")
        raise UnsupportedFormatError(
            f"{where!r} was written by sktorch {written_by} in file format version "
            f"{version}; this sktorch reads format versions up to {FORMAT_VERSION}. "
            "Upgrade sktorch to load it."
        )


class _Trust:
    """The classes and functions a file may name, by import path."""

    def __init__(self, trusted: Any) -> None:
        if inspect.isclass(trusted) or inspect.isroutine(trusted) or isinstance(trusted, str):
            trusted = [trusted]
        try:
            trusted = list(trusted)
        except TypeError:
            trusted = [trusted]
        self.trusted: dict[str, Any] = {}
        for obj in trusted:
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                raise TypeError(
                    "sktorch.load(trusted=...) takes the classes and functions themselves "
                    f"(e.g. trusted=[MyNet]), not import paths or other values. Got {obj!r}."
                )
            self.trusted[_object_path(obj)] = obj
        self._builtin: dict[str, Any] | None = None

    @property
    def builtin(self) -> dict[str, Any]:
        if self._builtin is None:
            self._builtin = _builtin_objects()
        return self._builtin

    def resolve(self, path: str, where: str) -> Any:
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
            obj for obj in self.trusted.values()
            if obj.__qualname__.rsplit(".", 1)[-1] == qualname
        ]
        if len(candidates) == 1:
            return candidates[0]
        package = path.split(".", 1)[0]
        candidates = [
            obj for key, obj in self.builtin.items()
            if key.split(".", 1)[0] == package and key.rsplit(".", 1)[-1] == qualname
        ]
        if len(candidates) == 1:
            return candidates[0]
        raise UntrustedObjectError(
            f"sktorch.load refuses to build {path!r} ({where}): it is not a sktorch or "
            f"torch class or function. If you trust it, pass it to load, e.g. "
            f"sktorch.load(path, trusted=[{qualname}])."
        )

    def estimator_class(self, spec: Any, where: str) -> type:
        from sktorch._base import BaseTorchEstimator

        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidFileError(f"{where!r} does not name its estimator class.")
        name, path = spec["name"], spec.get("path", "")
        for obj in self.trusted.values():
            if (inspect.isclass(obj) and issubclass(obj, BaseTorchEstimator)
                    and _object_path(obj) == path):
                return obj
        if isinstance(path, str) and path.split(".", 1)[0] == "sktorch":
            estimators = _sktorch_estimators()
            if name in estimators:
                return estimators[name]
        candidates = [
            obj for obj in self.trusted.values()
            if inspect.isclass(obj) and issubclass(obj, BaseTorchEstimator) and obj.__name__ == name
        ]
        if len(candidates) == 1:
            return candidates[0]
        raise UntrustedObjectError(
            f"sktorch.load refuses to build {path or name!r} (the estimator class of "
            f"{where!r}): it is not one of sktorch's estimators "
            f"{sorted(_sktorch_estimators())}. If you trust it, pass it to load, e.g. "
            f"sktorch.load(path, trusted=[{name}])."
        )


def _sktorch_estimators() -> dict[str, type]:
    import sktorch
    from sktorch._base import BaseTorchEstimator

    found = {}
    for name in getattr(sktorch, "__all__", ()):
        obj = getattr(sktorch, name, None)
        if inspect.isclass(obj) and issubclass(obj, BaseTorchEstimator):
            found[obj.__name__] = obj
    return found


def _builtin_objects() -> dict[str, Any]:
    """Classes and functions that are safe to build from a file: sktorch's
    registries and public classes, torch's modules, optimizers, schedules and
    initializations, torchvision's v2 transforms, skorch's callbacks. Public
    functions of sktorch are left out on purpose (``save`` writes files)."""
    import importlib

    import skorch.callbacks
    import torchvision.transforms.v2 as v2
    from torchvision.transforms import InterpolationMode

    from sktorch._registry import Registry

    objects: list[Any] = []
    modules = []
    for name in _PUBLIC_PACKAGES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isclass(obj):
                objects.append(obj)
    for name, module in list(sys.modules.items()):
        if name != "sktorch" and not name.startswith("sktorch."):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Registry):
                objects.extend(value.get_class(key) for key in value.names())
    torch_modules = [torch.nn, torch.nn.modules, torch.optim, torch.optim.lr_scheduler]
    bases = (nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler,
             torch.optim.lr_scheduler.ReduceLROnPlateau)
    for module in torch_modules:
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, bases):
                objects.append(value)
    for name, value in vars(torch.nn.init).items():
        if (not name.startswith("_") and inspect.isfunction(value)
                and value.__module__ == "torch.nn.init"):
            objects.append(value)
    for value in vars(v2).values():
        if inspect.isclass(value) and issubclass(value, v2.Transform):
            objects.append(value)
    # skorch's callbacks (the training engine's own; they act only in a fit).
    for name in skorch.callbacks.__all__:
        value = getattr(skorch.callbacks, name, None)
        if inspect.isclass(value) and issubclass(value, skorch.callbacks.Callback):
            objects.append(value)
    objects.append(InterpolationMode)
    table = {}
    for obj in objects:
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if module and qualname and "<" not in qualname:
            table[f"{module}.{qualname}"] = obj
    return table


class _Decoder:
    """The inverse of :class:`_Encoder`, building only trusted objects."""

    def __init__(self, trust: _Trust, tensors: dict[str, torch.Tensor], path: Path) -> None:
        self.trust = trust
        self.tensors = tensors
        self.path = str(path)

    def decode(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.decode(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        # The encoder writes a dict with one of these keys only as a tag.
        tag = next((k for k in value if k in _TAGS), None)
        if tag is not None:
            return self._tagged(tag, value, where)
        return {k: self.decode(v, where) for k, v in value.items()}

    def _tagged(self, tag: str, value: dict[str, Any], where: str) -> Any:
        body = value[tag]
        if tag == "__tuple__":
            return tuple(self.decode(v, where) for v in body)
        if tag == "__dict__":
            return {self.decode(k, where): self.decode(v, where) for k, v in body}
        if tag == "__tensor__":
            if body not in self.tensors:
                raise InvalidFileError(
                    f"{self.path!r} refers to a tensor {body!r} ({where}) that it does not hold; "
                    "the file is incomplete or was edited."
                )
            return self.tensors[body]
        if tag == "__ndarray__":
            return self._ndarray(body, where)
        if tag == "__device__":
            return torch.device(body)
        if tag == "__dtype__":
            dtype = getattr(torch, str(body), None)
            if not isinstance(dtype, torch.dtype):
                raise InvalidFileError(f"{self.path!r} names an unknown torch dtype {body!r}.")
            return dtype
        if tag == "__path__":
            return Path(body)
        if tag == "__random_state__":
            state = np.random.RandomState()
            state.set_state(self.decode(body, where))
            return state
        if tag in ("__class__", "__function__"):
            return self.trust.resolve(body, where)
        if tag == "__enum__":
            cls = self.trust.resolve(body, where)
            if not (inspect.isclass(cls) and issubclass(cls, enum.Enum)):
                raise InvalidFileError(f"{self.path!r}: {body!r} is not an enum ({where}).")
            return cls[value["name"]]
        if tag == "__object__":
            cls = self.trust.resolve(body, where)
            if not inspect.isclass(cls):
                raise InvalidFileError(f"{self.path!r}: {body!r} is not a class ({where}).")
            params = self.decode(value.get("params", {}), where)
            return cls(**params)
        raise InvalidFileError(f"{self.path!r}: unknown tag {tag!r} ({where}).")

    def _ndarray(self, body: dict[str, Any], where: str) -> np.ndarray:
        shape = tuple(body["shape"])
        if body["dtype"] == "object":
            items = [self.decode(v, where) for v in body["data"]]
            array = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):  # element by element: items may be sequences
                array[i] = item
            return array.reshape(shape)
        return np.asarray(body["data"], dtype=np.dtype(body["dtype"])).reshape(shape)




def _resolve_load_device(estimator: Any, device: torch.device | None) -> torch.device:
    from sktorch._device import resolve_device
    from sktorch.exceptions import DeviceError

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
            stacklevel=4,  # the caller of sktorch.load
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


def _rebuild(
    document: dict[str, Any],
    weights: dict[str, torch.Tensor],
    decoder: _Decoder,
    trust: _Trust,
    path: Path,
    device: torch.device | None,
) -> Any:
    from sktorch._net import FastHistory

    where = str(path)
    cls = trust.estimator_class(document["estimator"], where)
    owner = cls.__name__
    params = {
        key: decoder.decode(value, f"the {key!r} parameter of {owner}")
        for key, value in document["params"].items()
    }
    estimator = cls(**params)
    if document.get("fitted") is None:
        return estimator
    for key, value in document["fitted"].items():
        estimator.__dict__[key] = decoder.decode(value, f"the fitted attribute {key!r} of {owner}")
    training = document.get("training")
    history = decoder.decode(document.get("history") or [], f"the history of {owner}")

    target = _resolve_load_device(estimator, device)
    input_shape = tuple(estimator._input_shape)
    n_train = (document.get("net") or {}).get("n_train")
    if training is not None and isinstance(n_train, int) and n_train > 2:
        # The schedule's defaults (batches per epoch) depend on the number of
        # training rows; a zero-stride view has that length at no cost.
        inputs = torch.zeros((1, *input_shape)).expand(n_train, *input_shape)
    else:
        inputs = torch.zeros((2, *input_shape))
    validating = estimator._validation_share() is not None
    overrides: dict[str, Any] = {"checkpoint_dir": None}  # no new run directory on load
    if getattr(estimator, "precision", "32") == "16-mixed" and target.type != "cuda":
        overrides["precision"] = "32"  # float16 autocast with a GradScaler needs CUDA
    cuda = [target.index or 0] if target.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), _overridden(estimator, **overrides):
        # Every weight is overwritten below: an estimator built on pretrained
        # weights must not read (or download) them again here.
        net = estimator._build_net(target, inputs, estimator.n_outputs_, validating,
                                   pretrained=False)
    module = _uncompiled(net.module_)
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise WeightsMismatchError(
            f"The weights in {where!r} do not fit the module of {owner} built from the "
            f"saved hyperparameters (was the file edited?): {exc}"
        ) from exc
    net.history_ = FastHistory(history)
    if training is not None:
        _restore_training(net, training, decoder, owner, where)
    estimator.net_ = net
    net.estimator = estimator
    net.module_.eval()
    if estimator.__dict__.get("_trimmed"):
        trim_for_inference(estimator)
    return estimator


def _restore_training(
    net: Any, training: dict[str, Any], decoder: _Decoder, owner: str, where: str
) -> None:
    optimizer_state = decoder.decode(training["optimizer"], f"the optimizer state of {owner}")
    try:
        net.optimizer_.load_state_dict(optimizer_state)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise WeightsMismatchError(
            f"The optimizer state in {where!r} does not fit the optimizer of {owner} built "
            f"from the saved hyperparameters (was the file edited?): {exc}"
        ) from exc
    scheduler_state = decoder.decode(training.get("scheduler"), f"the schedule state of {owner}")
    if scheduler_state is not None:
        scheduler = _scheduler_callback(net)
        if scheduler is None:
            raise InvalidFileError(
                f"{where!r} holds a learning-rate schedule state, but the {owner} built from "
                "its hyperparameters has no schedule (lr_scheduler=None); was it edited?"
            )
        scheduler.lr_scheduler_ = None
        scheduler.lr_scheduler_state_ = scheduler_state
    scaler_state = decoder.decode(training.get("scaler"), f"the gradient scaler state of {owner}")
    if scaler_state is not None and getattr(net, "scaler_", None) is not None:
        net.scaler_.load_state_dict(scaler_state)
