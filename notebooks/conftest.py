"""nbval compares the lessons' text outputs; this hook compares their figures too, and chooses how strictly.

Each notebook records the machine that made its outputs (``utils.tools.reproduce``). Where this
machine matches it, every output is compared strictly: text as nbval does, figures to an RMS
of ``figures.TOLERANCE``. Anywhere else the cells measured as CPU-dependent (their metadata
holds tolerances, written by ``benchmarks/cpu_dependence.py``) are compared by
``utils.tools.outputs``: training-log lines left out, words strict, numbers and figures within
the cell's measured tolerance. Every other cell is still compared strictly, and every cell
still runs, so each assertion a lesson makes must hold.

``COURSE_COMPARE=auto`` (default) chooses by the fingerprint, ``strict`` or ``tolerant`` forces
one. ``COURSE_FIGURES=off`` compares text only: for other matplotlib versions than the one that
drew the stored figures (``make test-lowest``), which lay text out a pixel apart.
``COURSE_FIGURE_LOG=path`` appends every figure's RMS to a JSON-lines file. Figures that differ
go to test-artifacts/figures/. The run ends with what was compared how.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from functools import cache
from pathlib import Path

from utils.tools import figures, outputs, reproduce

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "figures"
FIGURE_MODES = ("compare", "off")
COMPARE_MODES = ("auto", "strict", "tolerant")
reproduce.apply()  # the kernels nbval starts inherit the settings the outputs were made with
TALLY: Counter = Counter()
MODES: dict[str, tuple[str, list[str]]] = {}  # notebook -> (comparison, why)


def figure_mode() -> str:
    mode = os.environ.get("COURSE_FIGURES", "compare")
    if mode not in FIGURE_MODES:
        raise pytest.UsageError(f"COURSE_FIGURES={mode!r}; valid choices: {', '.join(FIGURE_MODES)}")
    return mode


def compare_mode() -> str:
    mode = os.environ.get("COURSE_COMPARE", "auto")
    if mode not in COMPARE_MODES:
        raise pytest.UsageError(f"COURSE_COMPARE={mode!r}; valid choices: {', '.join(COMPARE_MODES)}")
    return mode


@cache
def notebook_mode(path: str) -> str:
    """"strict" or "tolerant" for one notebook, by its recorded machine and COURSE_COMPARE."""
    made_on = reproduce.stored_fingerprint(nbformat.read(path, as_version=4))
    differences = reproduce.differences(made_on, reproduce.fingerprint())
    mode = compare_mode()
    if mode == "auto":
        mode = "tolerant" if differences else "strict"
    MODES[Path(path).stem] = (mode, differences)
    return mode


def nbval_cell_outputs(item) -> tuple[list, list] | None:
    """The stored and the re-rendered outputs of a cell whose outputs are compared, else None.

    With ``hand_over_text_check`` and here the only places that use nbval's cell items
    (``cell``, ``test_outputs``, ``options``, ``cell_num``, ``sanitize``): tests/test_figures.py
    and tests/test_cpu_dependence.py fail loudly if nbval changes them.
    """
    if type(item).__name__ != "IPyNbCell":
        return None
    checked = getattr(item, "course_checked", item.options.get("check"))
    if not checked or item.cell.get("execution_count") is None:
        return None
    return list(item.cell.get("outputs", [])), list(item.test_outputs or [])


def hand_over_text_check(item) -> None:
    """Turn nbval's strict text check of a cell off (``options["check"]``); the tolerant comparison
    runs after the cell instead."""
    item.course_checked = item.options.get("check")
    item.options["check"] = False


def pytest_configure(config):
    compare_mode(), figure_mode()  # a typo stops the run before any cell runs


def pytest_collection_modifyitems(items):
    for item in items:
        if type(item).__name__ != "IPyNbCell":
            continue
        tolerance = outputs.cell_tolerance(item.cell)
        item.course_tolerance = None
        if notebook_mode(str(item.fspath)) == "tolerant" and tolerance and item.options.get("check"):
            item.course_tolerance = tolerance
            hand_over_text_check(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    outcome = yield  # nbval ran the cell and compared its text, unless handed over (a failure propagates)
    found = nbval_cell_outputs(item)
    if found is None:
        if type(item).__name__ == "IPyNbCell":
            TALLY["cells not compared"] += 1
        return outcome
    stored, computed = found
    notebook = Path(str(item.fspath)).stem
    tolerance = getattr(item, "course_tolerance", None)
    lines = []
    if tolerance:
        comparison = outputs.compare_texts(outputs.texts(stored), outputs.texts(computed), tolerance,
                                           item.sanitize)
        TALLY["cells within a tolerance"] += 1
        TALLY["numbers within a tolerance"] += comparison.within_tolerance
        TALLY["lines not compared (training logs, unchecked)"] += comparison.masked_lines
        lines += [f"{notebook}.ipynb, cell {item.cell_num}: {problem}" for problem in comparison.problems]
    else:
        TALLY["cells strict"] += 1
        TALLY["numbers strict"] += outputs.count_numbers(outputs.texts(stored))
    if figure_mode() != "off":
        lines += compare_figures(notebook, item, stored, computed, tolerance)
    if lines:
        item.raise_cell_error("Outputs differ" if tolerance else "Figures differ", "\n".join(lines))
    return outcome


def compare_figures(notebook: str, item, stored: list, computed: list, tolerance: dict | None) -> list[str]:
    """The cell's figures against the stored ones: strict, or each within its measured RMS tolerance."""
    folder = ARTIFACTS / notebook / f"cell-{item.cell_num}"
    rms_values, problems = outputs.compare_figures(stored, computed, tolerance, folder)
    TALLY["figures within a tolerance" if tolerance else "figures strict"] += len(figures.pngs(stored))
    if log := os.environ.get("COURSE_FIGURE_LOG"):
        with open(log, "a") as stream:
            stream.write(json.dumps({"notebook": notebook, "cell": item.cell_num, "rms": rms_values}) + "\n")
    return [f"{notebook}.ipynb, cell {item.cell_num}: {problem}" for problem in problems]


def pytest_terminal_summary(terminalreporter):
    if not MODES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("how the stored outputs were compared")
    for notebook, (mode, why) in sorted(MODES.items()):
        also = f"; also {', '.join(line.split(':')[0] for line in why[1:])}" if len(why) > 1 else ""
        detail = f" ({why[0]}{also})" if why else ""
        write(f"{notebook}: {mode}{detail}")
    write(", ".join(f"{key}: {TALLY[key]}" for key in (
        "cells strict", "cells within a tolerance", "cells not compared", "numbers strict",
        "numbers within a tolerance", "lines not compared (training logs, unchecked)", "figures strict",
        "figures within a tolerance")))
