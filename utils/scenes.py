"""Scenes for lesson 08: 1 to 3 real dataset items placed on a larger canvas, with their boxes,
classes and a per-pixel class mask.

Conventions:
- An item's footprint is its nonzero pixels for grayscale items (MNIST, Fashion-MNIST draw on
  black), and the whole photo for colour items (CIFAR-10 photos have no background to cut away);
  colour items go on a neutral grey canvas.
- A box is ``(x_min, y_min, x_max, y_max)`` in pixels, tight around the footprint, with the
  maxima exclusive: width = x_max − x_min is the number of columns the item covers.
- Items never overlap: their whole square patches are disjoint, so boxes and masks are too.
- The mask holds 0 for background and class + 1 for an item's footprint.
- The generator is deterministic for a seed. Each split's scenes use only that split's items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GREY = 0.5  # the canvas of colour items


@dataclass
class Scenes:
    """Scene images, their items' boxes and classes, and class masks (``make_scenes`` makes them).

    ``boxes`` is (n, max_items, 4) and ``classes`` (n, max_items); rows past ``counts[i]`` are
    padding (boxes 0, classes −1). ``sources`` holds the index of each item in its split.
    """

    images: np.ndarray  # (n, canvas, canvas, channels), float32 in [0, 1]
    boxes: np.ndarray  # (n, max_items, 4), float32 pixels: x_min, y_min, x_max, y_max
    classes: np.ndarray  # (n, max_items), int64, −1 for no item
    counts: np.ndarray  # (n,), items per scene
    masks: np.ndarray  # (n, canvas, canvas), int64: 0 background, class + 1
    sources: np.ndarray  # (n, max_items), int64 index into the split's items, −1 for no item

    def __len__(self) -> int:
        return len(self.images)


def canvas_size(item_size: int) -> int:
    """The canvas for items of this size: a multiple of 16 (the detector's grid cell) with room for
    3 disjoint items, 64 for 28×28 and 80 for 32×32. Introduced in lesson 08."""
    return -(-(2 * item_size + 8) // 16) * 16


def footprint(item: np.ndarray) -> np.ndarray:
    """The pixels an item covers: nonzero ones for grayscale, all of a colour photo."""
    if item.shape[-1] == 1:
        return item[..., 0] > 0
    return np.ones(item.shape[:2], dtype=bool)


def tight_box(covered: np.ndarray) -> tuple[int, int, int, int]:
    """``(x_min, y_min, x_max, y_max)`` of a boolean footprint, maxima exclusive."""
    rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _place(rng: np.random.Generator, count: int, size: int, canvas: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` disjoint size×size squares, each uniform among the free ones."""
    span = np.arange(canvas - size + 1)
    while True:
        free = np.ones((len(span), len(span)), dtype=bool)
        corners: list[tuple[int, int]] = []
        for _ in range(count):
            choices = np.flatnonzero(free)
            if not len(choices):
                break  # a crowded start: begin again
            y, x = divmod(int(rng.choice(choices)), len(span))
            corners.append((y, x))
            free &= (np.abs(span - y)[:, None] >= size) | (np.abs(span - x)[None, :] >= size)
        if len(corners) == count:
            return corners


def make_scenes(items: np.ndarray, labels: np.ndarray, count: int, canvas: int = 64,
                min_items: int = 1, max_items: int = 3, seed: int = 0) -> Scenes:
    """``count`` scenes of ``min_items``–``max_items`` items drawn from ``items``. Introduced in lesson 08.

    ``items`` are one split's images (n, h, w, c) in [0, 1] and ``labels`` their classes; items
    are drawn at random, with replacement, from these only. A colour canvas is grey.
    """
    items = np.asarray(items, dtype="float32")
    labels = np.asarray(labels).reshape(-1)
    if items.ndim != 4 or items.shape[1] != items.shape[2] or len(items) != len(labels) or not len(items):
        raise ValueError(f"items must be a non-empty (n, h, h, c) array with one label each; got "
                         f"shape {items.shape} and {len(labels)} labels")
    size, channels = items.shape[1], items.shape[3]
    if not 1 <= min_items <= max_items <= 3:
        raise ValueError(f"need 1 <= min_items <= max_items <= 3; got {min_items} and {max_items}")
    if canvas < 2 * size + 8:
        raise ValueError(f"canvas {canvas} is too small for 3 disjoint {size}×{size} items; "
                         f"use at least {2 * size + 8}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a whole number >= 1; got {count!r}")
    rng = np.random.default_rng(seed)
    background = GREY if channels == 3 else 0.0
    images = np.full((count, canvas, canvas, channels), background, dtype="float32")
    boxes = np.zeros((count, max_items, 4), dtype="float32")
    classes = np.full((count, max_items), -1, dtype="int64")
    sources = np.full((count, max_items), -1, dtype="int64")
    masks = np.zeros((count, canvas, canvas), dtype="int64")
    counts = rng.integers(min_items, max_items + 1, size=count)
    usable = np.flatnonzero([footprint(item).any() for item in items])  # skip blank items
    for scene in range(count):
        picks = usable[rng.integers(0, len(usable), size=counts[scene])]
        for slot, (pick, (y, x)) in enumerate(zip(picks, _place(rng, counts[scene], size, canvas),
                                                  strict=True)):
            item, covered = items[pick], footprint(items[pick])
            patch = images[scene, y:y + size, x:x + size]
            patch[covered] = item[covered]
            masks[scene, y:y + size, x:x + size][covered] = labels[pick] + 1
            x0, y0, x1, y1 = tight_box(covered)
            boxes[scene, slot] = (x + x0, y + y0, x + x1, y + y1)
            classes[scene, slot], sources[scene, slot] = labels[pick], pick
    return Scenes(images, boxes, classes, counts.astype("int64"), masks, sources)
