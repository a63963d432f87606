"""tests/nbval_sanitize.cfg masks the volatile text, and nothing a lesson claims.

The rules are read the way nbval reads them (``nbval.plugin.get_sanitize_patterns``) and
applied to lines of the lessons' real outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nbval.plugin import get_sanitize_patterns

CONFIG = Path(__file__).resolve().parent / "nbval_sanitize.cfg"
PATTERNS = get_sanitize_patterns(CONFIG.read_text())


def sanitize(text: str) -> str:
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


LOG = ("844/844 - {s}s - {ms}ms/step - accuracy: 0.8187 - loss: 0.4980 - val_accuracy: 0.8588 - "
       "val_loss: 0.3820")


@pytest.mark.parametrize("first, second", [
    (LOG.format(s=9, ms=11), LOG.format(s=123, ms=8)),  # Keras's timings in a training log
    ("<keras.src.models.Model object at 0x7f3a2c>", "<keras.src.models.Model object at 0x55e1d0>"),
    ("no remedy      3 seed(s) x 20 epochs [24 s]", "no remedy      3 seed(s) x 20 epochs [131 s]"),
    ("trained in 18 s", "trained in 7 s"),
    ("from scratch          3.2 s", "from scratch        103.9 s"),  # aligned columns
    ("| cnn3  | 93,322 | 0.9 s           |", "| cnn3  | 93,322 | 12.4 s          |"),
    ("loaded from the model cache: cnn3 on fashion_mnist", "trained now: cnn3 on fashion_mnist"),
], ids=["keras log", "address", "bracketed seconds", "trained in", "aligned seconds", "table",
        "model cache"])
def test_volatile_text_is_masked(first, second):
    assert first != second
    assert sanitize(first) == sanitize(second)


@pytest.mark.parametrize("first, second", [
    (LOG.format(s=9, ms=11), LOG.format(s=9, ms=11).replace("loss: 0.4980", "loss: 0.4981")),
    (LOG.format(s=9, ms=11), LOG.format(s=9, ms=11).replace("844/844", "845/845")),
    ("Epoch 1/5", "Epoch 1/6"),
    ("3 seed(s) x 20 epochs [24 s]", "3 seed(s) x 21 epochs [24 s]"),
    ("validation accuracy 0.9100; test accuracy 0.9065", "validation accuracy 0.9100; test accuracy 0.9063"),
    ("Total params: 93,322 (364.54 KB)", "Total params: 93,909 (366.83 KB)"),
    ("the sweep took 30 s; 12 trainings", "the sweep took 30 s; 13 trainings"),
], ids=["a loss", "the step count", "the epoch count", "the epochs of a run", "accuracies",
        "parameters", "a count beside a time"])
def test_what_a_lesson_claims_is_not_masked(first, second):
    assert sanitize(first) != sanitize(second)
