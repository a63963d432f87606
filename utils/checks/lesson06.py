"""Checks of lesson 06's exercises: a bottleneck residual block, and a separable convolution's
parameters and multiply-accumulates."""

from __future__ import annotations

import math

from utils.checks.feedback import exercise, expect

import keras
from keras import layers


def _reference_bottleneck(x, filters: int, bottleneck: int, stride: int):
    y = layers.Conv2D(bottleneck, 1, use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(bottleneck, 3, strides=stride, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(filters, 1, use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.Activation("relu")(layers.Add()([y, shortcut]))


def _as_model(block, shape, filters, bottleneck, stride):
    inputs = keras.Input(shape=shape)
    return keras.Model(inputs, block(inputs, filters, bottleneck, stride))


# (input shape, filters, bottleneck, stride): shape kept, channels changed, map halved
_BOTTLENECK_CASES = [((8, 8, 32), 32, 8, 1), ((8, 8, 16), 32, 8, 1), ((9, 9, 16), 64, 16, 2)]


@exercise("06.1")
def exercise_06_1(bottleneck_block):
    """Check a bottleneck residual block: 1×1 reduce, 3×3, 1×1 expand, and a projection shortcut."""
    for shape, filters, bottleneck, stride in _BOTTLENECK_CASES:
        case = (f"input {shape[0]}×{shape[1]}×{shape[2]}, filters={filters}, bottleneck={bottleneck}, "
                f"stride={stride}")
        try:
            model = _as_model(bottleneck_block, shape, filters, bottleneck, stride)
        except NotImplementedError:
            raise
        except Exception as error:  # a shape mismatch in Add is the usual one
            changes = stride != 1 or shape[-1] != filters
            hint = (" The shortcut and the main path differ in shape here: the shortcut needs a 1×1 "
                    "convolution with the block's stride." if changes else "")
            expect(False, f"for {case} your block raised {type(error).__name__}: "
                          f"{str(error).splitlines()[0][:160]}.{hint}")
        expected_shape = (math.ceil(shape[0] / stride), math.ceil(shape[1] / stride), filters)
        found_shape = tuple(model.output.shape[1:])
        expect(found_shape == expected_shape,
               f"for {case} your output is {'×'.join(map(str, found_shape))}, expected "
               f"{'×'.join(map(str, expected_shape))}")
        expect(any(isinstance(layer, layers.Add) for layer in model.layers),
               f"for {case} your block has no Add layer: without it there is no skip connection")
        found = model.count_params()
        expected = _as_model(_reference_bottleneck, shape, filters, bottleneck, stride).count_params()
        if found != expected:
            projection = filters * shape[-1] + 4 * filters  # a 1×1 projection and its batch norm
            if found - expected == projection:
                reason = " A block that keeps the shape needs no projection: add the input itself."
            elif expected - found == projection:
                reason = " The shape changes here: the shortcut needs a 1×1 projection and batch norm."
            else:
                reason = (" Check the layers: 1×1 to `bottleneck` channels, 3×3 with the stride, 1×1 to "
                          "`filters`, each followed by batch norm, convolutions without bias.")
            expect(False, f"for {case} your block has {found:,} parameters, expected {expected:,}.{reason}")


def _keras_separable(h, w, c_in, c_out, kernel, stride, depth_multiplier, use_bias):
    inputs = keras.Input(shape=(h, w, c_in))
    layer = layers.SeparableConv2D(c_out, kernel, strides=stride, padding="same",
                                   depth_multiplier=depth_multiplier, use_bias=use_bias)
    outputs = layer(inputs)
    _, out_h, out_w, _ = outputs.shape
    macs = out_h * out_w * (kernel * kernel * c_in * depth_multiplier + c_in * depth_multiplier * c_out)
    return layer.count_params(), macs


# (h, w, c_in, c_out, kernel, stride, depth_multiplier, use_bias)
_SEPARABLE_CASES = [(14, 14, 32, 64, 3, 1, 1, True), (15, 15, 16, 48, 5, 2, 1, False),
                    (8, 8, 8, 24, 3, 1, 2, True)]


@exercise("06.2")
def exercise_06_2(separable_counts):
    """Check a SeparableConv2D's parameter and MAC counts (padding "same") against Keras."""
    for h, w, c_in, c_out, kernel, stride, multiplier, bias in _SEPARABLE_CASES:
        case = (f"a {kernel}×{kernel} SeparableConv2D from {c_in} to {c_out} channels on {h}×{w}, "
                f"stride {stride}, depth_multiplier {multiplier}, use_bias={bias}")
        answer = separable_counts(h, w, c_in, c_out, kernel, stride=stride, depth_multiplier=multiplier,
                                  use_bias=bias)
        expect(isinstance(answer, tuple) and len(answer) == 2,
               f"return a tuple (parameters, macs); you returned {answer!r}")
        params, macs = (int(value) for value in answer)
        want_params, want_macs = _keras_separable(h, w, c_in, c_out, kernel, stride, multiplier, bias)
        if params != want_params:
            conv = (kernel * kernel * c_in + int(bias)) * c_out
            reason = " That is Conv2D's count, not the separable one's." if params == conv else ""
            expect(False, f"for {case} you count {params:,} parameters; Keras has {want_params:,}.{reason}")
        if macs != want_macs:
            at_input = want_macs * (h * w) // (math.ceil(h / stride) * math.ceil(w / stride))
            reason = ""
            if macs == at_input and stride > 1:
                reason = (f" You counted at the input size {h}×{w}; with stride {stride} the output is "
                          f"{math.ceil(h / stride)}×{math.ceil(w / stride)}.")
            elif macs == math.ceil(h / stride) * math.ceil(w / stride) * kernel * kernel * c_in * c_out:
                reason = " That is Conv2D's count, not the separable one's."
            expect(False, f"for {case} you count {macs:,} multiply-accumulates, "
                          f"expected {want_macs:,}.{reason}")
    return "Your counts match Keras's layers on every case."
