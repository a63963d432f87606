"""Lessons run through papermill with other parameters, on every dataset.

Fashion-MNIST is the real one; MNIST and CIFAR-10 are the small Keras-format files the
tests write (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

from utils.course import read_results

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DATASETS = ["fashion_mnist", "mnist", "cifar10"]


def execute(lesson: str, out: Path, env: dict[str, str], monkeypatch, **parameters) -> dict:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    source = next(NOTEBOOKS.glob(f"{lesson}_*.ipynb"))
    papermill.execute_notebook(str(source), str(out), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(NOTEBOOKS))
    return read_results(nbformat.read(out, as_version=4))


@pytest.mark.parametrize("dataset, cnn3, cnn2", [
    ("mnist", 93_322, 225_034), ("cifar10", 122_570, 315_722), ("fashion_mnist", 93_322, 225_034)])
def test_lesson_02_counts_for_each_dataset(dataset, cnn3, cnn2, subprocess_env, tmp_path, monkeypatch):
    results = execute("02", tmp_path / "02.ipynb", subprocess_env, monkeypatch, dataset=dataset)
    assert results["cnn3_params"] == cnn3 and results["cnn2_params"] == cnn2
    assert results["dataset"] == dataset


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("lesson", ["01", "03", "04", "05"])
def test_lesson_runs_quickly_on_each_dataset(lesson, dataset, subprocess_env, tmp_path, monkeypatch):
    if not list(NOTEBOOKS.glob(f"{lesson}_*.ipynb")):
        pytest.fail(f"lesson {lesson} is missing from notebooks/")
    parameters = {"dataset": dataset}
    if lesson != "01":
        parameters.update(limit=200, epochs=1)
    results = execute(lesson, tmp_path / f"{lesson}.ipynb", subprocess_env, monkeypatch, **parameters)
    assert results.get("lesson") == lesson and results.get("dataset") == dataset
