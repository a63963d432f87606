"""Checks of lesson 04's exercises: an occlusion map, and 2-D receptive fields."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def _hidden_model(channels: int, seed: int, size=(12, 12)):
    """A small trained-looking CNN with fixed random weights, ending in a softmax Dense layer."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(*size, channels)),
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


def occlusion_reference(model, image, class_index, patch, stride, fill, *, covered_fill=None,
                        channels=None, subtract=True, sign=1, count=None):
    """The occlusion map; the keyword arguments make the plausible mistakes the check names."""
    height, width = image.shape[:2]
    rows, columns = count or ((height - patch) // stride + 1, (width - patch) // stride + 1)
    occluded = np.repeat(image[np.newaxis], rows * columns, axis=0)
    for r in range(rows):
        for c in range(columns):
            window = occluded[r * columns + c, r * stride:r * stride + patch, c * stride:c * stride + patch]
            value = fill if covered_fill is None else covered_fill
            window[..., slice(None) if channels is None else channels] = value
    covered = np.asarray(model(occluded))[:, class_index].reshape(rows, columns)
    original = float(np.asarray(model(image[np.newaxis]))[0, class_index])
    return sign * (original - covered) if subtract else covered


def _occlusion_mistakes(model, image, class_index, patch, stride, fill, predicted):
    made = [(dict(subtract=False), "that is the probability on the covered image; subtract it from the "
                                   "probability on the whole image"),
            (dict(sign=-1), "that is the covered probability minus the original one: a patch the class "
                            "needs should give a large positive value"),
            (dict(channels=0), "only the first channel is covered; fill the patch in every channel")]
    if fill != 0:
        made.append((dict(covered_fill=0.0), f"your patch is filled with 0, expected fill={fill}"))
    found = [(occlusion_reference(model, image, class_index, patch, stride, fill, **kw), why)
             for kw, why in made]
    if predicted != class_index:
        found.append((occlusion_reference(model, image, predicted, patch, stride, fill),
                      "that is the map of the class the model predicts; use class_index"))
    return found


# (channels, model seed, image height and width, class: "top", "second" or an index, patch, stride, fill)
OCCLUSION_CASES = [(1, 1, (12, 12), "top", 4, 2, 0.0), (3, 2, (12, 10), "second", 3, 3, 0.5)]
HIDDEN_OCCLUSION_CASES = [(2, 5, (10, 14), 4, 5, 2, 1.0), (1, 7, (13, 11), 0, 2, 3, 0.25)]


@exercise("04.1")
def exercise_04_1(occlusion_map, hidden=False):
    """Compare a learner's occlusion map with the drop in the class's probability at each patch."""
    rng = np.random.default_rng(104)
    cases = OCCLUSION_CASES + (HIDDEN_OCCLUSION_CASES if hidden else [])
    for number, (channels, seed, size, which, patch, stride, fill) in enumerate(cases, start=1):
        model = _hidden_model(channels, seed, size)
        image = rng.random((*size, channels)).astype("float32")
        ranked = np.argsort(-np.asarray(model(image[np.newaxis]))[0])
        class_index = int({"top": ranked[0], "second": ranked[1]}.get(which, which))
        expected = occlusion_reference(model, image, class_index, patch, stride, fill)
        found = np.asarray(occlusion_map(model, image.copy(), class_index, patch, stride, fill))
        where = (f"on the check's model {number}, a {size[0]}×{size[1]}×{channels} image, "
                 f"class {class_index}, patch {patch}, stride {stride}, fill {fill}")
        rows, columns = expected.shape
        expect(found.shape == expected.shape,
               f"{where}: your map has shape {found.shape}, expected {expected.shape}, one value per "
               f"position of the patch, rows first: ({size[0]} − {patch}) // {stride} + 1 = {rows} rows and "
               f"({size[1]} − {patch}) // {stride} + 1 = {columns} columns, where the patch fits wholly")
        if np.allclose(found, expected, rtol=1e-4, atol=1e-6):
            continue
        mistakes = _occlusion_mistakes(model, image, class_index, patch, stride, fill, int(ranked[0]))
        mistakes.append((expected.T, "rows and columns are swapped: a row holds the positions at one height"))
        note = next((f" ({why})" for variant, why in mistakes if variant.shape == found.shape
                     and np.allclose(found, variant, rtol=1e-4, atol=1e-6)), "")
        row, column = (int(i) for i in np.unravel_index(np.argmax(np.abs(found - expected)), found.shape))
        expect(False, f"{where}: your map differs at row {row}, column {column}: {found[row, column]:.4g}, "
                      f"expected {expected[row, column]:.4g}{note}")
    return f"It matches the drop in the class's probability on {len(cases)} models and images"


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
