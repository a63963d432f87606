"""Lesson 06's exercise checks accept the notebook's solutions and reject plausible mistakes with
a message that says what is wrong."""

from __future__ import annotations

import math

from utils import checks

import keras
import notebook_solutions
import pytest
from keras import layers


def solution(name: str):
    """The function ``name`` as the lesson's solution cell defines it."""
    return notebook_solutions.solution("06_modern_building_blocks.ipynb", name,
                                       {"keras": keras, "layers": layers, "math": math})


def test_solutions_pass(capsys):
    for hidden in (False, True):
        checks.exercise_06_1(solution("bottleneck_block"), hidden=hidden)
        checks.exercise_06_2(solution("separable_counts"), hidden=hidden)
    assert capsys.readouterr().out.count("correct") == 4


def bottleneck(project: str = "when needed", add: bool = True, relus=(True, True, True),
               relu_first=False, first_stride=False):
    """A bottleneck block whose shortcut is projected "never", "always" or "when needed"; ``relus``
    says which of its three ReLUs it has, ``relu_first`` puts them before the batch norms and
    ``first_stride`` strides the first 1×1 convolution instead of the 3×3."""
    def relu(y, index):
        return layers.Activation("relu")(y) if relus[index] else y

    def conv_bn_relu(y, channels, kernel, strides, index):
        y = layers.Conv2D(channels, kernel, strides=strides, padding="same", use_bias=False)(y)
        if relu_first:
            return layers.BatchNormalization()(relu(y, index))
        return relu(layers.BatchNormalization()(y), index)

    def block(x, filters, bottleneck, stride=1):
        y = conv_bn_relu(x, bottleneck, 1, stride if first_stride else 1, 0)
        y = conv_bn_relu(y, bottleneck, 3, 1 if first_stride else stride, 1)
        y = layers.BatchNormalization()(layers.Conv2D(filters, 1, use_bias=False)(y))
        shortcut = x
        if project == "always" or (project == "when needed" and (stride != 1 or x.shape[-1] != filters)):
            projection = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
            shortcut = layers.BatchNormalization()(projection)
        return relu(layers.Add()([y, shortcut]) if add else y, 2)
    return block


WRONG_06_1 = [
    (bottleneck("never"), "raised ValueError.*needs a 1×1 convolution with the block's stride"),
    (bottleneck("always"), "2,432 parameters, expected 1,280. A block that keeps the shape needs no proj"),
    (bottleneck("when needed", add=False), "no Add layer"),
    (bottleneck(relus=(False, False, False)), "it has no ReLU: put one after the first two batch norms"),
    (bottleneck(relus=(True, False, True)), "the ReLU after the 3×3 convolution's batch norm is missing"),
    (bottleneck(relus=(True, True, False)), "the ReLU after the sum is missing"),
    (bottleneck(relu_first=True), "the ReLUs come after the batch norms, not between convolution and batch"),
    (bottleneck(first_stride=True), "the stride goes on the 3×3 convolution, not on the first 1×1"),
]


@pytest.mark.parametrize("answer, message", WRONG_06_1)
def test_bottleneck_mistakes_are_named(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_06_1(answer, hidden=True)


def conv2d_counts(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    out = math.ceil(h / stride) * math.ceil(w / stride)
    return (kernel * kernel * c_in + int(use_bias)) * c_out, out * kernel * kernel * c_in * c_out


def counted_at_input(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    m = depth_multiplier
    params = kernel * kernel * c_in * m + c_in * m * c_out + (c_out if use_bias else 0)
    return params, h * w * (kernel * kernel * c_in * m + c_in * m * c_out)


def rounded_down(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    m = depth_multiplier
    params = kernel * kernel * c_in * m + c_in * m * c_out + (c_out if use_bias else 0)
    return params, (h // stride) * (w // stride) * (kernel * kernel * c_in * m + c_in * m * c_out)


def without_multiplier(h, w, c_in, c_out, kernel, stride=1, depth_multiplier=1, use_bias=True):
    params = kernel * kernel * c_in + c_in * c_out + (c_out if use_bias else 0)
    return params, math.ceil(h / stride) * math.ceil(w / stride) * (kernel * kernel * c_in + c_in * c_out)


WRONG_06_2 = [
    (conv2d_counts, "18,496 parameters; Keras has 2,400. That is Conv2D's count"),
    (counted_at_input, "counted at the input size 15×15; with stride 2 the output is 8×8"),
    (without_multiplier, "depth_multiplier 2.*parameters; Keras has"),
    (lambda *args, **kw: 2400, "return a tuple \\(parameters, macs\\)"),
    (rounded_down, "You rounded the output size down"),
]


@pytest.mark.parametrize("answer, message", WRONG_06_2)
def test_separable_count_mistakes_are_named(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_06_2(answer, hidden=True)


def test_a_stub_passes_through():
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError):
        checks.exercise_06_1(stub)
    with pytest.raises(NotImplementedError):
        checks.exercise_06_2(stub)
