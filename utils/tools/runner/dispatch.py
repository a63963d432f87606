"""Handing the runs to an executor and writing what comes back into OUT/.

Only this process writes into OUT/: each executed notebook as soon as its run returns, then the
summary. Runs that already succeeded with the same parameters, lesson code and fingerprint
(``fingerprint.environment``: course code, framework versions, dataset checksums) are reused. A run
whose worker is lost is handed out once more, then reported failed with the cause.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from utils import course
from utils.tools.runner.execute import Job, Outcome
from utils.tools.runner.plan import KERNEL, SUCCEEDED, Run, RunError
from utils.tools.runner.summary import markdown_table, results_text, write_atomic, write_summary

RUN_KEY = "course_run"  # notebook metadata key holding a run's parameters and status
INTERRUPTED = 130
ATTEMPTS = 2  # a run whose worker is lost is handed out once more


def error_line(notebook) -> str:
    """The last error a notebook shows, as one line: ``Name: message``."""
    for cell in reversed(notebook.get("cells", [])):
        for output in reversed(cell.get("outputs", [])):
            if output.get("output_type") == "error":
                return " ".join(f"{output['ename']}: {output['evalue']}".split())
    return ""


def reuse(run: Run, out: Path, code_hash: str, environment: dict | None) -> bool:
    """Take a run's earlier result when it succeeded with the same lesson code, parameters and
    fingerprint (course code, framework versions, dataset checksums); None matches nothing."""
    import nbformat

    try:
        notebook = nbformat.read(run.notebook(out), as_version=4)
    except (OSError, ValueError):
        return False
    earlier = notebook.metadata.get(RUN_KEY, {})
    if (environment is None or earlier.get("status") != "ok" or earlier.get("parameters") != run.parameters
            or earlier.get("lesson_code_sha256") != code_hash or earlier.get("environment") != environment):
        return False
    run.status, run.wall_time_s = "reused", earlier.get("wall_time_s")
    run.results = course.read_results(notebook)
    return True


def finish(run: Run, outcome: Outcome, out: Path, code_hash: str) -> None:
    """Record a returned run and write its executed notebook, failed or not, into OUT/."""
    import nbformat

    run.wall_time_s = outcome.wall_time_s
    notebook = None
    if outcome.notebook is not None:
        try:
            notebook = nbformat.reads(outcome.notebook, as_version=4)
        except ValueError as error:
            outcome = Outcome(None, f"the executed notebook is not readable: {error}", outcome.wall_time_s,
                              outcome.worker)
    run.error = outcome.error and ((notebook is not None and error_line(notebook)) or outcome.error)
    if notebook is None and not run.error:
        run.error = "papermill returned no notebook"
    run.status = "failed" if run.error else "ok"
    if notebook is None:
        return
    run.results = course.read_results(notebook)
    path = run.notebook(out)
    notebook.metadata.get("papermill", {}).update(input_path=str(run.lesson.path), output_path=str(path))
    notebook.metadata[RUN_KEY] = {"parameters": run.parameters, "status": run.status, "error": run.error,
                                  "wall_time_s": round(run.wall_time_s, 1), "lesson_code_sha256": code_hash,
                                  "environment": outcome.environment}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, nbformat.writes(notebook).encode())


def lock(out: Path):
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


class Progress:
    """One printed line per run started and finished; on a terminal, live bars as well.

    The bars: one over all runs, and one per running lesson showing the cell it executes.
    """

    def __init__(self, runs: list[Run], done: int):
        from tqdm import tqdm

        self._tqdm, self.runs, self.number = tqdm, runs, done
        self.bar = tqdm(total=len(runs), initial=done, unit="run", disable=None, file=sys.stderr,
                        dynamic_ncols=True)
        self.cells: dict[int, object] = {}  # run key -> its cell bar
        self.slots: dict[int, int] = {}  # run key -> its cell bar's line below the bar over all runs

    def started(self, key: int, waiting: int, worker: str = "") -> None:
        run = self.runs[key]
        where = f" on {worker}" if worker else ""
        if run.status == "running":  # a second start: its first worker was lost
            self.bar.write(f"  restarted {run.label}{where}: its worker was lost")
        else:
            run.status = "running"
            self.number += 1
            self.bar.write(f"[{self.number}/{len(self.runs)}] running {run.label}{where}; {waiting} waiting")
        self._close_cells(key)
        if not self.bar.disable:
            self.slots[key] = min(set(range(1, len(self.slots) + 2)) - set(self.slots.values()))
            self.cells[key] = self._tqdm(desc=f"{run.label}: starting its kernel", bar_format="{desc}",
                                         position=self.slots[key], leave=False, file=sys.stderr,
                                         dynamic_ncols=True)

    def cell(self, key: int, index: int, count: int, source: str) -> None:
        bar = self.cells.get(key)
        if bar is not None:  # "cell 4/12: model.fit(...)": the code cell it executes now
            label = self.runs[key].label
            bar.set_description_str(f"{label}: cell {index + 1}/{count}: {source}", refresh=True)

    def finished(self, run: Run) -> None:
        self._close_cells(self.runs.index(run))
        self.bar.update()
        took = "" if run.wall_time_s is None else f" in {run.wall_time_s:.1f} s"
        self.bar.write(f"  {run.status}: {run.label}{took}; {run.error or results_text(run)}")

    def _close_cells(self, key: int) -> None:
        self.slots.pop(key, None)
        bar = self.cells.pop(key, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for key in list(self.cells):
            self._close_cells(key)
        self.bar.close()


def execute(runs: list[Run], out: Path, executor, force: bool = False, kernel: str = KERNEL,
            command: str = "course run") -> int:
    """Execute the runs, keeping OUT/ and its summary current; the exit code: 0, 1 (a run failed), 130."""
    hashes = {lesson: lesson.code_hash() for lesson in {run.lesson for run in runs}}
    for stale in [*out.glob(".*.partial-*"), *out.glob("*/.*.partial*")]:  # from a killed runner
        stale.unlink()
    environments: dict = {}  # datasets -> the fingerprint where the runs execute
    for run in runs if not force else []:
        if run.datasets not in environments:
            environments[run.datasets] = executor.environment(run.datasets)
    todo = [run for run in runs
            if force or not reuse(run, out, hashes[run.lesson], environments[run.datasets])]
    print(f"course run: {len(runs)} runs into {out}/ ({len(runs) - len(todo)} already done, "
          f"{len(todo)} to execute on {executor.description})", flush=True)
    write_summary(out, runs, command)
    progress = Progress(runs, len(runs) - len(todo))
    texts = {lesson: lesson.text() for lesson in hashes}
    pending: dict = {}  # future -> run

    def submit(run: Run) -> None:
        run.attempts += 1
        job = Job(runs.index(run), texts[run.lesson], run.parameters, kernel, executor.channel, run.datasets)
        pending[executor.submit(job)] = run

    restore = _signals_as_interrupt()
    try:
        for run in todo:
            submit(run)
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _show(executor.messages(), progress, runs)
            for future in sorted(finished, key=lambda done: runs.index(pending[done])):
                run = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # the worker, not the lesson, failed
                    # A broken local pool fails its waiting runs too: they count an attempt as well.
                    if executor.recover(future, error) and run.attempts < ATTEMPTS:
                        submit(run)
                        continue
                    cause = " ".join(f"{type(error).__name__}: {error}".split())[:500]
                    outcome = Outcome(None, f"its worker failed ({run.attempts} attempts): {cause}", None, "")
                if run.status != "running":  # it finished before its start was shown
                    progress.started(runs.index(run), len(pending))
                finish(run, outcome, out, hashes[run.lesson])
                progress.finished(run)
                write_summary(out, runs, command)
    except KeyboardInterrupt:
        executor.stop()
        for run in runs:
            run.status = {"running": "interrupted", "pending": "not run"}.get(run.status, run.status)
        write_summary(out, runs, command)
        progress.close()
        print(f"\ncourse run: interrupted; finished runs and {out / 'summary.md'} are kept. "
              "Run the same command again to go on.", file=sys.stderr)
        return INTERRUPTED
    finally:
        progress.close()
        restore()
        executor.close()
    print()
    print(markdown_table(runs))
    print(f"\nsummary: {out / 'summary.md'} (also .csv, .json)"
          + (f"; plot: {out / 'comparison.png'}" if (out / "comparison.png").exists() else ""))
    failed = [run for run in runs if run.status not in SUCCEEDED]
    if failed:
        print(f"course run: {len(failed)} of {len(runs)} runs failed; their notebooks show the error",
              file=sys.stderr)
    return 1 if failed else 0


def _show(messages: list[dict], progress: Progress, runs: list[Run]) -> None:
    waiting = sum(run.status == "pending" for run in runs)
    for message in messages:
        if message.get("event") == "start":
            waiting -= runs[message["key"]].status == "pending"
            progress.started(message["key"], max(waiting, 0), message.get("worker", ""))
        elif message.get("event") == "cell" and runs[message["key"]].status == "running":
            progress.cell(message["key"], message["index"], message["count"], message["source"])


def _signals_as_interrupt():
    """Make Ctrl-C and a plain `kill` (SIGTERM) raise KeyboardInterrupt; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(number, handler) for number, handler in previous.items()]

