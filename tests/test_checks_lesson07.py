"""Lesson 07's exercise checks accept the notebook's solutions and reject plausible wrong answers."""

from __future__ import annotations

from pathlib import Path

from utils import checks

import keras
import nbformat
import pytest
from keras import layers

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_transfer_learning.ipynb"


def solutions() -> dict:
    """The functions that the notebook's `solution` cells define."""
    namespace = {"keras": keras, "layers": layers}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if "solution" in cell.metadata.get("tags", []):
            exec(cell.source, namespace)  # noqa: S102 - the course's own notebook
    return namespace


def test_the_notebooks_solutions_pass(capsys):
    found = solutions()
    for hidden in (False, True):
        checks.exercise_07_1(found["new_head_model"], hidden=hidden)
        checks.exercise_07_2(found["unfreeze_top_blocks"], hidden=hidden)
    assert capsys.readouterr().out.count("correct") == 4


def _head(backbone, num_classes, activation="softmax"):
    inputs = keras.Input(shape=backbone.inputs[0].shape[1:])
    return keras.Model(inputs, layers.Dense(num_classes, activation=activation)(backbone(inputs)))


def forgets_to_freeze(backbone, num_classes):
    return _head(backbone, num_classes)


def no_softmax(backbone, num_classes):
    backbone.trainable = False
    return _head(backbone, num_classes, activation=None)


def freezes_only_the_convolutions(backbone, num_classes):
    for layer in backbone.layers:
        layer.trainable = isinstance(layer, layers.BatchNormalization)
    return _head(backbone, num_classes)


@pytest.mark.parametrize("answer, message", [
    (forgets_to_freeze, "the backbone is still trainable: set backbone.trainable = False"),
    (no_softmax, "do not sum to 1 per image: the new head needs a softmax activation"),
    (freezes_only_the_convolutions, "the backbone is still trainable"),
])
def test_exercise_07_1_rejects(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_07_1(answer, hidden=True)


def leaves_the_parent_frozen(backbone, count):
    blocks = {layer.name.split("_")[0] for layer in backbone.layers if layer.name.startswith("block")}
    top = {f"block{len(blocks)}"}
    for layer in backbone.layers:
        layer.trainable = layer.name.split("_")[0] in top and not isinstance(layer, layers.BatchNormalization)


def unfreezes_the_bottom(backbone, count):
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = layer.name.split("_")[0] in {f"block{i}" for i in range(1, count + 1)} \
            and not isinstance(layer, layers.BatchNormalization)


def unfreezes_batch_norm_too(backbone, count):
    backbone.trainable = True
    blocks = sorted({layer.name.split("_")[0] for layer in backbone.layers if layer.name.startswith("block")})
    top = set(blocks[len(blocks) - count:])
    for layer in backbone.layers:
        layer.trainable = layer.name.split("_")[0] in top


def unfreezes_everything(backbone, count):
    backbone.trainable = True


def sorts_blocks_as_text(backbone, count):
    """Right for up to 9 blocks; with 10 or more, "block10" sorts before "block2"."""
    backbone.trainable = True
    blocks = sorted({layer.name.split("_")[0] for layer in backbone.layers if layer.name.startswith("block")})
    top = set(blocks[len(blocks) - count:])
    for layer in backbone.layers:
        layer.trainable = layer.name.split("_")[0] in top and not isinstance(layer, layers.BatchNormalization)


@pytest.mark.parametrize("answer, message", [
    (leaves_the_parent_frozen, "a frozen parent model hides the weights of its trainable layers"),
    (unfreezes_the_bottom, r"layer block1_conv1 is trainable; expected it frozen: only block4 should train"),
    (unfreezes_batch_norm_too, r"\(batch normalization\) is trainable; keep batch normalization frozen"),
    (unfreezes_everything, r"layer stem_conv is trainable; expected it frozen"),
    (sorts_blocks_as_text, r"only block10, block11 should train \(block10 comes after block9"),
])
def test_exercise_07_2_rejects(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_07_2(answer, hidden=True)


def test_sorting_blocks_as_text_passes_the_visible_cases_only(capsys):
    checks.exercise_07_2(sorts_blocks_as_text)
    assert "correct" in capsys.readouterr().out
