"""Stored cell outputs against re-computed ones, within a measured tolerance.

On the machine that made the stored outputs nbval compares every output strictly. On another
CPU the cells whose outputs depend on the order of floating-point additions (trainings and what
is computed from trained models) print other digits, so those cells, and only those, are
compared here instead:

- a Keras training log line (``Epoch 3/5``, ``422/422 - TIME - ... loss: ...``) is not compared:
  every digit of an epoch-by-epoch log depends on that order, and another CPU can stop an
  early-stopped training at another epoch;
- every other line must read the same with its numbers taken out. Beyond one unit of its last
  printed digit, a score (a number with decimals between -1 and 1: an accuracy, an IoU, a
  difference of two) may move by the cell's absolute tolerance ``atol``; any other number (a
  loss above 1, a count, a percentage, a parameter count) by the cell's relative tolerance
  ``rtol``, which is 0 in a cell where no such number moved;
- a line that starts as one of the cell's ``unchecked`` lines is not compared either: words that
  another CPU can change, such as which of several close results overlap, each with its reason;
- each figure must have the stored size and lie within the cell's RMS tolerance.

Which cells depend on the CPU, and each one's tolerances, are measured, not guessed:
``benchmarks/cpu_dependence.py`` re-executes the lessons with the floating-point order changed
on purpose, writes ``measure()``'s result into the cells' metadata and prints the table.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from utils.tools import figures

import numpy as np

# Where a cell's metadata keeps its measured tolerances (notebook cell metadata).
METADATA_KEY = "course"
CPU_KEY = "cpu_dependent"
# A measured difference is widened by this factor: another CPU's change is another draw, not a
# bound. Calibrated by leaving each run out (benchmarks/cpu_dependence.py): on 2026-12-07 an AMD
# EPYC's own run moved lesson 05's last validation loss 4.7 times as far as oneDNN's run on it,
# the most of any cell; with factor 2 that CPU failed 6 cells of lessons 05, 07 and 08 in CI.
FACTOR = 5.0
LOG_LINE = re.compile(r"^\s*(Epoch \d+/\d+|\d+/\d+ - .*\b(loss|accuracy)\b.*|Epoch \d+: early stopping"
                      r"|Restoring model weights from the end of the best epoch.*)$")
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")


def cell_tolerance(cell: dict) -> dict | None:
    """A cell's measured tolerances, or None for a cell whose outputs do not depend on the CPU."""
    return cell.get("metadata", {}).get(METADATA_KEY, {}).get(CPU_KEY)


def set_cell_tolerance(cell: dict, tolerance: dict | None) -> None:
    course = cell.setdefault("metadata", {}).setdefault(METADATA_KEY, {})
    if tolerance is None:
        course.pop(CPU_KEY, None)
        if not course:
            cell["metadata"].pop(METADATA_KEY)
    else:
        course[CPU_KEY] = tolerance


def texts(outputs: list) -> dict[str, list[str]]:
    """A cell's outputs as text, by stream name or MIME type (images left out), in order.

    Each stream is joined into one text (how a run splits it into chunks does not matter); JSON
    data is written with sorted keys.
    """
    found: dict[str, list[str]] = {}
    for output in outputs:
        if output.get("output_type") == "stream":
            name = output.get("name", "stdout")
            found[name] = ["".join(found.get(name, [""])) + _join(output.get("text", ""))]
        elif output.get("output_type") == "error":
            found.setdefault("error", []).append(f"{output.get('ename')}: {output.get('evalue')}")
        for kind, value in output.get("data", {}).items():
            if kind == figures.PNG:
                continue
            text = _join(value) if kind.startswith("text/") \
                else json.dumps(value, sort_keys=True, indent=1)
            found.setdefault(kind, []).append(text)
    return found


def _join(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def split_numbers(line: str) -> tuple[str, list[str]]:
    """A line with each number replaced by ``#`` and runs of spaces collapsed, and its numbers."""
    numbers = NUMBER.findall(line)
    skeleton = re.sub(r"\s+", " ", NUMBER.sub("#", line)).strip()
    return skeleton, numbers


def count_numbers(found: dict[str, list[str]]) -> int:
    """How many numbers a cell's texts hold."""
    return sum(len(NUMBER.findall(text)) for texts in found.values() for text in texts)


def _value(number: str) -> float:
    return float(number.replace(",", ""))


def last_digit_unit(number: str) -> float:
    """One unit of a number's last printed digit: 0.01 for "0.72", 1 for "37", 1e-5 for "1.2e-04"."""
    mantissa, _, exponent = number.replace(",", "").lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def is_score(stored: str, computed: str) -> bool:
    """A number with decimals between -1 and 1 (an accuracy, an IoU, a difference of two)."""
    return "." in stored and max(abs(_value(stored)), abs(_value(computed))) <= 1


def needed(stored: str, computed: str) -> tuple[str, float]:
    """The tolerance two printed numbers need beyond one unit of the stored last digit.

    ("atol", absolute difference) for a score, ("rtol", relative difference) for any other number.
    """
    a, b = _value(stored), _value(computed)
    excess = max(0.0, abs(a - b) - last_digit_unit(stored))
    if is_score(stored, computed):
        return "atol", excess
    scale = max(abs(a), abs(b))
    return "rtol", 0.0 if excess == 0.0 else (math.inf if scale == 0 else excess / scale)


@dataclass
class Comparison:
    """What a tolerant comparison of one cell found."""

    problems: list[str] = field(default_factory=list)
    within_tolerance: int = 0  # numbers compared within the tolerance
    masked_lines: int = 0  # lines not compared: training logs, and the cell's "unchecked" lines
    # the smallest tolerances that would have passed the numbers
    needed: dict[str, float] = field(default_factory=lambda: {"atol": 0.0, "rtol": 0.0})

    @property
    def ok(self) -> bool:
        return not self.problems


UNLIMITED = {"atol": math.inf, "rtol": math.inf}


def is_masked(line: str, unchecked: tuple[str, ...] = ()) -> bool:
    """A training-log line, or a line that starts with one of ``unchecked``."""
    return bool(LOG_LINE.match(line)) or (bool(unchecked) and line.lstrip().startswith(unchecked))


def compare_texts(stored: dict[str, list[str]], computed: dict[str, list[str]], tolerance: dict,
                  sanitize=lambda text: text) -> Comparison:
    """Compare two cells' texts: log lines masked, words strict, numbers within ``tolerance``."""
    result = Comparison()
    unchecked = tuple(entry["line"] for entry in tolerance.get("unchecked", []))
    if set(stored) != set(computed):
        result.problems.append(f"output kinds differ: stored {sorted(stored)}, computed {sorted(computed)}")
        return result
    for kind in stored:
        if len(stored[kind]) != len(computed[kind]):
            result.problems.append(f"{kind}: {len(stored[kind])} outputs stored, "
                                   f"{len(computed[kind])} computed")
            continue
        for want, got in zip(stored[kind], computed[kind], strict=True):
            want_lines = [line for line in sanitize(want).splitlines() if not is_masked(line, unchecked)]
            got_lines = [line for line in sanitize(got).splitlines() if not is_masked(line, unchecked)]
            result.masked_lines += len(sanitize(want).splitlines()) - len(want_lines)
            if len(want_lines) != len(got_lines):
                result.problems.append(f"{kind}: {len(want_lines)} lines stored (training logs left out), "
                                       f"{len(got_lines)} computed")
                continue
            for want_line, got_line in zip(want_lines, got_lines, strict=True):
                _compare_line(want_line, got_line, tolerance, kind, result)
    return result


def _compare_line(want_line: str, got_line: str, tolerance: dict, kind: str, result: Comparison) -> None:
    want_skeleton, want_numbers = split_numbers(want_line)
    got_skeleton, got_numbers = split_numbers(got_line)
    if want_skeleton != got_skeleton or len(want_numbers) != len(got_numbers):
        result.problems.append(f"{kind}: the text differs\n  stored:   {want_line.strip()}\n"
                               f"  computed: {got_line.strip()}")
        return
    for want, got in zip(want_numbers, got_numbers, strict=True):
        which, amount = needed(want, got)
        result.needed[which] = max(result.needed[which], amount)
        result.within_tolerance += 1
        limit = tolerance.get(which, 0.0)  # none measured: the number must not move
        if amount > limit:
            what = "absolute tolerance for a score" if which == "atol" else "relative tolerance"
            result.problems.append(f"{kind}: {got} where {want} is stored, beyond the {what} "
                                   f"{limit:g}\n  stored:   {want_line.strip()}"
                                   f"\n  computed: {got_line.strip()}")


def compare_figures(stored: list, computed: list, tolerance: dict | None,
                    folder) -> tuple[list[float], list[str]]:
    """A cell's figures against the stored ones: strictly (``tolerance`` None) or each within its RMS
    tolerance, at the stored size. The RMS of each figure, and a message (with the images) per
    figure that differs."""
    expected, actual = figures.pngs(stored), figures.pngs(computed)
    limits = tolerance.get("figure_rms", []) if tolerance else []
    if tolerance and len(limits) != len(expected):
        return [], [f"{len(expected)} figures stored, {len(limits)} tolerances measured; "
                    "run benchmarks/cpu_dependence.py --write"]
    rms_values, differences = figures.compare_figures(expected, actual, folder)
    if tolerance:  # a figure of the stored size within its measured RMS passes
        differences = [d for d in differences if d.rms is None or d.rms > limits[d.index]]
    problems = []
    for d in differences:
        limit = f" (measured tolerance {limits[d.index]})" if tolerance and d.index >= 0 else ""
        images = "".join(f"\n  {name}: {path}" for name, path in d.images.items())
        problems.append(f"{d.message}{limit}{images}")
    return rms_values, problems


def round_up(value: float, digits: int = 2) -> float:
    """``value`` rounded up to ``digits`` significant digits: 0.01234 -> 0.013."""
    if value <= 0 or math.isinf(value):
        return value
    scale = 10 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale - 1e-9) / scale


def typical_change(cells: list[list[dict[str, float]]]) -> dict[str, float]:
    """The median, over the changed cells, of each cell's largest score and relative change.

    Cells where no number of a kind moved are left out of that kind's median. One perturbation
    moves a cell's numbers by chance more or less than another CPU does; the typical change over
    all the cells measured is the floor of every cell's tolerance.
    """
    typical = {}
    for kind in ("atol", "rtol"):
        moved = sorted(largest for cell in cells if (largest := max(m[kind] for m in cell)) > 0)
        typical[kind] = float(np.median(moved)) if moved else 0.0
    return typical


def unchanged_tolerance(cell: dict, unchecked: list[dict]) -> dict:
    """The tolerance of a cell no run moved that has ``unchecked`` lines: those lines are left out,
    every number and figure must still come out as stored (figures to the strict comparison's RMS)."""
    return {"unchecked": unchecked, "atol": 0.0, "rtol": 0.0,
            "figure_rms": [figures.TOLERANCE] * len(figures.pngs(cell.get("outputs", [])))}


def wider(recorded: dict | None, measured: dict | None) -> dict | None:
    """The wider of two tolerances of one cell, each kind at its larger value; either may be None."""
    if not recorded or not measured:
        return recorded or measured
    old_rms, new_rms = recorded.get("figure_rms", []), measured.get("figure_rms", [])
    # another number of figures: they changed since, and only the new measurement fits them
    rms = new_rms
    if len(old_rms) == len(new_rms):
        rms = [max(a, b) for a, b in zip(old_rms, new_rms, strict=True)]
    unchecked = measured.get("unchecked") or recorded.get("unchecked")
    return {**({"unchecked": unchecked} if unchecked else {}),
            "atol": max(recorded.get("atol", 0.0), measured.get("atol", 0.0)),
            "rtol": max(recorded.get("rtol", 0.0), measured.get("rtol", 0.0)), "figure_rms": rms}


def tolerance_from(measured: list[dict[str, float]], rms_values: list[list[float]], typical: dict[str, float],
                   unchecked: list[dict] | None = None) -> dict:
    """A cell's tolerances: FACTOR times its largest measured change, or the typical change if larger.

    The relative tolerance stays 0 in a cell where no number other than a score moved: its
    counts (parameters, epochs, images) must not move. A figure may move by at least
    ``figures.TOLERANCE``, the strict comparison's own limit. ``unchecked`` (lines not compared,
    each with its reason) is kept as it was written by hand.
    """
    rtol = max(m["rtol"] for m in measured)
    return {
        **({"unchecked": unchecked} if unchecked else {}),
        "atol": round_up(FACTOR * max(max(m["atol"] for m in measured), typical["atol"])),
        "rtol": round_up(FACTOR * max(rtol, typical["rtol"])) if rtol > 0 else 0.0,
        "figure_rms": [round_up(max(FACTOR * max(values), figures.TOLERANCE))
                       for values in zip(*rms_values, strict=True)],
    }


@dataclass
class CellMeasure:
    """How one code cell's outputs moved between two runs."""

    cell: int  # the code cell's number, counted as nbval counts them
    texts_same: bool
    comparison: Comparison  # the tolerant comparison with no limit: its problems are structural
    rms_values: list[float | None]  # per figure; None where the sizes differ

    @property
    def depends_on_cpu(self) -> bool:
        return not self.texts_same or any(rms != 0.0 for rms in self.rms_values)


def measure(stored_cells: list[dict], computed_cells: list[dict], sanitize, folder) -> list[CellMeasure]:
    """Each code cell of one notebook run twice: whether it changed, and by how much.

    A cell's ``unchecked`` lines (from its metadata) are left out of the comparison.
    """
    stored_code = [cell for cell in stored_cells if cell.get("cell_type") == "code"]
    computed_code = [cell for cell in computed_cells if cell.get("cell_type") == "code"]
    if len(stored_code) != len(computed_code):
        raise ValueError(f"{len(stored_code)} code cells stored, {len(computed_code)} computed")
    found = []
    for number, (stored, computed) in enumerate(zip(stored_code, computed_code, strict=True)):
        stored_texts, computed_texts = texts(stored.get("outputs", [])), texts(computed.get("outputs", []))
        same = {k: [sanitize(t) for t in v] for k, v in stored_texts.items()} == \
            {k: [sanitize(t) for t in v] for k, v in computed_texts.items()}
        unlimited = {**UNLIMITED, "unchecked": (cell_tolerance(stored) or {}).get("unchecked", [])}
        comparison = compare_texts(stored_texts, computed_texts, unlimited, sanitize)
        expected = figures.pngs(stored.get("outputs", []))
        actual = figures.pngs(computed.get("outputs", []))
        rms_values: list[float | None] = [None]  # another number of figures: no RMS
        if len(expected) == len(actual):
            rms, differences = figures.compare_figures(expected, actual, folder / f"cell-{number}", 0.0)
            sized, measured = {d.index for d in differences if d.rms is None}, iter(rms)
            rms_values = [None if k in sized else next(measured) for k in range(len(expected))]
        found.append(CellMeasure(number, same, comparison, rms_values))
    return found

