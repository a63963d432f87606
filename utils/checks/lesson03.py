"""Checks of lesson 03's exercises: the loss that matches an output layer, and cross-entropy by hand."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def _models(hidden=False):
    """Hidden models: (description, model, whether its output is probabilities). The models' names
    say nothing about their output."""
    import keras
    from keras import layers

    def head(*last, name):
        return keras.Sequential([keras.Input(shape=(6, 6, 1)), layers.Conv2D(2, 3), layers.Flatten(), *last],
                                name=name)

    return [
        ("a model whose last layer is Dense(10, activation='softmax')",
         head(layers.Dense(10, activation="softmax"), name="model_a"), True),
        ("a model whose last layer is Dense(10) with no activation",
         head(layers.Dense(10), name="model_b"), False),
        ("a model that ends with Dense(4) then layers.Softmax()",
         head(layers.Dense(4), layers.Softmax(), name="model_c"), True),
        ("a model that ends with Dense(3) then layers.Activation('softmax')",
         head(layers.Dense(3), layers.Activation("softmax"), name="model_d"), True),
        ("a model whose last layer is Dense(5, activation='linear')",
         head(layers.Dense(5, activation="linear"), name="model_e"), False),
    ] + ([
        ("a model named 'softmax_classifier' whose last layer is Dense(7) with no activation",
         head(layers.Dense(7), name="softmax_classifier"), False),
        ("a model named 'logits' whose last layer is Dense(6, activation=keras.activations.softmax)",
         head(layers.Dense(6, activation=keras.activations.softmax), name="logits"), True),
        ("a model that ends with Dense(2, activation='relu') then layers.Softmax()",
         head(layers.Dense(2, activation="relu"), layers.Softmax(), name="probabilities_b"), True),
    ] if hidden else [])


@exercise("03.1")
def exercise_03_1(loss_for, hidden=False):
    """Ask a learner's function for the loss of hidden models with softmax and logit outputs."""
    import keras

    for description, model, probabilities in _models(hidden):
        loss = loss_for(model)
        expect(isinstance(loss, keras.losses.Loss),
               f"for {description}, your function returned {type(loss).__name__}, expected a Keras loss "
               "object such as keras.losses.SparseCategoricalCrossentropy(...)")
        expect(isinstance(loss, keras.losses.SparseCategoricalCrossentropy),
               f"for {description}, your loss is {type(loss).__name__}; the course's labels are integers "
               "(0, 1, 2, …), which SparseCategoricalCrossentropy expects")
        from_logits = loss.get_config().get("from_logits")
        if probabilities:
            expect(not from_logits, f"for {description} (it outputs probabilities), your loss has "
                                    "from_logits=True, which says they are raw scores")
        else:
            expect(from_logits, f"for {description} (it outputs logits, raw scores), your loss has "
                                "from_logits=False: it would treat raw scores as probabilities")
    return "It pairs the loss with the output layer of 5 hidden models"


def _cases(hidden=False):
    rng = np.random.default_rng(103)
    visible = [
        ("4 images and 3 classes", np.array([0, 2, 1, 1]), rng.normal(size=(4, 3))),
        ("8 images and 10 classes", rng.integers(0, 10, 8), 3 * rng.normal(size=(8, 10))),
        ("2 images with logits as large as 1000", np.array([1, 0]),
         np.array([[1000.0, 998.0, -5.0], [-1000.0, 3.0, 2.0]])),
    ]
    return visible + ([
        ("16 images and 5 classes", rng.integers(0, 5, 16), 2 * rng.normal(size=(16, 5))),
        ("3 images with logits as low as -1000", np.array([2, 0, 1]),
         np.array([[-1000.0, -1001.0, -999.0], [-998.0, -1000.0, -1000.0], [5.0, -3.0, 1.0]])),
    ] if hidden else [])


def _column_softmax(labels, logits):
    """The mistake of normalising over the batch (axis 0) instead of over each image's classes."""
    shifted = logits - logits.max(axis=0, keepdims=True)
    with np.errstate(divide="ignore"):
        log_p = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


@exercise("03.2")
def exercise_03_2(cross_entropy, hidden=False):
    """Compare a learner's cross-entropy from logits with Keras's on hidden batches."""
    import keras

    for description, labels, logits in _cases(hidden):
        found = cross_entropy(labels.copy(), logits.astype("float32"))
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits.astype("float64"),
                                                              from_logits=True)
        expected = float(keras.ops.convert_to_numpy(keras.ops.mean(losses)))
        shape = np.shape(found)
        expect(shape == (), f"for {description}, your result has shape {shape}, expected a single number: "
                            "the mean over the batch")
        found = float(found)
        expect(np.isfinite(found), f"for {description}, your loss is {found}, expected {expected:.4f}: "
                                   "np.exp overflows for such logits")
        if np.isclose(found, expected, rtol=1e-4, atol=1e-4):
            continue
        why = ""
        if np.isclose(found, expected * len(labels), rtol=1e-4, atol=1e-4):
            why = ": that is the sum over the batch; take the mean"
        elif np.isclose(found, _column_softmax(labels, logits), rtol=1e-4, atol=1e-4):
            why = ": the softmax runs over each image's logits (axis=1), not over the batch (axis=0)"
        expect(False, f"for {description}, your loss is {found:.4f}, expected {expected:.4f}{why}")
    return "It matches Keras's loss on hidden batches, large logits included"
