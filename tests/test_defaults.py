"""The estimators' defaults are written once, and their ``__init__`` chains are one level.

``sktorch._estimators._params.DEFAULTS`` is the table of every public
estimator's defaults; the explicit ``__init__`` signatures (scikit-learn reads
its parameters there) and the "default=..." of the docstrings must agree with
it. A leaf's ``__init__`` stores its own parameters and calls the base's
directly, never a parent's pass-through ``__init__``.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap

import pytest

import sktorch
from sktorch._estimators import ESTIMATORS
from sktorch._estimators._base import BaseTorchEstimator
from sktorch._estimators._params import COMMON_DEFAULTS, DEFAULTS

PUBLIC = (sktorch.TorchClassifier, sktorch.TorchRegressor, sktorch.ImageClassifier,
          sktorch.ImageSegmenter)


def _signature_defaults(cls: type) -> dict:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return {p.name: p.default for p in parameters if p.kind != p.VAR_KEYWORD}


def _typed(values: dict) -> dict:
    # False == 0 and 1 == 1.0 in Python; a default's type is part of it.
    return {name: (type(value), value) for name, value in values.items()}


def test_the_table_covers_every_public_estimator():
    assert set(DEFAULTS) == set(ESTIMATORS) == {cls.__name__ for cls in PUBLIC}


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: cls.__name__)
def test_signature_defaults_are_the_table(cls):
    defaults = _signature_defaults(cls)
    assert inspect.Parameter.empty not in defaults.values()
    assert _typed(defaults) == _typed(DEFAULTS[cls.__name__])


def test_base_signature_defaults_are_the_common_ones():
    defaults = _signature_defaults(BaseTorchEstimator)
    # Each task sets its own loss: the base has no default for it.
    assert defaults.pop("criterion") is inspect.Parameter.empty
    assert _typed(defaults) == _typed(COMMON_DEFAULTS)


def _documented(cls: type) -> dict[str, list[str]]:
    """Each parameter of the docstring's Parameters section, with the text
    after its ``default=`` (one entry per time it is documented)."""
    section = cls.__doc__.split("Parameters\n    ----------\n", 1)[1]
    section = re.split(r"\n    \w+\n    -+\n", section, maxsplit=1)[0]
    documented: dict[str, list[str]] = {}
    for name, spec in re.findall(r"^    (\*{0,2}\w+) : (.*)$", section, re.M):
        documented.setdefault(name, []).append(spec.partition("default=")[2])
    return documented


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: cls.__name__)
def test_documented_defaults_agree_with_the_signature(cls):
    documented = _documented(cls)
    assert documented.pop("**kwargs") == [""]
    defaults = _signature_defaults(cls)
    assert sorted(documented) == sorted(defaults)
    for name, specs in documented.items():
        assert len(specs) == 1, f"{cls.__name__} documents {name!r} {len(specs)} times"
        value = ast.literal_eval(specs[0])
        assert (type(value), value) == (type(defaults[name]), defaults[name]), name


def test_the_docstring_parser_reads_the_defaults():
    documented = _documented(sktorch.ImageSegmenter)
    assert documented["module"] == ["'unet'"]
    assert documented["lr"] == ["1e-3"]
    assert documented["criterion"] == ["'dice_ce'"]
    assert documented["freeze"] == ["None"]


def _init_calls(cls: type) -> list[type]:
    """The classes whose ``__init__`` the ``__init__`` of ``cls`` calls:
    through ``super()`` or by name."""
    if "__init__" not in vars(cls):
        return []
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    names = vars(sys.modules[cls.__module__])
    called = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "__init__"):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
            mro = cls.__mro__
            called.append(next(k for k in mro[1:] if "__init__" in vars(k)))
        elif isinstance(owner, ast.Name):
            called.append(names[owner.id])
        else:
            raise AssertionError(f"{cls.__name__}.__init__ calls {ast.unparse(node.func)}")
    return called


def _chain(cls: type) -> list[type]:
    """The ``__init__``s that run when ``cls()`` is built, in call order."""
    chain = [cls]
    while True:
        called = _init_calls(chain[-1])
        assert len(called) <= 1, f"{chain[-1].__name__}.__init__ calls {called}"
        if not called or called[0] is object:
            return chain
        chain.append(called[0])


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: cls.__name__)
def test_init_calls_the_base_directly(cls):
    # One level: the leaf stores its own parameters and hands the common
    # ones to the base, which stores them and calls no other __init__.
    assert _chain(cls) == [cls, BaseTorchEstimator]


def test_the_chain_walk_finds_a_pass_through_init():
    class Middle(BaseTorchEstimator):
        def __init__(self, module="mlp", *, criterion="mse", **kwargs):
            super().__init__(module, criterion=criterion, **kwargs)

    class Leaf(Middle):
        def __init__(self, module="mlp", *, criterion="mse", extra=1, **kwargs):
            self.extra = extra
            super().__init__(module, criterion=criterion, **kwargs)

    assert _chain(Leaf) == [Leaf, Middle, BaseTorchEstimator]
