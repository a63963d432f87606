"""Plots the lessons share: image grids and training curves."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def as_picture(image) -> tuple[np.ndarray, str | None]:
    """An image ready for ``imshow`` and its colour map.

    A grey image loses its channel axis and gets "gray"; a colour image keeps its channels.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0], "gray"
    return image, None


def show_images(images, titles=None, columns: int = 5, cmap: str = "gray", size: float = 2.0,
                suptitle: str | None = None):
    """Show images in a grid, each with an optional title. Introduced in lesson 01."""
    images = list(images)
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows + 0.4),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        picture, _ = as_picture(images[index])
        ax.imshow(picture, cmap=None if picture.ndim == 3 else cmap)
        if titles is not None:
            ax.set_title(titles[index], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.show()


def plot_history(histories: dict[str, dict], title: str = "Training curves"):
    """Loss and accuracy per epoch, train (solid) vs validation (dashed). Introduced in lesson 03.

    ``histories`` maps a run's name to a Keras ``History.history`` dict.
    """
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for (name, history), color in zip(histories.items(), itertools.cycle(COLORS), strict=False):
        epochs = np.arange(1, len(history["loss"]) + 1)
        for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
            ax.plot(epochs, history[metric], color=color, label=f"{name}: train")
            if f"val_{metric}" in history:
                ax.plot(epochs, history[f"val_{metric}"], color=color, linestyle="--",
                        label=f"{name}: validation")
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize())
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    acc_ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def plot_lines(series: dict, xlabel: str, ylabel: str, title: str, x_start: int = 1):
    """One colour per name, one line per run: ``series`` maps a name to a sequence of values, or to
    a list of them (one per seed). x counts from ``x_start``. Introduced in lesson 09."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for (name, values), color in zip(series.items(), itertools.cycle(COLORS), strict=False):
        runs = values if np.ndim(values[0]) else [values]
        for index, run in enumerate(runs):
            x = np.arange(x_start, x_start + len(run))
            ax.plot(x, run, color=color, alpha=0.85, linewidth=1.3,
                    label=name + (f" ({len(runs)} seeds)" if len(runs) > 1 else "") if index == 0 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    plt.show()
