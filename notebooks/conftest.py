"""nbval compares the lessons' text outputs; this hook compares their figures as well.

After nbval has run a cell and compared its text, the cell's re-rendered PNGs are compared
with the stored ones (``utils.tools.figures``). A figure off by more than the tolerance fails
the cell, naming the notebook, the cell and the RMS; the images go to test-artifacts/figures/.
Cells whose outputs nbval does not check (``nbval-ignore-output``, unrun) are not compared.
``COURSE_FIGURE_LOG=path`` appends every figure's RMS to a JSON-lines file.
``COURSE_FIGURES=off`` compares text only: for other matplotlib versions than the one that drew
the stored figures (``make test-lowest``), which lay text out a pixel apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from utils.tools import figures, reproduce

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "figures"
FIGURE_MODES = ("compare", "off")
reproduce.apply()  # the kernels nbval starts inherit the settings the outputs were made with


def figure_mode() -> str:
    mode = os.environ.get("COURSE_FIGURES", "compare")
    if mode not in FIGURE_MODES:
        raise pytest.UsageError(f"COURSE_FIGURES={mode!r}; valid choices: {', '.join(FIGURE_MODES)}")
    return mode


def nbval_cell_outputs(item) -> tuple[list, list] | None:
    """The stored and the re-rendered outputs of a cell nbval checked, else None.

    The one place that reads nbval's cell items (``cell``, ``test_outputs``, ``options``,
    ``cell_num``): tests/test_figures.py fails loudly if nbval changes them.
    """
    if type(item).__name__ != "IPyNbCell":
        return None
    if not item.options.get("check") or item.cell.get("execution_count") is None:
        return None
    return list(item.cell.get("outputs", [])), list(item.test_outputs or [])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    outcome = yield  # nbval ran the cell and compared its text (a failure propagates)
    outputs = nbval_cell_outputs(item)
    if outputs is None or figure_mode() == "off":
        return outcome
    notebook = Path(str(item.fspath)).stem
    folder = ARTIFACTS / notebook / f"cell-{item.cell_num}"
    rms_values, differences = figures.compare_figures(*map(figures.pngs, outputs), folder)
    if log := os.environ.get("COURSE_FIGURE_LOG"):
        with open(log, "a") as stream:
            stream.write(json.dumps({"notebook": notebook, "cell": item.cell_num, "rms": rms_values}) + "\n")
    if differences:
        lines = [f"{notebook}.ipynb, cell {item.cell_num}: {d.message}" for d in differences]
        lines += [f"  {kind}: {path}" for d in differences for kind, path in d.images.items()]
        item.raise_cell_error("Figures differ", "\n".join(lines))
    return outcome
