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


def steps_to_epochs(train_images: int, batch_size: int, steps: int) -> int:
    """Epochs that give at least ``steps`` optimizer steps on a training set. Introduced in lesson 07."""
    return math.ceil(steps / math.ceil(train_images / batch_size))


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


def label_count_table(accuracies: dict[str, dict[int, list[float]]]) -> str:
    """Validation accuracy per approach and labels per class, mean (range) over the seeds."""
    from utils import course

    counts = sorted(next(iter(accuracies.values())))
    rows = [[name, *(spread(per_count[count]) for count in counts)] for name, per_count in accuracies.items()]
    return course.padded_table(["approach", *(f"{count} per class" for count in counts)], rows)


def plot_label_counts(accuracies: dict[str, dict[int, list[float]]], title: str, chance: float | None = None):
    """Validation accuracy against labels per class, one line per approach: the mean over the
    seeds, a band from the lowest to the highest seed, and each seed as a dot. Introduced in lesson 07."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, per_count in accuracies.items():
        counts = sorted(per_count)
        runs = np.array([per_count[count] for count in counts], dtype=float)
        (line,) = ax.plot(counts, runs.mean(axis=1), marker="o", label=name)
        ax.fill_between(counts, runs.min(axis=1), runs.max(axis=1), color=line.get_color(), alpha=0.2)
        for count, values in zip(counts, runs, strict=True):
            ax.scatter([count] * len(values), values, color=line.get_color(), s=12, alpha=0.6)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_xticks(sorted(next(iter(accuracies.values()))))
    ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
    ax.get_xaxis().set_minor_locator(plt.NullLocator())  # no 3×10⁰ ticks between the counts
    ax.set_xlabel("labelled training images per class (log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plt.show()
