"""Checks of lesson 01's exercises: a strided, padded convolution and a 1×1 convolution."""

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


# (height, width, input channels), filters: simple cases first.
POINTWISE_CASES = [((5, 6, 3), 2), ((4, 4, 1), 3), ((7, 3, 4), 4)]
HIDDEN_POINTWISE_CASES = [((6, 5, 2), 2), ((3, 8, 5), 1), ((9, 9, 3), 6)]


def _pointwise_variants(image, kernel, bias):
    """What plausible mistakes compute, each with what to tell the learner."""
    weights = kernel[0, 0]  # (input channels, filters)
    linear = np.einsum("hwc,cf->hwf", image, weights)
    variants = [(linear, "that is without the bias: Conv2D adds each filter's bias at every pixel"),
                (np.maximum(linear + bias, 0), "that has a ReLU; Conv2D(filters, 1) with no activation is "
                                                "linear"),
                (np.einsum("hwc,cf->hwf", image, weights) / image.shape[-1] + bias,
                 "that is the mean over the input channels; a convolution sums them")]
    if weights.shape[0] == weights.shape[1]:
        variants.append((np.einsum("hwc,fc->hwf", image, weights) + bias,
                         "the kernel's axes are swapped: kernel[0, 0, c, f] weights input channel c in "
                         "filter f"))
    return variants


@exercise("01.2")
def exercise_01_2(pointwise_conv, hidden=False):
    """Compare a learner's 1×1 convolution with Conv2D(filters, 1)'s on images and kernels."""
    import keras

    rng = np.random.default_rng(102)
    cases = POINTWISE_CASES + (HIDDEN_POINTWISE_CASES if hidden else [])
    for (height, width, channels), filters in cases:
        image = rng.random((height, width, channels)).astype("float32")
        kernel = rng.normal(size=(1, 1, channels, filters)).astype("float32")
        bias = rng.normal(size=filters).astype("float32")
        setting = f"a {height}×{width}×{channels} image and {filters} filter(s)"
        found = pointwise_conv(image.copy(), kernel.copy(), bias.copy())
        expect(isinstance(found, np.ndarray) or hasattr(found, "__array__"),
               f"{setting}: your function returned {type(found).__name__}, expected a NumPy array")
        found = np.asarray(found, dtype="float64")
        layer = keras.layers.Conv2D(filters, 1)
        layer.build((None, height, width, channels))
        layer.set_weights([kernel, bias])
        expected = keras.ops.convert_to_numpy(layer(image[np.newaxis]))[0]
        expect(found.shape == expected.shape,
               f"{setting}: your output has shape {found.shape}, expected {expected.shape} "
               "(height, width, one channel per filter)")
        if np.allclose(found, expected, atol=1e-4):
            continue
        note = next((f" ({why})" for variant, why in _pointwise_variants(image, kernel, bias)
                     if np.allclose(found, variant, atol=1e-4)), "")
        row, column, channel = (int(i) for i in np.unravel_index(np.argmax(np.abs(found - expected)),
                                                                 expected.shape))
        expect(False, f"{setting}: your output differs from Conv2D's at row {row}, column {column}, channel "
                      f"{channel}: {found[row, column, channel]:.4f}, expected "
                      f"{expected[row, column, channel]:.4f}{note}")
    return f"It matches Conv2D(filters, 1) on {len(cases)} images and kernels"
