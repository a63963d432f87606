"""Sphinx configuration of the course website; `python website/build.py` writes the pages.

Generator: Sphinx + MyST-NB + sphinx-book-theme (Jupyter Book 1's engine), all from PyPI.
Jupyter Book 2 (mystmd) was tried first: `myst build --html` downloads its theme from
api.mystmd.org at build time, and its themes are not published to any package registry.
"""

import sys
from pathlib import Path

from utils import course

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the local extension mathml.py

project = "CNNs with TensorFlow and Keras"
html_title = "CNNs with TensorFlow and Keras"
author = "the course's authors"
copyright = "the course's authors"

extensions = ["myst_nb", "mathml"]
nb_execution_mode = "off"  # show the stored outputs, the ones nbval checks; run nothing
nb_merge_streams = True  # one block per cell for printed text
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3  # links such as index.md#lessons
html_math_renderer = "mathml"  # MathML written at build time: no MathJax download in the browser
highlight_language = "none"  # README blocks without a language are plain text; notebook code stays Python

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"  # else browsers ask for /favicon.ico, which is not there
html_context = {"default_mode": "auto"}  # light or dark, as the reader's system prefers
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{course.GITHUB_REPOSITORY}",
    "repository_branch": course.GITHUB_BRANCH,
    "use_repository_button": True,
    "use_download_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
# Lessons record their key results in their own MIME type, next to a text/plain copy that is shown.
suppress_warnings = ["mystnb.unknown_mime_type"]
