"""Sphinx configuration of the astroml-pipe documentation.

Build from the repository root with warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the checkout next to this folder, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from astroml_pipe import __version__  # noqa: E402

project = "astroml-pipe"
author = "the astroml-pipe developers"
copyright = "the astroml-pipe developers"
version = __version__
release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
]

# No intersphinx: the documentation must build without network access.

templates_path: list[str] = []
exclude_patterns = ["_build", "_cli_help", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
highlight_language = "python3"
smartquotes = False  # keep Python reprs (parameter types, defaults) as written

# -- autodoc / numpydoc --------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_preserve_defaults = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"astroml-pipe {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
