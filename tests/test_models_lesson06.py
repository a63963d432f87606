"""utils/models.py, lesson 06's part: the formulas for separable, depthwise, batch-norm and Add
layers, MAC counts, and the lesson's models on every dataset's input shape."""

from __future__ import annotations

from utils import models, visualize

import keras
import pytest
from keras import layers

SHAPES = [(28, 28, 1), (32, 32, 3)]  # MNIST and Fashion-MNIST; CIFAR-10
LESSON_06_MODELS = {
    "cnn3": models.cnn3,
    "vgg_style": models.vgg_style,
    "small_resnet": lambda s, c: models.small_resnet(s, c, widths=(16, 32, 64)),
    "small_resnet_default": models.small_resnet,
    "separable_resnet": lambda s, c: models.small_resnet(s, c, widths=(16, 32, 64),
                                                         block=models.separable_block),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(LESSON_06_MODELS))
def test_formulas_agree_with_keras_on_every_lesson_06_model(name, shape):
    model = LESSON_06_MODELS[name](shape, 10)
    rows = models.layer_counts(model)
    assert rows and all(row.agrees for row in rows), [r for r in rows if not r.agrees]
    assert sum(row.by_formula for row in rows) == model.count_params()
    assert "MISMATCH" not in models.count_table(model)


def built(layer, shape):
    keras.Sequential([keras.Input(shape), layer])
    return layer


def test_new_layer_formulas_by_hand():
    separable = built(layers.SeparableConv2D(64, 3, padding="same"), (14, 14, 32))
    assert models.formula_count(separable, (None, 14, 14, 32)) == ("3·3·32·1 + 32·1·64 + 1·64", 2400)
    assert separable.count_params() == 2400
    multiplied = built(layers.SeparableConv2D(8, 5, depth_multiplier=2, use_bias=False), (9, 9, 4))
    by_formula = models.formula_count(multiplied, (None, 9, 9, 4))[1]
    assert by_formula == 5 * 5 * 4 * 2 + 4 * 2 * 8 == multiplied.count_params()
    depthwise = built(layers.DepthwiseConv2D(3, depth_multiplier=3), (8, 8, 5))
    assert models.formula_count(depthwise, (None, 8, 8, 5)) == ("(3·3 + 1)·5·3", 150)
    assert depthwise.count_params() == 150
    assert models.formula_count(layers.GlobalAveragePooling2D(), (None, 7, 7, 64)) == ("0", 0)
    assert models.formula_count(layers.Add(), (None, 7, 7, 64)) == ("0", 0)
    no_scale = built(layers.BatchNormalization(scale=False), (4, 4, 10))
    assert models.formula_count(no_scale, (None, 4, 4, 10)) == ("1·10 + 2·10", 30)
    assert no_scale.count_params() == 30
    assert models.frozen_formula_count(no_scale, (None, 4, 4, 10)) == 20


def test_separable_and_depthwise_layers_are_not_conv2d_in_keras_3():
    # formula_count tests them before Conv2D; were they subclasses, the order would matter.
    assert not issubclass(layers.SeparableConv2D, layers.Conv2D)
    assert not issubclass(layers.DepthwiseConv2D, layers.Conv2D)


def test_macs_by_hand():
    conv = built(layers.Conv2D(64, 3, strides=2, padding="same"), (14, 14, 32))
    assert models.layer_macs(conv) == 7 * 7 * 64 * 3 * 3 * 32
    separable = built(layers.SeparableConv2D(64, 3, padding="same"), (14, 14, 32))
    assert models.layer_macs(separable) == 14 * 14 * (3 * 3 * 32 + 32 * 64)
    # With a depth multiplier, the pointwise part reads c_in · m channels.
    multiplied = built(layers.SeparableConv2D(64, 3, padding="same", depth_multiplier=2), (14, 14, 32))
    assert models.layer_macs(multiplied) == 14 * 14 * (3 * 3 * 32 * 2 + 32 * 2 * 64)
    depthwise = built(layers.DepthwiseConv2D(3, depth_multiplier=2), (10, 10, 4))
    assert models.layer_macs(depthwise) == 8 * 8 * 3 * 3 * 4 * 2
    assert models.layer_macs(built(layers.Dense(10), (64,))) == 640
    assert models.layer_macs(built(layers.BatchNormalization(), (4, 4, 3))) == 0
    # cnn3, as the benchmark counts it
    assert models.count_macs(models.cnn3((28, 28, 1), 10)) == 2_794_240


def test_small_resnet_keeps_the_interface_lesson_07_cuts_at():
    model = models.small_resnet((32, 32, 3), 10, widths=(8, 16), name="backbone")
    assert model.name == "backbone" and model.get_layer("gap").output.shape[-1] == 16
    backbone = keras.Model(model.inputs, model.get_layer("gap").output)
    assert backbone.output.shape[1:] == (16,)


def test_separable_resnet_uses_separable_convolutions_and_fewer_macs():
    plain = models.small_resnet((28, 28, 1), 10, widths=(16, 32, 64))
    separable = models.small_resnet((28, 28, 1), 10, widths=(16, 32, 64), block=models.separable_block)
    assert any(isinstance(layer, layers.SeparableConv2D) for layer in separable.layers)
    assert models.count_macs(separable) < models.count_macs(plain) / 4


def test_receptive_fields_follow_the_longest_path_of_a_residual_model():
    fields = dict((name, field) for name, _, field in
                  visualize.receptive_fields(models.small_resnet((28, 28, 1), 10, widths=(16, 32, 64))))
    # stem 3; block1 adds 2 + 2; block2: stride 2 then jump 2: +2, +4; block3: +4, +8
    assert [fields[n] for n in ("stem_conv", "block1_conv2", "block2_conv1", "block2_conv2",
                                "block3_conv2")] == [3, 7, 9, 13, 25]
    assert fields["block2_proj"] == 7  # the shortcut sees only what its input saw
    vgg = visualize.receptive_fields(models.vgg_style((28, 28, 1), 10))
    assert vgg[-1] == ("pool2", 7, 16)


def test_small_resnet_stem_stride_halves_every_map_and_keeps_the_weights():
    plain = models.small_resnet((28, 28, 1), 5, widths=(16, 32, 64))
    strided = models.small_resnet((28, 28, 1), 5, widths=(16, 32, 64), stem_stride=2)
    assert strided.get_layer("block1_out").output.shape[1:3] == (14, 14)
    assert strided.get_layer("block3_out").output.shape[1:3] == (4, 4)
    assert plain.get_layer("block1_out").output.shape[1:3] == (28, 28)
    assert strided.count_params() == plain.count_params()
    assert models.count_macs(strided) < models.count_macs(plain) / 3
