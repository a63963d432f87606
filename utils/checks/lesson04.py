"""Checks of lesson 04's exercises: top class against runner-up saliency, and 2-D receptive fields."""

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


def _pixel_gradients(model, image, score_of):
    """∂ score / ∂ pixel for one image, the score computed from (logits, probabilities) by ``score_of``."""
    from utils import visualize

    import tensorflow as tf

    pixels = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        _, logits = visualize.forward_to_logits(model, pixels)
        score = score_of(logits[0], tf.nn.softmax(logits[0]))
    return tape.gradient(score, pixels)[0].numpy()


def _close(a, b) -> bool:
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-3, atol=1e-6 * (np.abs(b).max() + 1e-12))


def _contrast_mistakes(model, image, top, second):
    """What plausible mistakes compute, each with what to tell the learner."""
    def of(score_of):
        return _pixel_gradients(model, image, score_of)

    top_map = np.abs(of(lambda z, p: z[top])).max(axis=-1)
    second_map = np.abs(of(lambda z, p: z[second])).max(axis=-1)
    difference = of(lambda z, p: z[top] - z[second])
    return [(top_map, "that is the saliency of the predicted class alone"),
            (second_map, "that is the saliency of the runner-up class alone"),
            (top_map - second_map, "that is the difference of two saliency maps; differentiate the "
                                   "difference of the two scores, then take the size of that gradient"),
            (np.abs(top_map - second_map), "that is the difference of two saliency maps; differentiate "
                                           "the difference of the two scores, then take the size of that "
                                           "gradient"),
            (np.abs(of(lambda z, p: p[top] - p[second])).max(axis=-1),
             "your map differentiates the probabilities; expected the class scores before the softmax (the "
             "logits), as the lesson does"),
            (difference.max(axis=-1), "a saliency map is the size of the gradient: take its absolute value"),
            (np.abs(difference).sum(axis=-1), "that is the sum over the colour channels; saliency_map takes "
                                              "the largest")]


@exercise("04.1")
def exercise_04_1(contrast_saliency, hidden=False):
    """Compare a learner's contrast saliency map with the gradient of the top score minus the runner-up's."""
    from utils import visualize

    rng = np.random.default_rng(104)
    cases = ((1, 1), (3, 2)) + (((2, 5), (1, 7)) if hidden else ())
    for number, (channels, seed) in enumerate(cases, start=1):
        model = _hidden_model(channels, seed)
        image = rng.random((12, 12, channels)).astype("float32")
        _, logits = visualize.forward_to_logits(model, image[np.newaxis])
        top, second = (int(c) for c in np.argsort(-np.asarray(logits)[0])[:2])
        expected = np.abs(_pixel_gradients(model, image, lambda z, p, t=top, s=second: z[t] - z[s])).max(-1)
        found = np.asarray(contrast_saliency(model, image.copy()))
        kind = {1: "grey", 3: "colour"}.get(channels, f"{channels}-channel")
        where = f"on the check's model {number} and a {kind} 12×12 image"
        expect(found.shape == expected.shape,
               f"{where}, your map has shape {found.shape}, expected {expected.shape}: one value per pixel")
        if _close(found, expected):
            continue
        note = next((f" ({why})" for variant, why in _contrast_mistakes(model, image, top, second)
                     if _close(found, variant)), "")
        row, column = (int(i) for i in np.unravel_index(np.argmax(np.abs(found - expected)), found.shape))
        expect(False, f"{where}, your map differs at row {row}, column {column}: {found[row, column]:.4g}, "
                      f"expected {expected[row, column]:.4g}{note}")
    return f"It matches the gradient of the top score minus the runner-up's on {4 if hidden else 2} models"


# Layer stacks as (kind, window, stride, padding), window and stride as (height, width): the
# factorised 1×k and k×1 convolutions of Inception, and strides that differ between the axes.
FIELD_STACKS = [
    [("conv", (3, 3), (1, 1), "valid"), ("max", (2, 2), (2, 2), "valid"), ("conv", (1, 5), (1, 1), "same"),
     ("conv", (5, 1), (1, 1), "same"), ("max", (2, 2), (2, 2), "valid")],
    [("conv", (5, 3), (2, 1), "same"), ("conv", (3, 3), (1, 1), "same"), ("avg", (3, 2), (2, 2), "valid"),
     ("conv", (1, 7), (1, 2), "valid")],
]
HIDDEN_FIELD_STACKS = [
    [("conv", (7, 7), (2, 2), "same"), ("max", (3, 3), (2, 2), "same"), ("conv", (1, 3), (1, 1), "same"),
     ("conv", (3, 1), (1, 1), "same")],
    [("conv", (3, 5), (1, 2), "valid"), ("max", (2, 1), (1, 1), "valid"), ("conv", (5, 5), (3, 3), "valid"),
     ("avg", (2, 2), (2, 2), "valid")],
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


def _fields(stack, axis: int, field=1, jump_first=False, skip_pools=False, pool_stride_is_window=False,
            jumps=True):
    """The recurrence along one axis (0: height, 1: width); the flags make plausible mistakes."""
    jump, fields = 1, []
    for kind, window, stride, _ in stack:
        window, stride = window[axis], stride[axis]
        if kind == "conv" or not skip_pools:
            stride = window if (kind != "conv" and pool_stride_is_window) else stride
            if jump_first:
                jump *= stride
            field += (window - 1) * (jump if jumps else 1)
            jump = jump if jump_first else jump * stride
        fields.append(field)
    return fields


def _both(stack, **mistake):
    return list(zip(_fields(stack, 0, **mistake), _fields(stack, 1, **mistake), strict=True))


def _field_mistakes(stack):
    """What plausible mistakes compute for a stack, each with what to tell the learner."""
    right = _both(stack)
    return [(_both(stack, jumps=False), "each layer adds (k - 1)·j, k - 1 times the jump between its "
                                        "input's neighbouring values; yours adds k - 1"),
            (_both(stack, jump_first=True), "a layer's field grows with the jump of its input: add "
                                            "(k - 1)·j first, then multiply the jump by the stride"),
            (_both(stack, field=0), "the input's field is 1 pixel, not 0"),
            (_both(stack, skip_pools=True), "pooling layers are windows too: they add (k - 1)·j and "
                                            "multiply the jump by their stride"),
            (_both(stack, pool_stride_is_window=True), "a pooling layer's stride is its strides setting, "
                                                       "which need not equal its pool_size"),
            ([(w, h) for h, w in right], "your pairs are (width, height); expected (height, width)"),
            ([(h, h) for h, _ in right], "your widths are the heights: kernel_size[1] and strides[1] give "
                                         "the width's"),
            ([h for h, _ in right], "a field is a pair (height, width), not one number")]


def _stack_text(stack) -> str:
    return ", ".join(f"{kind} {k[0]}×{k[1]}/{s[0]}×{s[1]}" for kind, k, s, _ in stack)


@exercise("04.2")
def exercise_04_2(receptive_fields_of, hidden=False):
    """Compare a learner's (height, width) receptive fields with the recurrence's, on models with
    non-square windows and strides."""
    stacks = FIELD_STACKS + (HIDDEN_FIELD_STACKS if hidden else [])
    for index, stack in enumerate(stacks):
        model = _field_model(stack, index)
        names = [layer.name for layer in model.layers if layer.name.startswith(("conv", "maxpool",
                                                                                  "avgpool"))]
        expected = dict(zip(names, _both(stack), strict=True))
        found = receptive_fields_of(model)
        where = f"on model {model.name!r} ({_stack_text(stack)})"
        expect(isinstance(found, dict), f"{where} your function returned {type(found).__name__}, expected a "
                                        "dict from layer name to (height, width)")
        expect(set(found) == set(expected),
               f"{where} your dict has keys {sorted(found)}, expected the conv and pooling layers "
               f"{sorted(expected)}")
        found_fields = [tuple(field) if isinstance(field, (tuple, list, np.ndarray)) else field
                        for field in (found[name] for name in expected)]
        if found_fields == list(expected.values()):
            continue
        name = next(n for n, f in zip(expected, found_fields, strict=True) if f != expected[n])
        note = next((f" ({why})" for fields, why in _field_mistakes(stack) if fields == found_fields), "")
        expect(False, f"{where} your field for {name!r} is {found[name]!r}, expected {expected[name]}{note}")
    return f"It agrees with the recurrence on both axes of {len(stacks)} models"
