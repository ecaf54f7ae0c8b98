"""Every public name exists, is documented, and public classes and functions
carry a runnable example (run by the doctest pass of the suite)."""

import importlib
import inspect
import pkgutil

import pytest
from helpers import run_python

import sktorch

PUBLIC_MODULES = ["sktorch", "sktorch.losses", "sktorch.models", "sktorch.optim", "sktorch.schedulers",
                  "sktorch.callbacks", "sktorch.exceptions", "sktorch.transforms", "sktorch.explain",
                  "sktorch.parallel",
                  "sktorch.metrics"]


def _public_names():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name, module


@pytest.mark.parametrize("module_name, name, module", list(_public_names()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_public_name_exists_and_is_documented(module_name, name, module):
    assert hasattr(module, name), f"{module_name}.__all__ lists {name!r}, which does not exist"
    obj = getattr(module, name)
    if name == "__version__":
        assert isinstance(obj, str)
        return
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 20, f"{module_name}.{name} has no docstring"
    is_exception = inspect.isclass(obj) and issubclass(obj, BaseException)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and not is_exception:
        assert "Examples\n--------" in doc, f"{module_name}.{name} has no Examples section"
        assert ">>> " in doc


def test_estimator_docstrings_document_every_parameter():
    from sktorch import TorchClassifier, TorchRegressor

    for est in (TorchClassifier, TorchRegressor):
        doc = est.__doc__
        assert "$" not in doc
        for name in inspect.signature(est).parameters:
            label = "**kwargs" if name == "kwargs" else name
            assert f"\n    {label} : " in doc, f"{est.__name__} does not document {name}"


@pytest.mark.parametrize("name", ["TorchClassifier", "TorchRegressor", "ImageClassifier",
                                  "ImageSegmenter"])
def test_every_estimator_signature_matches_its_constraints(name):
    # Each estimator spells out its whole signature (scikit-learn reads
    # hyperparameters from it); a hyperparameter added to the base or to a
    # parent class must appear in every subclass's signature too.
    cls = getattr(sktorch, name)
    signature = {
        p for p, v in inspect.signature(cls.__init__).parameters.items()
        if p != "self" and v.kind is not v.VAR_KEYWORD
    }
    assert signature == set(cls._parameter_constraints)
    for parent in cls.__mro__[1:]:
        if "_parameter_constraints" in vars(parent):
            assert set(parent._parameter_constraints) <= signature, parent.__name__


def test_importing_sktorch_leaves_torchvision_unloaded(tmp_path):
    # torchvision costs about a second to import; a tabular fit never needs it.
    out = run_python(
        "import sys, sktorch\n"
        "from sklearn.datasets import load_iris\n"
        "X, y = load_iris(return_X_y=True)\n"
        "sktorch.TorchClassifier(max_epochs=1).fit(X, y).predict(X)\n"
        "print('torchvision' in sys.modules)\n"
        "from sktorch import get_transform\n"
        "print(get_transform('salt_and_pepper').amount)\n",
        cwd=tmp_path,
    ).stdout
    assert out.split() == ["False", "0.05"]


def test_every_public_subpackage_is_an_attribute_of_sktorch(tmp_path):
    # As in scikit-learn: `import sktorch` then `sktorch.explain.grad_cam`,
    # loaded on first use where it imports torchvision.
    public = sorted(module.name for module in pkgutil.iter_modules(sktorch.__path__)
                    if not module.name.startswith("_"))
    assert {"explain", "parallel", "transforms", "losses", "callbacks"} <= set(public)
    out = run_python(
        "import sys, types, sktorch\n"
        f"names = {public!r}\n"
        "listed = [name in dir(sktorch) for name in names]\n"
        "loaded = 'torchvision' in sys.modules\n"
        "modules = [getattr(sktorch, name) for name in names]\n"
        "assert all(isinstance(m, types.ModuleType) for m in modules)\n"
        "print(all(listed), loaded, [m.__name__ for m in modules] == ['sktorch.' + n for n in names])\n",
        cwd=tmp_path,
    ).stdout
    assert out.split() == ["True", "False", "True"]
