"""Sphinx configuration of the pde-surrogate documentation (``make docs``: sphinx-build -W, warnings are errors).

Pages are reStructuredText or Markdown (MyST); the reports in docs/*.md are
included as they are (other tools regenerate them). The gallery
(sphinx-gallery) runs every ``docs/examples/plot_*.py`` at build time, at small
sizes, and shows its output and figures.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

os.environ.setdefault("OMP_NUM_THREADS", "2")   # the examples train small nets: no oversubscription in CI
os.environ.setdefault("MPLBACKEND", "Agg")

project = "pde-surrogate"
author = "the pde-surrogate authors"
copyright = "the pde-surrogate authors, MIT license"
release = _version("pde-surrogate")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "plain_math",            # docs/_ext: plain-text formulas in docstrings (|x|, (B, *shape)) render as written
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples/README.rst", "**/*.ipynb"]
root_doc = "index"

# -- API reference (autodoc) -----------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autosummary_generate = False

# -- Markdown (the reports) ------------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- gallery ---------------------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,      # an example that fails fails the build
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "capture_repr": (),                  # output is what an example prints, not the repr of a block's last value
}

# -- HTML ------------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"pde-surrogate {release}"
html_static_path: list[str] = []
