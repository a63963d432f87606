"""utils/scenes.py: deterministic scenes whose boxes and masks agree with the items they show,
items that may overlap but stay mostly visible, and a background no threshold removes."""

from __future__ import annotations

import re

from utils import data, scenes

import numpy as np
import pytest

THRESHOLDS = np.round(np.arange(0.1, 1.0, 0.1), 1)


def small_items(channels: int, count: int = 40, size: int = 28, seed: int = 0):
    """Items with a blank border of random width, so tight boxes differ from the patch."""
    rng = np.random.default_rng(seed)
    items = np.zeros((count, size, size, channels), dtype="float32")
    for item in items:
        y0, x0, y1, x1 = *rng.integers(0, 8, size=2), *rng.integers(size - 8, size + 1, size=2)
        item[y0:y1, x0:x1] = rng.uniform(0.1, 1.0, size=(y1 - y0, x1 - x0, channels))
    return items, np.arange(count) % 10


def crowded(items: np.ndarray, labels: np.ndarray, count: int, **kwargs) -> scenes.Scenes:
    """``count`` scenes of 3 items each on the smallest canvas that takes them."""
    return scenes.make_scenes(items, labels, count, canvas=scenes.canvas_size(items.shape[1]),
                              min_items=3, max_items=3, **kwargs)


def iou(a, b) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def find_corner(image: np.ndarray, visible: np.ndarray, item: np.ndarray) -> tuple[int, int] | None:
    """A top-left corner where ``item`` put down shows exactly ``image`` at the ``visible`` pixels,
    all of them inside its footprint; None if there is none."""
    size, canvas = item.shape[0], image.shape[0]
    x0, y0, x1, y1 = scenes.tight_box(visible)
    inside = scenes.footprint(item)
    for y in range(max(0, y1 - size), min(y0, canvas - size) + 1):
        for x in range(max(0, x1 - size), min(x0, canvas - size) + 1):
            local = visible[y:y + size, x:x + size]
            if (local <= inside).all() and np.array_equal(image[y:y + size, x:x + size][local], item[local]):
                return y, x
    return None


def check_scene_agrees_with_items(sc: scenes.Scenes, items: np.ndarray, labels: np.ndarray) -> None:
    """Boxes, masks and owners tell one story, and the image shows each item where owners say."""
    footprint_values = np.unique(items[np.array([scenes.footprint(item) for item in items])])
    for i in range(len(sc)):
        n = sc.counts[i]
        owners, mask = sc.owners[i], sc.masks[i]
        assert 1 <= n <= 3 and (sc.classes[i, n:] == -1).all() and (sc.sources[i, n:] == -1).all()
        assert (sc.boxes[i, n:] == 0).all()
        assert set(np.unique(owners)) <= set(range(-1, n))
        assert (mask[owners == -1] == 0).all()
        for slot in range(n):
            source, label = sc.sources[i, slot], sc.classes[i, slot]
            assert label == labels[source]
            visible = owners == slot
            assert visible.any(), f"scene {i}: item {slot} is hidden"
            assert tuple(sc.boxes[i, slot].astype(int)) == scenes.tight_box(visible)
            assert (mask[visible] == label + 1).all()
            assert find_corner(sc.images[i], visible, items[source]) is not None, (
                f"scene {i}: item {slot} is not drawn where its owners are")
        # what no item shows is background, made of values the items' footprints hold
        assert np.isin(sc.images[i][owners == -1], footprint_values).all()


def test_same_seed_same_scenes_other_seed_other_scenes():
    items, labels = small_items(1)
    first, again = (scenes.make_scenes(items, labels, 20, seed=3) for _ in range(2))
    other = scenes.make_scenes(items, labels, 20, seed=4)
    for field in ("images", "boxes", "classes", "counts", "masks", "sources", "owners"):
        assert np.array_equal(getattr(first, field), getattr(again, field)), field
    for field in ("images", "boxes", "owners"):
        assert not np.array_equal(getattr(first, field), getattr(other, field)), field


@pytest.mark.parametrize("channels", [1, 3])
def test_boxes_masks_and_owners_agree_with_the_items_drawn(channels):
    items, labels = small_items(channels, size=28 if channels == 1 else 32)
    sc = scenes.make_scenes(items, labels, 60, canvas=scenes.canvas_size(items.shape[1]), seed=1)
    check_scene_agrees_with_items(sc, items, labels)
    assert set(sc.counts) == {1, 2, 3}


def test_single_item_box_is_tight_around_its_nonzero_pixels():
    item = np.zeros((1, 28, 28, 1), dtype="float32")
    item[0, 5:9, 10:20] = np.linspace(0.2, 1.0, 40).reshape(4, 10, 1)  # rows 5–8, columns 10–19
    sc = scenes.make_scenes(item, np.array([7]), 5, canvas=64, min_items=1, max_items=1, seed=0)
    for box, image, owners, mask in zip(sc.boxes[:, 0], sc.images, sc.owners, sc.masks, strict=True):
        x0, y0, x1, y1 = box.astype(int)
        assert (x1 - x0, y1 - y0) == (10, 4)
        assert (owners == 0).sum() == 40 and (owners[y0:y1, x0:x1] == 0).all()
        assert (mask == 8).sum() == 40
        assert np.array_equal(image[y0:y1, x0:x1], item[0, 5:9, 10:20])


def test_colour_item_covers_its_whole_photo():
    items, labels = small_items(3, size=32)  # black borders, still part of the photo
    sc = scenes.make_scenes(items, labels, 10, canvas=80, min_items=1, max_items=1, seed=0)
    for box, owners in zip(sc.boxes[:, 0], sc.owners, strict=True):
        x0, y0, x1, y1 = box.astype(int)
        assert (x1 - x0, y1 - y0) == (32, 32) and (owners == 0).sum() == 32 * 32


@pytest.mark.parametrize("min_visible", [0.5, 0.9])
def test_every_item_keeps_min_visible_of_its_footprint(min_visible):
    items, labels = small_items(1)
    sc = crowded(items, labels, 100, min_visible=min_visible, seed=5)
    fractions = [(sc.owners[i] == slot).sum() / scenes.footprint(items[sc.sources[i, slot]]).sum()
                 for i in range(len(sc)) for slot in range(3)]
    assert min(fractions) >= min_visible
    assert min(fractions) < 1  # some are covered, so the bound is what holds them


def test_items_overlap_and_share_grid_cells():
    items, labels = small_items(1)
    sc = crowded(items, labels, 300, seed=2)
    covered = [(sc.owners[i] == slot).sum() < scenes.footprint(items[sc.sources[i, slot]]).sum()
               for i in range(len(sc)) for slot in range(3)]
    assert sum(covered) > 10, "items are never partly covered"
    cells = (sc.boxes[..., :2] + sc.boxes[..., 2:]) / 2 // 16  # (n, 3, 2) cells of the box centres
    shared = sum(np.array_equal(cells[i, a], cells[i, b])
                 for i in range(len(sc)) for a in range(3) for b in range(a + 1, 3))
    assert shared > 0, "no two items ever fall in one grid cell"


def test_background_follows_the_items_pixel_distribution():
    items, labels = small_items(1)
    sc = scenes.make_scenes(items, labels, 100, seed=6)
    background = sc.images[..., 0][sc.owners == -1]
    item_pixels = items[items > 0]
    deciles = np.linspace(0.1, 0.9, 9)
    assert np.abs(np.quantile(background, deciles) - np.quantile(item_pixels, deciles)).max() < 0.05
    for t in THRESHOLDS:
        assert abs((background > t).mean() - (item_pixels > t).mean()) < 0.1, t


def test_no_threshold_finds_a_single_item():
    items, labels = small_items(1)
    sc = scenes.make_scenes(items, labels, 50, min_items=1, max_items=1, seed=7)
    for t in THRESHOLDS:
        fooled = [iou(scenes.tight_box(image[..., 0] > t), box) < 0.5
                  for image, box in zip(sc.images, sc.boxes[:, 0], strict=True)]
        assert np.mean(fooled) >= 0.9, f"threshold {t} finds the item"


def test_bad_arguments_are_named():
    items, labels = small_items(1)
    refused = [
        ({"canvas": 50}, "canvas 50 is too small for 3 28×28 items; use at least 64"),
        ({"max_items": 4}, "got min_items=1, max_items=4"),
        ({"items": np.zeros_like(items)}, "all 40 items are blank"),
        ({"count": 0}, "count must be a whole number >= 1; got 0"),
        ({"labels": labels[:3]}, "(40, 28, 28, 1) and 3 labels"),
        ({"min_visible": 0}, "min_visible must be in (0, 1]; got 0"),
        ({"min_visible": 1.5}, "min_visible must be in (0, 1]; got 1.5"),
    ]
    for change, message in refused:
        args = {"items": items, "labels": labels, "count": 5} | change
        with pytest.raises(ValueError, match=re.escape(message)):
            scenes.make_scenes(**args)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_real_datasets_and_splits_do_not_leak(name, keras_home):
    splits = data.load_dataset(name, limit=200, seed=0)
    canvas = scenes.canvas_size(splits.x_train.shape[1])
    made = {split: scenes.make_scenes(getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}"), 40,
                                      canvas=canvas, seed=seed)
            for seed, split in enumerate(("train", "val", "test"))}
    for split, sc in made.items():
        items = getattr(splits, f"x_{split}")
        assert sc.images.shape == (40, canvas, canvas, items.shape[-1])
        check_scene_agrees_with_items(sc, items, getattr(splits, f"y_{split}"))
    # every item drawn on a validation or test scene is an item of that split and of no other
    train_items = {item.tobytes() for item in splits.x_train}
    for split in ("val", "test"):
        items = getattr(splits, f"x_{split}")
        used = made[split].sources[made[split].sources >= 0]
        assert not {items[k].tobytes() for k in used} & train_items, f"a {split} item is a training item"
