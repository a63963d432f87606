"""Checks of lesson 06's exercises: a bottleneck residual block, and a separable convolution's
parameters and multiply-accumulates."""

from __future__ import annotations

import math

from utils.checks.feedback import exercise, expect

import keras
from keras import layers


def _reference_bottleneck(x, filters: int, bottleneck: int, stride: int, mistake: str | None = None):
    """The block of exercise 06.1; ``mistake`` makes one of the plausible wrong versions."""
    def relu(y, where):
        return y if mistake in ("no relu", where) else layers.Activation("relu")(y)

    def conv_bn(y, channels, kernel, strides, where):
        if mistake == "relu before batch norm" and where != "expand":
            return layers.BatchNormalization()(relu(layers.Conv2D(channels, kernel, strides=strides,
                                                                  padding="same", use_bias=False)(y), where))
        y = layers.Conv2D(channels, kernel, strides=strides, padding="same", use_bias=False)(y)
        return layers.BatchNormalization()(y) if where == "expand" else relu(layers.BatchNormalization()(y),
                                                                             where)

    first, middle = (stride, 1) if mistake == "stride on the first 1×1" else (1, stride)
    y = conv_bn(x, bottleneck, 1, first, "reduce")
    y = conv_bn(y, bottleneck, 3, middle, "middle")
    y = conv_bn(y, filters, 1, 1, "expand")
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    added = layers.Add()([relu(y, "sum") if mistake == "relu before the sum" else y, shortcut])
    return added if mistake == "relu before the sum" else relu(added, "sum")


# what a plausible mistake computes, and what to say about it
_BLOCK_MISTAKES = [
    ("no relu", "it has no ReLU: put one after the first two batch norms and one after the sum"),
    ("reduce", "the ReLU after the first 1×1 convolution's batch norm is missing"),
    ("middle", "the ReLU after the 3×3 convolution's batch norm is missing"),
    ("sum", "the ReLU after the sum is missing"),
    ("relu before the sum", "the last ReLU comes after the sum, not before it on the main path"),
    ("relu before batch norm",
     "the ReLUs come after the batch norms, not between convolution and batch norm"),
    ("stride on the first 1×1", "the stride goes on the 3×3 convolution, not on the first 1×1"),
]


def _set_weights_by_shape(model) -> None:
    """Give every weight values that depend only on its kind and shape, so that two blocks made
    of the same layers compute the same function, whatever order their layers were made in."""
    import zlib

    import numpy as np

    for weight in model.weights:
        name = weight.name.split("/")[-1]
        rng = np.random.default_rng(zlib.crc32(f"{name}{tuple(weight.shape)}".encode()))
        if name in ("moving_variance", "gamma"):
            values = rng.uniform(0.5, 1.5, weight.shape)
        else:
            values = rng.normal(0.0, 0.5, weight.shape)
        weight.assign(values.astype("float32"))


def _outputs(model, images):
    _set_weights_by_shape(model)
    return keras.ops.convert_to_numpy(model(images, training=False))


def _as_model(block, shape, filters, bottleneck, stride):
    inputs = keras.Input(shape=shape)
    return keras.Model(inputs, block(inputs, filters, bottleneck, stride))


# (input shape, filters, bottleneck, stride): shape kept, channels changed, map halved
_BOTTLENECK_CASES = [((8, 8, 32), 32, 8, 1), ((8, 8, 16), 32, 8, 1), ((9, 9, 16), 64, 16, 2)]
_HIDDEN_BOTTLENECK_CASES = [((7, 7, 24), 24, 6, 2), ((6, 10, 8), 16, 4, 1)]


@exercise("06.1")
def exercise_06_1(bottleneck_block, hidden=False):
    """Check a bottleneck residual block: 1×1 reduce, 3×3, 1×1 expand, and a projection shortcut."""
    import numpy as np

    cases = _BOTTLENECK_CASES + (_HIDDEN_BOTTLENECK_CASES if hidden else [])
    for shape, filters, bottleneck, stride in cases:
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
        images = np.random.default_rng(106).normal(size=(2, *shape)).astype("float32")
        found = _outputs(model, images)
        expected = _outputs(_as_model(_reference_bottleneck, shape, filters, bottleneck, stride), images)
        if not np.allclose(found, expected, atol=1e-4, rtol=1e-4):
            reason = "check the order: conv, batch norm, ReLU (none after the last batch norm), then the " \
                     "sum and a ReLU"
            for mistake, why in _BLOCK_MISTAKES:
                wrong = _as_model(lambda *a, m=mistake: _reference_bottleneck(*a, mistake=m), shape, filters,
                                  bottleneck, stride)
                if np.allclose(found, _outputs(wrong, images), atol=1e-4, rtol=1e-4):
                    reason = why
                    break
            expect(False, f"for {case} your block has the right layers but computes other values "
                          f"than the block described: {reason}")


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
_HIDDEN_SEPARABLE_CASES = [(7, 9, 3, 5, 3, 2, 3, False), (16, 16, 12, 12, 1, 4, 1, True),
                           (11, 6, 4, 10, 5, 3, 2, True)]


@exercise("06.2")
def exercise_06_2(separable_counts, hidden=False):
    """Check a SeparableConv2D's parameter and MAC counts (padding "same") against Keras."""
    for h, w, c_in, c_out, kernel, stride, multiplier, bias in _SEPARABLE_CASES + (
            _HIDDEN_SEPARABLE_CASES if hidden else []):
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
            per_position = want_macs // (math.ceil(h / stride) * math.ceil(w / stride))
            at_input = per_position * h * w
            reason = ""
            if stride > 1 and macs == per_position * (h // stride) * (w // stride) != want_macs:
                reason = (f" You rounded the output size down; with padding \"same\" it is ⌈h/s⌉×⌈w/s⌉ = "
                          f"{math.ceil(h / stride)}×{math.ceil(w / stride)}.")
            elif macs == per_position * ((h - kernel) // stride + 1) * ((w - kernel) // stride + 1):
                reason = " That is the output size of padding \"valid\"; this layer pads (\"same\")."
            elif macs == at_input and stride > 1:
                reason = (f" You counted at the input size {h}×{w}; with stride {stride} the output is "
                          f"{math.ceil(h / stride)}×{math.ceil(w / stride)}.")
            elif macs == math.ceil(h / stride) * math.ceil(w / stride) * kernel * kernel * c_in * c_out:
                reason = " That is Conv2D's count, not the separable one's."
            expect(False, f"for {case} you count {macs:,} multiply-accumulates, "
                          f"expected {want_macs:,}.{reason}")
    return ("Your parameter counts match Keras's layers, and your MACs the formula at the output size "
            "Keras gives, on every case.")
