"""The documentation builds without a warning, and its API reference has a
page for every public name.

The examples gallery is not executed here (``-D plot_gallery=0``: its pages
are written with the scripts' code but without their output); the README's
documentation command runs it.
"""

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ["sktorch", "sktorch.losses", "sktorch.models", "sktorch.optim", "sktorch.schedulers",
                  "sktorch.callbacks", "sktorch.exceptions", "sktorch.transforms", "sktorch.explain",
                  "sktorch.metrics", "sktorch.parallel"]


def _build(out):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-D", "plot_gallery=0", "-d", str(out / ".doctrees"), str(ROOT / "docs"), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]


def test_docs_build_without_warnings_with_a_page_per_public_name(tmp_path):
    # One test, one build: Sphinx writes the generated API and gallery
    # sources into docs/, so two builds at once (pytest-xdist) would race.
    html = tmp_path / "html"
    _build(html)
    for page in ("index", "api", "getting_started", "losses", "tensorboard", "comparison",
                 "auto_examples/index", "auto_examples/quickstart",
                 "generated/sktorch.ImageClassifier", "generated/sktorch.TorchClassifier",
                 "generated/sktorch.losses.DiceLoss", "generated/sktorch.callbacks.TensorBoard"):
        assert (html / f"{page}.html").is_file(), page
    page = (html / "generated" / "sktorch.ImageClassifier.html").read_text()
    # numpydoc rendered the sections, and the class's own methods are listed.
    assert "Parameters" in page and "Examples" in page and "predict_proba" in page

    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name == "__version__":
                continue
            obj = getattr(module, name)
            # A name the top level re-exports is documented in its subpackage.
            homes = [m for m in PUBLIC_MODULES if getattr(importlib.import_module(m), name, None) is obj]
            if not any((html / "generated" / f"{home}.{name}.html").is_file() for home in homes):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"no API page for {missing}: add them to docs/api.rst"
