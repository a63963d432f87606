"""Which lesson outputs depend on the CPU: re-execute the lessons with the floating-point order changed.

Another CPU adds the same numbers in another order. On one machine that can be provoked: oneDNN's
kernels (``--perturb onednn``, ``TF_ENABLE_ONEDNN_OPTS=1``; ``onednn-avx512`` with its AVX-512
kernels) or one thread instead of all (``threads``) change the order from the first training
step on. Each lesson is executed that way and every code cell compared with its stored outputs:

- a cell whose text and figures come out the same is CPU-independent and stays compared strictly
  everywhere;
- a cell that changed is CPU-dependent: on a machine other than the one that made the outputs,
  nbval compares it within the tolerances measured here (``utils/tools/outputs.py``);
- a cell whose text changed in more than its numbers (other words, another number of lines
  outside the training logs) cannot be compared within a tolerance: it is listed, and the
  lesson has to print something a CPU cannot change there, or list the line as ``unchecked``
  in the cell's metadata, with its reason.

One perturbation does not move every number another CPU moves, so the tolerances are widened
(``outputs.tolerance_from``) and more runs can be added: ``--from DIR`` (repeatable) compares
notebooks executed earlier, under another perturbation or on another machine, for example the
outputs that another machine had stored before ``make notebooks`` replaced them; a folder may
hold some of the lessons only.

``--write`` records each cell's tolerances in its metadata (and removes them from cells that no
longer change). Run it after ``make notebooks``: the stored outputs must be this machine's.
``--write --widen`` keeps what earlier measurements recorded: each tolerance becomes the wider of
the recorded and the measured one, and no cell loses its tolerance (for runs on another machine
against outputs whose earlier runs are not repeated).
``--check`` compares instead, as nbval does on another CPU, and fails on any difference: for
notebooks executed elsewhere (``--from``) or under another perturbation.

examples:
  python benchmarks/cpu_dependence.py --write
  python benchmarks/cpu_dependence.py --lessons 03,08 --perturb threads
  python benchmarks/cpu_dependence.py --from runs/perturbed --from runs/other-machine --write
  python benchmarks/cpu_dependence.py --check --perturb onednn-avx512
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from utils.course import padded_table
from utils.tools import figures, outputs, reproduce

import nbformat
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parents[1]
CHECK_COLUMNS = ["cells strict", "cells within a tolerance", "cells that fail", "numbers strict",
                 "numbers within a tolerance", "lines not compared"]
SANITIZE = REPO / "tests" / "nbval_sanitize.cfg"
# Each one changes the order of the floating-point additions from the first training step on.
PERTURBATIONS = {
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"},  # oneDNN's AVX2 kernels instead of Eigen's
    # oneDNN with AVX-512, on a CPU that has it
    "onednn-avx512": {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "threads": {"TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1"},  # one thread: other shards
}


def sanitizer():
    patterns = get_sanitize_patterns(SANITIZE.read_text())

    def sanitize(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text
    return sanitize


def execute(notebooks: list[Path], out: Path, perturb: str) -> dict[str, Path]:
    """Execute ``notebooks`` in order into ``out`` under a perturbation; the executed copies."""
    env = reproduce.apply({**os.environ, **PERTURBATIONS[perturb]})
    env["COURSE_MODEL_CACHE"] = str(out / "model-cache")
    bin_dir = Path(sys.executable).parent
    executed = {}
    for notebook in notebooks:
        print(f"executing {notebook.name} with {PERTURBATIONS[perturb]}", flush=True)
        done = subprocess.run([str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                               "--ExecutePreprocessor.timeout=900", "--output-dir", str(out), str(notebook)],
                              env=env)
        if done.returncode != 0:
            sys.exit(f"cpu_dependence: {notebook.name} failed under --perturb {perturb}: "
                     "an assertion of the lesson does not hold on another CPU")
        executed[notebook.stem] = out / notebook.name
    return executed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", default=None, help="only these lessons, e.g. 03,08 (default: all)")
    parser.add_argument("--perturb", default="onednn",
                        help=f"how the floating-point order is changed, one run each: any of "
                             f"{', '.join(PERTURBATIONS)}, comma-separated (default: onednn)")
    parser.add_argument("--from", dest="executed", metavar="DIR", action="append", default=[],
                        help="compare the notebooks executed earlier into DIR instead (repeatable)")
    parser.add_argument("--write", action="store_true",
                        help="record the measured tolerances in the notebooks' cell metadata")
    parser.add_argument("--widen", action="store_true",
                        help="with --write: keep each recorded tolerance where it is wider than the measured")
    parser.add_argument("--check", action="store_true",
                        help="instead of measuring, compare each run with the stored outputs as nbval "
                             "does on another CPU: recorded tolerances where a cell has them, else strictly")
    args = parser.parse_args(argv)
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    wanted = args.lessons.split(",") if args.lessons else [n.stem[:2] for n in notebooks]
    unknown = sorted(set(wanted) - {n.stem[:2] for n in notebooks})
    if unknown:
        sys.exit(f"cpu_dependence: no lesson {', '.join(unknown)}; "
                 f"valid choices: {', '.join(n.stem[:2] for n in notebooks)}")
    perturbations = args.perturb.split(",")
    if bad := [p for p in perturbations if p not in PERTURBATIONS]:
        sys.exit(f"cpu_dependence: no perturbation {', '.join(bad)}; "
                 f"valid choices: {', '.join(PERTURBATIONS)}")
    notebooks = [n for n in notebooks if n.stem[:2] in wanted]
    with tempfile.TemporaryDirectory(prefix="cpu-dependence-") as scratch:
        runs = []
        for folder in map(Path, args.executed):  # a folder may hold some of the lessons only
            runs.append({n.stem: folder / n.name for n in notebooks if (folder / n.name).is_file()})
            if not runs[-1]:
                sys.exit(f"cpu_dependence: no executed lesson notebook in {folder}")
        if not args.executed:
            for perturb in perturbations:
                runs.append(execute(notebooks, Path(scratch) / perturb, perturb))
        if args.check:
            return check(notebooks, runs, Path(scratch))
        return report(notebooks, runs, args.write, Path(scratch), widen=args.widen)


def code_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def check_cell(want, got, sanitize, folder: Path, tally: Counter) -> list[str]:
    """One stored cell against one computed: within its tolerances if it has them, else strictly."""
    tolerance = outputs.cell_tolerance(want)
    want_texts, got_texts = outputs.texts(want.outputs), outputs.texts(got.outputs)
    if tolerance:
        comparison = outputs.compare_texts(want_texts, got_texts, tolerance, sanitize)
        problems = list(comparison.problems)
        tally["cells within a tolerance"] += 1
        tally["numbers within a tolerance"] += comparison.within_tolerance
        tally["lines not compared"] += comparison.masked_lines
    else:
        def clean(texts: dict) -> dict:
            return {kind: [sanitize(text) for text in values] for kind, values in texts.items()}
        problems = [] if clean(want_texts) == clean(got_texts) else ["the text differs (strict)"]
        tally["cells strict"] += 1
        tally["numbers strict"] += outputs.count_numbers(want_texts)
    problems += outputs.compare_figures(want.outputs, got.outputs, tolerance, folder)[1]
    tally["cells that fail"] += bool(problems)
    return problems


def check(notebooks: list[Path], runs: list[dict[str, Path]], scratch: Path) -> int:
    """Each run against the stored outputs, as ``notebooks/conftest.py`` compares off the machine."""
    sanitize, rows, failures = sanitizer(), [], []
    for k, run in enumerate(runs):
        for notebook in (n for n in notebooks if n.stem in run):
            tally: Counter = Counter()
            pairs = zip(code_cells(notebook), code_cells(run[notebook.stem]), strict=True)
            for number, (want, got) in enumerate(pairs):
                folder = scratch / f"check-{k}" / notebook.stem / f"cell-{number}"
                failures += [f"{run[notebook.stem]}, cell {number}: {problem}"
                             for problem in check_cell(want, got, sanitize, folder, tally)]
            rows.append([str(run[notebook.stem].parent), notebook.stem[:2]]
                        + [str(tally[key]) for key in CHECK_COLUMNS])
    print(padded_table(["run", "lesson", *CHECK_COLUMNS], rows))
    if failures:
        print("\n" + "\n".join(failures))
    return 1 if failures else 0


def report(notebooks: list[Path], runs: list[dict[str, Path]], write: bool, scratch: Path,
           widen: bool = False) -> int:
    """Compare each run with the stored outputs; print the table; with ``write``, record tolerances
    (with ``widen``, never narrower than the recorded ones)."""
    sanitize = sanitizer()
    stored, changed, structural = {}, {}, []  # changed: notebook -> {cell: [CellMeasure per run]}
    for notebook in notebooks:
        stored[notebook] = nbformat.read(notebook, as_version=4)
        per_run = [outputs.measure(stored[notebook].cells, nbformat.read(run[notebook.stem], as_version=4)
                                   .cells, sanitize, scratch / f"figures-{k}" / notebook.stem)
                   for k, run in enumerate(runs) if notebook.stem in run]
        if not per_run:
            sys.exit(f"cpu_dependence: {notebook.name} was executed in none of the runs")
        changed[notebook] = {}
        for number, measures in enumerate(zip(*per_run, strict=True)):
            if not any(m.depends_on_cpu for m in measures):
                continue
            problems = [p for m in measures for p in m.comparison.problems]
            problems += ["another number or size of figures" for m in measures if None in m.rms_values]
            if problems:
                structural.append(f"{notebook.stem}, cell {number}: {problems[0]}")
            changed[notebook][number] = list(measures)
    cells = [[m.comparison.needed for m in measures]
             for found in changed.values() for measures in found.values()]
    typical = outputs.typical_change(cells)
    rows = []
    for notebook in notebooks:
        code = [cell for cell in stored[notebook].cells if cell.cell_type == "code"]
        largest = {"atol": 0.0, "rtol": 0.0, "rms": 0.0}
        for number, cell in enumerate(code):
            measures = changed[notebook].get(number)
            unchecked = (outputs.cell_tolerance(cell) or {}).get("unchecked")
            # a cell with lines unchecked by hand keeps them, whether or not these runs moved it
            tolerance = outputs.unchanged_tolerance(cell, unchecked) if unchecked else None
            if measures and all(None not in m.rms_values for m in measures):
                tolerance = outputs.tolerance_from([m.comparison.needed for m in measures],
                                                   [m.rms_values for m in measures], typical, unchecked)
                for m in measures:
                    largest = {"atol": max(largest["atol"], m.comparison.needed["atol"]),
                               "rtol": max(largest["rtol"], m.comparison.needed["rtol"]),
                               "rms": max([largest["rms"], *m.rms_values])}
            if write:
                recorded, drawn = outputs.cell_tolerance(cell), len(figures.pngs(cell.get("outputs", [])))
                if recorded and len(recorded.get("figure_rms", [])) != drawn:
                    recorded = None  # its figures changed since it was recorded
                outputs.set_cell_tolerance(cell, outputs.wider(recorded, tolerance) if widen else tolerance)
        rows.append([notebook.stem[:2], str(len(code)), str(len(code) - len(changed[notebook])),
                     str(len(changed[notebook])), f"{largest['atol']:.4f}", f"{largest['rtol']:.4f}",
                     f"{largest['rms']:.2f}"])
        if write:
            nbformat.write(stored[notebook], notebook)
    print(padded_table(["lesson", "code cells", "unchanged (strict)", "changed (tolerance)",
                        "largest score change", "largest relative change", "largest figure RMS"], rows))
    print(f"\ntypical change of a changed cell (median over {len(cells)} cells, the floor of every "
          f"tolerance): score {typical['atol']:.4f}, relative {typical['rtol']:.4f}")
    if len(runs) > 1:
        print(leave_one_out(changed, {notebook.stem: [k for k, run in enumerate(runs) if notebook.stem in run]
                                      for notebook in notebooks}))
    if structural:
        print("\nchanged in more than their numbers (no tolerance can compare them):")
        print("\n".join(f"  {line}" for line in structural))
    return 1 if structural else 0


def leave_one_out(changed: dict, runs_of: dict[str, list[int]]) -> str:
    """Each run in turn against the tolerances the other runs give: does FACTOR cover another CPU?

    For each cell the left-out run holds, its change over the tolerance from the rest (scores,
    other numbers and figures, the largest of the three); above 1 the left-out run would fail
    there. Where the rest give no tolerance for what it moved (a cell they left strict, or a count
    where they moved scores only), it would fail too: those are counted apart.
    """
    cells = [(notebook.stem, number, measures) for notebook, found in changed.items()
             for number, measures in found.items() if len(measures) > 1]
    ratios = []  # (change / tolerance, where), one per cell and run left out
    for left in sorted({k for stem, *_ in cells for k in runs_of[stem]}):
        rest = {(stem, number): [m for k, m in zip(runs_of[stem], measures, strict=True) if k != left]
                for stem, number, measures in cells}
        typical = outputs.typical_change([[m.comparison.needed for m in ms] for ms in rest.values()])
        for stem, number, measures in cells:
            if left not in runs_of[stem]:
                continue
            others, out = rest[stem, number], measures[runs_of[stem].index(left)]
            where = f"{stem[:2]} cell {number}, run {left + 1}"
            if not any(m.depends_on_cpu for m in others) or any(None in m.rms_values for m in measures):
                ratios.append((math.inf if out.depends_on_cpu else 0.0, where))
                continue
            tolerance = outputs.tolerance_from([m.comparison.needed for m in others],
                                               [m.rms_values for m in others], typical)
            parts = [out.comparison.needed[kind] / tolerance[kind] if tolerance[kind] else math.inf
                     for kind in ("atol", "rtol") if out.comparison.needed[kind] > 0]
            parts += [rms / limit for rms, limit in zip(out.rms_values, tolerance["figure_rms"], strict=True)]
            ratios.append((max(parts, default=0.0), where))
    beyond = sorted((r for r in ratios if r[0] > 1), reverse=True)
    unmeasured = sum(math.isinf(ratio) for ratio, _ in ratios)
    largest = max((r for r in ratios if not math.isinf(r[0])), default=(0.0, "no cell"))
    lines = [f"\neach run left out in turn, against the tolerances the other runs give (FACTOR "
             f"{outputs.FACTOR:g}), one case per cell and run left out: {len(ratios) - len(beyond)} of "
             f"{len(ratios)} within; {unmeasured} moved what the others did not (no tolerance for it); "
             f"of the rest, the largest change is {largest[0]:.2f} times its tolerance ({largest[1]})"]
    lines += [f"  beyond: {where}, {ratio:.2f} times" for ratio, where in beyond]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
