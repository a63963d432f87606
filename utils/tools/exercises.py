"""Exercises: student notebooks generated from the lessons, and grading of submitted ones.

A lesson notebook is the solution version. Each exercise's code cell is tagged ``solution``;
the lines between a ``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line are the solution,
and an optional ``# HINT: …`` line right after BEGIN gives the stub's hint. ``course exercises
build`` writes ``notebooks/exercises/NN_slug.ipynb`` for every lesson, each solution replaced by
``raise NotImplementedError("<hint>")``; ``check`` fails when that folder is stale; ``grade``
executes submitted student notebooks and writes one CSV row per exercise.

Why not nbgrader or Otter Grader: both bring their own assignment format, configuration and
(nbgrader) a gradebook database or (Otter) Docker, to replace about a hundred lines over
papermill, which the course already uses; the checks themselves are plain functions in
``utils.checks``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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
                 "run the check below it.\nEach check tests your function on cases you cannot see and "
                 "says what is wrong.")


def exercises_intro(notebook_name: str) -> str:
    """The "## Exercises" cell that opens every lesson's exercises, linking its student notebook."""
    colab = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(f'notebooks/{FOLDER}/{notebook_name}')})"
    return ("## Exercises\n\nWork them first in the student notebook, where each solution is replaced by a "
            f"stub: {colab}.\nEach check tests your function on cases you cannot see and says what is wrong.")


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


def _check_cells(notebook) -> list[tuple[str, object]]:
    """(exercise id, cell) of every cell that calls a check."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            found += [(f"{m[1]}.{m[2]}", cell) for m in CHECK_CALL.finditer(cell.source)]
    return found


def _read_grades(path: Path) -> dict[str, dict]:
    grades = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                grades[record["exercise"]] = record  # a check run twice: its last outcome counts
    return grades


def grade_submission(path: Path, parameters: dict, timeout: int, kernel: str = "python3") -> list[dict]:
    """Execute one submitted notebook, errors allowed, and return one row per exercise and a total."""
    import nbformat
    import papermill

    name = path.name
    try:
        expected = [exercise_id for exercise_id, _ in _check_cells(nbformat.read(path, as_version=4))]
    except Exception as error:  # not a notebook at all
        return [{"submission": name, "exercise": "total", "passed": 0,
                 "message": f"unreadable notebook: {type(error).__name__}: {error}"}]
    stopped = None
    with tempfile.TemporaryDirectory() as scratch:
        grades_file, executed = Path(scratch) / "grades.jsonl", Path(scratch) / name
        previous = os.environ.get("COURSE_GRADES")
        os.environ["COURSE_GRADES"] = str(grades_file)
        try:
            papermill.execute_notebook(str(path), str(executed), parameters=parameters, kernel_name=kernel,
                                       progress_bar=False, cwd=str(path.parent), allow_errors=True,
                                       execution_timeout=timeout)
        except papermill.PapermillExecutionError:
            pass  # a cell raised; allow_errors ran the rest, and the checks recorded their outcome
        except Exception as error:  # the kernel died, a cell timed out, a parameter was refused
            first_line = (str(error).strip().splitlines() or [""])[0]
            stopped = f"{type(error).__name__}: {first_line}"
        finally:
            if previous is None:
                os.environ.pop("COURSE_GRADES", None)
            else:
                os.environ["COURSE_GRADES"] = previous
        grades = _read_grades(grades_file)
        cells = dict(_check_cells(nbformat.read(executed, as_version=4))) if executed.exists() else {}
    rows = []
    for exercise_id in dict.fromkeys([*expected, *sorted(grades)]):
        if exercise_id in grades:
            passed, message = grades[exercise_id]["passed"], grades[exercise_id]["message"]
        else:
            errors = [o for o in cells.get(exercise_id, {}).get("outputs", []) if o.output_type == "error"]
            passed = False
            if errors:
                message = f"the check cell raised {errors[0].ename}: {errors[0].evalue}"
            elif stopped:
                message = f"not run: the notebook stopped early ({stopped})"
            else:
                message = "not run"
        rows.append({"submission": name, "exercise": exercise_id, "passed": bool(passed), "message": message})
    total = sum(row["passed"] for row in rows)
    note = f"{total} of {len(rows)} exercises passed" + (f"; the notebook stopped early ({stopped})"
                                                          if stopped else "")
    rows.append({"submission": name, "exercise": "total", "passed": total, "message": note})
    return rows


def grade(submissions: Path, out: Path, parameters: dict, timeout: int) -> int:
    """Grade every notebook in ``submissions`` into the CSV ``out``, one submission at a time."""
    paths = sorted(submissions.glob("*.ipynb"))
    if not paths:
        raise ExerciseError(f"no notebooks (*.ipynb) in {submissions}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as sheet:
        writer = csv.DictWriter(sheet, fieldnames=CSV_FIELDS)
        writer.writeheader()
        sheet.flush()
        for path in paths:
            rows = grade_submission(path, parameters, timeout)
            writer.writerows(rows)
            sheet.flush()  # a later crash of the grader keeps the grades written so far
            print(f"{path.name}: {rows[-1]['message']}")
    return len(paths)


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
            if not Path(args.submissions).is_dir():
                raise ExerciseError(f"{args.submissions} is not a folder of submitted notebooks")
            parameters = {name: parse_value(value) for name, value in args.parameters or []}
            count = grade(Path(args.submissions), Path(args.out), parameters, args.timeout)
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
        "grade", help="execute submitted notebooks and write their grades as CSV",
        epilog="example: course exercises grade submissions/ --out grades.csv -p limit 200 -p epochs 1")
    grade_parser.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="folder of submitted notebooks")
    grade_parser.add_argument("--out", required=True, metavar="CSV", help="the grades file to write")
    grade_parser.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append",
                              metavar=("NAME", "VALUE"), help="a papermill parameter, e.g. -p limit 200")
    grade_parser.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                              help="longest a cell may run (default: %(default)s)")
    parser.set_defaults(handler=_command)
