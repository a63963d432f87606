"""Checks of lesson 04's exercises: the saliency map of the runner-up class, and receptive fields."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def _hidden_model(channels: int, seed: int):
    """A small trained-looking CNN with fixed random weights, ending in a softmax Dense layer."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(12, 12, channels)),
        layers.Conv2D(6, 3, activation="relu", name="conv_a"),
        layers.MaxPooling2D(2, name="pool_a"),
        layers.Conv2D(8, 3, activation="relu", name="conv_b"),
        layers.Flatten(name="flatten"),
        layers.Dense(5, activation="softmax", name="probabilities"),
    ], name=f"hidden_{channels}")
    rng = np.random.default_rng(seed)  # fixed weights, without touching the learner's seeds
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.4, size=weight.shape).astype("float32"))
    return model


def _probability_saliency(model, image, class_index):
    import tensorflow as tf

    pixels = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        score = model(pixels)[0, class_index]
    return tf.reduce_max(tf.abs(tape.gradient(score, pixels)[0]), axis=-1).numpy()


def _close(a, b) -> bool:
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-3, atol=1e-6 * (np.abs(b).max() + 1e-12))


_ORDINALS = ["1st", "2nd", "3rd", "4th", "5th"]


@exercise("04.1")
def exercise_04_1(runner_up_saliency, hidden=False):
    """Compare a learner's runner-up saliency map with the lesson's saliency map of that class."""
    from utils import visualize

    rng = np.random.default_rng(104)
    for channels, seed in ((1, 1), (3, 2)) + (((2, 5), (1, 7)) if hidden else ()):
        model = _hidden_model(channels, seed)
        image = rng.random((12, 12, channels)).astype("float32")
        _, logits = visualize.forward_to_logits(model, image[np.newaxis])
        ranking = np.argsort(-np.asarray(logits)[0])
        maps = [visualize.saliency_map(model, image, int(c)) for c in ranking]
        found = np.asarray(runner_up_saliency(model, image.copy()))
        kind = {1: "grey", 3: "colour"}.get(channels, f"{channels}-channel")
        where = f"on a hidden {kind} 12×12 image"
        expect(found.shape == maps[1].shape,
               f"{where}, your map has shape {found.shape}, expected {maps[1].shape}: one value per pixel")
        if _close(found, maps[1]):
            continue
        rank = next((r for r, saliency in enumerate(maps) if _close(found, saliency)), None)
        if rank == 0:
            expect(False, f"{where}, your map is the saliency of the predicted class (ranked 1st); "
                          "expected the class the model ranks 2nd")
        if rank is not None:
            expect(False, f"{where}, your map is the saliency of the class ranked {_ORDINALS[rank]}; "
                          "expected the class the model ranks 2nd")
        if _close(found, _probability_saliency(model, image, int(ranking[1]))):
            expect(False, f"{where}, your map differentiates the class's probability; expected the class "
                          "score before the softmax (the logit), as the lesson does")
        row, column = (int(i) for i in np.unravel_index(np.argmax(np.abs(found - maps[1])), found.shape))
        expect(False, f"{where}, your map differs from the runner-up class's saliency at row {row}, "
                      f"column {column}: {found[row, column]:.4g}, expected {maps[1][row, column]:.4g}")
    return f"It matches the runner-up class's saliency on {4 if hidden else 2} models"


# Layer stacks as (kind, window, stride, padding); each check model is built from one.
FIELD_STACKS = [
    [("conv", 3, 1, "valid"), ("max", 2, 2, "valid"), ("conv", 3, 1, "valid"), ("max", 2, 2, "valid")],
    [("conv", 5, 2, "same"), ("conv", 3, 1, "same"), ("avg", 3, 2, "valid"), ("conv", 3, 2, "valid")],
]
HIDDEN_FIELD_STACKS = [
    [("conv", 7, 2, "same"), ("max", 3, 2, "same"), ("conv", 3, 1, "same"), ("conv", 3, 1, "same")],
    [("conv", 3, 1, "valid"), ("max", 2, 1, "valid"), ("conv", 5, 3, "valid"), ("avg", 2, 2, "valid")],
]


def _field_model(stack, index: int):
    import keras
    from keras import layers

    built = [keras.Input(shape=(64, 64, 2))]
    for k, (kind, window, stride, padding) in enumerate(stack):
        if kind == "conv":
            built += [layers.Conv2D(4, window, strides=stride, padding=padding, name=f"conv{k}"),
                      layers.BatchNormalization(name=f"norm{k}"), layers.ReLU(name=f"relu{k}")]
        else:
            pool = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
            built.append(pool(window, strides=stride, padding=padding, name=f"{kind}pool{k}"))
    built += [layers.Flatten(name="flatten"), layers.Dense(3, name="scores")]
    return keras.Sequential(built, name=f"fields_{index}")


def _fields(stack, field=1, jump_first=False, skip_pools=False, pool_stride_is_window=False, jumps=True):
    """The recurrence over a stack; the flags make plausible mistakes."""
    jump, fields = 1, []
    for kind, window, stride, _ in stack:
        if kind == "conv" or not skip_pools:
            stride = window if (kind != "conv" and pool_stride_is_window) else stride
            if jump_first:
                jump *= stride
            field += (window - 1) * (jump if jumps else 1)
            jump = jump if jump_first else jump * stride
        fields.append(field)
    return fields


def _field_mistakes(stack):
    """What plausible mistakes compute for a stack, each with what to tell the learner."""
    return [(_fields(stack, jumps=False), "each layer adds (k - 1)·j, k - 1 times the jump between its "
                                          "input's neighbouring values; yours adds k - 1"),
            (_fields(stack, jump_first=True), "a layer's field grows with the jump of its input: add "
                                              "(k - 1)·j first, then multiply the jump by the stride"),
            (_fields(stack, field=0), "the input's field is 1 pixel, not 0"),
            (_fields(stack, skip_pools=True), "pooling layers are windows too: they add (k - 1)·j and "
                                              "multiply the jump by their stride"),
            (_fields(stack, pool_stride_is_window=True), "a pooling layer's stride is its strides setting, "
                                                         "which need not equal its pool_size")]


@exercise("04.2")
def exercise_04_2(receptive_fields_of, hidden=False):
    """Compare a learner's receptive fields with the course's, on models with strides and padding."""
    from utils import visualize

    stacks = FIELD_STACKS + (HIDDEN_FIELD_STACKS if hidden else [])
    for index, stack in enumerate(stacks):
        model = _field_model(stack, index)
        expected = {name: field for name, _, field in visualize.receptive_fields(model)}
        found = receptive_fields_of(model)
        where = f"on model {model.name!r} ({', '.join(f'{kind} {k}/{s}' for kind, k, s, _ in stack)})"
        expect(isinstance(found, dict), f"{where} your function returned {type(found).__name__}, expected a "
                                        "dict from layer name to field")
        expect(set(found) == set(expected),
               f"{where} your dict has keys {sorted(found)}, expected the conv and pooling layers "
               f"{sorted(expected)}")
        found_fields = [found[name] for name in expected]
        if found_fields == list(expected.values()):
            continue
        name = next(n for n in expected if found[n] != expected[n])
        note = next((f" ({why})" for fields, why in _field_mistakes(stack) if fields == found_fields), "")
        expect(False, f"{where} your field for {name!r} is {found[name]!r}, expected {expected[name]}{note}")
    return f"It agrees with the course's receptive fields on {len(stacks)} models"
