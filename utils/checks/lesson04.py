"""Checks of lesson 04's exercises: the saliency map of the runner-up class, and an activation model."""

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
    return "It matches the runner-up class's saliency on 2 hidden models"


@exercise("04.2")
def exercise_04_2(activations_of, hidden=False):
    """Compare a learner's feature maps with the layers' outputs, computed layer by layer."""
    rng = np.random.default_rng(204)
    cases = [(2, 3, ["conv_b", "pool_a"])]
    cases += [(1, 9, ["probabilities", "conv_a", "flatten"])] if hidden else []
    for channels, seed, names in cases:
        _check_activations(activations_of, _hidden_model(channels, seed),
                           rng.random((12, 12, channels)).astype("float32"), names)
    return "It returns the feature maps of the layers asked for, on a hidden model"


def _check_activations(activations_of, model, image, names):
    import keras

    found = activations_of(model, image.copy(), list(names))
    expect(isinstance(found, dict), f"your function returned {type(found).__name__}, expected a dict "
                                    "from layer name to that layer's feature maps")
    expect(set(found) == set(names), f"asked for layers {names}, your dict has keys {sorted(found)}")
    expected, x = {}, image[np.newaxis]
    for layer in model.layers:
        x = layer(x)
        expected[layer.name] = keras.ops.convert_to_numpy(x)[0]
    for name in names:
        maps = np.asarray(found[name])
        expect(maps.shape == expected[name].shape,
               f"for layer {name!r} your maps have shape {maps.shape}, expected {expected[name].shape} "
               "(height, width, channels) for one image")
        expect(np.allclose(maps, expected[name], atol=1e-5),
               f"for layer {name!r} your maps have the right shape but other values "
               f"(largest {maps.max():.4g}, expected {expected[name].max():.4g})")
