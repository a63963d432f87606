"""Grading (utils/tools/grading.py): grades come from the grader's own checks, never from what a
submission prints, writes or patches; check cells are verified; each submission runs in its own
process with limits, and the instructor gets points, a CSV and Gradescope results.
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

from utils.tools import exercises, grading
from utils.tools.cli import main

import nbformat
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LESSON = exercises.lesson_notebooks(REPO)[0]  # lesson 01: numpy answers, quick to grade
EXERCISES = grading.lesson_exercises(LESSON)


def _lesson_cells():
    """(exercise id, heading, solution source, check source) of lesson 01."""
    cells, found = nbformat.read(LESSON, as_version=4).cells, []
    for index, cell in enumerate(cells):
        if exercises.SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            check = cells[index + 1].source
            call = grading.CHECK_CALL.search(check)
            found.append((f"{call[1]}.{call[2]}", cells[index - 1].source, cell.source, check))
    return found


def submission(*extra: str, solved: bool = True, drop: str | None = None, change: str | None = None,
               before_second: str | None = None, first: str | None = None):
    """A lesson-01 submission: its exercises solved (or stubs), then ``extra`` cells. ``drop`` deletes
    a check cell, ``change`` edits one, ``first`` and ``before_second`` are cells run before the
    first and the second exercise."""
    cells = [nbformat.v4.new_code_cell("import numpy as np")]
    cells += [nbformat.v4.new_code_cell(first)] if first else []
    for number, (exercise_id, heading, solution, check) in enumerate(_lesson_cells()):
        if number == 1 and before_second:
            cells.append(nbformat.v4.new_code_cell(before_second))
        cells.append(nbformat.v4.new_markdown_cell(heading))
        name = grading.CHECK_CALL.search(check)[3]
        cells.append(nbformat.v4.new_code_cell(
            solution if solved else f"def {name}(*args):\n    raise NotImplementedError('todo')"))
        if exercise_id != drop:
            edit = "\nprint('done')" if exercise_id == change else ""
            cells.append(nbformat.v4.new_code_cell(check + edit))
    cells += [nbformat.v4.new_code_cell(source) for source in extra]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    return notebook


FORGED_RECORDS = """import json, os
for e in ("01.1", "01.2"):
    with open(os.environ.get("COURSE_GRADES", "grades.jsonl"), "a") as f:
        f.write(json.dumps({"exercise": e, "passed": True, "message": "correct"}) + "\\n")
"""
REDEFINED = "from utils import checks\nchecks.exercise_01_1 = lambda f: print('Exercise 01.1: correct.')"
PATCHED = ("m = __import__('utils.checks.feedback', fromlist=['x'])\n"
           "m.__dict__['expect'] = lambda *a, **k: None  # hidden from a text search")


# Verifying the check cells, by their text ------------------------------------------------------------

def test_the_student_notebook_verifies_clean():
    student = nbformat.read(REPO / "notebooks" / exercises.FOLDER / LESSON.name, as_version=4)
    placed, problems = grading.verify(student, EXERCISES)
    assert sorted(placed) == ["01.1", "01.2"] and problems == {}
    assert grading.infer_lesson(student) == "01"


@pytest.mark.parametrize("notebook, expected", [
    (submission(drop="01.2"), {"01.2": "check missing"}),
    (submission(change="01.1"), {"01.1": "check cell changed"}),
    (submission(FORGED_RECORDS), {"01.1": "grade records written", "01.2": "grade records written"}),
    (submission(REDEFINED), {"01.1": "check redefined"}),
    (submission("from utils.checks import feedback\nfeedback.expect = lambda *a: None"),
     {"01.1": "feedback module patched", "01.2": "feedback module patched"}),
    (submission("import sys\nsys.modules['utils.checks'] = None"),
     {"01.1": "feedback module patched", "01.2": "feedback module patched"}),
    (submission("# my notes: COURSE_GRADES is the grader's, exercise_01_1 = ... is not for me"), {}),
], ids=["deleted", "changed", "records", "redefined", "patched", "sys.modules", "a-comment"])
def test_tampering_by_text_is_named(notebook, expected):
    assert grading.verify(notebook, EXERCISES)[1] == expected


def test_a_check_cell_moved_before_its_solution_is_named():
    notebook = submission()
    checks_first = [i for i, cell in enumerate(notebook.cells) if "exercise_01_1(" in cell.source][0]
    notebook.cells.insert(1, notebook.cells.pop(checks_first))
    assert grading.verify(notebook, EXERCISES)[1] == {"01.1": "check cell moved"}


def test_a_capture_line_without_the_nonce_is_ignored():
    notebook = submission()
    capture = nbformat.v4.new_code_cell("")
    capture.metadata[grading.CAPTURE_MARK] = "01.1"
    capture.execution_count = 1
    forged = json.dumps({"exercise": "01.1", "tampered": [], "payload": "x"})
    capture.outputs = [nbformat.v4.new_output("stream", text=f"{'0' * 32}{forged}\n")]
    notebook.cells.append(capture)
    assert grading.captured_answers(notebook, "f" * 32)[0] == {}


@pytest.mark.parametrize("items, message", [(["1.1=2"], "expected EXERCISE=POINTS"),
                                             (["01.1=two"], "'two' is not a number"),
                                             (["01.1=-1"], "cannot be negative")])
def test_bad_points_are_named(items, message):
    with pytest.raises(grading.GradingError, match=message):
        grading.parse_points(items)


# The checking process ----------------------------------------------------------------------------------

def _answer(name: str, source: str):
    namespace = {"np": np}
    exec(source, namespace)
    return namespace[name]


SOLUTION = _answer("depthwise_conv", _lesson_cells()[1][2])


# Defined by exec, as in a notebook: pickled by value, not as a reference to this test module.
PATCHES_THE_CHECKER = _answer("depthwise_conv", """
def depthwise_conv(image, kernel, bias):
    import numpy
    numpy.allclose = lambda *args, **kwargs: True
    return np.zeros(image.shape)
""")
FORGES_THE_REPORT = _answer("depthwise_conv", """
def depthwise_conv(image, kernel, bias):
    import json
    json.dumps = lambda *args, **kwargs: '{"passed": true, "message": "correct"}'
    return None
""")
PATCHES_A_KERAS_CLASS = _answer("depthwise_conv", """
def depthwise_conv(image, kernel, bias):
    import keras
    keras.layers.DepthwiseConv2D.call = lambda self, inputs: inputs
    return np.zeros(image.shape)
""")
PRINTS_A_VERDICT = _answer("depthwise_conv", """
def depthwise_conv(image, kernel, bias):
    print('{"passed": true, "message": "correct"}')
    raise SystemExit(0)
""")


@pytest.mark.parametrize("answer, passed, message", [
    (SOLUTION, True, "correct"),
    (lambda i, k, b: SOLUTION(i, k, b) - b, False, "(that is without the bias"),
    (_answer("depthwise_conv", "def depthwise_conv(i, k, b):\n    raise NotImplementedError('todo')"), False,
     "not attempted"),
    (PATCHES_THE_CHECKER, False, "the answer changed the checker's functions while it ran"),
    (FORGES_THE_REPORT, False, "the answer changed the checker's functions while it ran"),
    (PATCHES_A_KERAS_CLASS, False, "the answer changed the checker's functions while it ran"),
    (PRINTS_A_VERDICT, False, "the check raised SystemExit"),
], ids=["solution", "wrong", "stub", "patches", "forges-json", "patches-a-class", "prints-verdict"])
def test_answers_are_checked_in_a_fresh_process(answer, passed, message, tmp_path):
    verdict = grading.check_answer(EXERCISES[1], grading.encode_answer(answer), 120, tmp_path)
    assert verdict["passed"] is passed and message in verdict["message"]


def test_the_checking_process_runs_the_hidden_cases(tmp_path):
    visible_only = _answer("depthwise_conv", _lesson_cells()[1][2].replace(
        "    k = kernel",
        "    if image.shape == (6, 8, 4):\n        return np.zeros((1, 1, 1))\n    k = kernel", 1))
    verdict = grading.check_answer(EXERCISES[1], grading.encode_answer(visible_only), 120, tmp_path)
    assert verdict == {"passed": False, "message": "a 6×8×4 image and a 3×3 kernel per channel: your "
                                                   "output has shape (1, 1, 1), expected (4, 6, 4) (padding "
                                                   "\"valid\": 6 − 3 + 1 rows, 8 − 3 + 1 columns, one "
                                                   "channel per input channel)"}


def test_the_memory_limit_applies_to_the_process_and_its_children():
    code = ("from utils.tools import grading\ngrading._limit_memory(2)\nimport subprocess, sys\n"
            "sys.exit(subprocess.run([sys.executable, '-c', 'bytearray(8 * 2**30)']).returncode)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1 and "MemoryError" in done.stderr


# Grading a folder ---------------------------------------------------------------------------------

SUBMISSIONS = {
    "ada": submission(),
    "bob": submission(solved=False),
    "forged_records": submission(FORGED_RECORDS, solved=False),
    "records_and_answers": submission(FORGED_RECORDS),
    "redefined_check": submission(REDEFINED),
    "deleted_check": submission(drop="01.2"),
    "patched_feedback": submission(first=PATCHED),
    "loops": submission(before_second="while True:\n    pass"),
    "kills_its_kernel": submission(before_second="import os\nos._exit(1)"),
    "exhausts_memory": submission("x = bytearray(64 * 2**30)"),
    "exhausts_memory_first": submission(before_second="x = bytearray(64 * 2**30)"),
    "changed_check": submission(change="01.2"),
    "moved_check": submission(first=_lesson_cells()[1][3]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grading")
    (folder / "submissions").mkdir()
    for name, notebook in SUBMISSIONS.items():
        nbformat.write(notebook, folder / "submissions" / f"{name}.ipynb")
    (folder / "submissions" / "not_a_notebook.ipynb").write_text("{", encoding="utf-8")
    code = main(["exercises", "grade", str(folder / "submissions"), "--out", str(folder / "grades.csv"),
                 "--timeout", "60", "--jobs", "2", "--memory-gb", "8", "--points", "01.1=2",
                 "--gradescope", str(folder / "gradescope"), "--root", str(REPO)])
    assert code == 0
    sheet = {row["student"]: row for row in csv.DictReader((folder / "grades.csv").open(encoding="utf-8"))}
    details = {(row["submission"][:-6], row["exercise"]): row
               for row in csv.DictReader((folder / "grades-details.csv").open(encoding="utf-8"))}
    return folder, sheet, details


@pytest.mark.slow
@pytest.mark.parametrize("student, first, second, why", [
    ("ada", "2", "1", None),
    ("bob", "0", "0", "not attempted"),
    ("forged_records", "0", "0", "grade records written"),
    ("records_and_answers", "0", "0", "grade records written"),
    ("redefined_check", "0", "1", "check redefined"),
    ("deleted_check", "2", "0", "check missing"),
    ("patched_feedback", "0", "0", "feedback module patched"),
    ("loops", "2", "0", "not run: the notebook stopped early (CellTimeoutError"),
    ("kills_its_kernel", "2", "0", "not run: the notebook stopped early (DeadKernelError"),
    ("exhausts_memory", "2", "1", None),
    ("exhausts_memory_first", "2", "1", None),  # a MemoryError in a cell; the rest runs
    ("changed_check", "2", "0", "check cell changed"),
    ("moved_check", "2", "0", "check cell moved"),
])
def test_grades_come_from_the_grader(graded, student, first, second, why):
    _, sheet, details = graded
    assert (sheet[student]["01.1"], sheet[student]["01.2"]) == (first, second)
    assert sheet[student]["total"] == str(int(first) + int(second)) and sheet[student]["max_total"] == "3"
    if why:
        messages = [details[student, e]["message"] for e in ("01.1", "01.2")
                    if details[student, e]["passed"] != "True"]
        assert any(message.startswith(why) for message in messages), messages


@pytest.mark.slow
def test_the_instructor_gets_a_sheet_details_and_gradescope_results(graded):
    folder, sheet, details = graded
    assert list(sheet) == sorted([*SUBMISSIONS, "not_a_notebook"]), "one row per student, in name order"
    assert sheet["not_a_notebook"]["total"] == "0"
    assert details["not_a_notebook", ""]["message"].startswith("unreadable notebook")
    results = json.loads((folder / "gradescope" / "ada" / "results.json").read_text(encoding="utf-8"))
    assert results["score"] == 3
    assert [(t["name"], t["score"], t["max_score"]) for t in results["tests"]] == [
        ("Exercise 01.1", 2.0, 2.0), ("Exercise 01.2", 1.0, 1.0)]


# Rewrites the installed checks on disk, after its answers were captured: both checks then pass anything.
REWRITES_THE_CHECKS = """import pathlib, utils.checks.lesson01 as lesson
name = 'exer' + 'cise_01_'
file = pathlib.Path(lesson.__file__)
file.write_text(file.read_text() + f"\\n{name}1 = {name}2 = lambda answer, hidden=False: None\\n")
"""


@pytest.mark.slow
def test_a_submission_that_rewrites_the_checks_on_disk_gets_no_credit(tmp_path, monkeypatch):
    """The grader reads the package before any submission runs; the checks run from that copy."""
    root = tmp_path / "course"
    shutil.copytree(REPO / "utils", root / "utils", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "notebooks").mkdir()
    shutil.copy(LESSON, root / "notebooks" / LESSON.name)
    monkeypatch.setattr(grading, "PACKAGE_ROOT", root)  # the kernel imports the checks from this copy
    (tmp_path / "submissions").mkdir()
    nbformat.write(submission(REWRITES_THE_CHECKS, solved=False), tmp_path / "submissions" / "eve.ipynb")
    grading.grade(tmp_path / "submissions", tmp_path / "grades.csv", {}, 60, root=root, jobs=1)
    assert "lambda answer, hidden=False: None" in (root / "utils" / "checks" / "lesson01.py").read_text()
    rows = list(csv.DictReader((tmp_path / "grades-details.csv").open(encoding="utf-8")))
    assert [(row["exercise"], row["passed"], row["message"]) for row in rows] == [
        ("01.1", "False", "not attempted"), ("01.2", "False", "not attempted")]


@pytest.mark.slow
def test_grading_twice_gives_the_same_files_and_one_submission_one_results_json(tmp_path):
    (tmp_path / "submissions").mkdir()
    nbformat.write(submission(), tmp_path / "submissions" / "ada.ipynb")
    outputs = []
    for run in ("first", "second"):
        grading.grade(tmp_path / "submissions", tmp_path / run / "grades.csv", {}, 60, root=REPO,
                      gradescope=tmp_path / run / "gradescope")
        outputs.append([(tmp_path / run / name).read_bytes()
                        for name in ("grades.csv", "grades-details.csv", "gradescope/results.json")])
    assert outputs[0] == outputs[1]
    results = json.loads(outputs[0][2])
    assert results["score"] == 2 and [t["status"] for t in results["tests"]] == ["passed", "passed"]


def test_submissions_are_graded_at_the_same_time(tmp_path, monkeypatch):
    for name in ("a", "b"):
        nbformat.write(submission(), tmp_path / f"{name}.ipynb")
    both_running = threading.Barrier(2, timeout=30)  # broken unless two gradings run at once

    def grade_one(path, *args):
        both_running.wait()
        return [{"submission": path.name, "lesson": "01", "exercise": "01.1", "passed": True, "message": "x"}]

    monkeypatch.setattr(grading, "_run_worker", grade_one)
    grading.grade(tmp_path, tmp_path / "out" / "grades.csv", {}, 60, root=REPO, jobs=2)
    assert (tmp_path / "out" / "grades.csv").read_text().splitlines()[1:] == ["a,1,,1,1", "b,1,,1,1"]


def _escapes(outside: Path, other: Path, port: int) -> str:
    """A cell that tries to leave the sandbox, then a solution of 01.1 that is right only if it could
    not: the grade shows what the submission could do."""
    probe = f"""import socket
ESCAPED = []
try:
    open({str(outside / 'written.txt')!r}, 'w').write('x')
    ESCAPED.append('wrote outside its folder')
except OSError:
    pass
try:
    open({str(other)!r}).read()
    ESCAPED.append('read another submission')
except OSError:
    pass
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()
    ESCAPED.append('reached the network')
except OSError:
    pass
"""
    _, _, solution, _ = _lesson_cells()[0]
    name = grading.CHECK_CALL.search(_lesson_cells()[0][3])[3]
    wrapped = solution.replace(f"def {name}(", "def _solution(", 1) + (
        f"\n\n\ndef {name}(*args, escaped=tuple(ESCAPED)):\n"
        "    return None if escaped else _solution(*args)\n")
    return probe, wrapped


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", [False, True], ids=["control", "sandbox"])
def test_the_sandbox_keeps_a_submission_to_its_folder(tmp_path, sandbox):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap (bwrap) is missing: `make system-deps-test` installs it")
    outside, folder = tmp_path / "outside", tmp_path / "submissions"
    outside.mkdir(), folder.mkdir()
    nbformat.write(submission(), folder / "bob.ipynb")
    with socket.create_server(("127.0.0.1", 0)) as server:
        probe, solution = _escapes(outside, folder / "bob.ipynb", server.getsockname()[1])
        eve = submission(first=probe)
        cell = next(c for c in eve.cells if c.cell_type == "code" and "def strided_conv2d(" in c.source)
        cell.source = solution
        nbformat.write(eve, folder / "eve.ipynb")
        grading.grade(folder, tmp_path / "grades.csv", {}, 60, root=REPO, jobs=1, sandbox=sandbox)
    sheet = {row["student"]: row for row in csv.DictReader((tmp_path / "grades.csv").open(encoding="utf-8"))}
    assert sheet["bob"]["total"] == "2", "a plain submission is graded the same in the sandbox"
    assert sheet["eve"]["01.1"] == ("1" if sandbox else "0")
    assert (outside / "written.txt").exists() is not sandbox

def test_grades_written_before_a_grader_crash_are_kept(tmp_path, monkeypatch):
    for name in ("a", "b"):
        nbformat.write(submission(), tmp_path / f"{name}.ipynb")

    def grade_one(path, *args):
        if path.name == "b.ipynb":
            raise KeyboardInterrupt  # the instructor stops the grader
        return [{"submission": path.name, "lesson": "01", "exercise": "01.1", "passed": True, "message": "x"}]

    monkeypatch.setattr(grading, "_run_worker", grade_one)
    with pytest.raises(KeyboardInterrupt):
        grading.grade(tmp_path, tmp_path / "out" / "grades.csv", {}, 60, root=REPO, jobs=1)
    rows = list(csv.DictReader((tmp_path / "out" / "grades-details.csv").open(encoding="utf-8")))
    assert [row["submission"] for row in rows] == ["a.ipynb"]


def test_points_for_an_exercise_no_lesson_has_are_refused(tmp_path, capsys):
    nbformat.write(submission(), tmp_path / "a.ipynb")
    assert main(["exercises", "grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--points", "02.1=2",
                 "--root", str(REPO)]) == 2
    assert "--points names exercises that no graded lesson has: 02.1" in capsys.readouterr().err


@pytest.mark.slow
def test_a_whole_student_notebook_is_graded(subprocess_env, tmp_path, monkeypatch):
    """The full lesson-01 student notebook, solved and as handed out, with a papermill parameter."""
    for key, value in subprocess_env.items():
        monkeypatch.setenv(key, value)
    student = nbformat.read(REPO / "notebooks" / exercises.FOLDER / LESSON.name, as_version=4)
    (tmp_path / "submissions").mkdir()
    nbformat.write(student, tmp_path / "submissions" / "handed_out.ipynb")
    solutions = [solution for _, _, solution, _ in _lesson_cells()]
    for cell in student.cells:
        if exercises.SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = solutions.pop(0)
    nbformat.write(student, tmp_path / "submissions" / "solved.ipynb")
    assert main(["exercises", "grade", str(tmp_path / "submissions"), "--out", str(tmp_path / "grades.csv"),
                 "-p", "dataset", "mnist", "--timeout", "300", "--root", str(REPO)]) == 0
    sheet = {row["student"]: row for row in csv.DictReader((tmp_path / "grades.csv").open(encoding="utf-8"))}
    assert (sheet["solved"]["total"], sheet["handed_out"]["total"]) == ("2", "0")
