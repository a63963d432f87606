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

ENGINE = "course-run"  # papermill's nbclient engine, reporting each cell it starts


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


@dataclass(frozen=True)
class Outcome:
    notebook: str | None  # the executed notebook as JSON text; None when papermill wrote none
    error: str  # why papermill failed, as one line; "" when it succeeded
    wall_time_s: float | None  # None when no worker returned the run
    worker: str  # the Dask worker's address; "" in the local pool


def execute_run(job: Job) -> Outcome:
    """Execute one run with papermill in a scratch folder; return the executed notebook's text."""
    import papermill

    _register_engine()
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
                                       kernel_name=job.kernel, progress_bar=False, engine_name=ENGINE,
                                       on_cell=on_cell, resources={"metadata": {"path": scratch}})
        except Exception as exc:  # the lesson failed, or its kernel did: the notebook shows which
            error = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        finally:
            done.set()
            watcher.join()
        if stopped():
            raise RunStopped("course run was interrupted")
        text = executed.read_text(encoding="utf-8") if executed.is_file() else None
    return Outcome(text, error, time.perf_counter() - started, worker)


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


def _register_engine() -> None:
    from papermill.engines import NBClientEngine, papermill_engines

    class CellReportingEngine(NBClientEngine):
        """papermill's nbclient engine, calling ``on_cell(index, count, source)`` as each code cell starts.

        ``index`` counts code cells only, from 0; ``count`` is the number of code cells.
        """

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, on_cell=None, **kwargs):
            cell_start = nb_man.cell_start
            code = [index for index, cell in enumerate(nb_man.nb.cells) if cell.cell_type == "code"]

            def reporting_cell_start(cell, cell_index=None, **more):
                if on_cell is not None and cell_index in code:
                    on_cell(code.index(cell_index), len(code), cell.source)
                return cell_start(cell, cell_index, **more)

            nb_man.cell_start = reporting_cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE, CellReportingEngine)
