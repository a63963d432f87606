"""utils/models.py: reference architectures, parameter formulas, output sizes."""

from __future__ import annotations

import warnings

from utils import models

import keras
import pytest

EXPECTED_TOTALS = {
    ("cnn3", (28, 28, 1)): 93_322,
    ("cnn3", (32, 32, 3)): 122_570,
    ("cnn2", (28, 28, 1)): 225_034,
    ("cnn2", (32, 32, 3)): 315_722,
}


@pytest.mark.parametrize("architecture, shape", EXPECTED_TOTALS)
def test_reference_totals(architecture, shape):
    model = models.build(architecture, shape, 10)
    assert model.count_params() == EXPECTED_TOTALS[architecture, shape]


@pytest.mark.parametrize("architecture", sorted(models.ARCHITECTURES))
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_formula_agrees_with_keras_layer_by_layer(architecture, shape):
    rows = models.layer_counts(models.build(architecture, shape, 10))
    assert rows and all(row.agrees for row in rows), [r for r in rows if not r.agrees]


def test_formulas_by_hand():
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(16, 5)
    conv(inputs)
    assert models.formula_count(conv, (None, 32, 32, 3)) == ("(5·5·3 + 1)·16", 1216)
    dense = keras.layers.Dense(128)
    assert models.formula_count(dense, (None, 1600)) == ("(1600 + 1)·128", 204_928)
    no_bias = keras.layers.Dense(10, use_bias=False)
    assert models.formula_count(no_bias, (None, 64)) == ("(64 + 0)·10", 640)
    norm = keras.layers.BatchNormalization()
    assert models.formula_count(norm, (None, 5, 5, 64)) == ("2·64 + 2·64", 256)
    assert models.frozen_formula_count(norm, (None, 5, 5, 64)) == 128
    assert models.formula_count(keras.layers.MaxPooling2D(), (None, 8, 8, 3)) == ("0", 0)


def test_count_table_flags_a_mismatch(monkeypatch):
    model = models.cnn3((28, 28, 1), 10)
    monkeypatch.setattr(models, "formula_count", lambda layer, shape: ("1", 1))
    assert "MISMATCH" in models.count_table(model)


def test_models_build_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for builder in models.ARCHITECTURES.values():
            builder((28, 28, 1), 10)


def test_layers_have_readable_names():
    names = [layer.name for layer in models.cnn3((28, 28, 1), 10).layers]
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense", "probabilities"]


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match=r"'resnet'; valid choices: cnn2, cnn3, dense_only"):
        models.build("resnet", (28, 28, 1), 10)


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    (28, 3, 1, "valid", 26), (28, 3, 2, "valid", 13), (28, 3, 1, "same", 28),
    (28, 3, 2, "same", 14), (32, 5, 1, "valid", 28), (32, 5, 2, "same", 16),
])
def test_conv_output_size_matches_keras(size, kernel, stride, padding, expected):
    assert models.conv_output_size(size, kernel, stride, padding) == expected
    layer = keras.layers.Conv2D(1, kernel, strides=stride, padding=padding)
    assert layer.compute_output_shape((None, size, size, 1))[1] == expected


def test_conv_output_size_rejects_unknown_padding():
    with pytest.raises(ValueError, match=r"'full'; valid choices: same, valid"):
        models.conv_output_size(28, 3, padding="full")


def test_count_table_splits_out_non_trainable_parameters_only_when_there_are_some():
    assert "non-trainable" not in models.count_table(models.cnn3((28, 28, 1), 10))
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, use_bias=False, name="conv"),
                              keras.layers.BatchNormalization(name="bn")])
    table = models.count_table(model).splitlines()
    assert "non-trainable" in table[0]
    assert table[3].split() == ["bn", "BatchNormalization", "2·4", "+", "2·4", "16", "8", "16"]
    assert table[-1].split() == ["total", "124", "8", "124"]


def test_conv2d_transpose_counts_like_a_convolution():
    # the kernel is stored as (k_h, k_w, c_out, c_in); the count is (k_h·k_w·c_in + 1)·c_out all the same
    layer = keras.layers.Conv2DTranspose(32, 2, strides=2)
    model = keras.Sequential([keras.Input((8, 8, 64)), layer])
    assert tuple(layer.kernel.shape) == (2, 2, 32, 64)
    assert models.formula_count(layer, (None, 8, 8, 64)) == ("(2·2·64 + 1)·32", 8_224)
    assert [row.agrees for row in models.layer_counts(model)] == [True]
    no_bias = keras.layers.Conv2DTranspose(8, (3, 5), use_bias=False)
    keras.Sequential([keras.Input((6, 6, 4)), no_bias])
    assert models.formula_count(no_bias, (None, 6, 6, 4)) == ("(3·5·4 + 0)·8", 480)
    assert no_bias.count_params() == 480
