"""Transfer learning: a source task and a target task from one dataset's classes, and backbones.

The course's default backbone is its own small ResNet, pretrained offline on the source task.
``imagenet_backbone`` builds a ``keras.applications`` model with ImageNet weights instead: it
needs the internet once (Keras downloads the weights into ``~/.keras/models``).
"""

from __future__ import annotations

import dataclasses
import math

from utils import data
from utils.backbones import BACKBONES, COURSE_BACKBONE, Backbone, backbone_names, check_backbone  # noqa: F401

import keras
import numpy as np
from keras import layers


class BackboneNotAvailableError(RuntimeError):
    """An ImageNet backbone whose weights are neither cached nor downloadable."""


# The source and the target task.

# Fashion-MNIST's near source, picked so that most target classes have a look-alike among these
# source classes (lesson 07 measures which).
NEAR_SPLITS = {"fashion_mnist": ((0, 1, 2, 5, 9), (3, 4, 6, 7, 8))}


def near_split(spec: data.DatasetSpec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The near source's classes and the target task's: the dataset's chosen split, else its
    first and second half. Introduced in lesson 07."""
    return NEAR_SPLITS.get(spec.name) or task_classes(spec)


def task_classes(spec: data.DatasetSpec,
                 source_count: int | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The source task's classes (the first half by default) and the target task's (the rest)."""
    count = spec.num_classes // 2 if source_count is None else source_count
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count < spec.num_classes:
        raise ValueError(f"source_count must be a whole number from 1 to {spec.num_classes - 1}; "
                         f"got {count!r}")
    return tuple(range(count)), tuple(range(count, spec.num_classes))


def _per_class(labels: np.ndarray, classes, count: int | None, rng: np.random.Generator,
               what: str) -> np.ndarray:
    """Up to ``count`` seeded indices per class (all if None); the first n of a larger count agree."""
    picked = []
    for cls in classes:
        members = rng.permutation(np.flatnonzero(labels == cls))
        if count is not None and len(members) < count:
            raise ValueError(f"{what}: class {cls} has {len(members)} images, fewer than the "
                             f"{count} asked for; ask for at most {len(members)}")
        picked.append(members if count is None else members[:count])
    return np.concatenate(picked)


def _subset(splits: data.Splits, classes, train, val, test) -> data.Splits:
    """The chosen images of ``classes``, their labels renumbered 0, 1, … in the order of ``classes``."""
    relabel = np.full(splits.spec.num_classes, -1)
    relabel[list(classes)] = np.arange(len(classes))
    spec = dataclasses.replace(splits.spec, class_names=tuple(splits.spec.class_names[c] for c in classes))
    return data.Splits(spec, splits.x_train[train], relabel[splits.y_train[train]],
                       splits.x_val[val], relabel[splits.y_val[val]],
                       splits.x_test[test], relabel[splits.y_test[test]],
                       splits.limit, splits.seed, splits.test_files)


def source_task(splits: data.Splits, classes, train_size: int | None = None, val_size: int | None = None,
                seed: int = 0) -> data.Splits:
    """The source task: images of ``classes`` only, at most ``train_size``/``val_size`` of them,
    stratified and seeded. Introduced in lesson 07."""
    rng = np.random.default_rng(seed)
    picks = []
    for x_labels, size in ((splits.y_train, train_size), (splits.y_val, val_size)):
        inside = np.flatnonzero(np.isin(x_labels, classes))
        if size is not None and size < len(inside):
            inside = inside[data.stratified_indices(x_labels[inside], size, rng)]
        picks.append(inside)
    test = np.flatnonzero(np.isin(splits.y_test, classes))
    return _subset(splits, classes, picks[0], picks[1], test)


def target_task(splits: data.Splits, classes, labels_per_class: int, val_per_class: int | None = None,
                seed: int = 0) -> data.Splits:
    """The target task: ``labels_per_class`` training images of each class in ``classes``, a
    validation set of ``val_per_class`` per class, and every test image of them. Introduced in lesson 07.

    With the same seed a smaller training set is part of a larger one: 10 per class are the
    first 10 of the 30.
    """
    for name, value in (("labels_per_class", labels_per_class), ("val_per_class", val_per_class)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"{name} must be a whole number >= 1; got {value!r}")
    train = _per_class(splits.y_train, classes, labels_per_class, np.random.default_rng(seed), "training set")
    val = _per_class(splits.y_val, classes, val_per_class, np.random.default_rng(seed + 1), "validation set")
    test = np.flatnonzero(np.isin(splits.y_test, classes))
    return _subset(splits, classes, np.sort(train), np.sort(val), test)


SHAPES = ("disc", "ring", "square", "triangle", "cross")


def _draw_shapes(labels: np.ndarray, input_shape, rng: np.random.Generator) -> np.ndarray:
    """One shape per image, of random size, place, angle and brightness, on faint noise."""
    height, width, channels = input_shape
    n = len(labels)
    side = min(height, width)
    size = rng.uniform(0.22, 0.42, (n, 1, 1)) * side  # the shape's radius in pixels
    centre_y = rng.uniform(size[:, 0, 0], height - size[:, 0, 0])[:, None, None]
    centre_x = rng.uniform(size[:, 0, 0], width - size[:, 0, 0])[:, None, None]
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    dy, dx = rows[None] - centre_y, cols[None] - centre_x
    u = dx * np.cos(angle) + dy * np.sin(angle)  # coordinates in the shape's own frame
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    radius = np.hypot(u, v)
    triangle = np.all([u * np.cos(angle_k) + v * np.sin(angle_k) <= size / 2
                       for angle_k in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)],
                      axis=0)
    inside = {
        "disc": radius <= size,
        "ring": (radius <= size) & (radius >= 0.6 * size),
        "square": np.maximum(np.abs(u), np.abs(v)) <= 0.75 * size,
        "triangle": triangle,
        "cross": (np.minimum(np.abs(u), np.abs(v)) <= size / 4) & (np.maximum(np.abs(u), np.abs(v)) <= size),
    }
    masks = np.stack([inside[name] for name in SHAPES])[labels, np.arange(n)]
    brightness = rng.uniform(0.5, 1.0, (n, 1, 1, channels))
    images = masks[..., None] * brightness + rng.normal(0, 0.05, (n, height, width, channels))
    return np.clip(images, 0, 1).astype(np.float32)


def shapes_task(input_shape, train_size: int, val_size: int, seed: int = 0) -> data.Splits:
    """A far source: five synthetic shapes (``SHAPES``) in images of ``input_shape``, balanced,
    drawn offline from ``seed``. The test split has ``val_size`` images. Introduced in lesson 07."""
    for name, value in (("train_size", train_size), ("val_size", val_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < len(SHAPES):
            raise ValueError(f"{name} must be a whole number >= {len(SHAPES)}; got {value!r}")
    rng = np.random.default_rng(seed)
    splits = []
    for size in (train_size, val_size, val_size):
        labels = rng.permutation(np.arange(size) % len(SHAPES))
        splits += [_draw_shapes(labels, tuple(input_shape), rng), labels]
    spec = data.DatasetSpec(name="shapes", title="Synthetic shapes", input_shape=tuple(input_shape),
                            class_names=SHAPES, keras_loader="", files=(), train_size=train_size,
                            test_size=val_size)
    return data.Splits(spec, *splits, limit=None, seed=seed)


def batch_order(train_images: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Image indices for exactly ``steps`` full batches: shuffled passes over the training set,
    one after another."""
    if train_images < 1 or steps < 1 or batch_size < 1:
        raise ValueError(f"need at least one image, step and image per batch; got {train_images}, "
                         f"{steps}, {batch_size}")
    rng = np.random.default_rng(seed)
    passes = math.ceil(steps * batch_size / train_images)
    return np.concatenate([rng.permutation(train_images) for _ in range(passes)])[:steps * batch_size]


class Retrainer:
    """One compiled model, trained again and again from given weights.

    Keras traces a model's training step the first time it is fitted (seconds for a small
    ResNet); a sweep of dozens of short runs would spend most of its time tracing. Each run
    here restarts the optimizer (its step count, so the cosine decay too, and Adam's moments)
    and trains ``steps`` full batches from ``batch_order``: the same run as on a new model
    with these weights, without tracing again. Introduced in lesson 07.
    """

    def __init__(self, model: keras.Model, learning_rate: float, steps: int, batch_size: int):
        from utils import training

        self.model, self.steps, self.batch_size = model, steps, batch_size
        # a schedule, so that no optimizer variable holds the learning rate: all start at zero
        training.compile_model(model, learning_rate=learning_rate, decay_steps=steps)

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int, weights=None) -> keras.Model:
        if weights is not None:
            self.model.set_weights(weights)
        for variable in self.model.optimizer.variables:
            variable.assign(keras.ops.zeros_like(variable))
        order = batch_order(len(y), self.steps, self.batch_size, seed)
        self.model.fit(x[order], y[order], batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0)
        return self.model

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.model.evaluate(x, y, batch_size=500, verbose=0)[1])


def probe_head_weights(probe) -> list[np.ndarray]:
    """The kernel and bias of a softmax ``Dense`` layer that computes what a scikit-learn pipeline
    of ``StandardScaler`` and ``LogisticRegression`` computes: the scaling folds into the weights.
    Introduced in lesson 07."""
    scaler, regression = probe[0], probe[-1]
    kernel = regression.coef_.T / scaler.scale_[:, None]
    bias = regression.intercept_ - (scaler.mean_ / scaler.scale_) @ regression.coef_.T
    return [kernel.astype(np.float32), bias.astype(np.float32)]


# ImageNet backbones: the real-world route.

def _weights_cached(backbone: Backbone) -> bool:
    return (data.keras_home() / "models" / backbone.weights_file).is_file()


def imagenet_backbone(name: str, input_shape, weights: str | None = "imagenet") -> keras.Model:
    """A ``keras.applications`` backbone for the course's images: [0, 1] pixels, one or three
    channels, any size; pooled features out. Introduced in lesson 07.

    The model scales pixels to [0, 255], repeats a grayscale channel three times, resizes to
    the backbone's ``image_size`` and applies its ``preprocess_input``. ImageNet weights need
    the internet once; without it this raises BackboneNotAvailableError, never falls back.
    """
    check_backbone(name)
    if name == COURSE_BACKBONE:
        raise ValueError("the course backbone is the pretrained small ResNet of lesson 07, "
                         f"not an ImageNet one; valid choices here: {', '.join(sorted(BACKBONES))}")
    backbone = BACKBONES[name]
    if weights == "imagenet" and not _weights_cached(backbone) and data.offline():
        raise BackboneNotAvailableError(
            f"backbone {name!r} needs its ImageNet weights ({backbone.weights_file}) from the internet, "
            f"but {data.OFFLINE_ENV}=1 is set and they are not in {data.keras_home() / 'models'}. "
            f"Use backbone='{COURSE_BACKBONE}' (the default, pretrained offline on the source task), "
            f"or run where the internet is reachable, for example in Colab.")
    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Rescaling(255.0, name="to_0_255")(inputs)  # keras.applications expect 0..255
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Resizing(backbone.image_size, backbone.image_size, name="resize")(x)
    x = getattr(keras.applications, backbone.module).preprocess_input(x)
    build = getattr(keras.applications, backbone.application)
    if weights != "imagenet" or _weights_cached(backbone):
        return build(input_tensor=x, include_top=False, pooling="avg", weights=weights)
    try:
        return build(input_tensor=x, include_top=False, pooling="avg", weights=weights)
    except Exception as error:  # noqa: BLE001 - any download failure: urllib, HTTP, checksum
        cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise BackboneNotAvailableError(
            f"backbone {name!r} needs its ImageNet weights ({backbone.weights_file}) from the internet, "
            f"and the download failed: {cause}. Use backbone='{COURSE_BACKBONE}' (the default, "
            "pretrained offline on the source task), or run where the internet is reachable, "
            "for example in Colab.") from None


def top_block_start(backbone: keras.Model, name: str) -> str:
    """The first layer of the top block of a backbone (course or ImageNet). Introduced in lesson 07."""
    check_backbone(name)
    if name != COURSE_BACKBONE:
        return BACKBONES[name].top_block
    blocks = sorted({layer.name.split("_")[0] for layer in backbone.layers if layer.name.startswith("block")},
                    key=lambda block: int(block.removeprefix("block")))
    return f"{blocks[-1]}_conv1"


# The lesson's headline table and plot.

def spread(values) -> str:
    """A mean with its range over the seeds: ``0.812 (0.790–0.830)``."""
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ({values.min():.3f}–{values.max():.3f})"


def verdict(first, second) -> str:
    """Whether the runs ``first`` beat the runs ``second`` seed by seed: in every seed, in none, or
    neither. Introduced in lesson 07."""
    # rounded: float32 and float64 accuracies of the same count of images differ by 1e-8
    difference = np.round(np.asarray(first, dtype=float) - np.asarray(second, dtype=float), 6)
    return ("better in every seed" if (difference > 0).all() else
            "worse in every seed" if (difference < 0).all() else "no winner over the seeds")


def label_count_table(accuracies: dict[str, dict[int, list[float]]]) -> str:
    """Validation accuracy per approach and labels per class, mean (range) over the seeds."""
    from utils import course

    counts = sorted(next(iter(accuracies.values())))
    rows = [[name, *(spread(per_count[count]) for count in counts)] for name, per_count in accuracies.items()]
    return course.padded_table(["source and method", *(f"{count} per class" for count in counts)], rows)


def plot_label_counts(accuracies: dict[str, dict[int, list[float]]], title: str, chance: float | None = None,
                      panels: dict[str, list[str]] | None = None):
    """Validation accuracy against labels per class, one line per row of ``accuracies``: the mean
    over the seeds, a band from the lowest to the highest seed, and each seed as a dot. Rows named
    "source, method" keep one colour per source; linear probes are dashed. ``panels`` maps a
    panel's title to the rows it shows (default: one panel, every row). Introduced in lesson 07."""
    import matplotlib.pyplot as plt

    panels = panels or {"": list(accuracies)}
    sources = list(dict.fromkeys(name.split(",")[0] for name in accuracies))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    counts = sorted(next(iter(accuracies.values())))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), sharey=True, squeeze=False)
    for ax, (panel, rows) in zip(axes[0], panels.items(), strict=True):
        for name in rows:
            runs = np.array([accuracies[name][count] for count in counts], dtype=float)
            color = colors[sources.index(name.split(",")[0]) % len(colors)]
            style = "--" if "probe" in name else "-"
            ax.plot(counts, runs.mean(axis=1), marker="o", color=color, linestyle=style, label=name)
            ax.fill_between(counts, runs.min(axis=1), runs.max(axis=1), color=color, alpha=0.15)
            for count, values in zip(counts, runs, strict=True):
                ax.scatter([count] * len(values), values, color=color, s=10, alpha=0.6)
        if chance is not None:
            ax.axhline(chance, color="gray", linestyle=":", label="chance")
        ax.set_xscale("log")
        ax.set_xticks(counts)
        ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
        ax.get_xaxis().set_minor_locator(plt.NullLocator())  # no 3×10⁰ ticks between the counts
        ax.set_xlabel("labelled training images per class (log scale)")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("validation accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()
