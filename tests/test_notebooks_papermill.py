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


def execute(lesson: str, out: Path, env: dict[str, str], monkeypatch, **parameters) -> dict:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    source = next(NOTEBOOKS.glob(f"{lesson}_*.ipynb"))
    papermill.execute_notebook(str(source), str(out), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(NOTEBOOKS))
    return read_results(nbformat.read(out, as_version=4))


# nbval runs every lesson at its defaults on Fashion-MNIST; these runs add what it does not:
# the other datasets and input shapes, and the `limit` path, each lesson once per dataset.
# MNIST's runs are the student notebooks' (tests/test_exercises.py): the same lessons with the
# same QUICK settings, up to each exercise's stub, asserting the same results.
OTHER_DATASETS = ["cifar10"]


@pytest.mark.parametrize("dataset, counts", [("cifar10", (122_570, 315_722, 61_130))])
def test_lesson_02_counts_for_each_dataset(dataset, counts, subprocess_env, tmp_path, monkeypatch):
    results = execute("02", tmp_path / "02.ipynb", subprocess_env, monkeypatch, dataset=dataset)
    assert (results["cnn3_params"], results["cnn2_params"], results["cnn3_gap_params"]) == counts
    assert results["dataset"] == dataset


# Quick settings per lesson: a small `limit`, one epoch, one seed.
QUICK = {"01": {}, "03": {"limit": 200, "epochs": 1}, "04": {"limit": 200, "epochs": 1},
         "05": {"limit": 200, "epochs": 1, "repeats": 1}, "06": {"limit": 200, "epochs": 1, "repeats": 1},
         "07": {"limit": 200, "source_size": 100, "pretrain_epochs": 1, "label_counts": [1, 2],
                "val_per_class": 1, "steps": 2, "repeats": 1},
         "08": {"limit": 200, "epochs": 1, "train_size": 200, "val_size": 50}}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", OTHER_DATASETS)
@pytest.mark.parametrize("lesson", sorted(QUICK))
def test_lesson_runs_quickly_on_each_dataset(lesson, dataset, subprocess_env, tmp_path, monkeypatch):
    if not list(NOTEBOOKS.glob(f"{lesson}_*.ipynb")):
        pytest.fail(f"lesson {lesson} is missing from notebooks/")
    results = execute(lesson, tmp_path / f"{lesson}.ipynb", subprocess_env, monkeypatch, dataset=dataset,
                      **QUICK[lesson])
    assert results.get("lesson") == lesson and results.get("dataset") == dataset
