"""One run, on whichever machine executes it: papermill on a lesson, the executed notebook back.

A run receives the lesson notebook's text, not a path, and returns the executed notebook's
text, so a worker shares no file system with the machine that started `course run`. The
kernel works in a scratch folder that is removed afterwards. While it runs, the run reports
each cell it starts to a channel (``utils.tools.runner.executors``), for the progress display.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


class RunStopped(RuntimeError):
    """The `course run` that asked for this run was interrupted; the run stops before its next cell."""


@dataclass(frozen=True)
class Job:
    """What a worker needs for one run; it pickles small, and names no local file."""

    key: int  # the run's number in its `course run`
    notebook: str  # the lesson notebook, as JSON text
    parameters: dict
    kernel: str
    channel: object  # where progress goes: has send(message) and stop_check()
    datasets: tuple[str, ...] = ()  # the datasets it reads, for its fingerprint


@dataclass(frozen=True)
class Outcome:
    notebook: str | None  # the executed notebook as JSON text; None when papermill wrote none
    error: str  # why papermill failed, as one line; "" when it succeeded
    wall_time_s: float | None  # None when no worker returned the run
    worker: str  # the Dask worker's address; "" in the local pool
    environment: dict | None = None  # fingerprint.environment() where it executed, after it did


def execute_run(job: Job) -> Outcome:
    """Execute one run with papermill in a scratch folder; return the executed notebook's text."""
    from utils.tools.runner import fingerprint

    import papermill

    started = time.perf_counter()
    worker = worker_address()
    job.channel.send({"key": job.key, "event": "start", "worker": worker, "pid": os.getpid()})

    stopped = job.channel.stop_check()

    def on_cell(index: int, count: int, source: str) -> None:
        if stopped():
            raise RunStopped("course run was interrupted")
        first_line = next((line for line in source.splitlines() if line.strip()), "")
        job.channel.send({"key": job.key, "event": "cell", "index": index, "count": count,
                          "source": first_line[:80]})

    with tempfile.TemporaryDirectory(prefix="course-run-") as scratch:
        lesson, executed = Path(scratch) / "lesson.ipynb", Path(scratch) / "executed.ipynb"
        lesson.write_text(job.notebook, encoding="utf-8")
        error, done = "", threading.Event()
        watcher = threading.Thread(target=_end_kernel_when_stopped, args=(stopped, scratch, done),
                                   daemon=True)
        watcher.start()
        try:
            # The kernel starts in the scratch folder (nbclient's resources path). papermill's own
            # `cwd` would change this process's folder, which a Dask worker's other runs share.
            papermill.execute_notebook(str(lesson), str(executed), parameters=job.parameters,
                                       kernel_name=job.kernel, progress_bar=False,
                                       resources={"metadata": {"path": scratch}}, **cell_hooks(on_cell))
        except Exception as exc:  # the lesson failed, or its kernel did: the notebook shows which
            error = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        finally:
            done.set()
            watcher.join()
        if stopped():
            raise RunStopped("course run was interrupted")
        text = executed.read_text(encoding="utf-8") if executed.is_file() else None
    return Outcome(text, error, time.perf_counter() - started, worker, fingerprint.environment(job.datasets))


def _end_kernel_when_stopped(stopped, scratch: str, done: threading.Event) -> None:
    """While a run executes: when its `course run` cancels it, end its kernel (it works in ``scratch``)."""
    import psutil

    scratch = os.path.realpath(scratch)
    while not done.wait(1.0):
        if stopped():
            for process in psutil.Process().children(recursive=True):
                try:
                    if process.cwd() == scratch:
                        process.kill()
                except psutil.Error:
                    continue
            return


def worker_address() -> str:
    """The Dask worker running this code; "" outside a Dask worker."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return ""


def cell_hooks(on_cell) -> dict:
    """nbclient's hooks, as papermill passes them on: ``on_cell(index, count, source)`` as each code cell
    of the executed (parameterised) notebook starts; ``index`` counts code cells only, from 0."""
    code: list[int] = []

    def notebook_started(notebook, **_) -> None:
        code[:] = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]

    def cell_started(cell, cell_index, **_) -> None:
        if cell_index in code:
            on_cell(code.index(cell_index), len(code), cell.source)

    return {"on_notebook_start": notebook_started, "on_cell_start": cell_started}
