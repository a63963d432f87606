"""Exercises: every lesson has them, their solutions pass, the student notebooks are generated
from the lessons, stay up to date, run up to each stub, and a folder of them can be graded.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from utils import checks
from utils.tools import exercises, grading
from utils.tools.cli import main

import nbformat
import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = exercises.lesson_notebooks(REPO)
STUDENT = REPO / "notebooks" / exercises.FOLDER
CHECK_CALL = re.compile(r"\bchecks\.(exercise_(\d\d)_(\d+))\((\w+)\)")


def read(path: Path):
    return nbformat.read(path, as_version=4)


def each_lesson(test):
    return pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)(test)


def exercise_cells(notebook) -> list[tuple[str, object, object, object]]:
    """(id, task cell, solution cell, check cell) of each exercise, as the convention lays them out."""
    cells, found = notebook.cells, []
    for index, cell in enumerate(cells):
        if exercises.SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            task = cells[index - 1]
            heading = exercises.HEADING.search(task.source) if task.cell_type == "markdown" else None
            found.append((heading[1] if heading else None, task, cell, cells[index + 1]))
    return found


# The convention ---------------------------------------------------------------------------------

@each_lesson
def test_every_lesson_has_two_or_three_exercises_in_place(path):
    notebook, number = read(path), path.name[:2]
    found = exercise_cells(notebook)
    assert 2 <= len(found) <= 3, f"notebooks/{path.name}: {len(found)} exercises, expected 2 or 3"
    numbered = [f"{number}.{k}" for k in range(1, len(found) + 1)]
    assert [exercise_id for exercise_id, *_ in found] == numbered, (
        f"notebooks/{path.name}: each solution cell follows an '### Exercise {number}.k — title' cell")
    sources = [cell.source for cell in notebook.cells]
    intro = next(i for i, s in enumerate(sources) if s.startswith("## Exercises"))
    check_yourself = next(i for i, s in enumerate(sources) if s.startswith("## Check yourself"))
    assert " ".join(sources[intro].split()) == " ".join(exercises.exercises_intro(path.name).split())
    for exercise_id, task, solution, check in found:
        assert intro < notebook.cells.index(task) < check_yourself, f"{exercise_id} is outside its section"
        call = CHECK_CALL.search(check.source)
        assert call and f"{call[2]}.{call[3]}" == exercise_id, (
            f"exercise {exercise_id}: the cell after its solution must call checks.exercise_"
            f"{exercise_id.replace('.', '_')}(<function>)")
        assert callable(getattr(checks, call[1]))
        assert f"def {call[4]}(" in solution.source, f"{exercise_id}: the solution cell defines {call[4]}"


def _is_definition(node) -> bool:
    """An import, a function or a constant: what a solution may use besides its arguments."""
    if isinstance(node, ast.Assign):
        if not all(isinstance(target, ast.Name) for target in node.targets):
            return False  # `probe.trainable = True` sets state; it defines nothing
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        return True
    return isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef)


def _namespace_before(notebook, stop) -> dict:
    """The imports, functions and constants of the cells before ``stop``, executed; nothing else."""
    namespace: dict = {}
    for cell in notebook.cells[: notebook.cells.index(stop)]:
        if cell.cell_type == "code" and "google.colab" not in cell.source:
            keep = [node for node in ast.parse(cell.source).body if _is_definition(node)]
            exec(compile(ast.Module(keep, type_ignores=[]), "<lesson>", "exec"), namespace)
    return namespace


@each_lesson
def test_each_solution_passes_its_check(path, capsys):
    """The lesson's own solutions pass, run alone (nbval runs them in the full lesson too), on the
    visible cases with exactly the output the lesson stores, and on the hidden cases as grading runs."""
    notebook = read(path)
    for exercise_id, _, solution, check in exercise_cells(notebook):
        namespace = _namespace_before(notebook, solution)
        exec(solution.source, namespace)
        call = CHECK_CALL.search(check.source)
        try:
            getattr(checks, call[1])(namespace[call[4]])
        except NameError as error:
            pytest.fail(f"the solution of {exercise_id} uses {error.name!r}, which an earlier cell computes: "
                        "a solution should need only its arguments, imports, functions and constants")
        stored = "".join(output.get("text", "") for output in check.outputs if output.output_type == "stream")
        assert capsys.readouterr().out == stored, f"{exercise_id}: the check cell's stored output changed"
        getattr(checks, call[1])(namespace[call[4]], hidden=True)
        assert capsys.readouterr().out.startswith(f"Exercise {exercise_id}: correct")



def _case(value):
    """What identifies one argument of a check's case: an array's values, a model's layers."""
    import hashlib

    import keras
    import numpy as np

    if isinstance(value, keras.Model):
        return tuple((type(layer).__name__, str(layer.output.shape)) for layer in value.layers)
    if isinstance(value, np.ndarray | list | tuple) and not isinstance(value, str):
        array = np.asarray(value, dtype=object if isinstance(value, list | tuple) else None)
        return array.shape, hashlib.sha256(repr(array.tolist()).encode()).hexdigest()
    return type(value).__name__, str(getattr(value, "shape", "")), repr(value)[:200]


@each_lesson
def test_grading_runs_cases_the_notebook_never_shows(path, capsys):
    """Each check, run as grading runs it, calls the answer on cases that its visible run does not:
    an answer tuned to the notebook's feedback still meets new cases."""
    notebook = read(path)
    for exercise_id, _, solution, check in exercise_cells(notebook):
        namespace = _namespace_before(notebook, solution)
        exec(solution.source, namespace)
        call = CHECK_CALL.search(check.source)
        seen = {False: set(), True: set()}
        for hidden in (False, True):
            def recorded(*args, _solution=namespace[call[4]], _seen=seen[hidden], **kwargs):
                named = tuple(sorted((key, _case(value)) for key, value in kwargs.items()))
                _seen.add((tuple(_case(a) for a in args), named))
                return _solution(*args, **kwargs)

            getattr(checks, call[1])(recorded, hidden=hidden)
        capsys.readouterr()
        assert seen[True] - seen[False], f"{exercise_id}: grading runs no case beyond the visible ones"


@pytest.mark.slow
@each_lesson
def test_each_solution_passes_in_the_grading_process(path, tmp_path):
    """The grader's checking process passes the lesson's solutions: its guards (a process of its own,
    a copy of the package, every module and class watched for patching) reject no correct answer."""
    notebook = read(path)
    for exercise_id, _, solution, check in exercise_cells(notebook):
        namespace = _namespace_before(notebook, solution)
        exec(solution.source, namespace)
        call = CHECK_CALL.search(check.source)
        exercise = grading.Exercise(exercise_id, call[4], check.source)
        verdict = grading.check_answer(exercise, grading.encode_answer(namespace[call[4]]), 300, tmp_path)
        assert verdict == {"passed": True, "message": "correct"}, f"{exercise_id}: {verdict}"

# The generator ------------------------------------------------------------------------------------

def test_student_notebooks_are_up_to_date():
    problems = exercises.stale(REPO)
    assert not problems, "; ".join(problems) + ": run `course exercises build`"


@each_lesson
def test_student_version_has_stubs_badges_and_no_solutions(path):
    lesson, student = read(path), read(STUDENT / path.name)
    assert len(lesson.cells) == len(student.cells)
    for exercise_id, _, solution, check in exercise_cells(student):
        assert "NotImplementedError(" in solution.source and exercises.BEGIN not in solution.source
        assert solution.outputs == [] and solution.execution_count is None
        assert check.outputs == [] and check.execution_count is None, f"{exercise_id}: stale check output"
    lesson_solutions = [cell.source for _, _, cell, _ in exercise_cells(lesson)]
    for source, (_, _, cell, _) in zip(lesson_solutions, exercise_cells(student), strict=True):
        body = source.split(exercises.BEGIN)[1].split(exercises.END)[0].strip().splitlines()[-1].strip()
        assert body not in cell.source, f"a solution line is left in the student version: {body!r}"
    title = student.cells[0].source
    assert f"blob/main/notebooks/{exercises.FOLDER}/{path.name}" in title and "**Student version.**" in title
    assert f"blob/main/notebooks/{path.name})" not in title
    intros = [cell.source for cell in student.cells if cell.source.startswith("## Exercises")]
    assert intros == [exercises.STUDENT_INTRO], "the student version's intro must not link to itself"


def _notebook(*cells) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    title = "# Lesson 99\n\n" + exercises.badge_row("notebooks/99_x.ipynb")
    notebook.cells = [nbformat.v4.new_markdown_cell(title)]
    for kind, source, tags in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    return notebook


SOLUTION = "\n".join(["def f(x):", "    y = 1", "    # BEGIN SOLUTION", "    # HINT: add one",
                      "    return x + y", "    # END SOLUTION"])


def test_stub_takes_the_hint_or_names_the_exercise():
    notebook = _notebook(("markdown", "### Exercise 99.1 — add", []), ("code", SOLUTION, ["solution"]),
                         ("markdown", "### Exercise 99.2 — again", []),
                         ("code", SOLUTION.replace("    # HINT: add one\n", ""), ["solution"]))
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", text="old")]
    notebook.cells[2].execution_count = 3
    student = exercises.student_version(notebook, "notebooks/99_x.ipynb")
    assert student.cells[2].source == 'def f(x):\n    y = 1\n    raise NotImplementedError("add one")'
    default = 'raise NotImplementedError("write your solution to exercise 99.2")'
    assert student.cells[4].source.endswith(default)
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert notebook.cells[2].outputs, "the lesson itself is left unchanged"


@pytest.mark.parametrize("cells, message", [
    ([("code", "def f():\n    return 1", ["solution"])], "cell 1: tagged 'solution' but has no"),
    ([("code", "def f():\n    # BEGIN SOLUTION\n    return 1", ["solution"])],
     "line 2 has no '# END SOLUTION'"),
    ([("code", "def f():\n    return 1\n    # END SOLUTION", ["solution"])], "without a '# BEGIN SOLUTION'"),
    ([("code", "def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION", ["solution"])],
     "inside the region opened on line 2"),
    ([("code", "def f():\n    # BEGIN SOLUTION\n    return 1\n# END SOLUTION", ["solution"])],
     "not indented like"),
    ([("code", "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION", [])], "no 'solution' tag"),
    ([("markdown", "text", ["solution"])], "a markdown cell is tagged 'solution'"),
    ([("code", "x = 1", [])], "notebooks/99_x.ipynb: no cell tagged 'solution'"),
])
def test_bad_input_is_named(cells, message):
    with pytest.raises(exercises.ExerciseError, match=re.escape(message)) as caught:
        exercises.student_version(_notebook(*cells), "notebooks/99_x.ipynb")
    assert "notebooks/99_x.ipynb" in str(caught.value)


def _copy_lessons(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    for path in LESSONS:
        (tmp_path / "notebooks" / path.name).write_bytes(path.read_bytes())
    return tmp_path


def test_build_is_deterministic_and_check_sees_a_stale_folder(tmp_path, capsys):
    root = _copy_lessons(tmp_path)
    assert main(["exercises", "build", "--root", str(root)]) == 0
    first = {p.name: p.read_bytes() for p in (root / "notebooks" / "exercises").glob("*.ipynb")}
    assert main(["exercises", "build", "--root", str(root)]) == 0
    assert first == {p.name: p.read_bytes() for p in (root / "notebooks" / "exercises").glob("*.ipynb")}
    assert main(["exercises", "check", "--root", str(root)]) == 0
    lesson = root / "notebooks" / LESSONS[0].name
    text = lesson.read_text(encoding="utf-8")
    changed = text.replace("# BEGIN SOLUTION", "# BEGIN SOLUTION\\n    x = 1", 1)
    lesson.write_text(changed, encoding="utf-8")
    capsys.readouterr()
    assert main(["exercises", "check", "--root", str(root)]) == 1
    assert f"notebooks/exercises/{LESSONS[0].name} differs from its lesson" in capsys.readouterr().err


def test_build_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    root = _copy_lessons(tmp_path)
    lesson = root / "notebooks" / LESSONS[-1].name
    lesson.write_text(lesson.read_text(encoding="utf-8").replace("# END SOLUTION", "", 1), encoding="utf-8")
    assert main(["exercises", "build", "--root", str(root)]) == 2
    error = capsys.readouterr().err
    assert f"notebooks/{LESSONS[-1].name}, cell " in error and "has no '# END SOLUTION'" in error
    assert not (root / "notebooks" / "exercises").exists()


# The student notebooks run, and the quick runs' assertions ride along ------------------------------

sys.path.insert(0, str(Path(__file__).parent))
from test_notebooks_papermill import QUICK, QUICK_DATASET  # noqa: E402  (the lessons' quick settings)

# What a lesson's results must say on the quick runs' dataset, beyond lesson and dataset.
EXPECTED_QUICK = {"02": {"cnn3_params": 122_570, "cnn2_params": 315_722, "cnn3_gap_params": 61_130}}


def execute_allowing_errors(source: Path, out: Path, env: dict[str, str], monkeypatch, **parameters):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        papermill.execute_notebook(str(source), str(out), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, cwd=str(source.parent), allow_errors=True)
    except papermill.PapermillExecutionError:
        pass  # the stubs raised; allow_errors ran every cell anyway
    return read(out)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(STUDENT.glob("*.ipynb")), ids=lambda p: p.stem)
def test_student_notebook_runs_up_to_each_stub(path, subprocess_env, tmp_path, monkeypatch):
    """On CIFAR-10 with the quick settings: the only errors are the stubs', raised through each
    check cell. The lesson's results are those its quick run must give. A lesson with a test set
    runs as `course run`'s candidates do (report_test=False): it records no test metric."""
    from utils.course import read_results

    lesson = path.name[:2]
    candidate = {"report_test": False} if "report_test" in papermill.inspect_notebook(str(path)) else {}
    executed = execute_allowing_errors(path, tmp_path / path.name, subprocess_env, monkeypatch,
                                       dataset=QUICK_DATASET, **QUICK[lesson], **candidate)
    errors = [(cell.source, output) for cell in executed.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    unexpected = [f"{output.ename}: {output.evalue} in\n{source}" for source, output in errors
                  if output.ename != "NotImplementedError"]
    assert not unexpected, "\n\n".join(unexpected)
    checks_called = [m[1] for cell in executed.cells if cell.cell_type == "code"
                     for m in CHECK_CALL.finditer(cell.source)]
    assert len(errors) == len(checks_called), "each check cell, and only those, stops at its stub"
    stopped = [cell for cell in executed.cells if cell.cell_type == "code" and CHECK_CALL.search(cell.source)
               and any(output.output_type == "error" for output in cell.outputs)]
    assert len(stopped) == len(checks_called), "the stub's error shows in its check cell"
    results = read_results(executed)
    assert results.get("lesson") == lesson and results.get("dataset") == QUICK_DATASET
    assert not [key for key in results if key.startswith("test")], "report_test=False touched the test set"
    for key, value in EXPECTED_QUICK.get(lesson, {}).items():
        assert results[key] == value, f"lesson {lesson}: {key} = {results[key]}, expected {value}"


# Grading (tests/test_grading.py has the rest) -------------------------------------------------

def test_grade_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["exercises", "grade", str(tmp_path / "none"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "is not a folder of submitted notebooks" in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [("200", 200), ("0.5", 0.5), ("None", None), ("True", True),
                                         ("mnist", "mnist")])
def test_parameters_are_read_as_papermill_reads_them(text, value):
    assert exercises.parse_value(text) == value
