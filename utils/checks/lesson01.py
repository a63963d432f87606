"""Checks of lesson 01's exercises: a strided, padded convolution and a depthwise convolution."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def _size(array) -> str:
    return "×".join(str(n) for n in np.shape(array))


def _first_difference(found, expected) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(found - expected)), expected.shape))


def _as_map(result, setting: str) -> np.ndarray:
    expect(isinstance(result, np.ndarray) or hasattr(result, "__array__"),
           f"{setting}: your function returned {type(result).__name__}, expected a 2-D NumPy array")
    result = np.asarray(result, dtype="float64")
    expect(result.ndim == 2, f"{setting}: your output has shape {result.shape}, expected a 2-D array "
                             "(height, width)")
    return result


# (image height, width), kernel (height, width), stride, padding: simple cases first.
CONV_CASES = [((9, 9), (3, 3), 1, "valid"), ((28, 28), (3, 3), 2, "valid"), ((12, 12), (3, 3), 1, "same"),
              ((28, 28), (3, 3), 2, "same"), ((11, 14), (5, 3), 3, "same"), ((10, 13), (2, 2), 2, "same"),
              ((17, 15), (4, 4), 3, "valid")]
HIDDEN_CONV_CASES = [((13, 8), (3, 2), 2, "same"), ((16, 11), (5, 5), 4, "valid"),
                     ((7, 7), (7, 7), 1, "same"), ((5, 9), (1, 1), 2, "same"), ((15, 12), (4, 3), 2, "same")]


@exercise("01.1")
def exercise_01_1(strided_conv2d, hidden=False):
    """Compare a learner's convolution with Conv2D's on hidden images, kernels, strides and paddings."""
    import keras

    rng = np.random.default_rng(101)
    for image_shape, kernel_shape, stride, padding in CONV_CASES + (HIDDEN_CONV_CASES if hidden else []):
        image = rng.random(image_shape).astype("float32")
        kernel = rng.normal(size=kernel_shape).astype("float32")
        setting = (f"a {_size(image)} image, a {_size(kernel)} kernel, stride {stride}, "
                   f"padding={padding!r}")
        found = _as_map(strided_conv2d(image.copy(), kernel.copy(), stride, padding), setting)
        expected = keras.ops.convert_to_numpy(keras.ops.conv(
            image[np.newaxis, :, :, np.newaxis], kernel[:, :, np.newaxis, np.newaxis],
            strides=stride, padding=padding))[0, :, :, 0]
        if found.shape != expected.shape:
            ceil = tuple(-(-(n - k) // stride) + 1 for n, k in zip(image_shape, kernel_shape, strict=True))
            note = ""
            if padding == "valid" and found.shape == ceil:
                note = " (the number of positions rounds down: (n − k) // stride + 1)"
            elif padding == "same" and found.shape == tuple(n // stride for n in image_shape):
                note = " (with padding='same' the size rounds up: ⌈n / stride⌉)"
            elif padding == "same" and found.shape == tuple((n - k) // stride + 1
                                                            for n, k in zip(image_shape, kernel_shape,
                                                                            strict=True)):
                note = " (that is padding='valid': 'same' pads the image first)"
            expect(False, f"{setting}: your output is {_size(found)}, expected {_size(expected)}{note}")
        if not np.allclose(found, expected, atol=1e-4):
            row, column = _first_difference(found, expected)
            raise_values = (f"{setting}: your output has the right size, {_size(found)}, but differs from "
                            f"Conv2D's at row {row}, column {column}: {found[row, column]:.4f}, "
                            f"expected {expected[row, column]:.4f}")
            if padding == "same":
                raise_values += " (check where the padding goes)"
            expect(False, raise_values)
    cases = len(CONV_CASES) + (len(HIDDEN_CONV_CASES) if hidden else 0)
    return f"It matches Conv2D on {cases} images, strides and paddings"


# (height, width, channels), kernel size: simple cases first.
DEPTHWISE_CASES = [((5, 6, 2), 3), ((4, 4, 1), 2), ((7, 5, 3), 3)]
HIDDEN_DEPTHWISE_CASES = [((6, 8, 4), 3), ((9, 7, 2), 5), ((5, 5, 3), 1)]


def _windows(image, k):
    """Every k×k window of an (h, w, c) image: shape (h - k + 1, w - k + 1, k, k, c)."""
    return np.lib.stride_tricks.sliding_window_view(image, (k, k), axis=(0, 1)).transpose(0, 1, 3, 4, 2)


def _depthwise_variants(image, kernel, bias):
    """What plausible mistakes compute, each with what to tell the learner."""
    k = kernel.shape[0]
    windows = _windows(image, k)
    per_channel = np.einsum("hwijc,ijc->hwc", windows, kernel[:, :, :, 0])
    return [(per_channel, "that is without the bias: DepthwiseConv2D adds each channel's bias at every "
                          "pixel"),
            (np.maximum(per_channel + bias, 0),
             "that has a ReLU; DepthwiseConv2D with no activation is linear"),
            (np.einsum("hwijc,ijc->hwc", windows, kernel[::-1, ::-1, :, 0]) + bias,
             "the kernel is flipped; like section 2's conv2d, Keras slides it as it is"),
            (np.einsum("hwijc,ij->hwc", windows, kernel[:, :, 0, 0]) + bias,
             "every channel used channel 0's kernel; channel c has its own, kernel[:, :, c, 0]"),
            (per_channel.sum(axis=-1, keepdims=True) + bias,
             "that sums over the channels, as Conv2D does; a depthwise convolution keeps them apart")]


@exercise("01.2")
def exercise_01_2(depthwise_conv, hidden=False):
    """Compare a learner's depthwise convolution with DepthwiseConv2D's on images and kernels."""
    import keras

    rng = np.random.default_rng(102)
    cases = DEPTHWISE_CASES + (HIDDEN_DEPTHWISE_CASES if hidden else [])
    for (height, width, channels), k in cases:
        image = rng.random((height, width, channels)).astype("float32")
        kernel = rng.normal(size=(k, k, channels, 1)).astype("float32")
        bias = rng.normal(size=channels).astype("float32")
        setting = f"a {height}×{width}×{channels} image and a {k}×{k} kernel per channel"
        found = depthwise_conv(image.copy(), kernel.copy(), bias.copy())
        expect(isinstance(found, np.ndarray) or hasattr(found, "__array__"),
               f"{setting}: your function returned {type(found).__name__}, expected a NumPy array")
        found = np.asarray(found, dtype="float64")
        layer = keras.layers.DepthwiseConv2D(k)
        layer.build((None, height, width, channels))
        layer.set_weights([kernel, bias])
        expected = keras.ops.convert_to_numpy(layer(image[np.newaxis]))[0]
        variants = _depthwise_variants(image, kernel, bias)
        if found.shape != expected.shape:
            note = next((f" ({why})" for variant, why in variants
                         if variant.shape == found.shape and np.allclose(found, variant, atol=1e-4)), "")
            if not note and found.shape == expected.shape[:2] + (1,) and channels > 1:
                note = (" (one channel: that sums over the channels, as Conv2D does; a depthwise "
                        "convolution keeps them apart)")
            expect(False, f"{setting}: your output has shape {found.shape}, expected {expected.shape} "
                          f"(padding \"valid\": {height} − {k} + 1 rows, {width} − {k} + 1 columns, one "
                          f"channel per input channel){note}")
        if np.allclose(found, expected, atol=1e-4):
            continue
        note = next((f" ({why})" for variant, why in variants
                     if variant.shape == found.shape and np.allclose(found, variant, atol=1e-4)), "")
        row, column, channel = (int(i) for i in np.unravel_index(np.argmax(np.abs(found - expected)),
                                                                 expected.shape))
        expect(False, f"{setting}: your output differs from DepthwiseConv2D's at row {row}, column {column}, "
                      f"channel {channel}: {found[row, column, channel]:.4f}, expected "
                      f"{expected[row, column, channel]:.4f}{note}")
    return f"It matches DepthwiseConv2D on {len(cases)} images and kernels"
