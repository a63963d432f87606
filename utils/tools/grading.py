"""Grading submitted student notebooks: the grade comes from the grader, never from the submission.

For each submission, in a process of its own (a memory limit, its own working directory):

1. The check cells are verified against the lesson's: each must be there, unchanged, in the
   lesson's order ("check missing", "check cell changed", "check cell moved"). Cells that
   redefine a check, patch the feedback module or write grade records are found by their text.
2. The notebook is executed with a per-cell timeout. Right after each verified check cell the
   grader inserts a capture cell: it pickles (cloudpickle) the function the check is called on,
   tags it with a nonce drawn for this run, and compares the kernel's checks with the package's
   files (a redefined check or patched feedback module is reported).
3. Each captured answer is checked in a fresh Python process per exercise (``python -I``), with
   the check module imported from a copy of the course package that the grader read before any
   submission ran (a submission that rewrites the package's files on disk changes nothing), visible
   and hidden cases, seeded. The verdict comes back over a pipe that only the grader reads, written
   by functions bound before the answer runs. What the submission's kernel printed, wrote, patched
   or defined is never read as a grade: the kernel only hands over answers, and an answer is only
   credited when the instructor's check passes on it.

Limits: the answer's own code runs inside the checking process when the check calls it. After the
check, every module's and every class's attributes are compared with what they were before: a
guarded module (numpy, math, builtins, json, os, keras.ops, the checks) changed in any way, or any
function replaced by code from outside the installed libraries, fails the answer. An answer written
to attack the checker from the inside while it runs (walk the caller's frames, write to its pipe,
exit early) is not stopped. Everything runs as the instructor's user: run untrusted submissions in
a container.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import utils
from utils.tools.exercises import ExerciseError

CHECK_CALL = re.compile(r"\bchecks\.exercise_(\d\d)_(\d+)\((\w+)\)")
ANY_CHECK = re.compile(r"\bexercise_(\d\d)_(\d+)\b")
HEADING_ID = re.compile(r"^### Exercise (\d\d)\.\d+ — ", re.MULTILINE)
PACKAGE_ROOT = Path(utils.__file__).resolve().parent.parent  # the folder that holds utils/
CAPTURE_MARK = "course_grader"  # metadata key of the cells the grader inserts
DETAIL_FIELDS = ("submission", "lesson", "exercise", "points", "max_points", "passed", "message")

# What a cell may not do, found by its text: (pattern, exercise id group or None for all, reason).
TAMPERING = [
    (re.compile(r"\bdef\s+exercise_(\d\d)_(\d+)\s*\("), 1, "check redefined"),
    (re.compile(r"\bexercise_(\d\d)_(\d+)\s*=(?!=)"), 1, "check redefined"),
    (re.compile(r"setattr\([^)]*exercise_(\d\d)_(\d+)"), 1, "check redefined"),
    (re.compile(r"\b(?:feedback|checks)\s*\.\s*(?!exercise_\d)\w+\s*(?:=(?!=)|\.\s*\w+\s*=(?!=))"), None,
     "feedback module patched"),
    (re.compile(r"setattr\(\s*(?:feedback|checks|utils)\b|\b(?:feedback|checks)\.__dict__"
                r"|vars\(\s*(?:feedback|checks)\b"), None, "feedback module patched"),
    (re.compile(r"sys\.modules\s*\[[^\]]*utils"), None, "feedback module patched"),
    (re.compile(r"COURSE_GRADES|grades\.jsonl"), None, "grade records written"),
]


class GradingError(ExerciseError):
    """Bad grader input: a missing lesson, bad points."""


@dataclass(frozen=True)
class Exercise:
    id: str  # "01.1"
    answer: str  # the name of the function the check is called on
    source: str  # the lesson's check cell


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def lesson_exercises(lesson: Path) -> list[Exercise]:
    """The exercises of a lesson notebook, from its check cells, in order."""
    import nbformat

    found = []
    for cell in nbformat.read(lesson, as_version=4).cells:
        if cell.cell_type == "code":
            found += [Exercise(f"{m[1]}.{m[2]}", m[3], cell.source) for m in CHECK_CALL.finditer(cell.source)]
    if not found:
        raise GradingError(f"{lesson} has no check cells (checks.exercise_NN_K(function))")
    return found


def infer_lesson(notebook) -> str | None:
    """The lesson number a submission belongs to, from its check calls and exercise headings."""
    numbers = Counter()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            numbers.update(m[1] for m in ANY_CHECK.finditer(cell.source))
        else:
            numbers.update(m[1] for m in HEADING_ID.finditer(cell.source))
    return numbers.most_common(1)[0][0] if numbers else None


def _without_comments(source: str) -> str:
    """A cell's code without its comments (a comment that names a check tampers with nothing)."""
    import io
    import tokenize

    try:
        tokens = [token for token in tokenize.generate_tokens(io.StringIO(source).readline)
                  if token.type != tokenize.COMMENT]
        return tokenize.untokenize(tokens)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source  # not Python (a magic, a syntax error): searched as it is


def verify(notebook, exercises: list[Exercise]) -> tuple[dict[str, int], dict[str, str]]:
    """(exercise id → index of its verified check cell, exercise id → why it gets no credit)."""
    cells = [(i, cell.source) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    placed, problems, last = {}, {}, -1
    for exercise in exercises:
        matches = [i for i, source in cells if _normal(source) == _normal(exercise.source)]
        name = f"exercise_{exercise.id.replace('.', '_')}"
        if not matches:
            called = any(re.search(rf"\bchecks\.{name}\(", source) for _, source in cells)
            problems[exercise.id] = "check cell changed" if called else "check missing"
            continue
        index = matches[0]
        defined = [i for i, source in cells if re.search(rf"\bdef {exercise.answer}\(", source)]
        if index <= last or (defined and min(defined) > index):
            problems[exercise.id] = "check cell moved"
            continue
        placed[exercise.id], last = index, index
    verified = set(placed.values())
    ids = [exercise.id for exercise in exercises]
    for i, source in cells:
        if i in verified:
            continue
        source = _without_comments(source)
        for pattern, group, reason in TAMPERING:
            for match in pattern.finditer(source):
                named = [f"{match[group]}.{match[group + 1]}"] if group else (
                    [x for x in ids if x in source] if reason == "grade records written" else [])
                for exercise_id in [x for x in named if x in ids] or ids:
                    problems.setdefault(exercise_id, reason)
    return placed, problems


_CAPTURE = '''\
def __course_grader_capture():
    import base64, sys
    report = {{"exercise": {id!r}, "tampered": []}}
    try:
        import cloudpickle
        answer = globals().get({answer!r})
        if answer is None:
            report["error"] = "no function named {answer} when the check cell ran"
        else:
            report["payload"] = base64.b64encode(cloudpickle.dumps(answer)).decode()
        package = sys.modules.get("utils.checks")
        if package is not None:
            fresh = {{"__name__": "course_grader_fresh"}}
            exec(compile(open({feedback!r}, encoding="utf-8").read(), {feedback!r}, "exec"), fresh)
            feedback = sys.modules.get("utils.checks.feedback")
            for name, value in fresh.items():
                if hasattr(value, "__code__") and getattr(getattr(feedback, name, None), "__code__",
                                                           None) != value.__code__:
                    report["tampered"].append("feedback module patched")
            check = getattr(package, {check!r}, None)
            lesson = sys.modules.get({module!r})
            original = {{"__name__": "course_grader_lesson"}}
            exec(compile(open({lesson!r}, encoding="utf-8").read(), {lesson!r}, "exec"), original)
            wrapped = getattr(check, "__wrapped__", None)
            if (getattr(lesson, {check!r}, None) is not check
                    or getattr(check, "__code__", None) != fresh["exercise"]("x")(lambda a: a).__code__
                    or getattr(wrapped, "__code__", None) != original[{check!r}].__wrapped__.__code__):
                report["tampered"].append("check redefined")
    except Exception as error:
        report["error"] = f"the answer could not be captured: {{type(error).__name__}}: {{error}}"
    print({nonce!r} + __import__("json").dumps(report))


__course_grader_capture()
del __course_grader_capture
'''

_PREAMBLE = "import random as __r, numpy as __np\n__r.seed(0)\n__np.random.seed(0)\ndel __r, __np\n"


def _with_capture_cells(notebook, exercises: list[Exercise], placed: dict[str, int], nonce: str):
    """The submission with the grader's seeding cell first and a capture cell after each check cell."""
    import copy

    import nbformat

    executed = copy.deepcopy(notebook)
    by_index = {index: exercise for exercise in exercises for e, index in placed.items() if e == exercise.id}
    cells = []
    feedback = str(PACKAGE_ROOT / "utils" / "checks" / "feedback.py")
    for index, cell in enumerate(executed.cells):
        cells.append(cell)
        if index in by_index:
            exercise = by_index[index]
            name = f"exercise_{exercise.id.replace('.', '_')}"
            module = f"lesson{exercise.id[:2]}"
            source = _CAPTURE.format(id=exercise.id, answer=exercise.answer, nonce=nonce, feedback=feedback,
                                     check=name, module=f"utils.checks.{module}",
                                     lesson=str(PACKAGE_ROOT / "utils" / "checks" / f"{module}.py"))
            capture = nbformat.v4.new_code_cell(source)
            capture.metadata[CAPTURE_MARK] = exercise.id
            cells.append(capture)
    preamble = nbformat.v4.new_code_cell(_PREAMBLE)
    preamble.metadata[CAPTURE_MARK] = "seed"
    executed.cells = [preamble, *cells]
    return executed


def captured_answers(executed, nonce: str) -> tuple[dict[str, dict], int | None]:
    """The capture reports by exercise id, and the index of the first cell that did not finish."""
    reports, unfinished = {}, None
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        if unfinished is None and cell.get("execution_count") is None and cell.source.strip():
            unfinished = index
        exercise_id = cell.metadata.get(CAPTURE_MARK)
        if not exercise_id or exercise_id == "seed":
            continue
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
                if line.startswith(nonce):
                    report = json.loads(line[len(nonce):])
                    if report.get("exercise") == exercise_id:
                        reports.setdefault(exercise_id, report)
    return reports, unfinished


_CHECKER = """\
import base64, builtins, contextlib, io, json, math, os, random, sys


def run():
    spec = json.loads(sys.stdin.read())
    # What reports the verdict is bound before the answer runs: patching json or os cannot forge it.
    write, dumps, fd, nonce = os.write, json.dumps, spec.pop("fd"), spec.pop("nonce")
    sys.path.insert(0, spec["root"])
    random.seed(0)
    import numpy as np
    np.random.seed(0)
    import keras
    keras.utils.set_random_seed(0)
    import cloudpickle
    import utils
    from utils import checks
    from utils.checks import feedback
    if not os.path.realpath(utils.__file__).startswith(os.path.realpath(spec["root"]) + os.sep):
        raise RuntimeError(f"the checks came from {utils.__file__}, not from the grader's copy")
    check = getattr(checks, spec["check"])
    lesson = sys.modules["utils.checks.lesson" + spec["check"][9:11]]
    guarded = [np, math, builtins, json, os, feedback, lesson, keras.ops, checks]
    ours = tuple(os.path.realpath(path) for path in (spec["root"], sys.prefix, sys.base_prefix))

    def foreign(value):
        code = getattr(value, "__code__", None) or getattr(getattr(value, "__func__", None), "__code__", None)
        return code is not None and not os.path.realpath(code.co_filename).startswith(ours)

    def snapshot():
        # Every module's and every class's attributes; the guarded modules' by identity.
        found = {}
        for module_name, module in list(sys.modules.items()):
            names = getattr(module, "__dict__", None)
            for name, value in list(names.items()) if isinstance(names, dict) else []:
                found[module_name, name] = value
                if isinstance(value, type) and value.__module__ == module_name:
                    for attribute, member in list(vars(value).items()):
                        found[module_name, name, attribute] = member
        return found

    def changed(before, after):
        # In a guarded module, any name added, rebound or deleted; in any other module that was
        # there before, a name added or rebound to code from outside the libraries. (A module
        # first imported during the check is new, not patched.)
        strict = {module.__name__ for module in guarded}
        existed = {key[0] for key in before}
        found = [key for key, value in after.items()
                 if key[0] in existed and (key not in before or before[key] is not value)
                 and (key[0] in strict or foreign(value))]
        return found + [key for key in before if key[0] in strict and key not in after]

    before = snapshot()
    try:
        answer = cloudpickle.loads(base64.b64decode(spec["payload"]))
        with contextlib.redirect_stdout(io.StringIO()):
            check(answer, hidden=True)
        verdict = {"passed": True, "message": "correct"}
    except feedback.ExerciseFailed as failure:
        verdict = {"passed": False, "message": str(failure).split(": ", 1)[-1]}
    except NotImplementedError:
        verdict = {"passed": False, "message": "not attempted"}
    except BaseException as error:
        verdict = {"passed": False, "message": f"the check raised {type(error).__name__}: {error}"[:300]}
    if changed(before, snapshot()) or getattr(checks, spec["check"]) is not check:
        verdict = {"passed": False, "message": "the answer changed the checker's functions while it ran"}
    write(fd, (nonce + dumps(verdict) + "\\n").encode())


run()
"""


def package_snapshot(root: Path = PACKAGE_ROOT) -> dict[str, str]:
    """The course package's source (path under ``root`` → text). The grader reads it once, before any
    submission runs, and each check runs from a fresh copy of it: a submission that rewrites the
    package's files on disk changes nothing that grading runs."""
    return {path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted((root / "utils").rglob("*.py"))}


def _write_package(package: dict[str, str], folder: Path) -> None:
    for relative, text in package.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def check_answer(exercise: Exercise, payload: str, timeout: int, cwd: Path,
                 package: dict[str, str] | None = None) -> dict:
    """Run the package's check on one answer in a fresh process; its verdict comes over a pipe.
    The check is imported from a fresh copy of ``package`` (by default the package as it is now)."""
    nonce = secrets.token_hex(16)
    read_end, write_end = os.pipe()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "COURSE_"))}
    env.update(PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory(prefix="checks-") as root:
        _write_package(package if package is not None else package_snapshot(), Path(root))
        spec = {"root": root, "check": f"exercise_{exercise.id.replace('.', '_')}",
                "payload": payload, "fd": write_end, "nonce": nonce}
        process = subprocess.Popen([sys.executable, "-I", "-c", _CHECKER], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_end,),
                                   cwd=cwd, env=env, start_new_session=True)
        os.close(write_end)
        try:
            _, stderr = process.communicate(json.dumps(spec).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            os.close(read_end)
            return {"passed": False, "message": f"the check did not finish within {timeout} s"}
    with os.fdopen(read_end, "rb") as pipe:
        lines = pipe.read().decode(errors="replace").splitlines()
    verdicts = [json.loads(line[len(nonce):]) for line in lines if line.startswith(nonce)]
    if len(verdicts) != 1:
        last = (stderr.decode(errors="replace").strip().splitlines() or [""])[-1][:200]
        message = f"the check stopped (exit code {process.returncode}) {last}"
        return {"passed": False, "message": message.strip()}
    return verdicts[0]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def grade_submission(path: Path, lesson: Path | None, parameters: dict, timeout: int,
                     kernel: str = "python3", scratch: Path | None = None,
                     package: dict[str, str] | None = None) -> list[dict]:
    """Grade one submission: one row per exercise of its lesson (points not applied). The checks run
    from ``package`` (``package_snapshot()``, read before the submission runs, by default)."""
    import nbformat
    import papermill

    name = path.name
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # not a notebook at all
        return [{"submission": name, "lesson": "", "exercise": "", "passed": False,
                 "message": f"unreadable notebook: {type(error).__name__}: {error}"}]
    if lesson is None:
        return [{"submission": name, "lesson": "", "exercise": "", "passed": False,
                 "message": "no exercise of any lesson found: check cells missing"}]
    package = package if package is not None else package_snapshot()
    exercises = lesson_exercises(lesson)
    placed, problems = verify(notebook, exercises)
    nonce = secrets.token_hex(16)
    stopped = None
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        work = Path(folder) / "work"  # the kernel's working directory, empty
        work.mkdir()
        source, executed_path = Path(folder) / "submission.ipynb", Path(folder) / "executed.ipynb"
        nbformat.write(_with_capture_cells(notebook, exercises, placed, nonce), source)
        try:
            papermill.execute_notebook(str(source), str(executed_path), parameters=parameters,
                                       kernel_name=kernel, progress_bar=False, cwd=str(work),
                                       allow_errors=True, execution_timeout=timeout)
        except papermill.PapermillExecutionError:
            pass  # a cell raised; allow_errors ran the rest
        except Exception as error:  # the kernel died, a cell timed out, a parameter was refused
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            stopped = f"{type(error).__name__}: {first_line}"
        executed = nbformat.read(executed_path, as_version=4) if executed_path.exists() else None
        reports, _ = captured_answers(executed, nonce) if executed else ({}, None)
        rows = []
        for exercise in exercises:
            report = reports.get(exercise.id, {})
            if exercise.id in problems:
                verdict = {"passed": False, "message": problems[exercise.id]}
            elif set(report.get("tampered", [])):
                verdict = {"passed": False, "message": sorted(set(report["tampered"]))[0]}
            elif "payload" in report:
                verdict = check_answer(exercise, report["payload"], timeout, work, package)
            elif "error" in report:
                verdict = {"passed": False, "message": report["error"]}
            elif stopped:
                verdict = {"passed": False, "message": f"not run: the notebook stopped early ({stopped})"}
            else:
                verdict = {"passed": False, "message": "not run: the answer was not captured"}
            rows.append({"submission": name, "lesson": exercise.id[:2], "exercise": exercise.id, **verdict})
    return rows


def _limit_memory(gigabytes: float | None) -> None:
    if gigabytes:
        import resource

        limit = int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker() -> int:
    """``python -m utils.tools.grading`` with its spec on standard input: grade one submission, write
    its rows as JSON. The course package comes with the spec, as the grader read it at the start."""
    spec = json.loads(sys.stdin.read())
    _limit_memory(spec["memory_gb"])
    lesson = Path(spec["lesson"]) if spec["lesson"] else None
    rows = grade_submission(Path(spec["path"]), lesson, spec["parameters"], spec["timeout"],
                            scratch=Path(spec["scratch"]), package=spec["package"])
    Path(spec["out"]).write_text(json.dumps(rows), encoding="utf-8")
    return 0


def sandbox_command(folder: Path, submission: Path) -> list[str]:
    """bubblewrap's command line for one submission's grading: every file read-only, a fresh /tmp,
    only the submission's own folder writable, the other submissions hidden, no network, and
    nothing left running when the grader stops."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise GradingError("--sandbox needs bubblewrap (bwrap): `apt-get install bubblewrap` on Debian "
                           "or Ubuntu, `dnf install bubblewrap` on Fedora")
    from utils import data

    # What grading reads: the course, the Python that runs it, the datasets (read-only, like all).
    needed = {PACKAGE_ROOT.resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
              data.keras_home().resolve()}
    command = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    others = submission.resolve().parent
    hidden = [Path("/tmp")]
    if not any(path.is_relative_to(others) for path in needed):
        command += ["--tmpfs", str(others), "--ro-bind", str(submission.resolve()), str(submission.resolve())]
        hidden.append(others)
    for path in sorted(needed):  # shown again where a hidden folder holds them
        if path.exists() and any(path.is_relative_to(place) for place in hidden):
            command += ["--ro-bind", str(path), str(path)]
    command += ["--bind", str(folder), str(folder), "--unshare-all", "--die-with-parent", "--new-session",
                "--setenv", "KERAS_HOME", str(data.keras_home().resolve())]
    for name, sub in (("HOME", "home"), ("TMPDIR", "tmp"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib"),
                      ("COURSE_MODEL_CACHE", "models")):
        (folder / sub).mkdir(exist_ok=True)
        command += ["--setenv", name, str(folder / sub)]
    return [*command, "--"]


def check_sandbox() -> None:
    """Fail early, with bubblewrap's reason, where it cannot start (no user namespaces, say)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "s.ipynb").write_text("{}", encoding="utf-8")
        done = subprocess.run([*sandbox_command(Path(folder), Path(folder) / "s.ipynb"), "true"],
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise GradingError(f"--sandbox: bubblewrap cannot start here: {done.stderr.strip()[:300]}")


def _run_worker(path: Path, lesson: Path | None, parameters: dict, timeout: int, memory_gb: float | None,
                scratch: Path, package: dict[str, str] | None = None, sandbox: bool = False) -> list[dict]:
    """Grade one submission in its own process group; a worker that hangs past its budget is killed.
    With ``sandbox``, in bubblewrap's sandbox (``sandbox_command``)."""
    import nbformat

    folder = Path(tempfile.mkdtemp(dir=scratch, prefix=path.stem + "-"))
    out = folder / "rows.json"
    spec = json.dumps({"path": str(path), "lesson": str(lesson) if lesson else "", "out": str(out),
                       "parameters": parameters, "timeout": timeout, "memory_gb": memory_gb,
                       "scratch": str(folder),
                       "package": package if package is not None else package_snapshot()})
    try:
        cells = len(nbformat.read(path, as_version=4).cells)
    except Exception:
        cells = 1
    budget = timeout * (cells + 10) + 300
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(PACKAGE_ROOT)}
    env.pop("COURSE_GRADES", None)
    command = [sys.executable, "-m", "utils.tools.grading"]
    if sandbox:
        command = [*sandbox_command(folder, path), *command]
    process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, stderr = process.communicate(spec.encode(), timeout=budget)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.wait()
        stderr = f"killed after {budget} s".encode()
    _kill_group(process.pid)  # a kernel or checker left behind
    if out.exists():
        return json.loads(out.read_text(encoding="utf-8"))
    last = (stderr.decode(errors="replace").strip().splitlines() or [""])[-1][:200]
    exercises = lesson_exercises(lesson) if lesson else []
    message = f"not run: grading stopped (exit code {process.returncode}) {last}".strip()
    rows = [{"submission": path.name, "lesson": e.id[:2], "exercise": e.id, "passed": False,
             "message": message} for e in exercises]
    return rows or [{"submission": path.name, "lesson": "", "exercise": "", "passed": False,
                     "message": message}]


def parse_points(items: list[str] | None) -> dict[str, float]:
    """``["01.1=2", "01.2=0.5"]`` → {"01.1": 2.0, "01.2": 0.5}; every other exercise counts 1."""
    points = {}
    for item in items or []:
        exercise_id, _, value = item.partition("=")
        if not re.fullmatch(r"\d\d\.\d+", exercise_id.strip()):
            raise GradingError(f"--points {item!r}: expected EXERCISE=POINTS, e.g. 01.1=2")
        try:
            points[exercise_id.strip()] = float(value)
        except ValueError:
            raise GradingError(f"--points {item!r}: {value!r} is not a number") from None
        if points[exercise_id.strip()] < 0:
            raise GradingError(f"--points {item!r}: points cannot be negative")
    return points


def find_lesson(root: Path, number: str | None) -> Path | None:
    if number is None:
        return None
    found = sorted((root / "notebooks").glob(f"{number}_*.ipynb"))
    if not found:
        raise GradingError(f"no lesson notebooks/{number}_*.ipynb under {root}")
    return found[0]


def grade(submissions: Path, out: Path, parameters: dict, timeout: int, *, root: Path,
          lesson: str | None = None, points: dict[str, float] | None = None, jobs: int | None = None,
          memory_gb: float | None = 8.0, gradescope: Path | None = None, sandbox: bool = False) -> int:
    """Grade every notebook in ``submissions``, in parallel, into the CSV ``out`` (one row per
    student, one column per exercise), its details next to it, and Gradescope results if asked.
    ``sandbox`` grades each submission in bubblewrap's sandbox (``sandbox_command``)."""
    import nbformat

    paths = sorted(submissions.glob("*.ipynb"))
    if not paths:
        raise GradingError(f"no notebooks (*.ipynb) in {submissions}")
    if lesson is not None and not re.fullmatch(r"\d\d", lesson):
        raise GradingError(f"--lesson {lesson!r}: expected a lesson number such as 01")
    points = points or {}
    lessons = {}
    for path in paths:
        number = lesson
        if number is None:
            try:
                number = infer_lesson(nbformat.read(path, as_version=4))
            except Exception:
                number = None
        lessons[path] = find_lesson(root, number) if number else None
    columns = list(dict.fromkeys(e.id for p in sorted({p for p in lessons.values() if p})
                                 for e in lesson_exercises(p)))
    unknown = sorted(set(points) - set(columns))
    if unknown:
        raise GradingError(f"--points names exercises that no graded lesson has: {', '.join(unknown)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    details_path = out.with_name(out.stem + "-details.csv")
    results: dict[Path, list[dict]] = {}
    jobs = max(1, jobs or os.cpu_count() or 1)
    package = package_snapshot(root)  # before any submission runs
    if sandbox:
        check_sandbox()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch, \
            details_path.open("w", newline="", encoding="utf-8") as details, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        writer = csv.DictWriter(details, fieldnames=DETAIL_FIELDS)
        writer.writeheader()
        futures = {pool.submit(_run_worker, path, lessons[path], parameters, timeout, memory_gb,
                               Path(scratch), package, sandbox): path for path in paths}
        for future in futures:  # in name order; each is written as soon as it and those before are done
            path = futures[future]
            rows = [_scored(row, points) for row in future.result()]
            results[path] = rows
            writer.writerows(rows)
            details.flush()  # a later crash of the grader keeps the grades written so far
            earned = sum(row["points"] for row in rows)
            print(f"{path.name}: {earned:g} of {sum(r['max_points'] for r in rows):g} points")
    with out.open("w", newline="", encoding="utf-8") as sheet:
        writer = csv.writer(sheet)
        writer.writerow(["student", *columns, "total", "max_total"])
        for path, rows in results.items():
            earned = {row["exercise"]: row["points"] for row in rows}
            writer.writerow([path.stem, *(f"{earned[c]:g}" if c in earned else "" for c in columns),
                             f"{sum(earned.values()):g}", f"{sum(r['max_points'] for r in rows):g}"])
    if gradescope is not None:
        _write_gradescope(gradescope, results)
    return len(paths)


def _scored(row: dict, points: dict[str, float]) -> dict:
    worth = points.get(row["exercise"], 1.0) if row["exercise"] else 0.0
    return {**row, "points": worth if row["passed"] else 0.0, "max_points": worth}


def _write_gradescope(folder: Path, results: dict[Path, list[dict]]) -> None:
    """Gradescope's results.json: ``folder/results.json`` for one submission, else one folder each."""
    for path, rows in results.items():
        target = folder / "results.json" if len(results) == 1 else folder / path.stem / "results.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tests = [{"name": f"Exercise {row['exercise']}" if row["exercise"] else "notebook",
                  "score": row["points"], "max_score": row["max_points"],
                  "status": "passed" if row["passed"] else "failed", "output": row["message"]}
                 for row in rows]
        target.write_text(json.dumps({"score": sum(row["points"] for row in rows), "tests": tests,
                                      "visibility": "after_published"}, indent=2) + "\n", encoding="utf-8")


def encode_answer(answer) -> str:
    """An answer as a capture cell hands it over (for tests and tools)."""
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(answer)).decode()


if __name__ == "__main__":
    sys.exit(_worker())
