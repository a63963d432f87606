"""Checks of lesson 01's exercises: a strided, padded convolution and average pooling."""

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
    return f"It matches Conv2D on {len(CONV_CASES)} hidden images, strides and paddings"


POOL_CASES = [((6, 6), 2), ((7, 9), 2), ((9, 9), 3), ((8, 5), 4)]
HIDDEN_POOL_CASES = [((11, 7), 3), ((5, 5), 5), ((10, 12), 2), ((4, 6), 1)]


@exercise("01.2")
def exercise_01_2(average_pool, hidden=False):
    """Compare a learner's average pooling with AveragePooling2D's on hidden feature maps."""
    import keras

    rng = np.random.default_rng(102)
    for shape, size in POOL_CASES + (HIDDEN_POOL_CASES if hidden else []):
        feature_map = rng.normal(size=shape).astype("float32")
        setting = f"a {_size(feature_map)} feature map and size {size}"
        found = _as_map(average_pool(feature_map.copy(), size), setting)
        pooled = keras.ops.average_pool(feature_map[np.newaxis, :, :, np.newaxis], pool_size=size,
                                        strides=size, padding="valid")
        expected = keras.ops.convert_to_numpy(pooled)[0, :, :, 0]
        rounded_up = tuple(-(-n // size) for n in shape)
        note = ": a last row or column that does not fill a window is dropped" if (
            found.shape == rounded_up and found.shape != expected.shape) else ""
        expect(found.shape == expected.shape,
               f"{setting}: your output is {_size(found)}, expected {_size(expected)} "
               f"(as AveragePooling2D computes it){note}")
        if not np.allclose(found, expected, atol=1e-5):
            row, column = _first_difference(found, expected)
            window = feature_map[row * size:(row + 1) * size, column * size:(column + 1) * size]
            h, w = expected.shape[0] * size, expected.shape[1] * size
            rows, columns = expected.shape
            mixed = feature_map[:h, :w].reshape(rows, columns, size, size).mean(axis=(2, 3))
            note = " (that is the window's maximum, not its mean)" if np.isclose(found[row, column],
                                                                                window.max()) else ""
            if not note and np.allclose(found, mixed, atol=1e-5):
                note = (" (your windows are not size×size squares: reshape to (rows, size, columns, size) "
                        "and average axes 1 and 3)")
            expect(False, f"{setting}: your output differs at row {row}, column {column}: "
                          f"{found[row, column]:.4f}, expected {expected[row, column]:.4f}{note}")
    return f"It matches AveragePooling2D on {len(POOL_CASES)} hidden feature maps"
