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


def padded_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded into columns, so it also reads well in a terminal."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


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


def _whole(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {value!r}")


def check_parameters(**parameters) -> None:
    """Check a lesson's parameters; a bad one raises ValueError naming it. Introduced in lesson 01.

    Knows ``dataset``, ``architecture``, ``epochs``, ``batch_size``, ``limit``, ``seed``,
    ``repeats``, ``learning_rate``, ``report_test``, ``*_size`` and ``*_index``, and lesson 07's
    ``pretrain_epochs``, ``steps``, ``val_per_class``, ``label_counts`` and ``backbone``; any other
    name is a mistake in the lesson, reported as such.
    """
    from utils import data

    for name, value in parameters.items():
        if name == "dataset":
            data.get_spec(value)
        elif name == "architecture":
            from utils import models

            if value not in models.ARCHITECTURES:
                raise ValueError(f"unknown architecture {value!r}; valid choices: "
                                 f"{', '.join(sorted(models.ARCHITECTURES))}")
        elif name in ("epochs", "batch_size", "repeats", "pretrain_epochs", "steps", "val_per_class"):
            _whole(name, value, 1)
        elif name == "backbone":
            from utils import backbones

            backbones.check_backbone(value)
        elif name == "label_counts":
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"label_counts must be a list of whole numbers, e.g. [10, 30, 100]; "
                                 f"got {value!r}")
            for count in value:
                _whole("each of label_counts", count, 1)
            if list(value) != sorted(set(value)):
                raise ValueError(f"label_counts must increase, without repeats; got {value!r}")
        elif name.endswith("_size"):
            _whole(name, value, 10)
        elif name in ("seed",) or name.endswith("_index"):
            _whole(name, value, 0)
        elif name == "limit":
            if value is not None:
                _whole(name, value, 1)
        elif name == "learning_rate":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"learning_rate must be a number between 0 and 1, e.g. 1e-3; "
                                 f"got {value!r}")
        elif name == "report_test":
            if not isinstance(value, bool):
                raise ValueError(f"report_test must be True or False; got {value!r}")
        else:
            raise TypeError(f"check_parameters does not know the parameter {name!r}")
    if "limit" in parameters and "dataset" in parameters:
        data.check_split_args(data.get_spec(parameters["dataset"]), 0.1, parameters["limit"],
                               parameters.get("seed", 0))
