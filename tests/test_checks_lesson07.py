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
        checks.exercise_07_1(found["retarget"], hidden=hidden)
        checks.exercise_07_2(found["unfreeze_top_blocks"], hidden=hidden)
    assert capsys.readouterr().out.count("correct") == 4


def _retarget(relu=False, freeze="all", compiled=True, rate=None, cut="gap", activation="softmax"):
    """A retarget answer with one deliberate mistake, chosen by the arguments."""
    def retarget(model, num_classes, learning_rate):
        end = model.outputs[0] if cut == "old head" else model.get_layer(cut).output
        base = keras.Model(model.inputs, end)
        if freeze == "all":
            base.trainable = False
        elif freeze == "not batch norm":  # only the layers that have kernels frozen
            for layer in base.layers:
                layer.trainable = isinstance(layer, layers.BatchNormalization)
        inputs = keras.Input(shape=model.inputs[0].shape[1:])
        if relu:
            outputs = layers.Softmax()(layers.Dense(num_classes, activation="relu")(base(inputs)))
        else:
            outputs = layers.Dense(num_classes, activation=activation)(base(inputs))
        new = keras.Model(inputs, outputs)
        if compiled:
            new.compile(optimizer=keras.optimizers.Adam(rate or learning_rate),
                        loss="sparse_categorical_crossentropy")
        return new
    return retarget


WRONG_07_1 = [
    (_retarget(relu=True), r"not softmax\(features · kernel \+ bias\).*no other activation"),
    (_retarget(activation=None), r"not softmax\(features · kernel \+ bias\)"),
    (_retarget(freeze="none"),
     r"trainable weight tensors in \d+ layers \(stem_conv.*freeze every layer up to gap"),
    (_retarget(freeze="not batch norm"), r"in \d+ layers \(stem_bn.*batch normalization included"),
    (_retarget(compiled=False), "your model is not compiled"),
    (_retarget(rate=1e-3), r"learning rate is 0.001, expected the 0.03 asked for"),
    (_retarget(cut="old head"), "reads 3 features, expected the 8 of the gap layer"),
]


@pytest.mark.parametrize("answer, message", WRONG_07_1)
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


WRONG_07_2 = [
    (leaves_the_parent_frozen, "a frozen parent model hides the weights of its trainable layers"),
    (unfreezes_the_bottom, r"layer block1_conv1 is trainable; expected it frozen: only block4 should train"),
    (unfreezes_batch_norm_too, r"\(batch normalization\) is trainable; keep batch normalization frozen"),
    (unfreezes_everything, r"layer stem_conv is trainable; expected it frozen"),
    (sorts_blocks_as_text, r"only block10, block11 should train \(block10 comes after block9"),
]


@pytest.mark.parametrize("answer, message", WRONG_07_2)
def test_exercise_07_2_rejects(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_07_2(answer, hidden=True)


def test_sorting_blocks_as_text_passes_the_visible_cases_only(capsys):
    checks.exercise_07_2(sorts_blocks_as_text)
    assert "correct" in capsys.readouterr().out
