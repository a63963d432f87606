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


def augmentation_for(dataset: str, only: str | None = None) -> keras.Sequential:
    """The augmentation layers that suit ``dataset``, or only the one named ``only``.

    Introduced in lesson 05.
    """
    data.get_spec(dataset)  # a clear error for an unknown name
    stack = AUGMENTATIONS[dataset][1]()
    if only is not None:
        names = [layer.name for layer in stack]
        if only not in names:
            raise ValueError(f"{dataset} has no augmentation layer {only!r}; it has {', '.join(names)}")
        stack = [layer for layer in stack if layer.name == only]
    return keras.Sequential(stack, name="augmentation" if only is None else only)


def augmentation_reason(dataset: str) -> str:
    """One line on why ``dataset`` gets the augmentation it gets. Introduced in lesson 05."""
    data.get_spec(dataset)
    return AUGMENTATIONS[dataset][0]


def regularized_cnn(input_shape, num_classes: int, *, batch_norm: bool = False, dropout: float = 0.0,
                    augmentation: keras.Layer | None = None, l2: float = 0.0,
                    name: str = "cnn3_regularized") -> keras.Model:
    """cnn3 with optional augmentation, batch normalization, dropout and L2. Introduced in lesson 05.

    With every option off it is exactly ``models.cnn3``. Batch normalization sits where ResNet
    puts it, between each convolution and its ReLU; the convolution then needs no bias.
    Dropout comes before and after the Dense layer of the head. ``l2`` adds
    ``l2 · sum(w²)`` over every kernel (not the biases) to the loss.
    """
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1); got {dropout!r}")
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or l2 < 0:
        raise ValueError(f"l2 must be a number >= 0; got {l2!r}")
    penalty = {"kernel_regularizer": keras.regularizers.L2(l2)} if l2 else {}
    stack = [keras.Input(shape=input_shape)]
    if augmentation is not None:
        stack.append(augmentation)
    for index, filters in enumerate((32, 64, 64), start=1):
        if batch_norm:
            # momentum 0.9: the moving averages used at inference remember about the last
            # 1 / (1 - momentum) batches, so they follow the changing weights faster than at 0.99.
            stack += [layers.Conv2D(filters, 3, use_bias=False, name=f"conv{index}", **penalty),
                      layers.BatchNormalization(momentum=0.9, name=f"bn{index}"),
                      layers.Activation("relu", name=f"relu{index}")]
        else:
            stack.append(layers.Conv2D(filters, 3, activation="relu", name=f"conv{index}", **penalty))
        if index < 3:
            stack.append(layers.MaxPooling2D(2, name=f"pool{index}"))
    stack.append(layers.Flatten(name="flatten"))
    if dropout:
        stack.append(layers.Dropout(dropout, name="dropout1"))
    stack.append(layers.Dense(64, activation="relu", name="dense", **penalty))
    if dropout:
        stack.append(layers.Dropout(dropout, name="dropout2"))
    stack.append(layers.Dense(num_classes, activation="softmax", name="probabilities", **penalty))
    return keras.Sequential(stack, name=name)


def early_stopping(patience: int = 5, monitor: str = "val_loss") -> keras.callbacks.EarlyStopping:
    """Lesson 05's callback: stop when ``monitor`` stalls, keep the best epoch. Introduced in lesson 05.

    Keras infers from ``monitor`` whether lower or higher is better.
    """
    return keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
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


@dataclasses.dataclass
class Trained:
    """One trained model of an experiment: the model, its seed and its per-epoch history.

    ``train_accuracy`` is measured after training with ``evaluate`` on the clean training images:
    no dropout, no augmentation. The ``accuracy`` that ``fit`` logs is a running average over an
    epoch's batches, with dropout on and on augmented images, so it is no measure of the fit.
    """

    model: keras.Model
    seed: int
    history: dict
    train_accuracy: float


def train_variants(builders: dict, splits: data.Splits, epochs: int, batch_size: int, seeds=(0,),
                   learning_rate: float = 1e-3, callbacks=None, optimizers: dict | None = None,
                   validation_batch_size: int | None = None) -> dict[str, list[Trained]]:
    """Train each model once per seed, all the same way; one line each. Introduced in lesson 05.

    ``builders`` maps a name to a function that returns an uncompiled model. Every run uses
    Adam at a constant ``learning_rate``, unless ``optimizers`` maps its name to a function that
    takes the learning rate and returns another optimizer. Runs with the same seed start from
    the same weights and see the same batches. Besides the loss, each run logs ``cross_entropy``:
    the loss without the penalties that regularizers add to it, in training and validation alike.
    ``callbacks``, if given, is a function that returns a fresh list for each run.
    ``validation_batch_size`` changes only the speed of validation. Returns name → one
    ``Trained`` per seed.
    """
    runs = {}
    for name, build in builders.items():
        start = time.perf_counter()
        runs[name] = []
        for seed in seeds:
            training.set_seed(seed)
            model = build()
            optimizer = (optimizers or {}).get(name, keras.optimizers.Adam)(learning_rate)
            cross_entropy = keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")
            model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(),
                          metrics=["accuracy", cross_entropy])
            history = training.train(model, splits, epochs, batch_size, verbose=0,
                                     callbacks=callbacks() if callbacks else None,
                                     validation_batch_size=validation_batch_size).history
            train_accuracy = model.evaluate(splits.x_train, splits.y_train,
                                            batch_size=validation_batch_size or batch_size,
                                            verbose=0, return_dict=True)["accuracy"]
            runs[name].append(Trained(model, seed, history, float(train_accuracy)))
        epochs_run = sorted({len(run.history["loss"]) for run in runs[name]})
        print(f"{name:<14} {len(seeds)} seed(s) x {'/'.join(map(str, epochs_run))} epochs "
              f"[{time.perf_counter() - start:.0f} s]")
    return runs


def spread(values, digits: int = 3) -> str:
    """A mean with its range over the seeds, ``0.812 (0.790–0.830)``; one value as it is.

    Introduced in lesson 05.
    """
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ({values.min():.{digits}f}–{values.max():.{digits}f})"


def best_epoch_metrics(runs: list[Trained]) -> dict[str, list[float]]:
    """Per seed: each run at its best epoch, the one of lowest validation cross-entropy.

    Introduced in lesson 05. The gap is the clean training accuracy (``Trained.train_accuracy``,
    measured after training, so the runs must have put back their best epoch's weights) minus
    the validation accuracy of that epoch. The last column is the last epoch's validation
    cross-entropy, to show how far it rose after the best.
    """
    best = [int(np.argmin(run.history["val_cross_entropy"])) for run in runs]
    return {
        "best epoch": [epoch + 1 for epoch in best],
        "val cross-entropy": [run.history["val_cross_entropy"][epoch]
                              for run, epoch in zip(runs, best, strict=True)],
        "val acc": [run.history["val_accuracy"][epoch] for run, epoch in zip(runs, best, strict=True)],
        "train − val acc": [run.train_accuracy - run.history["val_accuracy"][epoch]
                            for run, epoch in zip(runs, best, strict=True)],
        "last val cross-entropy": [run.history["val_cross_entropy"][-1] for run in runs],
    }


def spread_table(experiment: dict[str, list[Trained]]) -> str:
    """Each variant at its best epoch as mean (min–max) over its seeds. Introduced in lesson 05."""
    from utils.course import padded_table

    rows = [[name, *(spread(values, 1 if key == "best epoch" else 3)
                     for key, values in best_epoch_metrics(runs).items())]
            for name, runs in experiment.items()]
    header = ["variant", *best_epoch_metrics(next(iter(experiment.values())))]
    return padded_table(header, rows)
