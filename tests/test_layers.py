"""The package's layers: every import goes down the table, and no file circle.

The table below is the one place the layers are written (docs/architecture.md
explains it). A module belongs to the first layer whose prefix names it; an
import of a module in a higher layer fails the test, whether it sits at the
top of the file or inside a function. Imports inside functions are allowed
only towards a module that itself imports an optional or heavy dependency at
its top (torchvision, onnx, matplotlib, tensorboard, torch.distributed, ...):
they are there to keep ``import sktorch`` light, never to dodge a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sktorch

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("utilities", ("sktorch.exceptions", "sktorch._version", "sktorch._utils")),
    ("components", ("sktorch.losses", "sktorch.models", "sktorch.optim", "sktorch.schedulers",
                    "sktorch.transforms", "sktorch.metrics")),
    ("data", ("sktorch._data",)),
    ("engine", ("sktorch._engine",)),
    ("callbacks", ("sktorch.callbacks",)),
    ("estimators", ("sktorch._estimators",)),
    ("persistence", ("sktorch._io",)),
    ("tools", ("sktorch.explain", "sktorch.parallel")),
    ("public face", ("sktorch",)),
)

# Dependencies a module may import lazily (inside a function), and the
# reason an sktorch module may be imported lazily: it imports one at its top.
HEAVY = ("torchvision", "onnx", "onnxruntime", "onnxscript", "matplotlib", "tensorboard",
         "torch.utils.tensorboard", "torch.distributed", "dask", "distributed", "PIL")

ROOT = Path(sktorch.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + ".") and prefix != "sktorch":
                return rank
    raise AssertionError(f"{module} is in no layer of the table; add it to LAYERS.")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at the top of the file) for each import."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(), package)


def _imports_in(source: str, package: str) -> list[tuple[str, int, bool]]:
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    for node in tree.body:  # an ``if TYPE_CHECKING:`` or ``try:`` block is still the top
        if isinstance(node, (ast.If, ast.Try)):
            top.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            names = [name] + [f"{name}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for imported in names:
            found.append((imported, node.lineno, id(node) in top))
    return found


def _sktorch_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(imported: str, modules: dict[str, Path]) -> str | None:
    """The sktorch module an import names (``from pkg import mod`` names mod)."""
    return imported if imported in modules else None


def _graph() -> dict[str, list[tuple[str, int, bool]]]:
    modules = _sktorch_modules()
    graph = {}
    for name, path in modules.items():
        edges = []
        for imported, line, at_top in _imports(path):
            target = _resolve(imported, modules)
            if target is not None and target != name:
                edges.append((target, line, at_top))
        graph[name] = edges
    return graph


def _imports_heavy_at_top(path: Path) -> bool:
    return any(at_top and (imported in HEAVY or imported.split(".")[0] in HEAVY
                           or any(imported.startswith(h + ".") for h in HEAVY))
               for imported, _, at_top in _imports(path))


def test_every_module_is_in_a_layer():
    for name in _sktorch_modules():
        _layer(name)


def _upward(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    wrong = []
    for name, edges in graph.items():
        for target, line, _ in edges:
            if _layer(target) > _layer(name):
                wrong.append(f"{name}:{line} imports {target} "
                             f"({LAYERS[_layer(name)][0]} -> {LAYERS[_layer(target)][0]})")
    return wrong


def test_imports_go_down_the_layers():
    wrong = _upward(_graph())
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(wrong)


def _heavy_modules(graph: dict[str, list[tuple[str, int, bool]]]) -> set[str]:
    """The modules whose import loads a heavy dependency, directly or through
    the sktorch modules they import at their top."""
    modules = _sktorch_modules()
    heavy = {name for name in graph if _imports_heavy_at_top(modules[name])}
    grown = True
    while grown:
        grown = False
        for name, edges in graph.items():
            if name not in heavy and any(at_top and target in heavy for target, _, at_top in edges):
                heavy.add(name)
                grown = True
    return heavy


def test_lazy_imports_only_for_heavy_dependencies():
    graph = _graph()
    heavy = _heavy_modules(graph)
    assert "sktorch.transforms" in heavy and "sktorch.losses" not in heavy
    wrong = []
    for name, edges in graph.items():
        for target, line, at_top in edges:
            if not at_top and target not in heavy:
                wrong.append(f"{name}:{line} imports {target} inside a function")
    assert not wrong, ("imports inside functions of modules that import nothing heavy "
                       "(move them to the top):\n" + "\n".join(wrong))


def test_no_circle_of_files():
    graph = {name: sorted({target for target, _, _ in edges}) for name, edges in _graph().items()}
    # A package's __init__ re-exporting its children is not a circle: its
    # children import siblings, never the package itself.
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in graph[node]:
            if state.get(target) == 1:
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    assert not circles, "circles of imports:\n" + "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("source", [
    "from sktorch._estimators._base import BaseTorchEstimator\n",
    "def f():\n    from sktorch._estimators import _base\n",
    "def f():\n    import sktorch._estimators._base\n",
    "from .._estimators import _base\n",
])
def test_the_walk_finds_an_upward_import(source):
    # The checks above would pass on a walk that found nothing: an engine
    # module importing an estimator module, at the top, inside a function,
    # or relatively, is reported.
    modules = _sktorch_modules()
    edges = [(_resolve(imported, modules), line, top)
             for imported, line, top in _imports_in(source, "sktorch._engine")]
    edges = [edge for edge in edges if edge[0] is not None]
    wrong = _upward({"sktorch._engine._probe": edges})
    assert any(line.startswith("sktorch._engine._probe:")
               and line.endswith("imports sktorch._estimators._base (engine -> estimators)")
               for line in wrong), wrong
