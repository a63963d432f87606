"""A fast training recipe, one ingredient per field, so each can be removed or added in turn: the
recipe of lesson 09 and of `benchmarks/train_speed.py --frontier` and `--ablation`.

The ingredients kept: a network that doubles its channels as it halves its maps (``fast_cnn``), random
flips (``flip_and_shift``), a cosine decay of the learning rate, a test-time flip (``predict_tta``)
and an input pipeline that does not stall between epochs (``epoch_batches``). Three more were
measured and dropped, off by default: a warm-up of the learning rate, random shifts and label
smoothing (benchmarks/README.md, "The ablation of the chosen recipe").
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

from utils import training

import keras
import numpy as np
from keras import layers


@dataclass(frozen=True)
class Recipe:
    """How a model is built and trained; every field is one ingredient's setting. Introduced in lesson 09."""

    epochs: int = 13
    batch_size: int = 256
    widths: tuple[int, ...] = (32, 64, 128)  # channels per stage; each stage after the first halves the map
    convs: tuple[int, ...] = (1, 1, 1)  # 3×3 convolutions per stage
    learning_rate: float = 4e-3  # peak, reached after the warm-up if there is one
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs; dropped: it did not help
    cosine: bool = True  # cosine decay to 0 after the warm-up; False keeps the peak
    label_smoothing: float = 0.0  # dropped: it did not help in the ablation
    flip: bool = True  # random horizontal flips of the training images
    shift: int = 0  # random shifts of up to this many pixels (zero-padded); dropped: it hurt
    tta: bool = True  # average the predictions on the image and its mirror image
    pipeline: str = "tf.data"  # "tf.data": epoch_batches; "arrays": Keras's own, which can stall
    bn_momentum: float = 0.9

    def variant(self, name: str) -> Recipe:
        """This recipe with one ingredient removed or added: an ablation row."""
        change = ABLATIONS.get(name)
        if change is None:
            raise ValueError(f"unknown variant {name!r}; valid choices: {', '.join(ABLATIONS)}")
        return replace(self, **change)

    def as_dict(self) -> dict:
        return asdict(self)


# The ablation's rows: each kept ingredient removed, each dropped one added back. Flips go in
# training and at test time together: a network never trained on mirrored images is not
# averaged over them; the test-time flip alone is the next row.
ABLATIONS = {
    "without flips": {"flip": False, "tta": False},
    "without test-time flip": {"tta": False},
    "without cosine decay": {"cosine": False},
    "with warm-up 1 epoch": {"warmup_epochs": 1.0},
    "with shift 2": {"shift": 2},
    "with label smoothing 0.1": {"label_smoothing": 0.1},
    "with Keras's array input": {"pipeline": "arrays"},
}
PIPELINES = ("tf.data", "arrays")


def fast_cnn(input_shape, num_classes: int, widths=(32, 64, 128), convs=(1, 1, 1),
             bn_momentum: float = 0.9, name: str = "fast_cnn") -> keras.Model:
    """Stages of 3×3 conv–BN–ReLU layers, a 2×2 max pooling before every stage after the first,
    global max pooling and a linear output layer (logits). Introduced in lesson 09."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for stage, (filters, count) in enumerate(zip(widths, convs, strict=True), start=1):
        if stage > 1:
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        for conv in range(1, count + 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage}_{conv}")(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{stage}_{conv}")(x)
            x = layers.Activation("relu", name=f"relu{stage}_{conv}")(x)
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def flip_and_shift(images: np.ndarray, rng: np.random.Generator, flip: bool = True,
                   shift: int = 2) -> np.ndarray:
    """A new random copy of a batch of (n, h, w, c) images: each mirrored left–right with
    probability 1/2, and moved by up to ``shift`` pixels each way, the gap filled with zeros.
    Introduced in lesson 09."""
    out = images
    if flip:
        mirrored = rng.random(len(images)) < 0.5
        out = np.where(mirrored[:, None, None, None], images[:, :, ::-1], images)
    if shift:
        n, h, w, _ = out.shape
        padded = np.pad(out, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
        dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
        out = np.moveaxis(windows[np.arange(n), dy, dx], 1, -1)  # (n, c, h, w) back to (n, h, w, c)
    return np.ascontiguousarray(out, dtype=images.dtype)


def random_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators from one seed: one for the augmentation, one for the batch order,
    so that a variant without flips still sees the same batches."""
    augment, order = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(augment), np.random.default_rng(order)


def epoch_batches(images: np.ndarray, targets: np.ndarray, batch_size: int, rng: np.random.Generator):
    """One epoch of the images in a new random order, in batches: a ``tf.data`` pipeline with its
    autotuning off.

    ``model.fit`` on NumPy arrays builds an autotuned pipeline each time. With oneDNN's kernels on
    (TensorFlow's default on CPUs with AVX-512 VNNI or bfloat16 units), ending that pipeline can
    wait for its autotuning thread: on a 2-core AMD EPYC an epoch of the recipe on all 54,000
    images took about 25 s, or about 41 s when it waited, in about half of the epochs; with
    oneDNN off it did not wait (benchmarks/README.md, "The input pipeline").
    """
    import tensorflow as tf

    order = rng.permutation(len(images))
    batches = tf.data.Dataset.from_tensor_slices((images[order], targets[order])).batch(batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.with_options(options).prefetch(2)


def learning_rate_schedule(recipe: Recipe, steps_per_epoch: int):
    """Cosine decay from the peak to 0 (or the peak held), after a linear warm-up from 0 if the
    recipe has one. Introduced in lesson 09."""
    total = recipe.epochs * steps_per_epoch
    warmup = int(round(recipe.warmup_epochs * steps_per_epoch))
    if not recipe.cosine:
        if not warmup:
            return recipe.learning_rate
        return keras.optimizers.schedules.CosineDecay(
            0.0, 1, alpha=1.0, warmup_target=recipe.learning_rate, warmup_steps=warmup)
    start = 0.0 if warmup else recipe.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        start, max(total - warmup, 1), warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup)


def compile_recipe(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> keras.Model:
    """Adam, cross-entropy on one-hot labels with label smoothing, accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(recipe, steps_per_epoch)),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                            label_smoothing=recipe.label_smoothing),
                  metrics=["categorical_accuracy"])
    return model


def predict_tta(model: keras.Model, images: np.ndarray, tta: bool = True, batch_size: int = 1024):
    """Class probabilities; with ``tta`` the mean of those of the image and its mirror image.
    Introduced in lesson 09."""
    probabilities = keras.ops.softmax(model.predict(images, batch_size=batch_size, verbose=0))
    if tta:
        mirrored = model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)
        probabilities = (probabilities + keras.ops.softmax(mirrored)) / 2
    return keras.ops.convert_to_numpy(probabilities)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray, tta: bool = True) -> float:
    """The share of images whose most probable class is the label. Introduced in lesson 09."""
    return float(np.mean(predict_tta(model, images, tta).argmax(axis=1) == labels))


def build(recipe: Recipe, input_shape, num_classes: int) -> keras.Model:
    return fast_cnn(input_shape, num_classes, recipe.widths, recipe.convs, recipe.bn_momentum)


def train_recipe(recipe: Recipe, splits, seed: int = 0, model: keras.Model | None = None,
                 on_epoch=None, validate_each_epoch: bool = True):
    """Train with the recipe; return the model and one dict per epoch. Introduced in lesson 09.

    Each epoch draws new flips and shifts of the training images, trains one pass over them in
    a new random order and measures the validation accuracy (with the recipe's test-time flip, if
    it has one). ``seconds`` counts all of it, augmentation and validation included.
    ``on_epoch(model, entry)`` runs after each epoch, outside the timed part (the benchmark
    evaluates checkpoints there). A ``model`` passed in should be built after
    ``training.set_seed(seed)``, as this function builds its own. With ``validate_each_epoch=False``
    only the last epoch is validated (the others log None).
    """
    if recipe.pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {recipe.pipeline!r}; valid choices: {', '.join(PIPELINES)}")
    training.set_seed(seed)
    augment_rng, order_rng = random_streams(seed)
    num_classes = int(splits.y_train.max()) + 1
    model = model or build(recipe, splits.x_train.shape[1:], num_classes)
    steps_per_epoch = -(-len(splits.x_train) // recipe.batch_size)
    compile_recipe(model, recipe, steps_per_epoch)
    targets = keras.utils.to_categorical(splits.y_train, num_classes)
    log, trained = [], 0.0
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        images = flip_and_shift(splits.x_train, augment_rng, recipe.flip, recipe.shift)
        if recipe.pipeline == "arrays":
            history = model.fit(images, targets, batch_size=recipe.batch_size, epochs=1, verbose=0)
        else:
            history = model.fit(epoch_batches(images, targets, recipe.batch_size, order_rng), epochs=1,
                                shuffle=False, verbose=0)
        val_accuracy = None
        if validate_each_epoch or epoch == recipe.epochs:
            val_accuracy = accuracy(model, splits.x_val, splits.y_val, recipe.tta)
        trained += time.perf_counter() - start
        entry = {"epoch": epoch, "seconds": trained, "loss": float(history.history["loss"][-1]),
                 "val_accuracy": val_accuracy}
        log.append(entry)
        if on_epoch is not None:
            on_epoch(model, entry)
    return model, log
