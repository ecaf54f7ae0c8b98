"""Sphinx configuration of sktorch's documentation.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html``;
add ``-D plot_gallery=0`` to build without running the examples.
"""

import sys
from pathlib import Path

import sktorch

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "sphinxext"))

project = "sktorch"
author = "the sktorch developers"
copyright = "the sktorch developers"
release = sktorch.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
# A method without a docstring of its own is left out, rather than shown with
# the docstring of the torch, torchvision or skorch method it overrides
# (written for their own documentation sites, with links into them).
autodoc_inherit_docstrings = False
# Members are listed by the class template (docs/_templates/autosummary):
# sktorch's own, including those inherited from sktorch's private bases, not
# those of scikit-learn's, torch's or skorch's base classes (documented there);
# numpydoc's own member tables would list every inherited nn.Module method.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Validation of docstrings is the job of the test suite (tests/test_public_api.py),
# not of the build.
numpydoc_validation_checks = set()


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's generated metadata-routing setters (set_fit_request, ...)
    # refer to its own glossary; they are documented by scikit-learn.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# -- Markdown pages ----------------------------------------------------------
myst_heading_anchors = 3

# -- Examples gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    # Run every script, not only those named plot_*.py.
    "filename_pattern": r".*\.py",
    # Scripts that take an output directory write their files under the
    # build directory, not beside the sources.
    "reset_argv": "sktorch_gallery.reset_argv",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktorch {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
html_show_sourcelink = False
