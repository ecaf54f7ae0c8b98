"""``sktorch.save``, ``sktorch.load`` and ``trim_for_inference``: the public face of sktorch files.

A file written by :func:`save` is a zip archive (:mod:`sktorch._io._archive`)
of a JSON document (the estimator's class, its hyperparameters, its fitted
attributes, its history, the library versions and the format version), the
module's ``state_dict`` as safetensors, and the other tensors the document
refers to. Loading parses JSON and safetensors, nothing else: no pickle, no
``torch.load``; classes and functions named in the document are looked up in
the trust list (:mod:`sktorch._io._trust`) and never imported; the estimator
is rebuilt as data (:mod:`sktorch._io._rebuild`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch

from sktorch._io._archive import FORMAT_NAME, FORMAT_VERSION, read_archive, write_archive
from sktorch._io._codec import Decoder, Encoder
from sktorch._io._rebuild import build_net, hyperparameters, restore_fitted
from sktorch._io._trust import Trust, object_path
from sktorch._engine._state import capture_training_state, restore_training_state
from sktorch._engine._trim import epoch_row, trim_for_inference
from sktorch._engine._net import FastHistory
from sktorch._estimators._base import BaseTorchEstimator
from sktorch._utils._device import resolve_device
from sktorch._utils._introspect import uncompiled
from sktorch._version import __version__
from sktorch.exceptions import (
    InvalidFileError,
    PersistenceError,
    UnsavableValueError,
    WeightsMismatchError,
)
from sktorch.losses._plan import LossPlan

__all__ = ["load", "save", "trim_for_inference"]


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
    encoder = Encoder()
    params = estimator.get_params(deep=False)
    document: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "estimator": {"name": owner, "path": object_path(type(estimator))},
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
            key: getattr(estimator, key)
            for key in type(estimator)._fitted_attributes
            if key in vars(estimator)
        }
        document["fitted"] = {
            key: encoder.encode(value.saved() if isinstance(value, LossPlan) else value,
                                f"the fitted attribute {key!r} of {owner}")
            for key, value in fitted.items()
        }
        history = list(net.history)
        keep_batches = include_optimizer
        document["history"] = encoder.encode(
            [row if keep_batches else epoch_row(row) for row in history],
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
    write_archive(path, document, weights, encoder.tensors)


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

    Loading treats the file as untrusted data: it runs no code the file
    chooses, compiles nothing, runs no forward pass, writes nothing, sets
    only the names the estimator class declares, and allocates memory
    bounded by the file's size (see the threat model in the persistence
    guide). Hyperparameters that reach a compiler, the file system or other
    processes (``compile`` and ``compile__*``, ``checkpoint_dir``,
    ``tensorboard``, ``resume_from``, ``strategy``, ``devices``,
    ``callbacks__*``, and DataLoader options other than ``batch_size``,
    ``shuffle``, ``drop_last`` and ``pin_memory``) are reset to their
    defaults with a :class:`~sktorch.exceptions.ResetOnLoadWarning`; set them
    again with ``set_params`` if you trust the file.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    trusted : sequence of classes and functions, default=()
        Objects outside sktorch and torch that the file may name and build,
        with any of their named options, such as your own ``nn.Module``
        class given as ``module=MyNet``. Without them, a file may name only
        sktorch's estimators, registry entries and public classes,
        ``torch.nn`` modules, ``torch.optim`` optimizers and schedules,
        ``torch.nn.init`` functions and torchvision v2 transforms, and build
        only stateless modules, transforms and callbacks audited to have no
        side effects, with their allow-listed options. The file's import
        paths are matched against these and never imported.
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
    FileNotFoundError, IsADirectoryError
        If there is no file at ``path``, or it is a directory.
    InvalidFileError
        For every failure that comes from the file's content: not a readable
        sktorch file (truncated, corrupted, crafted, or not written by
        :func:`save`); :class:`UnsupportedFormatError` if it was written by
        a newer sktorch; :class:`WeightsMismatchError` if the weights do not
        fit the module built from its hyperparameters;
        :class:`UntrustedObjectError` if it names a class or function, or
        sets an option, that the trust list does not allow and ``trusted``
        does not hold.

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
    if path.is_dir():
        raise IsADirectoryError(
            f"sktorch.load takes a file written by sktorch.save; {str(path)!r} is a directory."
        )
    trust = Trust(trusted)
    if device is not None:
        device = resolve_device(device, "sktorch.load")
    document, weights, state = read_archive(path)
    try:
        return _rebuild(document, weights, state, trust, path, device)
    except InvalidFileError:
        raise
    except Exception as exc:
        # Every other failure is a file this sktorch cannot make sense of:
        # edited by hand, or crafted.
        raise InvalidFileError(
            f"{str(path)!r} is not a consistent sktorch file (was it edited?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _rebuild(
    document: dict[str, Any],
    weights: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    trust: Trust,
    path: Path,
    device: torch.device | None,
) -> Any:
    where = str(path)
    decoder = Decoder(trust, state, path)
    cls = trust.estimator_class(document["estimator"], where)
    owner = cls.__name__
    estimator = cls(**hyperparameters(cls, document, decoder, where))
    if document.get("fitted") is None:
        return estimator
    restore_fitted(estimator, document["fitted"], decoder, where, document["format_version"])
    history = decoder.decode(document.get("history") or [], f"the history of {owner}")
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise InvalidFileError(f"{where!r}: the history must be a list of mappings.")
    net = build_net(estimator, document, weights, state, device, where)
    net.history_ = FastHistory(history)
    net.estimator = estimator
    training = document.get("training")
    if training is not None:
        _restore_training(estimator, net, training, decoder, document["format_version"], where)
    estimator.net_ = net
    net.module_.eval()
    if estimator.__dict__.get("_trimmed"):
        trim_for_inference(estimator)
    return estimator


# ------------------------------------------------------------------ writing
def _check_estimator(estimator: Any, caller: str) -> None:
    if not isinstance(estimator, BaseTorchEstimator):
        raise TypeError(
            f"{caller} takes a sktorch estimator (TorchClassifier, TorchRegressor, ...). "
            f"Got {type(estimator).__name__} instead; for a scikit-learn pipeline around "
            "one, save the sktorch step and use joblib or skops for the rest."
        )


def _versions() -> dict[str, str]:
    import sklearn
    import skorch

    return {
        "sktorch": __version__,
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def _n_train(history: list[dict[str, Any]]) -> int | None:
    """Number of training rows of the fit, from the first epoch's batches:
    the net's schedule defaults (e.g. batches per epoch) depend on it."""
    if not history:
        return None
    sizes = [batch.get("train_batch_size") for batch in history[0].get("batches", ())]
    sizes = [size for size in sizes if size is not None]
    return int(sum(sizes)) if sizes else None


def _module_weights(estimator: Any) -> dict[str, torch.Tensor]:
    owner = type(estimator).__name__
    weights = {}
    for key, value in uncompiled(estimator.net_.module_).state_dict().items():
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


def _training_state(estimator: Any, encoder: Encoder) -> dict[str, Any]:
    owner = type(estimator).__name__
    net = estimator.net_
    if getattr(net, "optimizer_", None) is None:
        raise PersistenceError(
            f"sktorch.save(include_optimizer=True): this {owner} has no optimizer state "
            "(it was trimmed for inference). Save it with include_optimizer=False."
        )
    # After the fit, the random state training continues from is the one
    # the estimator recorded.
    state = capture_training_state(net, rng=estimator._rng_state)
    return encoder.encode(state, f"the training state of {owner}")


def _restore_training(
    estimator: Any, net: Any, training: Any, decoder: Decoder, version: int, where: str
) -> None:
    owner = type(estimator).__name__
    state = decoder.decode(training, f"the training state of {owner}")
    if version < 2 and isinstance(state, dict):
        # Format version 1 held the optimizer's, schedule's and scaler's
        # state only: the callbacks restart, the random state is the
        # fitted attribute's.
        state = {**state, "rng": None, "callbacks": None}
    rng = restore_training_state(
        net, state, source=f"the file {where!r}", error=WeightsMismatchError,
        hint="Was the file edited?", at_train_begin=False)
    if rng is not None:
        estimator.__dict__["_rng_state"] = rng
