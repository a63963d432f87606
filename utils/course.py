"""Course-wide facts: where the repository lives, badges, and lesson results."""

from __future__ import annotations

import json

# The one place that names the GitHub repository; badges and the Colab install use it.
GITHUB_REPOSITORY = "cnn-course/cnn-keras-course"
GITHUB_BRANCH = "main"
# Executed notebooks carry a lesson's key results in outputs of this MIME type.
RESULTS_MIME = "application/vnd.cnn-course.results+json"


def colab_url(notebook_path: str) -> str:
    """The Open-in-Colab URL of a notebook path such as ``notebooks/01_convolution.ipynb``."""
    return (f"https://colab.research.google.com/github/{GITHUB_REPOSITORY}/blob/"
            f"{GITHUB_BRANCH}/{notebook_path}")


def github_url(notebook_path: str) -> str:
    """The view-on-GitHub URL of a notebook path."""
    return f"https://github.com/{GITHUB_REPOSITORY}/blob/{GITHUB_BRANCH}/{notebook_path}"


def badge_row(notebook_path: str) -> str:
    """The Markdown badge row of a lesson: Open in Colab, view on GitHub."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook_path)}) "
            f"[![View on GitHub](https://img.shields.io/badge/view%20on-GitHub-181717?logo=github)]"
            f"({github_url(notebook_path)})")


def record_results(**results) -> None:
    """Show a lesson's key results and store them machine-readably. Introduced in lesson 01.

    The course runner reads them back from the executed notebook (``read_results``).
    """
    from IPython.display import display

    text = "\n".join(f"{key}: {value}" for key, value in results.items())
    display({RESULTS_MIME: json.loads(json.dumps(results)), "text/plain": text}, raw=True)


def read_results(notebook) -> dict:
    """The results a lesson recorded, from an executed notebook (a dict from nbformat)."""
    found: dict = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            value = output.get("data", {}).get(RESULTS_MIME)
            if value is not None:
                found.update(json.loads(value) if isinstance(value, str) else value)
    return found
