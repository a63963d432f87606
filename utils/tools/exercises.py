"""Exercises: student notebooks generated from the lessons, and grading of submitted ones.

A lesson notebook is the solution version. Each exercise's code cell is tagged ``solution``;
the lines between a ``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line are the solution,
and an optional ``# HINT: …`` line right after BEGIN gives the stub's hint. ``course exercises
build`` writes ``notebooks/exercises/NN_slug.ipynb`` for every lesson, each solution replaced by
``raise NotImplementedError("<hint>")``; ``check`` fails when that folder is stale; ``grade``
executes submitted student notebooks and runs the checks on their answers itself
(``utils/tools/grading.py``): one CSV row per student, one column per exercise.

Why not nbgrader or Otter Grader: both bring their own assignment format, configuration and
(nbgrader) a gradebook database or (Otter) Docker, to replace about a hundred lines over
papermill, which the course already uses; the checks themselves are plain functions in
``utils.checks``. What they bring that matters for trust is kept: check cells verified against
the lesson's, hidden cases, per-exercise points, grades recomputed outside the submission.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import textwrap
from pathlib import Path

from utils.course import badge_row, colab_url
from utils.tools import CHECKOUT

SOLUTION_TAG = "solution"
BEGIN, END, HINT = "# BEGIN SOLUTION", "# END SOLUTION", "# HINT:"
FOLDER = "exercises"  # inside notebooks/
HEADING = re.compile(r"^### Exercise (\d\d\.\d+) — ", re.MULTILINE)
CHECK_CALL = re.compile(r"\bchecks\.exercise_(\d\d)_(\d+)\(")
STUDENT_NOTE = ("> **Student version.** Each exercise's solution is replaced by a stub that raises "
                "`NotImplementedError`. Write your code in its place, then run the check below it. "
                "The lesson with its solutions is [{name}](../{name}).")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
CSV_FIELDS = ("submission", "exercise", "passed", "message")


class ExerciseError(ValueError):
    """A lesson notebook whose exercises cannot be turned into a student version."""


STUDENT_INTRO = ("## Exercises\n\nWrite each function where its stub raises `NotImplementedError`, then "
                 "run the check below it.\nEach check runs your function on cases of its own, names the "
                 "case it fails on and says what is\nwrong; grading runs more cases, which the notebook "
                 "never shows.")


def exercises_intro(notebook_name: str) -> str:
    """The "## Exercises" cell that opens every lesson's exercises, linking its student notebook."""
    colab = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(f'notebooks/{FOLDER}/{notebook_name}')})"
    return ("## Exercises\n\nWork them first in the student notebook, where each solution is replaced by a "
            f"stub: {colab}.\nEach check runs your function on cases of its own, names the case it fails "
            "on and says what is\nwrong; grading runs more cases, which the notebook never shows.")


def lesson_notebooks(root: Path) -> list[Path]:
    """Every lesson notebook ``notebooks/NN_slug.ipynb`` under ``root``, in order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _raise(indent: str, hint: str, width: int = 100) -> list[str]:
    """``raise NotImplementedError("<hint>")``, its message split over lines that fit ``width``."""
    line = f"{indent}raise NotImplementedError({json.dumps(hint, ensure_ascii=False)})"
    if len(line) <= width:
        return [line]
    parts = textwrap.wrap(hint, width - len(indent) - 8, break_on_hyphens=False)
    quoted = [json.dumps(part + (" " if i < len(parts) - 1 else ""), ensure_ascii=False)
              for i, part in enumerate(parts)]
    return [f"{indent}raise NotImplementedError(", *(f"{indent}    {q}" for q in quoted), f"{indent})"]


def _stub(lines: list[str], where: str, exercise_id: str | None) -> list[str]:
    """The cell's lines with each solution region replaced by a raising stub."""
    out, index, regions = [], 0, 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == END:
            raise ExerciseError(f"{where}: '{END}' on line {index + 1} without a '{BEGIN}' before it")
        if line.strip() != BEGIN:
            out.append(line)
            index += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        try:
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() in (BEGIN, END))
        except StopIteration:
            raise ExerciseError(f"{where}: '{BEGIN}' on line {index + 1} has no '{END}'") from None
        if lines[end].strip() == BEGIN:
            raise ExerciseError(f"{where}: '{BEGIN}' on line {end + 1} inside the region opened on "
                                f"line {index + 1}; close it with '{END}' first")
        if lines[end][: len(lines[end]) - len(lines[end].lstrip())] != indent:
            raise ExerciseError(f"{where}: '{END}' on line {end + 1} is not indented like '{BEGIN}' "
                                f"on line {index + 1}")
        first = lines[index + 1].strip() if index + 1 < end else ""
        hint = first[len(HINT):].strip() if first.startswith(HINT) else (
            f"write your solution to exercise {exercise_id}" if exercise_id else "write your solution")
        out += _raise(indent, hint)
        index, regions = end + 1, regions + 1
    if not regions:
        raise ExerciseError(f"{where}: tagged '{SOLUTION_TAG}' but has no '{BEGIN}' … '{END}' region")
    return out


def student_version(notebook, notebook_path: str):
    """A copy of a lesson notebook (nbformat) with its solutions replaced by stubs."""
    import copy

    import nbformat

    student = copy.deepcopy(notebook)
    student.metadata.pop("course", None)  # where the lesson's outputs were made, how nbval compares them
    for cell in student.cells:
        cell.get("metadata", {}).pop("course", None)
    folder, name = notebook_path.rsplit("/", 1)
    student_path = f"{folder}/{FOLDER}/{name}"
    exercise_id, solutions = None, 0
    for index, cell in enumerate(student.cells):
        where = f"{notebook_path}, cell {index}"
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "markdown":
            heading = HEADING.search(cell.source)
            exercise_id = heading[1] if heading else exercise_id
        if cell.cell_type == "markdown" and cell.source.strip() == exercises_intro(name):
            cell.source = STUDENT_INTRO  # not a link to itself
        if SOLUTION_TAG in tags:
            if cell.cell_type != "code":
                raise ExerciseError(f"{where}: a {cell.cell_type} cell is tagged '{SOLUTION_TAG}'; "
                                    "only code cells can be")
            cell.source = "\n".join(_stub(cell.source.split("\n"), where, exercise_id))
            solutions += 1
        elif cell.cell_type == "code" and {BEGIN, END} & {line.strip() for line in cell.source.splitlines()}:
            raise ExerciseError(f"{where}: has solution markers but no '{SOLUTION_TAG}' tag")
        if cell.cell_type == "code" and (SOLUTION_TAG in tags or CHECK_CALL.search(cell.source)):
            cell.outputs, cell.execution_count = [], None
    if not solutions:
        raise ExerciseError(f"{notebook_path}: no cell tagged '{SOLUTION_TAG}'; every lesson has "
                            "exercises (see the '## Exercises' section of the others)")
    title = student.cells[0]
    lesson_badges = badge_row(notebook_path)
    if title.cell_type != "markdown" or lesson_badges not in title.source:
        raise ExerciseError(f"{notebook_path}, cell 0: the title cell does not hold the lesson's badge row")
    title.source = title.source.replace(
        lesson_badges, badge_row(student_path) + "\n\n" + STUDENT_NOTE.format(name=name))
    nbformat.validate(student)
    return student


def build(root: Path, out: Path | None = None) -> list[Path]:
    """Write the student version of every lesson into ``out`` (default notebooks/exercises/)."""
    import nbformat

    notebooks = lesson_notebooks(root)
    if not notebooks:
        raise ExerciseError(f"no lesson notebooks notebooks/NN_slug.ipynb under {root}")
    out = out or root / "notebooks" / FOLDER
    texts = {}
    for path in notebooks:  # every lesson first, so that bad input writes nothing
        student = student_version(nbformat.read(path, as_version=4), f"notebooks/{path.name}")
        texts[out / path.name] = nbformat.writes(student) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    for stale in set(out.glob("*.ipynb")) - set(texts):
        stale.unlink()
    for path, text in texts.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return sorted(texts)


def stale(root: Path) -> list[str]:
    """What differs between the committed student notebooks and freshly generated ones."""
    committed = root / "notebooks" / FOLDER
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        build(root, fresh)
        names = sorted({p.name for p in fresh.glob("*.ipynb")} | {p.name for p in committed.glob("*.ipynb")})
        problems = []
        for name in names:
            old, new = committed / name, fresh / name
            if not old.exists():
                problems.append(f"notebooks/{FOLDER}/{name} is missing")
            elif not new.exists():
                problems.append(f"notebooks/{FOLDER}/{name} has no lesson notebooks/{name}")
            elif old.read_text(encoding="utf-8") != new.read_text(encoding="utf-8"):
                problems.append(f"notebooks/{FOLDER}/{name} differs from its lesson")
    return problems


# Grading ---------------------------------------------------------------------------------------

def parse_value(text: str):
    """A ``-p name value`` value as papermill's command line reads it: int, float, bool, None or str."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


# The command -----------------------------------------------------------------------------------

def _command(args) -> int:
    root = Path(getattr(args, "root", "."))
    try:
        if args.action == "build":
            written = build(root)
            print(f"{len(written)} student notebooks in notebooks/{FOLDER}/")
        elif args.action == "check":
            problems = stale(root)
            for problem in problems:
                print(f"course exercises check: {problem}", file=sys.stderr)
            if problems:
                print("the student notebooks are stale: run `course exercises build`", file=sys.stderr)
                return 1
            print(f"student notebooks up to date ({len(lesson_notebooks(root))} lessons)")
        elif args.action == "grade":
            from utils.tools import grading

            if not Path(args.submissions).is_dir():
                raise ExerciseError(f"{args.submissions} is not a folder of submitted notebooks")
            parameters = {name: parse_value(value) for name, value in args.parameters or []}
            for name, value in (("--timeout", args.timeout), ("--jobs", args.jobs)):
                if value is not None and value <= 0:
                    raise ExerciseError(f"{name} {value}: must be positive")
            if args.memory_gb < 0:
                raise ExerciseError(f"--memory-gb {args.memory_gb}: must be 0 (no limit) or positive")
            count = grading.grade(Path(args.submissions), Path(args.out), parameters, args.timeout, root=root,
                                  lesson=args.lesson, points=grading.parse_points(args.points),
                                  jobs=args.jobs, memory_gb=args.memory_gb,
                                  gradescope=Path(args.gradescope) if args.gradescope else None,
                                  sandbox=args.sandbox)
            print(f"graded {count} submission(s) into {args.out}")
    except ExerciseError as error:
        print(f"course exercises {args.action}: error: {error}", file=sys.stderr)
        return 2
    return 0


def add_parser(subparsers) -> None:
    """The ``course exercises`` command: ``build``, ``check`` and ``grade``."""
    checkout = CHECKOUT
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", metavar="DIR",
                        default=str(checkout if (checkout / "notebooks").is_dir() else Path.cwd()),
                        help="the repository folder holding notebooks/ (default: %(default)s)")
    parser = subparsers.add_parser(
        "exercises", help="generate the student notebooks, check them, grade submissions",
        description="Student notebooks generated from the lessons' solution cells, and their grading.")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("build", parents=[common],
                       help=f"write notebooks/{FOLDER}/NN_slug.ipynb for every lesson")
    actions.add_parser("check", parents=[common], help="fail when the student notebooks are stale")
    grade_parser = actions.add_parser(
        "grade", parents=[common], help="execute submitted notebooks and write their grades as CSV",
        description="Execute each submitted notebook in its own process and folder, then run the course's "
                    "checks (visible and hidden cases) on the answers it defines. The grades come from "
                    "the checks, never from what the submission prints or writes.",
        epilog="example: course exercises grade submissions/ --out grades.csv -p limit 200 -p epochs 1 "
               "--points 01.1=2")
    grade_parser.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="folder of submitted notebooks")
    grade_parser.add_argument("--out", required=True, metavar="CSV",
                              help="the grades file to write, one row per student; the reasons go to "
                                   "the same name ending -details.csv")
    grade_parser.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append",
                              metavar=("NAME", "VALUE"), help="a papermill parameter, e.g. -p limit 200")
    grade_parser.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                              help="longest a cell, or one check, may run (default: %(default)s)")
    grade_parser.add_argument("--lesson", metavar="NN", help="the lesson graded (default: read from each "
                              "submission's check cells and exercise headings)")
    grade_parser.add_argument("--points", action="append", metavar="EXERCISE=POINTS",
                              help="an exercise's points, e.g. --points 01.1=2 (default: 1 each)")
    grade_parser.add_argument("--jobs", type=int, metavar="N",
                              help="submissions graded at once (default: the number of CPU cores)")
    grade_parser.add_argument("--memory-gb", type=float, default=8.0, metavar="GB",
                              help="address-space limit of each submission's processes, 0 for none, "
                                   "as a GPU's driver needs (default: %(default)s)")
    grade_parser.add_argument("--gradescope", metavar="DIR",
                              help="also write Gradescope's results.json: DIR/results.json for one "
                                   "submission, DIR/<name>/results.json for several")
    grade_parser.add_argument("--sandbox", action="store_true",
                              help="grade each submission in a bubblewrap sandbox: files read-only but "
                                   "its own folder, the other submissions hidden, no network")
    parser.set_defaults(handler=_command)
