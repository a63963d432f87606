"""`course run` (utils/tools/runner): validation, the run matrix, the summary, failures, retries,
resuming, interruption, and execution on a Dask cluster.

The slow tests execute the small notebooks of runner_notebooks.py, never the real lessons (the
notebook tests execute those), on the real Fashion-MNIST and the small Keras-format MNIST
(conftest.py): in local processes, and on a real Dask scheduler with two worker processes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from utils import data
from utils.tools import cli
from utils.tools.runner import cli as run_cli
from utils.tools.runner import dispatch, execute, fingerprint, plan
from utils.tools.runner import summary as run_summary

import keras
import nbformat
import numpy
import psutil
import pytest
import tensorflow as tf
from runner_notebooks import data_lesson, training_lesson, wait_lesson

REPO = Path(__file__).resolve().parents[1]
# A small matrix: lesson 01 (TensorFlow, recorded results) on two datasets, lesson 02 (no TensorFlow)
# with two notes. Lesson 01 has no `note` and lesson 02 no `dataset`: each runs twice.
MATRIX = ["--lessons", "01", "02", "--dataset", "fashion_mnist", "mnist",
          "--set", "note=a", "--set", "note=b"]


@pytest.fixture
def notebooks(tmp_path) -> Path:
    """A notebooks folder with three small lessons: 01_data, 02_wait, 03_training."""
    folder = tmp_path / "notebooks"
    data_lesson(folder)
    wait_lesson(folder)
    training_lesson(folder)
    return folder


def course_run(*args: str) -> int:
    return cli.main(["run", *args])


def summary(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["runs"]


# Help and bad input: nothing executes.

def test_help_explains_every_option_with_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        course_run("--help")
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--lessons", "--dataset", "--epochs", "--set", "--out", "--jobs", "--scheduler",
                   "--resources", "--final", "--force", "--notebooks", "--kernel"):
        assert f"e.g. {option}" in text, option
    assert "course run --final --out runs/course" in text and "examples:" in text
    assert "Validation decides, the test set reports" in text
    assert "lesson 01 (no `epochs`) runs once per dataset" in text


def test_default_notebooks_are_the_repositorys():
    assert plan.default_notebooks() == REPO / "notebooks"


@pytest.mark.parametrize("args, expected", [
    (["--lessons", "07"], ["unknown lesson '07'",
                           "valid choices: 01 (01_data), 02 (02_wait), 03 (03_training)"]),
    (["--dataset", "imagenet"], ["--dataset imagenet", "unknown dataset 'imagenet'",
                                 "valid choices: cifar10, fashion_mnist, mnist"]),
    (["--set", "batchsize=32"], ["no selected lesson has a parameter 'batchsize'",
                                 "did you mean 'batch_size'",
                                 "valid choices: batch_size, dataset, epochs, limit, note, seconds, seed"]),
    (["--lessons", "01", "--epochs", "1"], ["no selected lesson has a parameter 'epochs'",
                                            "valid choices: dataset, seed"]),
    (["--epochs", "0"], ["--epochs 0", "epochs must be a whole number >= 1; got 0"]),
    (["--epochs", "1", "-3"], ["--epochs -3", "epochs must be a whole number >= 1; got -3"]),
    (["--epochs", "two"], ["--epochs two", "epochs must be a whole number >= 1; got 'two'"]),
    (["--set", "batch_size=1.5"], ["--set batch_size=1.5",
                                   "batch_size must be a whole number >= 1; got 1.5"]),
    (["--set", "seconds=soon"], ["--set seconds=soon", "seconds must be a float like the default 0.0"]),
    (["--dataset", "mnist", "--set", "limit=50"], ["03_training with dataset=mnist, limit=50",
                                                   "limit must be None (the full data) or a whole number "
                                                   "from 100 to 60000 for mnist; got 50"]),
    (["--set", "batch_size"], ["--set 'batch_size': expected NAME=VALUE"]),
    (["--set", "report_test=True"], ["--set report_test=True: course run sets report_test itself",
                                     "name one setting and add --final"]),
    (["--lessons", "03", "--epochs", "1", "2", "--final"],
     ["--final: 03_training would run 2 settings (epochs: 1 2)", "give one value per parameter"]),
    (["--jobs", "0"], ["--jobs 0: must be a whole number >= 1"]),
    (["--resources", "GPU=1"], ["--resources: applies to Dask workers; give the cluster with --scheduler"]),
    (["--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"],
     ["--jobs 2: with --scheduler, the workers' threads"]),
    (["--scheduler", "tcp://127.0.0.1:1", "--resources", "GPU"], ["--resources 'GPU': expected NAME=NUMBER"]),
    (["--scheduler", "tcp://127.0.0.1:1"],
     ["--scheduler tcp://127.0.0.1:1: cannot reach a Dask scheduler there", "Connection refused"]),
    (["--scheduler", "tcp://127.0.0.1"], ["--scheduler tcp://127.0.0.1: cannot reach", "no port in"]),
    (["--scheduler", "udp://127.0.0.1:8786"], ["--scheduler udp://127.0.0.1:8786: cannot reach",
                                               "unknown address scheme 'udp'"]),
])
def test_bad_input_exits_2_naming_the_value_and_the_choices(args, expected, notebooks, tmp_path, capsys):
    out = tmp_path / "runs"
    assert course_run("--notebooks", str(notebooks), "--out", str(out), *args) == 2
    error = capsys.readouterr().err
    assert error.startswith("course run: error: ")
    for fragment in expected:
        assert fragment in error
    assert not out.exists()  # validated before anything ran or was written


def test_a_folder_without_lessons_is_bad_input(tmp_path, capsys):
    assert course_run("--notebooks", str(tmp_path), "--out", str(tmp_path / "runs")) == 2
    assert "no lesson notebooks NN_name.ipynb" in capsys.readouterr().err


def test_an_output_folder_in_use_is_refused(notebooks, tmp_path, capsys):
    out = tmp_path / "runs"
    out.mkdir()
    held = dispatch.lock(out)  # another runner writing into the same folder
    try:
        assert course_run("--notebooks", str(notebooks), "--lessons", "02", "--out", str(out)) == 2
    finally:
        held.close()
    assert "another `course run` is writing into this folder" in capsys.readouterr().err


# The matrix and its layout.

def test_a_lesson_runs_once_per_value_of_the_parameters_it_declares(notebooks):
    lessons = plan.select_lessons(plan.find_lessons(notebooks), ["3", "01_data", "01"])
    assert [lesson.stem for lesson in lessons] == ["03_training", "01_data"]
    values = {"dataset": ["mnist", "cifar10"], "epochs": [1, 5]}
    runs = plan.plan_runs(lessons, values)
    assert [(run.lesson.stem, run.folder, run.parameters) for run in runs] == [
        ("03_training", "mnist-e1", {"dataset": "mnist", "epochs": 1, "report_test": False}),
        ("03_training", "mnist-e5", {"dataset": "mnist", "epochs": 5, "report_test": False}),
        ("03_training", "cifar10-e1", {"dataset": "cifar10", "epochs": 1, "report_test": False}),
        ("03_training", "cifar10-e5", {"dataset": "cifar10", "epochs": 5, "report_test": False}),
        ("01_data", "mnist", {"dataset": "mnist"}),  # no `epochs`: once per dataset
        ("01_data", "cifar10", {"dataset": "cifar10"}),
    ]
    assert [run.folder for run in plan.plan_runs(lessons, {})] == ["defaults", "defaults"]


def test_candidates_leave_the_test_set_alone_and_final_names_one_setting(notebooks):
    lessons = plan.select_lessons(plan.find_lessons(notebooks), ["03", "01"])
    final = plan.plan_runs(lessons, {"dataset": ["mnist"], "epochs": [5]}, final=True)
    assert [(run.lesson.stem, run.folder, run.parameters) for run in final] == [
        ("03_training", "mnist-e5-final", {"dataset": "mnist", "epochs": 5, "report_test": True}),
        ("01_data", "mnist", {"dataset": "mnist"}),  # no `report_test`: it never touches a test set
    ]
    assert [run.folder for run in plan.plan_runs(lessons, {}, final=True)] == ["final", "defaults"]
    data_only = plan.select_lessons(plan.find_lessons(notebooks), ["01"])  # no test set: any settings
    assert len(plan.plan_runs(data_only, {"dataset": ["mnist", "cifar10"]}, final=True)) == 2
    with pytest.raises(plan.RunError, match=r"--final: 03_training would run 2 settings \(dataset: mnist "
                                            r"cifar10\)"):
        plan.plan_runs(lessons, {"dataset": ["mnist", "cifar10"]}, final=True)


def test_folder_names_list_the_values_given():
    assert plan.folder_name({"dataset": "mnist", "epochs": 5, "batch_size": 128}) == \
        "mnist-e5-batch_size=128"
    assert plan.folder_name({"limit": None, "note": "a/b c"}) == "limit=None-note=a_b_c"
    assert plan.folder_name({}) == "defaults"
    assert plan.folder_name({"epochs": 5, "report_test": False}) == "e5"
    assert plan.folder_name({"epochs": 5, "report_test": True}) == "e5-final"


def test_values_are_python_literals_or_words():
    assert [plan.parse_value(text) for text in ("5", "None", "0.5", "'x'", "mnist", "[1, 2]")] == \
        [5, None, 0.5, "x", "mnist", [1, 2]]


def test_summary_files_and_plot(notebooks, tmp_path):
    lessons = plan.select_lessons(plan.find_lessons(notebooks), ["01", "03"])
    runs = plan.plan_runs(lessons, {"dataset": ["mnist", "cifar10"]})
    runs[0].status, runs[0].wall_time_s, runs[0].error = "failed", 3.0, "ValueError: bad | value"
    runs[1].status, runs[1].wall_time_s, runs[1].results = "ok", 2.0, {"lesson": "01", "train_images": 180}
    runs[2].status, runs[2].wall_time_s = "reused", 9.5
    runs[2].results = {"params": 93322, "test_accuracy": 0.9, "val_accuracy": 0.95}
    out = tmp_path / "runs"
    out.mkdir()
    run_summary.write_summary(out, runs, "course run --dataset mnist cifar10")
    assert sorted(p.name for p in out.iterdir()) == ["comparison.png", "summary.csv", "summary.json",
                                                      "summary.md"]  # no temporary files left
    markdown = (out / "summary.md").read_text()
    assert "`course run --dataset mnist cifar10`" in markdown
    assert "Candidates: compared on validation, the test set not evaluated." in markdown
    assert "4 runs: 1 failed, 1 ok, 1 reused, 1 pending." in markdown
    assert "| 01_data     | dataset=mnist   | failed  | 3.0 s     | ValueError: bad \\| value" in markdown
    assert "params=93,322, test_accuracy=0.9, val_accuracy=0.95" in markdown
    # plotted and compared on validation, test only written beside it; one panel per lesson
    assert run_summary.plotted_points(runs) == {"03_training": [("mnist", 0.95, 0.9)]}
    runs[3].status, runs[3].results = "ok", {"test_accuracy": 0.99}  # no validation accuracy: not plotted
    assert run_summary.plotted_points(runs) == {"03_training": [("mnist", 0.95, 0.9)]}
    runs[3].status, runs[3].results = "pending", {}
    rows = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert [row["status"] for row in rows] == ["failed", "ok", "reused", "pending"]
    assert rows[2]["test_accuracy"] == "0.9"
    assert json.loads(rows[2]["parameters"]) == {"dataset": "mnist", "report_test": False}
    records = summary(out)
    assert records[0]["notebook"] == "mnist/01_data.ipynb"
    assert records[0]["error"] == "ValueError: bad | value"
    runs[2].status = "failed"  # nothing left to plot: an earlier plot must not stay
    run_summary.write_summary(out, runs, "course run")
    assert not (out / "comparison.png").exists()


def test_error_line_is_the_last_error_in_the_notebook():
    notebook = {"cells": [{"outputs": [{"output_type": "error", "ename": "KeyError", "evalue": "'a'"}]},
                          {"outputs": [{"output_type": "stream", "text": "x"},
                                       {"output_type": "error", "ename": "DataNotAvailableError",
                                        "evalue": "MNIST is not available.\n Fix: course data stage"}]}]}
    assert dispatch.error_line(notebook) == \
        "DataNotAvailableError: MNIST is not available. Fix: course data stage"


def test_without_distributed_the_scheduler_option_names_the_extra(notebooks, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    out = tmp_path / "runs"
    assert course_run("--notebooks", str(notebooks), "--out", str(out),
                      "--scheduler", "tcp://127.0.0.1:1") == 2
    assert "needs the `distributed` package; install it with pip install 'cnn-keras-course[cluster]'" in \
        capsys.readouterr().err
    assert not out.exists()


def test_resources_are_names_with_positive_numbers():
    assert run_cli.parse_resources(["GPU=1", "MEM=4e9,slot=0.5"]) == {"GPU": 1.0, "MEM": 4e9, "slot": 0.5}
    assert run_cli.parse_resources(None) == {}
    for bad in ("GPU", "GPU=0", "GPU=-1", "=1", "GPU=one"):
        with pytest.raises(plan.RunError, match="expected NAME=NUMBER"):
            run_cli.parse_resources([bad])


def test_the_fingerprint_covers_the_course_code_the_frameworks_and_the_data(keras_home, tmp_path):
    package = tmp_path / "utils"
    shutil.copytree(fingerprint.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = fingerprint.package_sha256(package)
    assert before == fingerprint.package_sha256(fingerprint.PACKAGE)
    (package / "training.py").write_text((package / "training.py").read_text() + "# changed\n")
    assert fingerprint.package_sha256(package) != before
    (package / "__pycache__").mkdir()  # byte code is not code
    (package / "__pycache__" / "x.pyc").write_bytes(b"\0")
    changed = fingerprint.package_sha256(package)
    (package / "tools" / "new.py").write_text("")
    assert fingerprint.package_sha256(package) not in (before, changed)

    versions = fingerprint.framework_versions()
    assert f"keras=={keras.__version__}" in versions["keras"]
    assert f"numpy=={numpy.__version__}" in versions["numpy"]
    assert [version.split("==")[1] for version in versions["tensorflow"]] == [tf.__version__]
    assert {"scipy", "sklearn", "matplotlib", "papermill", "ipykernel"} <= set(versions)
    assert all(versions.values()), f"a framework whose distribution was not found: {versions}"

    mnist = keras_home / "datasets" / "mnist.npz"
    sums = fingerprint.environment(["mnist", "mnist"])["datasets"]
    assert sums == {"mnist": {"mnist.npz": data.sha256_of(mnist)}}
    mnist.write_bytes(mnist.read_bytes() + b"\0")
    assert fingerprint.dataset_sha256("mnist") != sums["mnist"]
    mnist.unlink()
    assert fingerprint.dataset_sha256("mnist") == {"mnist.npz": None}


def test_a_run_is_reused_only_with_the_same_code_parameters_and_fingerprint(notebooks, tmp_path):
    (run,) = plan.plan_runs(plan.select_lessons(plan.find_lessons(notebooks), ["01"]), {"dataset": ["mnist"]})
    assert run.datasets == ("mnist",)
    out, code = tmp_path / "runs", run.lesson.code_hash()
    environment = {"course_package_sha256": "a" * 64, "python": "3.11.7",
                   "frameworks": {"keras": ["keras==3.15.1"], "tensorflow": ["tensorflow==2.21.0"]},
                   "datasets": {"mnist": {"mnist.npz": "b" * 64}}}
    dispatch.finish(run, execute.Outcome(run.lesson.text(), "", 1.0, "", environment), out, code)
    assert dispatch.reuse(run, out, code, json.loads(json.dumps(environment)))
    assert run.status == "reused"

    def changed(path: str, value) -> dict:
        copy = json.loads(json.dumps(environment))
        *parents, last = path.split("/")
        target = copy
        for key in parents:
            target = target[key]
        target[last] = value
        return copy

    for other in (changed("course_package_sha256", "c" * 64), changed("frameworks/keras", ["keras==3.16.0"]),
                  changed("frameworks/tensorflow", ["tensorflow==2.22.0"]), changed("python", "3.12.0"),
                  changed("datasets/mnist/mnist.npz", "d" * 64), None):
        assert not dispatch.reuse(run, out, code, other), other
    assert not dispatch.reuse(run, out, "e" * 64, environment)  # other lesson code
    run.parameters = {"dataset": "fashion_mnist"}
    assert not dispatch.reuse(run, out, code, environment)


class LosingExecutor:
    """An executor whose workers are lost on the first ``losses[key]`` attempts of a run.

    Otherwise a run "executes" at once and returns its lesson notebook unexecuted.
    """

    description = "a test executor"
    channel = None

    def __init__(self, losses: dict[int, int]):
        self.losses, self.events, self.submitted = dict(losses), [], []

    def submit(self, job: execute.Job) -> Future:
        self.submitted.append(job.key)
        future = Future()
        self.events.append({"key": job.key, "event": "start", "worker": f"tcp://w{len(self.submitted)}"})
        if self.losses.get(job.key, 0) > 0:
            self.losses[job.key] -= 1
            future.set_exception(ConnectionError(f"worker tcp://w{len(self.submitted)} died"))
        else:
            future.set_result(execute.Outcome(job.notebook, "", 0.5, ""))
        return future

    def messages(self) -> list[dict]:
        found, self.events = self.events, []
        return found

    def environment(self, datasets) -> dict:
        return {"datasets": list(datasets)}

    def recover(self, future, error) -> bool:
        return True

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_run_whose_worker_is_lost_runs_once_more_then_fails_with_the_cause(notebooks, tmp_path, capsys):
    lessons = plan.select_lessons(plan.find_lessons(notebooks), ["02"])
    runs = plan.plan_runs(lessons, {"note": ["once", "twice", "never"]})
    out = tmp_path / "runs"
    out.mkdir()
    executor = LosingExecutor({0: 1, 1: 2})  # run 0 loses one worker, run 1 two, run 2 none
    assert dispatch.execute(runs, out, executor) == 1
    printed = capsys.readouterr().out
    assert executor.submitted == [0, 1, 2, 0, 1]  # each lost run handed out once more, no more
    assert "restarted 02_wait [note=once] on tcp://w4: its worker was lost" in printed
    records = summary(out)
    assert [(r["folder"], r["status"]) for r in records] == \
        [("note=once", "ok"), ("note=twice", "failed"), ("note=never", "ok")]
    assert records[1]["error"] == "its worker failed (2 attempts): ConnectionError: worker tcp://w5 died"
    assert records[1]["wall_time_s"] is None  # no worker returned it
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.ipynb")) == \
        ["note=never/02_wait.ipynb", "note=once/02_wait.ipynb"]  # a lost run leaves no notebook
    kept = nbformat.read(out / "note=once" / "02_wait.ipynb", as_version=4)
    assert kept.metadata[dispatch.RUN_KEY]["status"] == "ok"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_shows_the_cell_each_running_lesson_executes(notebooks, monkeypatch, capsys):
    runs = plan.plan_runs(plan.select_lessons(plan.find_lessons(notebooks), ["02"]), {"note": ["a", "b"]})
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = dispatch.Progress(runs, 0)
    progress.started(0, 1, "tcp://10.0.0.5:4000")
    progress.cell(0, 3, 5, "while time.monotonic() < deadline:")
    progress.started(1, 0)
    progress.cell(1, 2, 5, "import os")
    runs[0].status, runs[0].wall_time_s = "ok", 1.5
    progress.finished(runs[0])
    progress.close()
    bars = terminal.getvalue()
    assert "02_wait [note=a]: cell 4/5: while time.monotonic() < deadline:" in bars
    assert "02_wait [note=b]: cell 3/5: import os" in bars
    assert "02_wait [note=b]: starting its kernel" in bars
    assert "1/2" in bars and "run/s" in bars  # the bar over all runs
    assert capsys.readouterr().out.splitlines() == [
        "[1/2] running 02_wait [note=a] on tcp://10.0.0.5:4000; 1 waiting",
        "[2/2] running 02_wait [note=b]; 0 waiting",
        "  ok: 02_wait [note=a] in 1.5 s; no results recorded"]


def test_not_on_a_terminal_there_are_no_bars(notebooks, monkeypatch, capsys):
    runs = plan.plan_runs(plan.select_lessons(plan.find_lessons(notebooks), ["02"]), {})
    progress = dispatch.Progress(runs, 0)
    progress.started(0, 0)
    progress.cell(0, 1, 5, "import os")
    progress.close()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == "[1/1] running 02_wait [defaults]; 0 waiting\n"


class RecordingChannel:
    def __init__(self):
        self.sent = []

    def send(self, message: dict) -> None:
        self.sent.append(message)

    def stop_check(self):
        return lambda: False


@pytest.mark.slow  # executes a notebook
def test_a_run_returns_its_executed_notebook_and_reports_each_cell(notebooks, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the run's scratch folder goes
    channel = RecordingChannel()
    job = execute.Job(7, (notebooks / "02_wait.ipynb").read_text(), {"note": "c"}, "python3", channel)
    outcome = execute.execute_run(job)
    assert outcome.error == "" and outcome.worker == "" and outcome.wall_time_s > 0
    executed = nbformat.reads(outcome.notebook, as_version=4)
    assert channel.sent[0] == {"key": 7, "event": "start", "worker": "", "pid": os.getpid()}
    cells = [(m["index"], m["count"], m["source"]) for m in channel.sent[1:]]
    assert cells == [(0, 3, "seconds = 0.0  # the longest wait"), (1, 3, "# Parameters"),
                     (2, 3, "import os")]  # code cells only; papermill inserts the second
    assert re.search(r"waited c in the folder course-run-\w+", str(executed.cells[-1].outputs))
    assert list(scratch.iterdir()) == []  # the kernel's scratch folder, made there, is gone

    failing = execute.Job(8, job.notebook, {"seconds": "soon"}, "python3", channel)
    outcome = execute.execute_run(failing)  # the lesson fails: the notebook shows where
    assert outcome.error.startswith("PapermillExecutionError")
    assert dispatch.error_line(nbformat.reads(outcome.notebook, as_version=4)).startswith("TypeError")


@pytest.mark.slow  # executes a notebook
def test_runs_at_once_in_threads_of_one_process_keep_to_their_own_folders(notebooks, tmp_path, monkeypatch):
    """As in a Dask worker with two threads: one run ends while the other one executes."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where scratch folders go
    here, outcomes = os.getcwd(), {}
    channel = RecordingChannel()
    text = (notebooks / "02_wait.ipynb").read_text()

    def run(note: str, seconds: float) -> None:
        outcomes[note] = execute.execute_run(execute.Job(0, text, {"note": note, "seconds": seconds},
                                                         "python3", channel))

    first = threading.Thread(target=run, args=("first", 0.5))
    first.start()
    wait_for(lambda: any(m.get("source") == "import os" for m in channel.sent), "the first run's wait")
    second = threading.Thread(target=run, args=("second", 1.0))
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    assert {note: outcome.error for note, outcome in outcomes.items()} == {"first": "", "second": ""}
    assert os.getcwd() == here  # no run changed this process's folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks"]  # their scratch folders are gone


@pytest.mark.slow  # executes a notebook
def test_a_run_in_a_local_process(notebooks, tmp_path, monkeypatch, capsys):
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the pool's process reads it when it starts
    out = tmp_path / "runs"
    assert course_run("--notebooks", str(notebooks), "--lessons", "02", "--out", str(out)) == 0
    assert "(0 already done, 1 to execute on 1 local process)" in capsys.readouterr().out
    (record,) = summary(out)
    assert (record["folder"], record["status"]) == ("defaults", "ok")
    assert list((tmp_path / "tmp").iterdir()) == []  # no scratch folder left


@pytest.mark.slow  # executes a notebook that trains
def test_a_candidate_records_no_test_metric_and_only_final_evaluates_the_test_set(run_env, notebooks,
                                                                                   tmp_path):
    out = tmp_path / "runs"
    common = ["--notebooks", str(notebooks), "--lessons", "03", "--epochs", "1", "--out", str(out)]
    assert course_run(*common) == 0
    (candidate,) = summary(out)
    assert candidate["folder"] == "e1" and candidate["parameters"]["report_test"] is False
    assert "val_accuracy" in candidate["results"]
    assert not [key for key in candidate["results"] if key.startswith("test")]
    executed = nbformat.read(out / "e1" / "03_training.ipynb", as_version=4)
    assert "test_accuracy" not in json.dumps([cell.get("outputs", []) for cell in executed.cells])
    assert "the test set not evaluated" in (out / "summary.md").read_text()

    assert course_run(*common, "--final") == 0
    final = next(r for r in summary(out) if r["folder"] == "e1-final")
    assert final["parameters"]["report_test"] is True and 0 <= final["results"]["test_accuracy"] <= 1
    pending = plan.plan_runs(plan.select_lessons(plan.find_lessons(notebooks), ["03"]), {}, final=True)
    assert run_summary.test_set_line(pending) == \
        "Final setting, the test set not evaluated yet: 03_training (defaults, final) pending."
    assert "Final setting, the test set evaluated once: 03_training (epochs=1, final)." in \
        (out / "summary.md").read_text()


# Real executions.

def wait_for(condition, what: str, timeout: float = 120):
    """Poll ``condition()`` until it returns something true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def markers(folder: Path, pattern: str, count: int) -> list[Path] | None:
    """The wait lesson's start markers, once ``count`` of them exist (runner_notebooks.wait_lesson)."""
    found = sorted(folder.glob(pattern))
    return found if len(found) >= count else None


def marker_pids(marker: Path) -> tuple[int, int]:
    """The process ids a wait lesson's marker holds: its kernel's and its worker's."""
    kernel, worker = map(int, marker.read_text().split())
    return kernel, worker


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def leftovers(folder: Path) -> list[str]:
    """Processes working in ``folder`` (kernels run in scratch folders under $TMPDIR) or naming it."""
    found = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        cwd, words = process.info["cwd"] or "", " ".join(process.info["cmdline"] or [])
        if (cwd.startswith(str(folder)) or str(folder) in words) and alive(process.info["pid"]):
            found.append(f"{process.info['pid']}: {words}")
    return found


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Stop what a test started, by process id: each process and every process below it."""
    for process in processes:
        try:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for member in reversed(tree):
            try:
                member.terminate()
            except psutil.NoSuchProcess:
                pass
        _, still = psutil.wait_procs(tree, timeout=10)
        for member in still:
            member.kill()
        process.wait(timeout=10)


def course_run_in_thread(*args: str) -> tuple[threading.Thread, list[int]]:
    """`course run` in this process, in a thread, so that a test can act while it runs."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(course_run(*args)), daemon=True)
    thread.start()
    return thread, result


@pytest.fixture
def run_env(keras_home, tmp_path, monkeypatch) -> Path:
    """This process's environment for executing lessons: the test Keras home, a fresh model cache.

    The wait lesson leaves its start markers in ``started/`` and waits for the file ``release``;
    kernels work in scratch folders under ``tmp/``.
    """
    monkeypatch.setenv("COURSE_MODEL_CACHE", str(tmp_path / "model-cache"))
    (tmp_path / "started").mkdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("RUNNER_TEST_STARTED", str(tmp_path / "started"))
    monkeypatch.setenv("RUNNER_TEST_RELEASE", str(tmp_path / "release"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    return keras_home


@dataclass
class MatrixRun:
    notebooks: Path
    out: Path
    code: int
    printed: str
    records: list[dict]


@pytest.fixture(scope="module")
def local_matrix(tmp_path_factory, test_keras_env) -> MatrixRun:
    """MATRIX executed once in two local processes; its summary, as it was written."""
    folder = tmp_path_factory.mktemp("local-matrix")
    notebooks = folder / "notebooks"
    data_lesson(notebooks)
    wait_lesson(notebooks)
    out = folder / "runs"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**test_keras_env, "COURSE_MODEL_CACHE": str(folder / "model-cache")}.items():
            patch.setenv(key, value)
        stdout, sys.stdout = sys.stdout, io.StringIO()
        try:
            code = course_run(*MATRIX, "--notebooks", str(notebooks), "--out", str(out), "--jobs", "2")
        finally:
            stdout, sys.stdout = sys.stdout, stdout
    return MatrixRun(notebooks, out, code, stdout.getvalue(), summary(out))


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "wall_time_s"} for record in records]


@pytest.mark.slow
def test_a_matrix_of_lessons_runs_then_resumes(local_matrix, test_keras_env, monkeypatch, capsys):
    out, printed, records = local_matrix.out, local_matrix.printed, local_matrix.records
    assert local_matrix.code == 0, printed
    assert "4 runs into" in printed and "on 2 local processes" in printed
    assert "[1/4] running" in printed and "[4/4] running" in printed

    # Each lesson once per value of the parameters it declares, in a folder named by those values.
    assert [(r["lesson"], r["folder"], r["parameters"]) for r in records] == [
        ("01_data", "fashion_mnist", {"dataset": "fashion_mnist"}),
        ("01_data", "mnist", {"dataset": "mnist"}),
        ("02_wait", "note=a", {"note": "a"}), ("02_wait", "note=b", {"note": "b"})]
    for record in records:
        notebook = out / record["notebook"]
        assert notebook.is_file() and notebook.relative_to(out).parts[0] == record["folder"]
        assert record["status"] == "ok" and record["error"] == "" and record["wall_time_s"] > 0
        executed = nbformat.read(notebook, as_version=4)
        nbformat.validate(executed)
        assert executed.metadata.papermill.input_path == \
            str(local_matrix.notebooks / f"{record['lesson']}.ipynb")
        if record["lesson"] == "01_data":  # results recorded in the notebook reach the summary
            assert record["results"] == {"lesson": "01", "dataset": record["parameters"]["dataset"],
                                         "label": record["results"]["label"], "train_images": 180}
        else:
            assert record["results"] == {} and f"waited {record['parameters']['note']}" in str(executed.cells)
    markdown = (out / "summary.md").read_text()
    assert "4 runs: 4 ok." in markdown and "train_images=180" in markdown
    assert markdown.split("\n\n")[-1].strip() in printed  # the same table on the terminal
    assert sorted(p.name for p in out.iterdir()) == [".course-run.lock", "fashion_mnist", "mnist", "note=a",
                                                     "note=b", "summary.csv", "summary.json", "summary.md"]
    assert not list(out.glob("*/.*"))  # no partial notebooks

    # Resume: the same command executes nothing and reports the earlier results.
    for key, value in test_keras_env.items():
        monkeypatch.setenv(key, value)
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("*/*.ipynb")}
    args = [*MATRIX, "--notebooks", str(local_matrix.notebooks), "--out", str(out), "--jobs", "2"]
    assert course_run(*args) == 0
    assert "(4 already done, 0 to execute" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in out.glob("*/*.ipynb")} == stamps
    assert [r["status"] for r in summary(out)] == ["reused"] * 4
    assert [r["results"] for r in summary(out)] == [r["results"] for r in records]


@pytest.mark.slow
def test_a_change_to_the_course_code_executes_the_runs_again(notebooks, subprocess_env, tmp_path):
    """`course run` from a copy of the package: the same command reuses, then re-runs after an edit."""
    source = tmp_path / "source"
    shutil.copytree(fingerprint.PACKAGE, source / "utils", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**subprocess_env, "PYTHONPATH": str(source)}
    args = ["--notebooks", str(notebooks), "--lessons", "02", "--out", str(tmp_path / "runs")]

    def statuses() -> list[str]:
        process = start_course_run(args, env, cwd=tmp_path)  # not this checkout's package
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        return [r["status"] for r in summary(tmp_path / "runs")]

    assert statuses() == ["ok"]
    assert statuses() == ["reused"]
    models = source / "utils" / "models.py"  # not even imported by this lesson
    models.write_text(models.read_text() + "\nWIDTH = 2  # a change\n")
    assert statuses() == ["ok"]
    recorded = nbformat.read(tmp_path / "runs" / "defaults" / "02_wait.ipynb", as_version=4)
    assert recorded.metadata[dispatch.RUN_KEY]["environment"]["course_package_sha256"] == \
        fingerprint.package_sha256(source / "utils")


@pytest.mark.slow
def test_a_failed_run_does_not_stop_the_others_and_names_the_data_command(run_env, notebooks, tmp_path,
                                                                            capsys):
    mnist = run_env / "datasets" / "mnist.npz"
    away = mnist.rename(tmp_path / "mnist.npz")  # MNIST not available offline
    out = tmp_path / "runs"
    args = ["--notebooks", str(notebooks), "--lessons", "01", "--dataset", "mnist", "fashion_mnist",
            "--out", str(out)]
    assert course_run(*args, "--jobs", "2") == 1  # both at once: one failing does not disturb the other
    captured = capsys.readouterr()
    assert "1 of 2 runs failed" in captured.err
    failed, passed = summary(out)
    assert (failed["folder"], failed["status"], passed["status"]) == ("mnist", "failed", "ok")
    assert failed["error"].startswith("DataNotAvailableError: MNIST is not available")
    assert data.fix_command("mnist") in failed["error"]
    assert data.fix_command("mnist") in (out / "summary.md").read_text()
    kept = nbformat.read(out / failed["notebook"], as_version=4)  # the executed notebook, with its error
    assert dispatch.error_line(kept) == failed["error"]
    assert passed["results"]["train_images"] == 180

    # After the fix, the same command executes only the run that failed.
    away.rename(mnist)
    assert course_run(*args) == 0
    assert "(1 already done, 1 to execute" in capsys.readouterr().out
    assert [(r["folder"], r["status"]) for r in summary(out)] == \
        [("mnist", "ok"), ("fashion_mnist", "reused")]


@pytest.mark.slow
def test_a_local_worker_killed_mid_run_is_run_again(run_env, notebooks, tmp_path, capsys):
    out, started = tmp_path / "runs", tmp_path / "started"
    runner, result = course_run_in_thread("--notebooks", str(notebooks), "--lessons", "02", "--set",
                                          "seconds=120.0", "--set", "note=p1", "--set", "note=p2",
                                          "--jobs", "2", "--out", str(out))
    first = wait_for(lambda: markers(started, "p*-120.0", 2), "both runs to start")
    kernels = [marker_pids(marker)[0] for marker in first]
    kernel, worker = marker_pids(started / "p1-120.0")
    os.kill(worker, signal.SIGKILL)  # the pool's process that runs note=p1
    (tmp_path / "release").touch()
    runner.join(timeout=120)
    assert result == [0]
    assert "restarted 02_wait [note=p1-seconds=120.0]: its worker was lost" in capsys.readouterr().out
    assert [r["status"] for r in summary(out)] == ["ok", "ok"]
    for path in out.glob("*/*.ipynb"):
        assert "waited p" in str(nbformat.read(path, as_version=4).cells)
    wait_for(lambda: not any(map(alive, kernels)), "the first kernels to exit", timeout=20)
    assert leftovers(tmp_path / "tmp") == []


def start_course_run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "utils", "run", *args], env=env, text=True, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def wait_env(subprocess_env, tmp_path) -> dict[str, str]:
    """An environment for a `course run` subprocess whose wait lessons leave markers in ``started/``."""
    for name in ("started", "tmp"):
        (tmp_path / name).mkdir()
    return {**subprocess_env, "RUNNER_TEST_STARTED": str(tmp_path / "started"),
            "RUNNER_TEST_RELEASE": str(tmp_path / "release"), "TMPDIR": str(tmp_path / "tmp")}


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_an_interrupt_keeps_finished_runs_and_the_summary(stop, notebooks, wait_env, tmp_path):
    out = tmp_path / "runs"
    process = start_course_run(["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=0.0",
                                "--set", "seconds=120.0", "--out", str(out)], wait_env)
    marker = wait_for(lambda: markers(tmp_path / "started", "x-120.0", 1), "the second run's kernel")[0]
    kernel, worker = marker_pids(marker)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted; finished runs and" in stderr
    assert [(r["folder"], r["status"]) for r in summary(out)] == [("seconds=0.0", "ok"),
                                                                 ("seconds=120.0", "interrupted")]
    assert [p.relative_to(out) for p in out.rglob("*.ipynb")] == [Path("seconds=0.0/02_wait.ipynb")]
    # The worker process ends at once; its kernel notices within a second or two.
    wait_for(lambda: not alive(worker) and not alive(kernel), "the run's processes to exit", timeout=20)
    assert leftovers(tmp_path / "tmp") == []


@pytest.mark.slow
def test_runs_into_different_folders_do_not_interfere(notebooks, wait_env, tmp_path):
    common = ["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=120.0"]
    first = start_course_run([*common, "--set", "note=a", "--out", str(tmp_path / "a")], wait_env)
    second = start_course_run([*common, "--set", "note=b", "--out", str(tmp_path / "b")], wait_env)
    try:
        wait_for(lambda: markers(tmp_path / "started", "[ab]-120.0", 2), "both runs to start")
        same = start_course_run([*common, "--set", "note=a", "--out", str(tmp_path / "a")], wait_env)
        assert same.wait(timeout=120) == 2 and "another `course run`" in same.communicate()[1]
        (tmp_path / "release").touch()
        assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    finally:
        stop_processes([first, second])
    for name in ("a", "b"):
        assert [(r["folder"], r["status"]) for r in summary(tmp_path / name)] == \
            [(f"note={name}-seconds=120.0", "ok")]
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == \
            [".course-run.lock", f"note={name}-seconds=120.0", "summary.csv", "summary.json", "summary.md"]


# A real Dask cluster on this machine: a scheduler and two worker processes, as `dask` starts them.

@dataclass
class Cluster:
    address: str
    folder: Path
    env: dict[str, str]  # its processes' environment, hence their kernels'
    logs: object  # where its processes write
    processes: list[subprocess.Popen]  # the scheduler first, then the workers

    @property
    def started(self) -> Path:  # where the wait lessons on its workers leave their markers
        return self.folder / "started"

    @property
    def release(self) -> Path:  # the file they wait for
        return self.folder / "release"

    @property
    def scratch(self) -> Path:  # its kernels' scratch folders are under here
        return self.folder / "tmp"

    def start_worker(self, name: str, *options: str) -> subprocess.Popen:
        """`dask worker` on 127.0.0.1, without a nanny: killing it kills the worker."""
        process = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--name", name, "--no-nanny",
             "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60",
             "--local-directory", str(self.folder / name), *options],
            env=self.env, stdout=self.logs, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory, test_keras_env):
    """`dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    for name in ("started", "ended", "tmp"):
        (folder / name).mkdir()
    env = {**os.environ, **test_keras_env, "COURSE_MODEL_CACHE": str(folder / "model-cache"),
           "RUNNER_TEST_STARTED": str(folder / "started"), "RUNNER_TEST_RELEASE": str(folder / "release"),
           "RUNNER_TEST_ENDED": str(folder / "ended"),
           "TMPDIR": str(folder / "tmp"),
           "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_VALIDATION_INTERVAL": "1s"}  # see the runner-gone test
    scheduler_file = folder / "scheduler.json"
    cluster = Cluster("", folder, env, open(folder / "dask.log", "w"), [])
    cluster.processes.append(subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file), "--idle-timeout", "900"],
        env=env, stdout=cluster.logs, stderr=subprocess.STDOUT))
    try:
        wait_for(scheduler_file.is_file, "the scheduler's address", timeout=60)
        cluster.address = json.loads(scheduler_file.read_text())["address"]
        for name in ("worker-a", "worker-b"):
            cluster.start_worker(name, "--nthreads", "1")
        with Client(cluster.address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        yield cluster
    finally:
        stop_processes([*cluster.processes[1:], cluster.processes[0]])  # the workers, then the scheduler
        cluster.logs.close()
        assert leftovers(folder) == [], (folder / "dask.log").read_text()[-3000:]


@pytest.mark.slow
def test_on_a_dask_cluster_the_summary_equals_a_local_runs(local_matrix, dask_cluster, tmp_path, capsys):
    out = tmp_path / "runs"
    code = course_run(*MATRIX, "--notebooks", str(local_matrix.notebooks), "--out", str(out),
                      "--scheduler", dask_cluster.address)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"4 runs into {out}/ (0 already done, 4 to execute on the Dask cluster at " \
           f"{dask_cluster.address} (2 workers, 2 threads))" in printed
    workers = set(re.findall(r"running .* on (tcp://127\.0\.0\.1:\d+);", printed))
    assert len(workers) == 2, printed  # both workers executed runs
    assert without_times(summary(out)) == without_times(local_matrix.records)
    for record in summary(out):  # the client wrote each executed notebook; workers share no folder
        executed = nbformat.read(out / record["notebook"], as_version=4)
        assert executed.metadata[dispatch.RUN_KEY]["status"] == "ok"
        assert executed.metadata.papermill.input_path == \
            str(local_matrix.notebooks / f"{record['lesson']}.ipynb")
    assert leftovers(dask_cluster.scratch) == []  # no kernel outlives its run


@pytest.mark.slow
def test_resources_send_each_run_to_a_worker_that_offers_them(notebooks, dask_cluster, tmp_path, capsys):
    from distributed import Client

    out = tmp_path / "runs"
    runner, result = course_run_in_thread(
        "--notebooks", str(notebooks), "--lessons", "02", "--set", "note=g1", "--set", "note=g2",
        "--set", "seconds=2.0", "--out", str(out), "--scheduler", dask_cluster.address,
        "--resources", "GPU=1")
    wait_for(lambda: (out / "summary.json").is_file(), "the runs to be handed out")
    gpu_worker = dask_cluster.start_worker("worker-gpu", "--nthreads", "2", "--resources", "GPU=1")
    runner.join(timeout=120)
    assert result == [0]
    # Both ran on the GPU worker, though the others were idle; one after the other (one GPU, two threads).
    first, second = sorted(dask_cluster.started.glob("g*"), key=lambda path: path.stat().st_mtime_ns)
    assert [marker_pids(marker)[1] for marker in (first, second)] == [gpu_worker.pid] * 2
    # The second started after the first had ended (its end marker), not merely after it started.
    first_ended = dask_cluster.folder / "ended" / first.name
    assert first_ended.stat().st_mtime_ns <= second.stat().st_mtime_ns
    with Client(dask_cluster.address, timeout="30s") as client:
        gpu = next(address for address, info in client.scheduler_info()["workers"].items()
                   if info["name"] == "worker-gpu")
    printed = capsys.readouterr()
    assert "no worker offers GPU yet; runs wait for one" in printed.err
    assert "each run needs GPU=1)" in printed.out
    assert re.findall(r"running 02_wait \[note=g.-seconds=2.0\] on (\S+);", printed.out) == [gpu, gpu]
    assert [r["status"] for r in summary(out)] == ["ok", "ok"]


@pytest.mark.slow
def test_an_interrupt_ends_the_kernels_on_the_cluster_at_once(notebooks, dask_cluster, subprocess_env,
                                                              tmp_path):
    out = tmp_path / "runs"
    process = start_course_run(["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=120.0",
                                "--set", "note=i1", "--out", str(out), "--scheduler", dask_cluster.address],
                               subprocess_env)
    try:
        marker = wait_for(lambda: markers(dask_cluster.started, "i1-120.0", 1), "the run to start")[0]
        kernel, worker = marker_pids(marker)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        stop_processes([process])
    assert process.returncode == 130, stderr
    assert [(r["folder"], r["status"]) for r in summary(out)] == [("note=i1-seconds=120.0", "interrupted")]
    wait_for(lambda: not alive(kernel), "the cancelled run's kernel to end", timeout=15)  # not in 120 s
    assert alive(worker)  # the worker stays, free for other runs


@pytest.mark.slow
def test_a_run_whose_runner_went_away_ends_its_kernel(notebooks, dask_cluster, subprocess_env, tmp_path):
    # The runner's lock lease lapses 3 s after its last refresh; the scheduler checks every second.
    env = {**subprocess_env, "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT": "3s"}
    process = start_course_run(["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=120.0",
                                "--set", "note=gone", "--out", str(tmp_path / "runs"), "--scheduler",
                                dask_cluster.address], env)
    try:
        marker = wait_for(lambda: markers(dask_cluster.started, "gone-120.0", 1), "the run to start")[0]
        kernel, worker = marker_pids(marker)
        process.kill()  # SIGKILL: no chance to cancel anything
        process.wait(timeout=10)
    finally:
        stop_processes([process])
    wait_for(lambda: not alive(kernel), "the orphaned run's kernel to end", timeout=30)  # not in 120 s
    assert alive(worker)


@pytest.mark.slow
def test_a_dask_worker_killed_mid_run_loses_no_finished_run(notebooks, dask_cluster, tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=120.0", "--set", "note=k1",
            "--set", "note=k2", "--set", "note=k3", "--out", str(out), "--scheduler", dask_cluster.address]
    runner, result = course_run_in_thread(*args)
    first = wait_for(lambda: markers(dask_cluster.started, "k*-120.0", 2), "two runs to start")
    kernel, worker = marker_pids(first[0])
    killed = next(process for process in dask_cluster.processes[1:] if process.pid == worker)
    killed.kill()  # SIGKILL: the worker dies mid-run, as a lost machine would
    killed.wait(timeout=10)
    lost = f"note={first[0].name.split('-')[0]}-seconds=120.0"
    dask_cluster.release.touch()
    runner.join(timeout=180)
    printed = capsys.readouterr().out
    records = {r["folder"]: r for r in summary(out)}
    assert result == [0], printed  # the scheduler hands the lost run to the other worker: no failure
    assert f"restarted 02_wait [{lost}] on tcp://127.0.0.1:" in printed
    assert printed.count("restarted 02_wait") == 1, "only the lost run is restarted, once"
    assert [r["status"] for r in records.values()] == ["ok"] * 3
    again = nbformat.read(out / records[lost]["notebook"], as_version=4)
    assert f"waited {lost.split('-')[0][5:]}" in str(again.cells)  # executed to the end, elsewhere
    finished = {path: path.read_bytes() for path in out.glob("*/*.ipynb")}
    assert len(finished) == 3
    for path in finished:
        nbformat.validate(nbformat.read(path, as_version=4))
        assert "waited k" in path.read_text()

    # A resume reuses every finished run and leaves its notebook as it was.
    assert course_run(*args) == 0
    assert [r["status"] for r in summary(out)] == ["reused"] * 3
    assert all(path.read_bytes() == content for path, content in finished.items())
    wait_for(lambda: not alive(kernel), "the killed worker's kernel to exit", timeout=20)
