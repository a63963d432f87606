"""Lesson 06's exercise checks accept the notebook's solutions and reject plausible mistakes with
a message that says what is wrong."""

from __future__ import annotations

import math
from pathlib import Path

from utils import checks

import keras
import nbformat
import pytest
from keras import layers

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_modern_building_blocks.ipynb"


def solution(name: str):
    """The function ``name`` as the lesson's solution cell defines it."""
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells
             if "solution" in c.get("metadata", {}).get("tags", []) and f"def {name}(" in c.source]
    assert len(cells) == 1, f"expected one solution cell defining {name}"
    namespace = {"keras": keras, "layers": layers, "math": math}
    exec(cells[0], namespace)
    return namespace[name]


def test_solutions_pass(capsys):
    checks.exercise_06_1(solution("bottleneck_block"))
    checks.exercise_06_2(solution("separable_counts"))
    assert capsys.readouterr().out.count("correct") == 2


def bottleneck(project: str, add: bool = True):
    """A bottleneck block whose shortcut is projected "never", "always" or "when needed"."""
    def block(x, filters, bottleneck, stride=1):
        y = layers.BatchNormalization()(layers.Conv2D(bottleneck, 1, use_bias=False)(x))
        y = layers.Activation("relu")(y)
        y = layers.BatchNormalization()(layers.Conv2D(bottleneck, 3, strides=stride, padding="same",
                                                      use_bias=False)(y))
        y = layers.Activation("relu")(y)
        y = layers.BatchNormalization()(layers.Conv2D(filters, 1, use_bias=False)(y))
        shortcut = x
        if project == "always" or (project == "when needed" and (stride != 1 or x.shape[-1] != filters)):
            projection = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
            shortcut = layers.BatchNormalization()(projection)
        return layers.Activation("relu")(layers.Add()([y, shortcut]) if add else y)
    return block


@pytest.mark.parametrize("answer, message", [
    (bottleneck("never"), "raised ValueError.*needs a 1×1 convolution with the block's stride"),
    (bottleneck("always"), "2,432 parameters, expected 1,280. A block that keeps the shape needs no proj"),
    (bottleneck("when needed", add=False), "no Add layer"),
])
def test_bottleneck_mistakes_are_named(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_06_1(answer)


def conv2d_counts(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    out = math.ceil(h / stride) * math.ceil(w / stride)
    return (kernel * kernel * c_in + int(use_bias)) * c_out, out * kernel * kernel * c_in * c_out


def counted_at_input(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    m = depth_multiplier
    params = kernel * kernel * c_in * m + c_in * m * c_out + (c_out if use_bias else 0)
    return params, h * w * (kernel * kernel * c_in * m + c_in * m * c_out)


def without_multiplier(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    params = kernel * kernel * c_in + c_in * c_out + (c_out if use_bias else 0)
    return params, math.ceil(h / stride) * math.ceil(w / stride) * (kernel * kernel * c_in + c_in * c_out)


@pytest.mark.parametrize("answer, message", [
    (conv2d_counts, "18,496 parameters; Keras has 2,400. That is Conv2D's count"),
    (counted_at_input, "counted at the input size 15×15; with stride 2 the output is 8×8"),
    (without_multiplier, "depth_multiplier 2.*parameters; Keras has"),
    (lambda *args, **kw: 2400, "return a tuple \\(parameters, macs\\)"),
])
def test_separable_count_mistakes_are_named(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_06_2(answer)


def test_a_stub_passes_through():
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError):
        checks.exercise_06_1(stub)
    with pytest.raises(NotImplementedError):
        checks.exercise_06_2(stub)
