"""Where runs execute: a pool of local processes (the default) or a Dask cluster (``--scheduler``).

Both are standard ``concurrent.futures`` executors running ``execute.execute_run``. Each also
carries a channel through which the runs report the cell they are executing, knows what to do
when a worker is lost, and gives the fingerprint (``fingerprint.environment``) of where runs execute.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import socket
import sys
import urllib.parse
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from utils.tools.runner import fingerprint
from utils.tools.runner.execute import Job, execute_run
from utils.tools.runner.plan import RunError

CLUSTER_EXTRA = "pip install 'cnn-keras-course[cluster]'"
_local_queue = None  # in a local pool's process: where its runs' progress goes


class LocalChannel:
    """Progress from a local pool's processes, through the queue each inherited when it started."""

    def send(self, message: dict) -> None:
        if _local_queue is not None:
            _local_queue.put(message)

    def stop_check(self):
        return lambda: False  # an interrupted local run is stopped by ending its process


def _start_local_worker(progress) -> None:
    """Runs first in each process of the local pool."""
    global _local_queue
    _local_queue = progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which ends the pool
    quiet = os.open(os.devnull, os.O_WRONLY)  # kernels inherit these: keep their log lines off the terminal
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    if sys.platform == "linux":  # die with the runner, even when it is killed with SIGKILL
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalPool:
    """``jobs`` local processes, each executing one run at a time in its own kernel."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        # Spawned, not forked: the runner may have imported TensorFlow (to check an architecture),
        # which does not survive a fork.
        self._context = multiprocessing.get_context("spawn")
        self._progress = self._context.Queue()
        self.channel = LocalChannel()
        self._processes: set = set()  # every process of its pools, to end them at once (stop)
        self._executor = self._new_executor()
        self.description = f"{jobs} local process{'es' * (jobs != 1)}"

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.jobs, mp_context=self._context, initializer=_start_local_worker,
                                   initargs=(self._progress,))

    def submit(self, job: Job) -> Future:
        # With spawn, the pool starts its processes in submit: the new children are its own.
        before = set(multiprocessing.active_children())
        future = self._executor.submit(execute_run, job)
        self._processes |= set(multiprocessing.active_children()) - before
        future.executor = self._executor  # which pool, should it break
        return future

    def environment(self, datasets: tuple[str, ...]) -> dict:
        """The pool's processes run this interpreter on this machine: its fingerprint is theirs."""
        return fingerprint.environment(datasets)

    def messages(self) -> list[dict]:
        return _drain(self._progress)

    def recover(self, future: Future, error: BaseException) -> bool:
        """After a lost worker: a new pool when this one broke; whether the run may be submitted again."""
        if not isinstance(error, BrokenProcessPool):
            return False
        if future.executor is self._executor:  # the first of this pool's runs to report it
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
        return True

    def stop(self) -> None:
        """End every run now: the pool's processes, and with them their kernels."""
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            process.join(timeout=10)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class DaskChannel:
    """Progress from runs on Dask workers, as events of one topic that the runner subscribes to."""

    def __init__(self, topic: str):
        self.topic = topic

    def send(self, message: dict) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, message)

    def stop_check(self):
        """In a run: a function telling, from any thread, whether the runner stopped its runs.

        It did when it released its lock (interrupted), or went away: the scheduler then drops
        the lock's lease within ``distributed.scheduler.locks.lease-timeout`` (30 s by default).
        """
        from distributed import Lock

        running = Lock(self.topic)
        running.locked()  # binds it to this worker, here in the task's thread; later calls use that
        return lambda: not running.locked()


class DaskCluster:
    """A Dask cluster's workers, through its scheduler; ``resources`` are what each run needs."""

    def __init__(self, address: str, resources: dict[str, float] | None = None):
        try:
            import distributed
        except ImportError:
            raise RunError(f"--scheduler {address}: needs the `distributed` package; install it with "
                           f"{CLUSTER_EXTRA}") from None
        try:
            _probe(address)  # fails at once where nothing listens; a Client would retry for seconds
            self.client = distributed.Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise RunError(f"--scheduler {address}: cannot reach a Dask scheduler there "
                           f"({' '.join(str(error).split())})") from None
        self.channel = DaskChannel(f"course-run-{uuid.uuid4().hex}")
        # Held while the runs may go on: a run stops before its next cell once it is not.
        self._running = distributed.Lock(self.channel.topic, scheduler_rpc=self.client.scheduler,
                                         loop=self.client.loop)
        self._held = self._running.acquire(timeout=30)
        self._progress: queue.Queue = queue.Queue()
        self.client.subscribe_topic(self.channel.topic, lambda event: self._progress.put(event[1]))
        self._executor = self.client.get_executor(pure=False, resources=resources or None)
        threads = self.client.nthreads()  # worker address -> its threads
        self.description = (f"the Dask cluster at {address} ({_count(len(threads), 'worker')}, "
                            f"{_count(sum(threads.values()), 'thread')}"
                            + (f"; each run needs {_resources_text(resources)}" if resources else "") + ")")
        workers = self.client.scheduler_info()["workers"].values()
        missing = [name for name in resources or {}
                   if not any(worker.get("resources", {}).get(name) for worker in workers)]
        if missing:
            print(f"course run: no worker offers {', '.join(missing)} yet; runs wait for one "
                  f"(start workers with e.g. dask worker {address} --resources {missing[0]}=1)",
                  file=sys.stderr)

    def submit(self, job: Job) -> Future:
        return self._executor.submit(execute_run, job)

    def environment(self, datasets: tuple[str, ...]) -> dict | None:
        """The workers' common fingerprint; None (nothing reused) when they differ or there are none."""
        found = list(self.client.run(fingerprint.environment, datasets).values())
        return found[0] if found and all(each == found[0] for each in found) else None

    def messages(self) -> list[dict]:
        return _drain(self._progress)

    def recover(self, future: Future, error: BaseException) -> bool:
        return True  # a lost worker (KilledWorker) or connection: the scheduler places the run anew

    def stop(self) -> None:
        """Cancel every run; a running lesson's worker then ends its kernel (execute.py)."""
        self._release()
        self._executor.shutdown(wait=False)

    def close(self) -> None:
        self._release()
        self.client.close()

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._running.release()


# The address schemes of Dask's communication backends, as its documentation lists them.
DASK_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def _probe(address: str) -> None:
    """Check the scheme; for ``tcp://``, open and close a connection: OSError when nothing listens there.
    Plain parsing (a scheme-less address is tcp, as Dask reads it): no internal module of Dask."""
    scheme, _, location = address.rpartition("://")
    scheme = scheme or "tcp"
    if scheme not in DASK_SCHEMES:
        raise ValueError(f"unknown address scheme {scheme!r} (known schemes: {', '.join(DASK_SCHEMES)})")
    if scheme == "tcp":
        parts = urllib.parse.urlsplit(f"tcp://{location}")
        if parts.port is None:
            raise ValueError(f"no port in {address!r}: give one, as in tcp://host:8786")
        socket.create_connection((parts.hostname, parts.port), timeout=10).close()


def _drain(messages) -> list[dict]:
    found = []
    while True:
        try:
            found.append(messages.get_nowait())
        except queue.Empty:
            return found


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _resources_text(resources: dict[str, float]) -> str:
    return " ".join(f"{name}={value:g}" for name, value in resources.items())
