"""The JSON codec of sktorch files: Python values to JSON and back.

JSON has no type for tuples, arrays, tensors, devices, classes or objects;
the encoder writes each as a one-key tagged object (``{"__tuple__": [...]}``)
and the decoder reads the tags back, building classes and objects only
through the :class:`~sktorch._io._trust.Trust` it is given. Tensors are
written to a safetensors member and referred to by key.
"""

from __future__ import annotations

import enum
import inspect
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from torch import nn

from sktorch._io._trust import Trust
from sktorch._utils._introspect import constructor_arguments
from sktorch.exceptions import InvalidFileError, UnsavableValueError

# Tags of the JSON objects that stand for a value JSON has no type for. A
# plain dict is written as a JSON object unless it could be mistaken for one.
TAGS = frozenset({
    "__tuple__", "__dict__", "__ndarray__", "__tensor__", "__device__", "__dtype__",
    "__path__", "__random_state__", "__class__", "__function__", "__object__", "__enum__",
})

# NumPy dtypes a file may hold, by kind: booleans, integers and floats of at
# most 8 bytes, strings (as long as the longest one in the data), objects.
_NUMERIC_KINDS = "biuf"


class Encoder:
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
            plain = all(isinstance(k, str) and k not in TAGS for k in value)
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
            return {"__class__": importable_path(value, where)}
        if inspect.isfunction(value) or inspect.isbuiltin(value):
            return {"__function__": importable_path(value, where)}
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
        return {"__enum__": importable_path(type(value), where), "name": value.name}

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
        arguments = constructor_arguments(value, strict=True)
        if arguments is None:
            raise UnsavableValueError(
                f"sktorch.save cannot store {where}: a {name} instance whose constructor "
                "arguments cannot be read back from it (it has no get_params(), and not "
                "every argument of its __init__ is an attribute of the same name). Pass "
                "a class or a registered name with prefix__option values instead, or "
                "pickle the estimator."
            )
        return {
            "__object__": importable_path(cls, where),
            "params": {k: self.encode(v, f"{where} ({name}.{k})") for k, v in arguments.items()},
        }


def importable_path(obj: Any, where: str) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise UnsavableValueError(
            f"sktorch.save cannot store {where}: {obj!r} has no import path (a lambda, or "
            "a function or class defined inside a function). Define it at the top level "
            "of a module, so that it can be named in the file."
        )
    return f"{module}.{qualname}"


class Decoder:
    """The inverse of :class:`_Encoder`, building only trusted objects."""

    def __init__(self, trust: Trust, tensors: dict[str, torch.Tensor], path: Path) -> None:
        self.trust = trust
        self.tensors = tensors
        self.path = str(path)

    def decode(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.decode(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        # The encoder writes a dict with one of these keys only as a tag.
        tag = next((k for k in value if k in TAGS), None)
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
            params = value.get("params", {})
            if not isinstance(params, dict):
                raise InvalidFileError(f"{self.path!r}: the options of {body!r} ({where}) "
                                       "must be a mapping.")
            return self.trust.build(body, self.decode(params, where), where)
        raise InvalidFileError(f"{self.path!r}: unknown tag {tag!r} ({where}).")

    def _ndarray(self, body: dict[str, Any], where: str) -> np.ndarray:
        shape = tuple(body["shape"])
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise InvalidFileError(f"{self.path!r}: invalid array shape {shape!r} ({where}).")
        data = body["data"]
        if body["dtype"] == "object":
            items = [self.decode(v, where) for v in data]
            array = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):  # element by element: items may be sequences
                array[i] = item
            return array.reshape(shape)
        dtype = self._dtype(body["dtype"], data, where)
        return np.asarray(data, dtype=dtype).reshape(shape)

    def _dtype(self, name: Any, data: Any, where: str) -> np.dtype:
        """The array's dtype, if it is one a file may hold: a dtype such as
        'S800000000' would allocate gigabytes for a few bytes of file."""
        try:
            dtype = np.dtype(name) if isinstance(name, str) else None
        except TypeError:
            dtype = None
        if dtype is not None and dtype.fields is None and dtype.subdtype is None:
            if dtype.kind in _NUMERIC_KINDS and dtype.itemsize <= 8:
                return dtype
            if dtype.kind == "U" and dtype.itemsize // 4 <= max(_longest_string(data), 1):
                return dtype
        raise InvalidFileError(
            f"{self.path!r} holds an array of dtype {name!r} ({where}); sktorch files hold "
            "booleans, integers and floats of up to 8 bytes, strings no longer than their "
            "data, and objects. The file was not written by sktorch.save."
        )


def _longest_string(data: Any) -> int:
    if isinstance(data, str):
        return len(data)
    if isinstance(data, list):
        return max((_longest_string(item) for item in data), default=0)
    return 0
