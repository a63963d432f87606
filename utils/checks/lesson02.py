"""Checks of lesson 02's exercises: a parameter count by hand and a small CNN with global pooling."""

from __future__ import annotations

import math

from utils.checks.feedback import exercise, expect

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 48, 2), (20, 36, 5)]
CLASSES = [10, 10, 5, 3]


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


@exercise("02.1")
def exercise_02_1(count_by_hand):
    """Compare a learner's parameter count with Keras's on hidden input shapes and class counts."""
    for shape, classes in zip(SHAPES, CLASSES, strict=True):
        found = count_by_hand(shape, classes)
        expect(hasattr(found, "__index__") and not isinstance(found, bool),
               f"for a {_shape(shape)} input your function returned {found!r}, expected a whole number")
        model = conv5_net(shape, classes)
        expected = model.count_params()
        if int(found) == expected:
            continue
        weights_only = sum(math.prod(layer.kernel.shape) for layer in model.layers
                           if hasattr(layer, "kernel"))
        message = (f"for a {_shape(shape)} input and {classes} classes your count is {int(found):,}, "
                   f"expected {expected:,} ({abs(int(found) - expected):,} too "
                   f"{'few' if int(found) < expected else 'many'})")
        if int(found) == weights_only:
            message += ": that is the number of weights without the biases"
        expect(False, message)
    return f"It agrees with Keras on {len(SHAPES)} hidden input shapes"


BUDGET = 25_000


@exercise("02.2")
def exercise_02_2(build_small_cnn):
    """Build a learner's model for hidden shapes and check its output, head and size."""
    import keras
    import numpy as np

    for shape, classes in zip(SHAPES[:3], CLASSES[:3], strict=True):
        model = build_small_cnn(shape, classes)
        where = f"for a {_shape(shape)} input and {classes} classes"
        expect(isinstance(model, keras.Model), f"{where} your function returned {type(model).__name__}, "
                                               "expected a Keras model")
        kinds = [type(layer).__name__ for layer in model.layers]
        expect(kinds.count("Conv2D") >= 2, f"{where} your model has {kinds.count('Conv2D')} Conv2D layer(s), "
                                           "expected at least 2")
        expect("Flatten" not in kinds, f"{where} your model flattens its feature maps; "
                                       "expected global average pooling instead")
        expect("GlobalAveragePooling2D" in kinds, f"{where} your model has no GlobalAveragePooling2D layer")
        outputs = keras.ops.convert_to_numpy(model(np.random.default_rng(0).random((2, *shape), "float32")))
        expect(outputs.shape == (2, classes), f"{where} your model's output has shape {outputs.shape[1:]} "
                                              f"per image, expected ({classes},)")
        expect(np.allclose(outputs.sum(axis=1), 1, atol=1e-4) and (outputs >= 0).all(),
               f"{where} your model's outputs sum to {outputs.sum(axis=1)[0]:.3f}, expected probabilities "
               "that sum to 1 (a softmax output)")
        params = model.count_params()
        expect(params <= BUDGET, f"{where} your model has {params:,} parameters, expected at most {BUDGET:,}")
    return f"It has the required head and stays within {BUDGET:,} parameters on hidden input shapes"
