"""Exceptions and warnings raised by sktorch.

Every error sktorch raises on purpose derives from :class:`SktorchError` and
from the built-in or scikit-learn exception a caller would already catch, so
``except ValueError`` keeps working around sktorch code.
"""

# ``DeviceWarning`` is skorch's own class, re-exported rather than subclassed:
# skorch emits it when an estimator pickled on CUDA is loaded where CUDA is
# missing, and a filter on sktorch's name must catch that very warning.
from skorch.exceptions import DeviceWarning

from sktorch._utils._validation import SklearnInvalidParameterError

__all__ = [
    "DeviceError",
    "DeviceWarning",
    "InvalidFileError",
    "InvalidParameterError",
    "OnnxExportError",
    "PersistenceError",
    "ResetOnLoadWarning",
    "SktorchError",
    "UnsavableValueError",
    "UnsupportedFormatError",
    "UntrustedObjectError",
    "WeightsMismatchError",
]


class SktorchError(Exception):
    """Base class of the errors raised by sktorch."""


class InvalidParameterError(SktorchError, SklearnInvalidParameterError):
    """A hyperparameter or one of its ``prefix__option`` values is invalid.

    Subclasses scikit-learn's own ``InvalidParameterError``, hence both
    :class:`ValueError` and :class:`TypeError`.
    """


class DeviceError(SktorchError, ValueError):
    """The requested device does not exist on this machine."""


class PersistenceError(SktorchError, ValueError):
    """Base class of the errors of :func:`sktorch.save` and :func:`sktorch.load`."""


class InvalidFileError(PersistenceError):
    """The file is not a readable sktorch file: truncated, corrupted, edited
    into an inconsistent state, or written by something else."""


class UnsupportedFormatError(InvalidFileError):
    """The file was written by a newer sktorch, in a format this one cannot read."""


class WeightsMismatchError(InvalidFileError):
    """The saved weights (or optimizer state) do not fit the module built from
    the saved hyperparameters."""


class UntrustedObjectError(InvalidFileError):
    """The file names a class or function that :func:`sktorch.load` is not
    allowed to use or build, or sets an option it may not set: pass the class
    in ``trusted`` if you trust the file."""


class UnsavableValueError(PersistenceError):
    """A hyperparameter or fitted attribute has a value :func:`sktorch.save`
    cannot store without pickle."""


class ResetOnLoadWarning(UserWarning):
    """:func:`sktorch.load` reset hyperparameters that reach a compiler, the
    file system or other processes (``compile``, ``checkpoint_dir``,
    ``tensorboard``, ...) to their defaults; set them again after loading if
    you trust the file."""


class OnnxExportError(SktorchError, RuntimeError):
    """The module could not be exported to ONNX, or the exported graph does
    not reproduce it."""
