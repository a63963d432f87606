"""Scenes for lesson 08: 1 to 3 real dataset items placed on a textured canvas, with their boxes,
classes and a per-pixel class mask, all recorded by the generator as it draws.

Conventions:
- An item's footprint is its nonzero pixels for grayscale items (MNIST, Fashion-MNIST draw on
  black), and the whole photo for colour items (CIFAR-10 photos have no background to cut away).
- The background is smooth random texture whose pixel values follow the same distribution as the
  items' footprint pixels of the split (quantile mapping), so no intensity threshold separates an
  item from the background: where an item is has to be learnt from its shape.
- Items are placed at random and may overlap: a later item covers an earlier one, but every item
  keeps at least ``min_visible`` of its footprint in sight.
- The mask holds 0 for background and class + 1 for the pixels where an item is visible; a box
  is ``(x_min, y_min, x_max, y_max)`` in pixels, tight around those visible pixels (as COCO's boxes
  enclose the visible object), with the maxima exclusive: width = x_max − x_min.
- The generator is deterministic for a seed. Each split's scenes use only that split's items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SMOOTHING = 1.0  # pixels: the Gaussian blur of the background noise, its grain


@dataclass
class Scenes:
    """Scene images, their items' boxes and classes, and class masks (``make_scenes`` makes them).

    ``boxes`` is (n, max_items, 4) and ``classes`` (n, max_items); rows past ``counts[i]`` are
    padding (boxes 0, classes −1). ``sources`` holds the index of each item in its split;
    ``owners`` says which item each pixel shows (its slot, −1 for background).
    """

    images: np.ndarray  # (n, canvas, canvas, channels), float32 in [0, 1]
    boxes: np.ndarray  # (n, max_items, 4), float32 pixels: x_min, y_min, x_max, y_max
    classes: np.ndarray  # (n, max_items), int64, −1 for no item
    counts: np.ndarray  # (n,), items per scene
    masks: np.ndarray  # (n, canvas, canvas), int64: 0 background, class + 1
    sources: np.ndarray  # (n, max_items), int64 index into the split's items, −1 for no item
    owners: np.ndarray  # (n, canvas, canvas), int8: the slot of the item a pixel shows, −1 for none

    def __len__(self) -> int:
        return len(self.images)


def canvas_size(item_size: int) -> int:
    """The canvas for items of this size: a multiple of 16 (the detector's grid cell) with room for
    3 items side by side, 64 for 28×28 and 80 for 32×32. Introduced in lesson 08."""
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


def textures(rng: np.random.Generator, count: int, canvas: int, item_pixels: np.ndarray) -> np.ndarray:
    """``count`` smooth noise canvases whose values follow the distribution of ``item_pixels``
    (k, channels), each channel its own; one noise field drives all channels, as in a photo."""
    noise = rng.standard_normal((count, canvas, canvas, 1)).astype("float32")
    noise = ndimage.gaussian_filter(noise, sigma=(0, SMOOTHING, SMOOTHING, 0))
    ranks = noise.reshape(count, -1).argsort(axis=1).argsort(axis=1)  # each canvas on its own
    picks = (ranks * (len(item_pixels) - 1)) // (ranks.shape[1] - 1)
    values = np.sort(item_pixels, axis=0)[picks]  # (count, canvas², channels)
    return values.reshape(count, canvas, canvas, -1).astype("float32")


def make_scenes(items: np.ndarray, labels: np.ndarray, count: int, canvas: int = 64,
                min_items: int = 1, max_items: int = 3, min_visible: float = 0.5,
                seed: int = 0) -> Scenes:
    """``count`` scenes of ``min_items``–``max_items`` items drawn from ``items``. Introduced in lesson 08.

    ``items`` are one split's images (n, h, w, c) in [0, 1] and ``labels`` their classes; items
    are drawn at random, with replacement, from these only, and placed anywhere on the canvas;
    a placement that would leave an item less than ``min_visible`` of its footprint is drawn again.
    """
    items = np.asarray(items, dtype="float32")
    labels = np.asarray(labels).reshape(-1)
    if items.ndim != 4 or items.shape[1] != items.shape[2] or len(items) != len(labels) or not len(items):
        raise ValueError(f"items must be a non-empty (n, h, h, c) array with one label each; got "
                         f"shape {items.shape} and {len(labels)} labels")
    size = items.shape[1]
    if not 1 <= min_items <= max_items <= 3:
        raise ValueError(f"need 1 <= min_items <= max_items <= 3; got min_items={min_items}, "
                         f"max_items={max_items}")
    if canvas < 2 * size + 8:
        raise ValueError(f"canvas {canvas} is too small for 3 {size}×{size} items; "
                         f"use at least {2 * size + 8}")
    if not 0 < min_visible <= 1:
        raise ValueError(f"min_visible must be in (0, 1]; got {min_visible!r}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a whole number >= 1; got {count!r}")
    rng = np.random.default_rng(seed)
    covers = np.array([footprint(item) for item in items])
    usable = np.flatnonzero(covers.any(axis=(1, 2)))  # skip blank items
    if not len(usable):
        raise ValueError(f"all {len(items)} items are blank: no pixel above 0 to place")
    item_pixels = items[covers]  # (k, channels)
    item_pixels = item_pixels[rng.integers(0, len(item_pixels), size=min(len(item_pixels), 200_000))]
    images = textures(rng, count, canvas, item_pixels)
    boxes = np.zeros((count, max_items, 4), dtype="float32")
    classes = np.full((count, max_items), -1, dtype="int64")
    sources = np.full((count, max_items), -1, dtype="int64")
    owners = np.full((count, canvas, canvas), -1, dtype="int8")
    counts = rng.integers(min_items, max_items + 1, size=count)
    for scene in range(count):
        picks = usable[rng.integers(0, len(usable), size=counts[scene])]
        for _ in range(1000):  # place the items; draw again if one would be hidden too much
            corners = rng.integers(0, canvas - size + 1, size=(counts[scene], 2))
            owner = np.full((canvas, canvas), -1, dtype="int8")
            for slot, (pick, (y, x)) in enumerate(zip(picks, corners, strict=True)):
                owner[y:y + size, x:x + size][covers[pick]] = slot
            shown = np.bincount(owner.ravel() + 1, minlength=counts[scene] + 1)[1:]
            if np.all(shown >= min_visible * covers[picks].sum(axis=(1, 2))):
                break
        else:
            raise ValueError(f"no placement in 1000 tries keeps min_visible={min_visible} of each of "
                             f"{counts[scene]} items in sight on a {canvas}×{canvas} canvas; lower it")
        for slot, (pick, (y, x)) in enumerate(zip(picks, corners, strict=True)):
            visible = owner[y:y + size, x:x + size] == slot
            images[scene, y:y + size, x:x + size][visible] = items[pick][visible]
            x0, y0, x1, y1 = tight_box(owner == slot)
            boxes[scene, slot] = (x0, y0, x1, y1)
            classes[scene, slot], sources[scene, slot] = labels[pick], pick
        owners[scene] = owner
    masks = np.where(owners >= 0, np.take_along_axis(
        classes, np.maximum(owners, 0).reshape(count, -1).astype("int64"), axis=1
    ).reshape(owners.shape) + 1, 0)
    return Scenes(images, boxes, classes, counts.astype("int64"), masks.astype("int64"), sources, owners)
