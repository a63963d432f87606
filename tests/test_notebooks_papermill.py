"""The lessons' quick settings, for runs through papermill on the datasets nbval does not use.

nbval runs every lesson at its defaults on the real Fashion-MNIST. Every lesson also runs on
CIFAR-10 (32×32×3 images: the other input shape), with the small `limit` and the one epoch of
``QUICK``: those runs are the student notebooks' (tests/test_exercises.py), which execute the
whole lesson up to each exercise's stub and assert what a quick run must give. CIFAR-10 is the
small Keras-format file the tests write (see conftest.py); MNIST shares Fashion-MNIST's shape,
and its loader and its dataset-specific choices are unit-tested (test_data, test_regularize).
"""

from __future__ import annotations

from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# Quick settings per lesson: a small `limit`, one epoch, one seed.
QUICK = {"01": {}, "02": {}, "03": {"limit": 200, "epochs": 1}, "04": {"limit": 200, "epochs": 1},
         "05": {"limit": 200, "epochs": 1, "repeats": 1}, "06": {"limit": 200, "epochs": 1, "repeats": 1},
         "07": {"limit": 200, "source_size": 100, "pretrain_epochs": 1, "label_counts": [1, 2],
                "val_per_class": 1, "steps": 2, "repeats": 1},
         "08": {"limit": 200, "epochs": 1, "train_size": 200, "val_size": 50},
         "09": {"limit": 200, "epochs": 1, "repeats": 1, "train_size": 100, "val_size": 50}}
QUICK_DATASET = "cifar10"


def test_every_lesson_has_quick_settings():
    lessons = sorted(path.name[:2] for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert sorted(QUICK) == lessons, "add the new lesson's quick settings (small limit, one epoch) to QUICK"
