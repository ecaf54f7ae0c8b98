"""One small registry implementation behind every name-valued hyperparameter.

Losses, models, optimizers (and later schedulers) are given to estimators as
plain strings so that ``GridSearchCV`` can search them; the estimator stores
the string and resolves it at fit through a :class:`Registry`.
"""

from __future__ import annotations

import inspect
from typing import Any

from sktorch._utils._introspect import did_you_mean
from sktorch.exceptions import InvalidParameterError


class Registry:
    """A mapping from names to classes (or factories) of one kind.

    Parameters
    ----------
    kind : str
        What the registry holds, in the singular ("loss", "model"); used in
        error messages.
    base : type or None, default=None
        When given, a class passed directly (not by name) must subclass it.
    base_name : str or None, default=None
        How error messages spell ``base`` (its public path, e.g.
        ``'torch.nn.Module'``); defaults to its qualified name.
    """

    def __init__(self, kind: str, base: type | None = None, base_name: str | None = None) -> None:
        self.kind = kind
        self.base = base
        self.base_name = base_name
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator.

        Raises
        ------
        ValueError
            If ``name`` is not a non-empty string or is already registered.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"A {self.kind} name must be a non-empty string. Got {name!r} instead."
            )
        if obj is None:
            return lambda obj: self.register(name, obj)
        if name in self._entries:
            raise ValueError(
                f"A {self.kind} named {name!r} is already registered "
                f"({self._entries[name]!r}); choose another name."
            )
        if not callable(obj):
            raise TypeError(
                f"A registered {self.kind} must be a class or a callable. "
                f"Got {obj!r} instead."
            )
        self._entries[name] = obj
        return obj

    def names(self) -> list[str]:
        """Sorted names of every registered entry."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get_class(self, name: str) -> Any:
        """The class (or factory) registered under ``name``."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"Unknown {self.kind} {name!r}. Valid names are {self.names()}."
                + did_you_mean(str(name), self.names())
            ) from None

    def get(self, name: str, **options: Any) -> Any:
        """Build the entry registered under ``name`` with ``options``."""
        return self.get_class(name)(**options)

    def resolve(self, spec: Any, *, param: str, owner: str) -> Any:
        """Resolve an estimator's hyperparameter value to a class or instance.

        A string is looked up; a class must subclass ``base`` when one is set;
        an instance of ``base`` is returned as it is. Errors name ``param`` of
        ``owner``, what was expected and what was given.
        """
        if isinstance(spec, str):
            if spec in self._entries:
                return self._entries[spec]
            raise InvalidParameterError(
                f"The {param!r} parameter of {owner} must be one of "
                f"{self.names()} or {self._alternatives()}. Got {spec!r} instead."
                + did_you_mean(spec, self.names())
            )
        if self.base is None:
            if callable(spec):
                return spec
        elif inspect.isclass(spec) and issubclass(spec, self.base):
            return spec
        elif isinstance(spec, self.base):
            return spec
        raise InvalidParameterError(
            f"The {param!r} parameter of {owner} must be one of {self.names()} "
            f"or {self._alternatives()}. Got {spec!r} instead."
        )

    def _alternatives(self) -> str:
        if self.base is None:
            return "a callable"
        name = self.base_name or f"{self.base.__module__}.{self.base.__qualname__}"
        return f"a subclass or an instance of {name}"

