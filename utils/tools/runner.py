"""The `course run` command: execute lessons over a matrix of parameters with papermill.

Each (lesson, parameter combination) runs in its own process and kernel and lands in
``OUT/<combination>/<lesson>.ipynb``. After every finished run, ``OUT/summary.md``,
``summary.csv``, ``summary.json`` and ``comparison.png`` are rewritten atomically.
Key results come from ``utils.course.record_results`` in the executed notebooks.
"""

from __future__ import annotations

import argparse
import ast
import csv
import difflib
import hashlib
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from utils import course, data
from utils.tools import CHECKOUT

KERNEL = "python3"
RUN_KEY = "course_run"  # notebook metadata key holding a run's parameters and status
PLOT_METRIC = "test_accuracy"
SUCCEEDED = ("ok", "reused")
INTERRUPTED = 130
_NO_LITERAL = object()  # a default the parameters cell computes instead of writing literally


class RunError(ValueError):
    """Bad input to `course run`; the message names the value and the valid choices."""


@dataclass(frozen=True, eq=False)
class Lesson:
    path: Path
    defaults: dict  # parameter name -> literal default, or _NO_LITERAL

    @property
    def stem(self) -> str:
        return self.path.stem

    def code_hash(self) -> str:
        import nbformat

        cells = nbformat.read(self.path, as_version=4).cells
        code = "\n\0".join(cell.source for cell in cells if cell.cell_type == "code")
        return hashlib.sha256(code.encode()).hexdigest()


@dataclass(eq=False)
class Run:
    lesson: Lesson
    parameters: dict  # only the ones given on the command line that the lesson declares
    folder: str
    status: str = "pending"
    wall_time_s: float | None = None
    results: dict = field(default_factory=dict)
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.lesson.stem} [{self.folder}]"

    def notebook(self, out: Path) -> Path:
        return out / self.folder / f"{self.lesson.stem}.ipynb"

    def partial(self, out: Path) -> Path:
        return out / self.folder / f".{self.lesson.stem}.partial.ipynb"


def default_notebooks() -> Path:
    """The lesson notebooks: this package's checkout, else ./notebooks."""
    checkout = CHECKOUT / "notebooks"
    return checkout if checkout.is_dir() else Path.cwd() / "notebooks"


def find_lessons(folder: Path) -> list[Path]:
    """The lesson notebooks ``NN_name.ipynb`` in ``folder``, in order."""
    lessons = sorted(folder.glob("[0-9][0-9]_*.ipynb")) if folder.is_dir() else []
    if not lessons:
        raise RunError(f"--notebooks {folder}: no lesson notebooks NN_name.ipynb there")
    return lessons


def select_lessons(paths: list[Path], wanted: list[str] | None) -> list[Lesson]:
    """The lessons named by number (``3``, ``03``) or stem, with their parameters' defaults."""
    import papermill

    by_name = {}
    for path in paths:
        by_name.update({path.stem: path, path.name[:2]: path, str(int(path.name[:2])): path})
    chosen = []
    for name in wanted or [path.name[:2] for path in paths]:
        if name not in by_name:
            raise RunError(f"unknown lesson {name!r}; valid choices: "
                           + ", ".join(f"{p.name[:2]} ({p.stem})" for p in paths))
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    lessons = []
    for path in chosen:
        declared = papermill.inspect_notebook(str(path))
        lessons.append(Lesson(path, {name: _literal(info["default"]) for name, info in declared.items()}))
    return lessons


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return _NO_LITERAL


def parse_value(text: str):
    """A command-line value as a Python literal (``5``, ``None``, ``'a'``), else as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def gather_values(args: argparse.Namespace) -> dict[str, list[tuple[str, object]]]:
    """Parameter name -> [(how it was given, value), ...] from --dataset, --epochs and --set."""
    given: dict[str, list[tuple[str, object]]] = {}
    for name in ("dataset", "epochs"):
        for text in getattr(args, name) or []:
            given.setdefault(name, []).append((f"--{name} {text}", parse_value(text)))
    for item in args.set or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise RunError(f"--set {item!r}: expected NAME=VALUE, e.g. --set batch_size=128")
        given.setdefault(name.strip(), []).append((f"--set {item}", parse_value(text.strip())))
    return given


def check_values(given: dict, lessons: list[Lesson]) -> dict[str, list]:
    """Validate every name and value; return name -> distinct values, in a fixed order."""
    declared = sorted({name for lesson in lessons for name in lesson.defaults})
    values: dict[str, list] = {}
    for name, items in given.items():
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RunError(f"{items[0][0]}: no selected lesson has a parameter {name!r}{hint}; "
                           f"valid choices: {', '.join(declared) or 'none'}")
        for option, value in items:
            try:
                _check({name: value}, lessons)
            except ValueError as error:
                raise RunError(f"{option}: {error}") from None
            if value not in values.setdefault(name, []):
                values[name].append(value)
    order = ["dataset", "epochs"] + sorted(set(values) - {"dataset", "epochs"})
    return {name: values[name] for name in order if name in values}


def _check(parameters: dict, lessons: list[Lesson]) -> None:
    """course.check_parameters on the names it knows; other names must match the defaults' type."""
    import utils

    utils.import_tensorflow_quietly()  # check_parameters imports Keras; keep its start-up notes away
    known = {}
    for name, value in parameters.items():
        try:
            course.check_parameters(**{name: value})
            known[name] = value
        except TypeError:  # a parameter the course's checks do not know: compare with the defaults
            for lesson in lessons:
                default = lesson.defaults.get(name, _NO_LITERAL)
                if default is _NO_LITERAL or default is None or _same_type(value, default):
                    continue
                raise ValueError(f"{name} must be a {type(default).__name__} like the default "
                                 f"{default!r} of {lesson.stem}; got {value!r}") from None
    course.check_parameters(**known)


def _same_type(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def folder_name(parameters: dict) -> str:
    """A combination's folder: ``mnist-e5-batch_size=128``; ``defaults`` when nothing was given."""
    parts = []
    for name, value in parameters.items():
        text = re.sub(r"[^\w.+-]", "_", str(value))
        parts.append(text if name == "dataset" else f"e{text}" if name == "epochs" else f"{name}={text}")
    return "-".join(parts) or "defaults"


def plan_runs(lessons: list[Lesson], values: dict[str, list]) -> list[Run]:
    """One run per lesson and combination of the values of the parameters that lesson declares."""
    runs = []
    for lesson in lessons:
        axes = {name: options for name, options in values.items() if name in lesson.defaults}
        for combination in itertools.product(*axes.values()):
            parameters = json.loads(json.dumps(dict(zip(axes, combination, strict=True))))
            effective = {k: v for k, v in lesson.defaults.items() if v is not _NO_LITERAL}
            try:
                _check({**effective, **parameters}, [lesson])
            except ValueError as error:
                raise RunError(f"{lesson.stem} with {_describe(parameters)}: {error}") from None
            runs.append(Run(lesson, parameters, folder_name(parameters)))
    return runs


def _describe(parameters: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in parameters.items()) or "its defaults"


# Execution: one worker process per run, so a stuck or killed run never takes the others along.

def _worker(spec: str) -> None:
    """Entry point of a run's process: papermill with exact Python values (no YAML round trip)."""
    if sys.platform == "linux":  # die with the runner, even when it is killed with SIGKILL
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    import papermill

    job = json.loads(spec)
    papermill.execute_notebook(job["input"], job["output"], parameters=job["parameters"],
                               kernel_name=job["kernel"], cwd=job["cwd"], progress_bar=False)


@dataclass
class _Job:
    process: subprocess.Popen
    log: object
    started: float


def _start(run: Run, out: Path, kernel: str) -> _Job:
    partial = run.partial(out)
    partial.parent.mkdir(parents=True, exist_ok=True)
    spec = {"input": str(run.lesson.path.resolve()), "output": str(partial.resolve()),
            "parameters": run.parameters, "kernel": kernel, "cwd": str(partial.parent.resolve())}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "utils.tools.runner", "--worker", json.dumps(spec)],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    run.status = "running"
    return _Job(process, log, time.perf_counter())


def _finish(run: Run, job: _Job, out: Path, code_hash: str) -> None:
    import nbformat

    run.wall_time_s = time.perf_counter() - job.started
    failed = job.process.returncode != 0
    job.log.seek(0)
    log_lines = [line for line in job.log.read().decode(errors="replace").splitlines() if line.strip()]
    job.log.close()
    partial = run.partial(out)
    try:
        notebook = nbformat.read(partial, as_version=4)
    except (OSError, ValueError):
        notebook = None
    if notebook is not None:
        run.results = course.read_results(notebook)
        run.error = error_line(notebook) if failed else ""
    if failed and not run.error:
        run.error = log_lines[-1] if log_lines else f"exit code {job.process.returncode}"
    if notebook is None and not failed:
        failed, run.error = True, f"papermill wrote no notebook; its last words: {log_lines[-1:]}"
    run.status = "failed" if failed else "ok"
    if notebook is not None:  # the executed notebook is kept, failed or not
        notebook.metadata[RUN_KEY] = {"parameters": run.parameters, "status": run.status,
                                      "error": run.error, "wall_time_s": round(run.wall_time_s, 1),
                                      "lesson_code_sha256": code_hash}
        nbformat.write(notebook, partial)
        os.replace(partial, run.notebook(out))


def error_line(notebook) -> str:
    """The last error a notebook shows, as one line: ``Name: message``."""
    for cell in reversed(notebook.get("cells", [])):
        for output in reversed(cell.get("outputs", [])):
            if output.get("output_type") == "error":
                return " ".join(f"{output['ename']}: {output['evalue']}".split())
    return ""


def _reuse(run: Run, out: Path, code_hash: str) -> bool:
    """Take a run's earlier result when it succeeded with the same lesson code and parameters."""
    import nbformat

    try:
        notebook = nbformat.read(run.notebook(out), as_version=4)
    except (OSError, ValueError):
        return False
    earlier = notebook.metadata.get(RUN_KEY, {})
    if (earlier.get("status") != "ok" or earlier.get("parameters") != run.parameters
            or earlier.get("lesson_code_sha256") != code_hash):
        return False
    run.status, run.wall_time_s = "reused", earlier.get("wall_time_s")
    run.results = course.read_results(notebook)
    return True


def _lock(out: Path):
    """Hold ``OUT/.course-run.lock`` so two runners never write into one folder at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        return None
    handle = open(out / ".course-run.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RunError(f"--out {out}: another `course run` is writing into this folder; "
                       "wait for it or choose another --out") from None
    return handle


def execute(runs: list[Run], out: Path, jobs: int = 1, force: bool = False, kernel: str = KERNEL,
            command: str = "course run") -> int:
    """Execute the runs, keeping the summary current; the exit code: 0, 1 (a run failed), 130."""
    hashes = {lesson: lesson.code_hash() for lesson in {run.lesson for run in runs}}
    for stale in [*out.glob(".*.partial-*"), *out.glob("*/.*.partial.ipynb")]:  # from a killed runner
        stale.unlink()
    todo = [run for run in runs if force or not _reuse(run, out, hashes[run.lesson])]
    print(f"course run: {len(runs)} runs into {out}/ ({len(runs) - len(todo)} already done, "
          f"{len(todo)} to execute, {jobs} at a time)", flush=True)
    write_summary(out, runs, command)
    from tqdm import tqdm

    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", disable=None, file=sys.stderr)
    running: dict[Run, _Job] = {}
    number = len(runs) - len(todo)
    restore = _signals_as_interrupt()
    try:
        while todo or running:
            while todo and len(running) < jobs:
                run = todo.pop(0)
                number += 1
                bar.write(f"[{number}/{len(runs)}] running {run.label}; {len(todo)} waiting")
                running[run] = _start(run, out, kernel)
            for run in [run for run, job in running.items() if job.process.poll() is not None]:
                _finish(run, running.pop(run), out, hashes[run.lesson])
                bar.update()
                outcome = run.error or _results_text(run)
                bar.write(f"  {run.status}: {run.label} in {run.wall_time_s:.1f} s; {outcome}")
                write_summary(out, runs, command)
            time.sleep(0.2)
    except KeyboardInterrupt:
        for run, job in running.items():
            job.process.terminate()
            try:
                job.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()
            run.partial(out).unlink(missing_ok=True)
            run.status = "interrupted"
        for run in runs:
            run.status = "not run" if run.status in ("pending", "running") else run.status
        write_summary(out, runs, command)
        bar.close()
        print(f"\ncourse run: interrupted; finished runs and {out / 'summary.md'} are kept. "
              "Run the same command again to go on.", file=sys.stderr)
        return INTERRUPTED
    finally:
        bar.close()
        restore()
    print()
    print(markdown_table(runs))
    print(f"\nsummary: {out / 'summary.md'} (also .csv, .json)"
          + (f"; plot: {out / 'comparison.png'}" if (out / "comparison.png").exists() else ""))
    failed = [run for run in runs if run.status not in SUCCEEDED]
    if failed:
        print(f"course run: {len(failed)} of {len(runs)} runs failed; their notebooks show the error",
              file=sys.stderr)
    return 1 if failed else 0


def _signals_as_interrupt():
    """Make Ctrl-C and a plain `kill` (SIGTERM) raise KeyboardInterrupt; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(number, handler) for number, handler in previous.items()]


# The summary: Markdown, CSV, JSON and one plot, each written to a temporary file, then renamed.

def _write_atomic(path: Path, content: bytes) -> None:
    prefix = f".{path.name}.partial-"
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=prefix, delete=False) as partial:
        partial.write(content)
    os.replace(partial.name, path)


def _shown_results(run: Run) -> dict:
    """The results worth a column: without the lesson number and the lesson's own parameters."""
    return {k: v for k, v in run.results.items() if k != "lesson" and k not in run.lesson.defaults}


def _format(value) -> str:
    if isinstance(value, float):
        return str(round(value, 4))
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _results_text(run: Run) -> str:
    shown = ", ".join(f"{k}={_format(v)}" for k, v in _shown_results(run).items())
    return shown or ("no results recorded" if run.status in SUCCEEDED else "")


def markdown_table(runs: list[Run]) -> str:
    """The summary as a Markdown table, padded so it also reads well in a terminal."""
    header = ["lesson", "parameters", "status", "wall time", "key results / error"]
    rows = [[run.lesson.stem, _describe(run.parameters) if run.parameters else "defaults", run.status,
             "" if run.wall_time_s is None else f"{run.wall_time_s:.1f} s",
             run.error if run.error else _results_text(run)] for run in runs]
    return course.padded_table(header, [[cell.replace("|", "\\|") for cell in row] for row in rows])


def summary_records(runs: list[Run], out: Path) -> list[dict]:
    return [{"lesson": run.lesson.stem, "folder": run.folder, "parameters": run.parameters,
             "status": run.status,
             "wall_time_s": None if run.wall_time_s is None else round(run.wall_time_s, 1),
             "results": run.results, "error": run.error,
             "notebook": str(run.notebook(out).relative_to(out))} for run in runs]


def write_summary(out: Path, runs: list[Run], command: str) -> None:
    """Rewrite OUT/summary.{md,csv,json} and OUT/comparison.png from the runs' current state."""
    records = summary_records(runs, out)
    counts = ", ".join(f"{sum(r['status'] == s for r in records)} {s}"
                       for s in dict.fromkeys(r["status"] for r in records))
    text = (f"# Course run\n\n`{command}`\n\n{len(records)} runs: {counts}. "
            f"Notebooks: `<folder>/<lesson>.ipynb`.\n\n{markdown_table(runs)}\n")
    _write_atomic(out / "summary.md", text.encode())
    _write_atomic(out / "summary.json", json.dumps({"command": command, "runs": records},
                                                   indent=1).encode())
    columns = ["lesson", "folder", "parameters", "status", "wall_time_s", "error", "notebook"]
    result_keys = [k for k in dict.fromkeys(k for r in records for k in r["results"]) if k not in columns]
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(columns + result_keys)
    for r in records:
        cells = [r["results"].get(k, "") for k in result_keys]
        writer.writerow([r["lesson"], r["folder"], json.dumps(r["parameters"]), r["status"],
                         r["wall_time_s"], r["error"], r["notebook"],
                         *[c if isinstance(c, (str, int, float)) else json.dumps(c) for c in cells]])
    _write_atomic(out / "summary.csv", stream.getvalue().encode())
    write_plot(out, runs)


def write_plot(out: Path, runs: list[Run]) -> Path | None:
    """OUT/comparison.png: test accuracy per parameter combination, one bar per lesson."""
    path = out / "comparison.png"
    points = [(run.folder, run.lesson.stem, run.results[PLOT_METRIC]) for run in runs
              if run.status in SUCCEEDED and isinstance(run.results.get(PLOT_METRIC), (int, float))]
    if not points:
        path.unlink(missing_ok=True)  # never leave a plot of an earlier command
        return None
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot, no display

    folders = list(dict.fromkeys(p[0] for p in points))
    stems = list(dict.fromkeys(p[1] for p in points))
    width = 0.8 / len(stems)
    figure = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(folders) * len(stems)), 4.5), layout="constrained")
    axes = figure.subplots()
    for index, stem in enumerate(stems):
        mine = [(folders.index(folder), value) for folder, s, value in points if s == stem]
        offset = (index - (len(stems) - 1) / 2) * width
        bars = axes.bar([x + offset for x, _ in mine], [v for _, v in mine], width, label=stem)
        axes.bar_label(bars, fmt="%.3f", fontsize=8)
    axes.set_xticks(range(len(folders)), folders, rotation=15 if len(folders) > 3 else 0)
    axes.set_ylim(0, 1.08)
    axes.set_ylabel("test accuracy")
    axes.set_xlabel("parameters (run folder)")
    axes.set_title("Test accuracy by lesson and parameters")
    axes.legend(fontsize=8, title="lesson", loc="upper left", bbox_to_anchor=(1.01, 1))
    stream = io.BytesIO()
    figure.savefig(stream, format="png", dpi=110)
    _write_atomic(path, stream.getvalue())
    return path


# The command line.

def _command_text(args: argparse.Namespace) -> str:
    """The command, rebuilt from its parsed options, for the summary's heading."""
    words = ["course", "run"]
    for name in ("lessons", "dataset", "epochs"):
        if getattr(args, name):
            words += [f"--{name}", *getattr(args, name)]
    words += [f"--set {item}" for item in args.set or []]
    words += ["--out", str(args.out)] + (["--jobs", str(args.jobs)] if args.jobs != 1 else [])
    return " ".join(words + (["--force"] if args.force else []))


def _command(args: argparse.Namespace) -> int:
    try:
        if args.jobs < 1:
            raise RunError(f"--jobs {args.jobs}: must be a whole number >= 1")
        lessons = select_lessons(find_lessons(Path(args.notebooks)), args.lessons)
        runs = plan_runs(lessons, check_values(gather_values(args), lessons))
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise RunError(f"--out {out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except RunError as error:
        print(f"course run: error: {error}", file=sys.stderr)
        return 2
    try:
        return execute(runs, out, args.jobs, args.force, args.kernel, _command_text(args))
    finally:
        if lock is not None:
            lock.close()


DESCRIPTION = """\
Execute lessons with papermill over every combination of the parameter values given.

A lesson runs once per combination of the values given for the parameters its `parameters`
cell declares. Parameters it does not declare are not passed to it and do not multiply its
runs: with `--epochs 1 5`, lesson 01 (no `epochs`) runs once per dataset, lesson 03 twice.
Parameters not given keep the notebook's own defaults. Everything is checked before anything
runs; bad input exits with status 2.

Each run goes to OUT/<folder>/<lesson>.ipynb, where <folder> names the values given, e.g.
mnist-e5-batch_size=128 (`defaults` when none were given). After every finished run
OUT/summary.md, summary.csv, summary.json and comparison.png (test accuracy by lesson and
folder) are rewritten. A failed run does not stop the others; its notebook keeps the error.
Ctrl-C or a kill keeps finished runs and the summary; the same command later skips the runs
that already succeeded (same parameters, same lesson code) unless --force."""

EPILOG = """\
examples:
  course run --out runs/course                 every lesson, its default parameters
  course run --lessons 03 04 --dataset mnist fashion_mnist cifar10 --epochs 1 5 \\
             --set batch_size=128 --jobs 2 --out runs/
  course run --lessons 03 --set limit=2000 --set architecture=cnn2 --set architecture=cnn3

exit status: 0 every run succeeded, 1 a run failed, 2 bad input, 130 interrupted."""


def add_parser(subparsers) -> None:
    """The ``course run`` command."""
    parser = subparsers.add_parser(
        "run", help="execute lessons over a matrix of parameters with papermill",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", nargs="+", metavar="NN",
                        help="lessons by number or file name, e.g. --lessons 03 04 or "
                             "--lessons 03_training (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--dataset", nargs="+", metavar="NAME",
                        help=f"datasets, one run each, e.g. --dataset mnist cifar10; choices: "
                             f"{', '.join(data.dataset_names())} (default: the lesson's own)")
    parser.add_argument("--epochs", nargs="+", metavar="N",
                        help="epoch counts (whole numbers >= 1), one run each, e.g. --epochs 1 5 "
                             "(default: the lesson's own)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="any other parameter of the lessons' parameters cell, e.g. --set "
                             "batch_size=128 --set limit=None; VALUE is a Python literal or a word; "
                             "repeat a NAME to run each of its values")
    parser.add_argument("--out", default="runs", metavar="DIR",
                        help="output folder, e.g. --out runs/course (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="runs at once, each in its own kernel, e.g. --jobs 2 (default: 1)")
    parser.add_argument("--force", action="store_true",
                        help="execute again the runs that already succeeded in DIR, e.g. --force "
                             "after changing a dataset file (default: skip them)")
    parser.add_argument("--notebooks", default=str(default_notebooks()), metavar="DIR",
                        help="folder of the lesson notebooks, e.g. --notebooks my-notebooks/ "
                             "(default: %(default)s)")
    parser.add_argument("--kernel", default=KERNEL, metavar="NAME",
                        help="Jupyter kernel, e.g. --kernel python3 (default: %(default)s)")
    parser.set_defaults(handler=_command)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2])
