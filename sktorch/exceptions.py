"""Exceptions and warnings raised by sktorch.

Every error sktorch raises on purpose derives from :class:`SktorchError` and
from the built-in or scikit-learn exception a caller would already catch, so
``except ValueError`` keeps working around sktorch code.
"""

# ``DeviceWarning`` is skorch's own class, re-exported rather than subclassed:
# skorch emits it when an estimator pickled on CUDA is loaded where CUDA is
# missing, and a filter on sktorch's name must catch that very warning.
from skorch.exceptions import DeviceWarning

from sktorch._validation import SklearnInvalidParameterError

__all__ = ["DeviceError", "DeviceWarning", "InvalidParameterError", "SktorchError"]


class SktorchError(Exception):
    """Base class of the errors raised by sktorch."""


class InvalidParameterError(SktorchError, SklearnInvalidParameterError):
    """A hyperparameter or one of its ``prefix__option`` values is invalid.

    Subclasses scikit-learn's own ``InvalidParameterError``, hence both
    :class:`ValueError` and :class:`TypeError`.
    """


class DeviceError(SktorchError, ValueError):
    """The requested device does not exist on this machine."""
