"""Regularisation for lesson 05: augmentation per dataset, a regularised CNN, early stopping."""

from __future__ import annotations

import dataclasses
import time

from utils import data, training

import keras
import numpy as np
from keras import layers

# Which augmentation suits which dataset, and why. Rotation and zoom factors are
# fractions: 0.03 of a full turn is about 11 degrees. On the black background of the
# grey datasets, uncovered pixels are filled with black; CIFAR-10 photos reflect their edge.
AUGMENTATIONS = {
    "mnist": (
        "no flips: a mirrored 2, 3 or 7 is no longer that digit; small shifts, rotations and zooms",
        lambda: [layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="shift"),
                 layers.RandomRotation(0.03, fill_mode="constant", name="rotate"),
                 layers.RandomZoom(0.1, fill_mode="constant", name="zoom")],
    ),
    "fashion_mnist": (
        "horizontal flips: a mirrored shoe or shirt is still a shoe or shirt; small shifts",
        lambda: [layers.RandomFlip("horizontal", name="flip"),
                 layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="shift")],
    ),
    "cifar10": (
        "horizontal flips: a mirrored cat or truck is still a cat or truck; small shifts",
        lambda: [layers.RandomFlip("horizontal", name="flip"),
                 layers.RandomTranslation(0.1, 0.1, name="shift")],
    ),
}


def augmentation_for(dataset: str) -> keras.Sequential:
    """The augmentation layers that suit ``dataset``. Introduced in lesson 05."""
    data.get_spec(dataset)  # a clear error for an unknown name
    return keras.Sequential(AUGMENTATIONS[dataset][1](), name="augmentation")


def augmentation_reason(dataset: str) -> str:
    """One line on why ``dataset`` gets the augmentation it gets. Introduced in lesson 05."""
    data.get_spec(dataset)
    return AUGMENTATIONS[dataset][0]


def regularized_cnn(input_shape, num_classes: int, *, padding: str = "valid", batch_norm: bool = False,
                    dropout: float = 0.0, augmentation: keras.Layer | None = None,
                    name: str = "cnn3_regularized") -> keras.Model:
    """cnn3 with optional augmentation, batch normalization and dropout. Introduced in lesson 05.

    With every option off it is exactly ``models.cnn3``. ``padding="same"`` keeps the
    borders, so conv2 and conv3 see larger maps (more capacity, about twice the compute).
    Batch normalization comes before each ReLU, after the pooling where there is one: it
    does the same job there on a quarter of the numbers. Dropout comes before and after
    the Dense layer of the head.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"unknown padding {padding!r}; valid choices: same, valid")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1); got {dropout!r}")
    stack = [keras.Input(shape=input_shape)]
    if augmentation is not None:
        stack.append(augmentation)
    for index, filters in enumerate((32, 64, 64), start=1):
        pooled = index < 3
        if not batch_norm:
            stack.append(layers.Conv2D(filters, 3, padding=padding, activation="relu", name=f"conv{index}"))
            if pooled:
                stack.append(layers.MaxPooling2D(2, name=f"pool{index}"))
            continue
        # The convolution needs no bias: batch normalization's shift (beta) takes its place.
        stack.append(layers.Conv2D(filters, 3, padding=padding, use_bias=False, name=f"conv{index}"))
        if pooled:
            stack.append(layers.MaxPooling2D(2, name=f"pool{index}"))
        # momentum 0.9: Keras's default of 0.99 needs hundreds of steps before the moving
        # averages used at inference match the data, more than a small training set gives.
        stack += [layers.BatchNormalization(momentum=0.9, name=f"bn{index}"),
                  layers.Activation("relu", name=f"relu{index}")]
    stack.append(layers.Flatten(name="flatten"))
    if dropout:
        stack.append(layers.Dropout(dropout, name="dropout1"))
    stack.append(layers.Dense(64, activation="relu", name="dense"))
    if dropout:
        stack.append(layers.Dropout(dropout, name="dropout2"))
    stack.append(layers.Dense(num_classes, activation="softmax", name="probabilities"))
    return keras.Sequential(stack, name=name)


def early_stopping(patience: int = 3, monitor: str = "val_loss") -> keras.callbacks.EarlyStopping:
    """Stop when ``monitor`` stops improving and restore the best epoch's weights. Introduced in lesson 05."""
    mode = "max" if "accuracy" in monitor else "min"
    return keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                         restore_best_weights=True, verbose=1)


def small_subset(splits: data.Splits, train_size: int, val_size: int | None = None,
                 seed: int = 0) -> data.Splits:
    """The same splits with fewer training (and validation) images, stratified. Introduced in lesson 05.

    The test set is left as it is.
    """
    smallest = splits.spec.num_classes
    for name, size in (("train_size", train_size), ("val_size", val_size)):
        if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                                 or size < smallest):
            raise ValueError(f"{name} must be a whole number >= {smallest}; got {size!r}")
    rng = np.random.default_rng(seed)
    train = data.stratified_indices(splits.y_train, min(train_size, len(splits.y_train)), rng)
    val = np.arange(len(splits.y_val)) if val_size is None else \
        data.stratified_indices(splits.y_val, min(val_size, len(splits.y_val)), rng)
    return dataclasses.replace(splits, x_train=splits.x_train[train], y_train=splits.y_train[train],
                               x_val=splits.x_val[val], y_val=splits.y_val[val])


def train_variants(builders: dict, splits: data.Splits, epochs: int, batch_size: int, seed: int = 0,
                   learning_rate: float = 1e-3, callbacks=None) -> dict[str, dict]:
    """Train each model the same way and print one line each. Introduced in lesson 05.

    ``builders`` maps a name to a function that returns an uncompiled model; each starts
    from the same seed, with Adam at a constant ``learning_rate``. ``callbacks``, if given,
    is a function that returns a fresh list for each run. Returns name → history dict.
    """
    histories = {}
    for name, build in builders.items():
        training.set_seed(seed)
        model = training.compile_model(build(), learning_rate=learning_rate)
        start = time.perf_counter()
        history = training.train(model, splits, epochs, batch_size, verbose=0,
                                 callbacks=callbacks() if callbacks else None).history
        seconds = time.perf_counter() - start
        best = int(np.argmin(history["val_loss"]))
        print(f"{name:<14} {len(history['loss']):>3} epochs  train acc {history['accuracy'][-1]:.3f}  "
              f"val acc {history['val_accuracy'][-1]:.3f}  val loss: best {history['val_loss'][best]:.3f} "
              f"(epoch {best + 1}), last {history['val_loss'][-1]:.3f}  [{seconds:.0f} s]")
        histories[name] = history
    return histories
