"""Checks of lesson 02's exercises: a parameter count by hand and an all-convolutional classifier."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 48, 2), (21, 35, 5)]
CLASSES = [10, 10, 5, 3]
HIDDEN_SHAPES = [(29, 31, 1), (17, 23, 4), (40, 24, 3)]
HIDDEN_CLASSES = [7, 2, 4]


def conv5_net(input_shape, num_classes):
    """The architecture of exercise 02.1, built by Keras."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(16, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(num_classes, activation="softmax"),
    ])


def _shape(shape) -> str:
    return "×".join(str(n) for n in shape)


def _formula(shape, classes, bias=1, conv1_valid=False, conv2_same=False, ceil=False):
    """Exercise 02.1's count, the flags making plausible mistakes."""
    height, width, channels = shape
    pool = (lambda n: -(-n // 2)) if ceil else (lambda n: n // 2)
    conv1 = (25 * channels + bias) * 16
    height, width = (height - 4, width - 4) if conv1_valid else (height, width)
    height, width = pool(height), pool(width)
    conv2 = (9 * 16 + bias) * 32
    height, width = (height, width) if conv2_same else (height - 2, width - 2)
    height, width = pool(height), pool(width)
    return conv1 + conv2 + (height * width * 32 + bias) * 64 + (64 + bias) * classes


_COUNT_MISTAKES = [
    (dict(bias=0), ": that is the number of weights without the biases"),
    (dict(ceil=True), ": MaxPooling2D(2) drops a last row or column that does not fill a window; round down"),
    (dict(conv1_valid=True), ": Conv2D(16, 5, padding='same') keeps height and width"),
    (dict(conv2_same=True), ": Conv2D(32, 3) has no padding: a 3×3 kernel loses 2 pixels per axis"),
]


@exercise("02.1")
def exercise_02_1(count_by_hand, hidden=False):
    """Compare a learner's parameter count with Keras's on hidden input shapes and class counts."""
    shapes = SHAPES + (HIDDEN_SHAPES if hidden else [])
    classes_ = CLASSES + (HIDDEN_CLASSES if hidden else [])
    for shape, classes in zip(shapes, classes_, strict=True):
        found = count_by_hand(shape, classes)
        expect(hasattr(found, "__index__") and not isinstance(found, bool),
               f"for a {_shape(shape)} input your function returned {found!r}, expected a whole number")
        model = conv5_net(shape, classes)
        expected = model.count_params()
        if int(found) == expected:
            continue
        message = (f"for a {_shape(shape)} input and {classes} classes your count is {int(found):,}, "
                   f"expected {expected:,} ({abs(int(found) - expected):,} too "
                   f"{'few' if int(found) < expected else 'many'})")
        message += next((why for mistake, why in _COUNT_MISTAKES if int(found) == _formula(shape, classes,
                                                                                           **mistake)), "")
        expect(False, message)
    return f"It agrees with Keras on {len(shapes)} input shapes"


BUDGET = 25_000


_NONLINEAR = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")


def _unactivated_conv(model):
    """The name of a Conv2D whose output reaches the next Conv2D with no non-linearity in between,
    or None. The class-score convolution before the pooling head is linear on purpose."""
    pending = None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            if pending:
                return pending
            linear = getattr(layer.activation, "__name__", "") == "linear"
            pending = layer.name if linear else None
        elif kind in _NONLINEAR and getattr(getattr(layer, "activation", None), "__name__", "") != "linear":
            pending = None
        elif kind in ("GlobalAveragePooling2D", "Flatten"):
            return None
    return None


def _squashes(layer) -> str | None:
    """What non-linearity ``layer`` applies ('softmax', 'relu', ...), or None for a linear layer."""
    kind = type(layer).__name__
    if kind not in _NONLINEAR:
        return None
    name = getattr(getattr(layer, "activation", None), "__name__", None) or kind.lower()
    return None if name == "linear" else name


@exercise("02.2")
def exercise_02_2(build_all_conv_net, hidden=False):
    """Build a learner's all-convolutional model for hidden shapes; check its layers, output and size."""
    import keras
    import numpy as np

    shapes = SHAPES[:3] + (SHAPES[3:] + HIDDEN_SHAPES[2:] if hidden else [])
    classes_ = CLASSES[:3] + (CLASSES[3:] + HIDDEN_CLASSES[2:] if hidden else [])
    for shape, classes in zip(shapes, classes_, strict=True):
        model = build_all_conv_net(shape, classes)
        where = f"for a {_shape(shape)} input and {classes} classes"
        expect(isinstance(model, keras.Model), f"{where} your function returned {type(model).__name__}, "
                                               "expected a Keras model")
        kinds = [type(layer).__name__ for layer in model.layers]
        expect("Dense" not in kinds, f"{where} your model has a Dense layer; expected none: the class scores "
                                     "come from a 1×1 convolution with one filter per class")
        expect("Flatten" not in kinds, f"{where} your model flattens its feature maps; "
                                       "expected global average pooling instead")
        expect("GlobalAveragePooling2D" in kinds, f"{where} your model has no GlobalAveragePooling2D layer")
        convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
        spatial = [layer for layer in convs if max(layer.kernel_size) > 1]
        expect(len(spatial) >= 2, f"{where} your model has {len(spatial)} Conv2D layer(s) with a kernel "
                                  "larger than 1×1, expected at least 2: a 1×1 convolution looks at one "
                                  "pixel and finds no spatial pattern")
        linear = _unactivated_conv(model)
        expect(linear is None, f"{where} your Conv2D layer {linear!r} has no activation: without a "
                               "non-linearity such as ReLU after it, stacked convolutions are one linear map")
        head = kinds.index("GlobalAveragePooling2D")
        last = next((layer for layer in reversed(model.layers[:head]) if type(layer).__name__ == "Conv2D"),
                    None)
        expect(last is not None and tuple(last.kernel_size) == (1, 1) and last.filters == classes,
               f"{where} the last Conv2D before the pooling is "
               f"{'missing' if last is None else f'Conv2D({last.filters}, {tuple(last.kernel_size)})'}, "
               f"expected Conv2D({classes}, 1): one score map per class")
        activation = getattr(last.activation, "__name__", "")
        expect(activation != "softmax", f"{where} your class-score convolution {last.name!r} applies the "
                                        "softmax at every pixel before the averaging; average the scores, "
                                        "then apply the softmax once")
        expect(activation == "linear", f"{where} your class-score convolution {last.name!r} has activation "
                                       f"{activation!r}: class scores before the softmax must be free to be "
                                       "negative, so it has no activation")
        between = model.layers[model.layers.index(last) + 1:head]
        squash = next(((layer, _squashes(layer)) for layer in between if _squashes(layer)), None)
        expect(squash is None, f"{where} your layer {squash and squash[0].name!r} applies "
                               f"{squash and squash[1]} to the class scores before the pooling: average the "
                               "raw scores, then apply the softmax once, after the pooling")
        after = [(layer, _squashes(layer)) for layer in model.layers[head + 1:] if _squashes(layer)]
        wrong = next(((layer, name) for layer, name in after if name != "softmax"), None)
        expect(wrong is None, f"{where} your layer {wrong and wrong[0].name!r} applies {wrong and wrong[1]} "
                              "to the averaged class scores: scores before the softmax must be free to be "
                              "negative; only the softmax follows the pooling")
        outputs = keras.ops.convert_to_numpy(model(np.random.default_rng(0).random((2, *shape), "float32")))
        expect(outputs.shape == (2, classes), f"{where} your model's output has shape {outputs.shape[1:]} "
                                              f"per image, expected ({classes},)")
        expect(np.allclose(outputs.sum(axis=1), 1, atol=1e-4) and (outputs >= 0).all(),
               f"{where} your model's outputs sum to {outputs.sum(axis=1)[0]:.3f}, expected probabilities "
               "that sum to 1 (a softmax after the pooling)")
        params = model.count_params()
        expect(params <= BUDGET, f"{where} your model has {params:,} parameters, expected at most {BUDGET:,}")
    return (f"It has no Dense layer, one score map per class and at most {BUDGET:,} parameters on "
            f"{len(shapes)} input shapes")
