"""sktorch._utils._introspect: constructor arguments under both rules, and the other readers."""

import pytest
import torch
from skorch.callbacks import EarlyStopping
from torch import nn

from sktorch._utils._introspect import (
    accepted_arguments,
    check_options,
    constructor_arguments,
    did_you_mean,
    uncompiled,
    uncompiled_name,
)
from sktorch.exceptions import InvalidParameterError
from sktorch.transforms import SaltAndPepperNoise


class Plain:
    def __init__(self, a, b=2, c=(1, 2)):
        self.a = a
        self.b = b
        self.c = c


class WithKwargs:
    def __init__(self, a, *args, **kwargs):
        self.a = a
        self.args = args
        self.kwargs = kwargs


class Hidden:
    """Keeps an argument under another name: it cannot be read back."""

    def __init__(self, a):
        self._a = a


class Buffered(nn.Module):
    """An argument kept as a buffer: readable through nn.Module.__getattr__ only."""

    def __init__(self, scale=None):
        super().__init__()
        self.register_buffer("scale", torch.ones(1) if scale is None else scale)


class WithProperty:
    def __init__(self, a):
        self._a = a

    @property
    def a(self):
        return self._a


@pytest.mark.parametrize("strict", [True, False])
def test_both_rules_read_attributes_and_leave_defaults_out(strict):
    assert constructor_arguments(Plain(1), strict=strict) == {"a": 1}
    assert constructor_arguments(Plain(1, b=3, c=(1,)), strict=strict) == {"a": 1, "b": 3,
                                                                         "c": (1,)}
    # A property of the class is an attribute of the same name.
    assert constructor_arguments(WithProperty(5), strict=strict) == {"a": 5}
    # An argument kept under another name cannot be read back, under either rule.
    assert constructor_arguments(Hidden(1), strict=strict) is None


def test_strict_rule_refuses_what_cannot_be_named():
    # *args and **kwargs cannot be named: a file could not rebuild the object.
    assert constructor_arguments(WithKwargs(1, 2, x=3), strict=True) is None
    # nn.Module answers buffers through __getattr__: not an attribute of its own.
    assert constructor_arguments(Buffered(torch.full((1,), 2.0)), strict=True) is None


def test_lenient_rule_skips_varargs_and_reads_through_getattr():
    assert constructor_arguments(WithKwargs(1, 2, x=3), strict=False) == {"a": 1}
    arguments = constructor_arguments(Buffered(torch.full((1,), 2.0)), strict=False)
    assert list(arguments) == ["scale"]
    assert torch.equal(arguments["scale"], torch.full((1,), 2.0))


def test_strict_rule_prefers_get_params_and_the_lenient_one_ignores_it():
    stopping = EarlyStopping(patience=3, monitor="valid_acc", lower_is_better=False)
    assert constructor_arguments(stopping, strict=True) == {
        "monitor": "valid_acc", "patience": 3, "lower_is_better": False}

    class ParamsOnly:
        def __init__(self, a=1):
            self._a = a

        def get_params(self, deep=True):
            return {"a": self._a}

    assert constructor_arguments(ParamsOnly(4), strict=True) == {"a": 4}
    assert constructor_arguments(ParamsOnly(4), strict=False) is None


def test_a_transform_rebuilds_from_its_arguments():
    noise = SaltAndPepperNoise(amount=0.2, p=0.7)
    for strict in (True, False):
        arguments = constructor_arguments(noise, strict=strict)
        assert arguments == {"amount": 0.2, "p": 0.7}
        assert repr(SaltAndPepperNoise(**arguments)) == repr(noise)


def test_accepted_arguments_and_check_options():
    def target(a, b=1):
        return a + b

    assert accepted_arguments(target, {"a": 1, "c": 2}) == {"a": 1}
    assert accepted_arguments(len, {"a": 1}) == {}  # no readable signature: nothing
    check_options(target, {"b": 2}, prefix="opt", owner="Est")
    with pytest.raises(InvalidParameterError,
                       match=r"Invalid parameter 'opt__bb' for Est.*\['a', 'b'\].*Did you mean 'b'"):
        check_options(target, {"bb": 2}, prefix="opt", owner="Est")
    with pytest.raises(InvalidParameterError, match="takes no argument 'a'"):
        check_options(target, {"a": 2}, prefix="opt", owner="Est", reserved=("a",))


def test_did_you_mean():
    assert did_you_mean("adma", ["adam", "sgd"]) == " Did you mean 'adam'?"
    assert did_you_mean("xyz", ["adam", "sgd"]) == ""


def test_uncompiled_module_and_names():
    module = nn.Sequential(nn.Linear(2, 3))
    assert uncompiled(module) is module

    class Wrapper(nn.Module):  # what torch.compile's OptimizedModule holds
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    wrapped = Wrapper(module)
    assert uncompiled(wrapped) is module
    names = [name for name, _ in wrapped.named_parameters()]
    assert names == ["_orig_mod.0.weight", "_orig_mod.0.bias"]
    assert [uncompiled_name(n) for n in names] == [n for n, _ in module.named_parameters()]
    assert uncompiled_name("0.weight") == "0.weight"
