"""`course run`: validation, the run matrix, the summary, failures, resuming, interruption.

The slow tests execute notebooks: the real lessons 01 and 03 on the real Fashion-MNIST and
the small Keras-format MNIST (conftest.py), and small notebooks from runner_notebooks.py.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from utils import data
from utils.tools import cli, runner

import nbformat
import pytest
from runner_notebooks import data_lesson, training_lesson, wait_lesson

REPO = Path(__file__).resolve().parents[1]
MATRIX_LESSONS = ("01", "03")  # real lessons: one without `epochs`, one that trains


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
    for option in ("--lessons", "--dataset", "--epochs", "--set", "--out", "--jobs", "--force",
                   "--notebooks", "--kernel"):
        assert f"e.g. {option}" in text, option
    assert "course run --out runs/course" in text and "examples:" in text
    assert "lesson 01 (no `epochs`) runs once per dataset" in text


def test_default_notebooks_are_the_repositorys():
    assert runner.default_notebooks() == REPO / "notebooks"


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
    (["--jobs", "0"], ["--jobs 0: must be a whole number >= 1"]),
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
    held = runner._lock(out)  # another runner writing into the same folder
    try:
        assert course_run("--notebooks", str(notebooks), "--lessons", "02", "--out", str(out)) == 2
    finally:
        held.close()
    assert "another `course run` is writing into this folder" in capsys.readouterr().err


# The matrix and its layout.

def test_a_lesson_runs_once_per_value_of_the_parameters_it_declares(notebooks):
    lessons = runner.select_lessons(runner.find_lessons(notebooks), ["3", "01_data", "01"])
    assert [lesson.stem for lesson in lessons] == ["03_training", "01_data"]
    values = {"dataset": ["mnist", "cifar10"], "epochs": [1, 5]}
    runs = runner.plan_runs(lessons, values)
    assert [(run.lesson.stem, run.folder, run.parameters) for run in runs] == [
        ("03_training", "mnist-e1", {"dataset": "mnist", "epochs": 1}),
        ("03_training", "mnist-e5", {"dataset": "mnist", "epochs": 5}),
        ("03_training", "cifar10-e1", {"dataset": "cifar10", "epochs": 1}),
        ("03_training", "cifar10-e5", {"dataset": "cifar10", "epochs": 5}),
        ("01_data", "mnist", {"dataset": "mnist"}),  # no `epochs`: once per dataset
        ("01_data", "cifar10", {"dataset": "cifar10"}),
    ]
    assert [run.folder for run in runner.plan_runs(lessons, {})] == ["defaults", "defaults"]


def test_folder_names_list_the_values_given():
    assert runner.folder_name({"dataset": "mnist", "epochs": 5, "batch_size": 128}) == \
        "mnist-e5-batch_size=128"
    assert runner.folder_name({"limit": None, "note": "a/b c"}) == "limit=None-note=a_b_c"
    assert runner.folder_name({}) == "defaults"


def test_values_are_python_literals_or_words():
    assert [runner.parse_value(text) for text in ("5", "None", "0.5", "'x'", "mnist", "[1, 2]")] == \
        [5, None, 0.5, "x", "mnist", [1, 2]]


def test_summary_files_and_plot(notebooks, tmp_path):
    lessons = runner.select_lessons(runner.find_lessons(notebooks), ["01", "03"])
    runs = runner.plan_runs(lessons, {"dataset": ["mnist", "cifar10"]})
    runs[0].status, runs[0].wall_time_s, runs[0].error = "failed", 3.0, "ValueError: bad | value"
    runs[1].status, runs[1].wall_time_s, runs[1].results = "ok", 2.0, {"lesson": "01", "train_images": 180}
    runs[2].status, runs[2].wall_time_s = "reused", 9.5
    runs[2].results = {"params": 93322, "test_accuracy": 0.9}
    out = tmp_path / "runs"
    out.mkdir()
    runner.write_summary(out, runs, "course run --dataset mnist cifar10")
    assert sorted(p.name for p in out.iterdir()) == ["comparison.png", "summary.csv", "summary.json",
                                                      "summary.md"]  # no temporary files left
    markdown = (out / "summary.md").read_text()
    assert "`course run --dataset mnist cifar10`" in markdown
    assert "4 runs: 1 failed, 1 ok, 1 reused, 1 pending." in markdown
    assert "| 01_data     | dataset=mnist   | failed  | 3.0 s     | ValueError: bad \\| value" in markdown
    assert "params=93,322, test_accuracy=0.9" in markdown
    rows = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert [row["status"] for row in rows] == ["failed", "ok", "reused", "pending"]
    assert rows[2]["test_accuracy"] == "0.9" and json.loads(rows[2]["parameters"]) == {"dataset": "mnist"}
    records = summary(out)
    assert records[0]["notebook"] == "mnist/01_data.ipynb"
    assert records[0]["error"] == "ValueError: bad | value"
    runs[2].status = "failed"  # nothing left to plot: an earlier plot must not stay
    runner.write_summary(out, runs, "course run")
    assert not (out / "comparison.png").exists()


def test_error_line_is_the_last_error_in_the_notebook():
    notebook = {"cells": [{"outputs": [{"output_type": "error", "ename": "KeyError", "evalue": "'a'"}]},
                          {"outputs": [{"output_type": "stream", "text": "x"},
                                       {"output_type": "error", "ename": "DataNotAvailableError",
                                        "evalue": "MNIST is not available.\n Fix: course data stage"}]}]}
    assert runner.error_line(notebook) == \
        "DataNotAvailableError: MNIST is not available. Fix: course data stage"


# Real executions.

@pytest.fixture
def run_env(keras_home, tmp_path, monkeypatch) -> Path:
    """This process's environment for executing lessons: the test Keras home, a fresh model cache."""
    monkeypatch.setenv("COURSE_MODEL_CACHE", str(tmp_path / "model-cache"))
    return keras_home


@pytest.mark.slow
def test_real_lessons_on_two_datasets_then_resume(run_env, tmp_path, capsys):
    stems = {number: next((REPO / "notebooks").glob(f"{number}_*.ipynb")).stem for number in MATRIX_LESSONS}
    out = tmp_path / "runs"
    args = ["--lessons", *MATRIX_LESSONS, "--dataset", "fashion_mnist", "mnist", "--epochs", "1",
            "--set", "limit=200", "--out", str(out)]
    assert course_run(*args) == 0
    printed = capsys.readouterr().out
    assert "4 runs into" in printed and "[1/4] running" in printed and "[4/4] running" in printed

    # Lesson 01 has no epochs or limit: once per dataset, in a folder named by the dataset only.
    expected = {(stems["01"], "fashion_mnist"), (stems["01"], "mnist"),
                (stems["03"], "fashion_mnist-e1-limit=200"), (stems["03"], "mnist-e1-limit=200")}
    records = summary(out)
    assert {(r["lesson"], r["folder"]) for r in records} == expected
    for record in records:
        notebook = out / record["notebook"]
        assert notebook.is_file() and notebook.relative_to(out).parts[0] == record["folder"]
        assert record["status"] == "ok" and record["error"] == "" and record["wall_time_s"] > 0
        assert record["results"]["dataset"] == record["parameters"]["dataset"]
        assert record["results"]["lesson"] == record["lesson"][:2]
        if record["lesson"] == stems["03"]:
            dataset = record["parameters"]["dataset"]
            assert record["parameters"] == {"dataset": dataset, "epochs": 1, "limit": 200}
            assert record["results"]["epochs"] == 1 and 0 <= record["results"]["test_accuracy"] <= 1
    markdown = (out / "summary.md").read_text()
    assert "4 runs: 4 ok." in markdown and "test_accuracy=" in markdown
    assert markdown.split("\n\n")[-1].strip() in printed  # the same table on the terminal
    assert (out / "comparison.png").stat().st_size > 10_000
    assert not list(out.glob("*/.*"))  # no partial notebooks

    # Resume: the same command executes nothing and reports the earlier results.
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("*/*.ipynb")}
    assert course_run(*args) == 0
    assert "(4 already done, 0 to execute" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in out.glob("*/*.ipynb")} == stamps
    assert [r["status"] for r in summary(out)] == ["reused"] * 4
    assert [r["results"] for r in summary(out)] == [r["results"] for r in records]


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
    assert runner.error_line(kept) == failed["error"]
    assert passed["results"]["train_images"] == 180

    # After the fix, the same command executes only the run that failed.
    away.rename(mnist)
    assert course_run(*args) == 0
    assert "(1 already done, 1 to execute" in capsys.readouterr().out
    assert [(r["folder"], r["status"]) for r in summary(out)] == \
        [("mnist", "ok"), ("fashion_mnist", "reused")]


def processes_working_in(folder: Path) -> list[int]:
    """Processes whose working directory is inside ``folder`` (kernels run in their run's folder)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def start_course_run(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "utils", "run", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_an_interrupt_keeps_finished_runs_and_the_summary(stop, notebooks, subprocess_env, tmp_path):
    out = tmp_path / "runs"
    process = start_course_run(["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=0.0",
                                "--set", "seconds=120.0", "--out", str(out)], subprocess_env)
    deadline = time.monotonic() + 120
    while not (out / "seconds=120.0" / ".02_wait.partial.ipynb").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    time.sleep(2)  # the second run's kernel is waiting
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted; finished runs and" in stderr
    assert [(r["folder"], r["status"]) for r in summary(out)] == [("seconds=0.0", "ok"),
                                                                 ("seconds=120.0", "interrupted")]
    assert [p.relative_to(out) for p in out.rglob("*.ipynb")] == [Path("seconds=0.0/02_wait.ipynb")]
    deadline = time.monotonic() + 10  # the kernel notices its parent is gone within a second or two
    while processes_working_in(out.resolve()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_working_in(out.resolve()) == []


@pytest.mark.slow
def test_runs_into_different_folders_do_not_interfere(notebooks, subprocess_env, tmp_path):
    release = tmp_path / "release"  # the lessons wait until this file exists
    env = {**subprocess_env, "RUNNER_TEST_RELEASE": str(release)}
    common = ["--notebooks", str(notebooks), "--lessons", "02", "--set", "seconds=120.0"]
    first = start_course_run([*common, "--set", "note=a", "--out", str(tmp_path / "a")], env)
    second = start_course_run([*common, "--set", "note=b", "--out", str(tmp_path / "b")], env)
    deadline = time.monotonic() + 120
    for process, name in ((first, "a"), (second, "b")):
        while not list((tmp_path / name).glob("*/.02_wait.partial.ipynb")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
    same = start_course_run([*common, "--set", "note=a", "--out", str(tmp_path / "a")], env)
    assert same.wait(timeout=120) == 2 and "another `course run`" in same.communicate()[1]
    release.touch()
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    for name in ("a", "b"):
        assert [(r["folder"], r["status"]) for r in summary(tmp_path / name)] == \
            [(f"note={name}-seconds=120.0", "ok")]
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == \
            [".course-run.lock", f"note={name}-seconds=120.0", "summary.csv", "summary.json", "summary.md"]
