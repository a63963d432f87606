"""utils/scenes.py: deterministic scenes whose boxes and masks agree with their pixels."""

from __future__ import annotations

from utils import data, scenes

import numpy as np
import pytest


def small_items(channels: int, count: int = 40, size: int = 28, seed: int = 0):
    """Items with a blank border of random width, so tight boxes differ from the patch."""
    rng = np.random.default_rng(seed)
    items = np.zeros((count, size, size, channels), dtype="float32")
    for item in items:
        y0, x0, y1, x1 = *rng.integers(0, 8, size=2), *rng.integers(size - 8, size + 1, size=2)
        item[y0:y1, x0:x1] = rng.uniform(0.1, 1.0, size=(y1 - y0, x1 - x0, channels))
    return items, np.arange(count) % 10


def test_same_seed_same_scenes_other_seed_other_scenes():
    items, labels = small_items(1)
    first, again = (scenes.make_scenes(items, labels, 20, seed=3) for _ in range(2))
    other = scenes.make_scenes(items, labels, 20, seed=4)
    for field in ("images", "boxes", "classes", "counts", "masks", "sources"):
        assert np.array_equal(getattr(first, field), getattr(again, field)), field
    assert not np.array_equal(first.images, other.images)


def check_scene_agrees_with_pixels(sc: scenes.Scenes, items: np.ndarray, labels: np.ndarray) -> None:
    background = 0.5 if items.shape[-1] == 3 else 0.0
    for i in range(len(sc)):
        n = sc.counts[i]
        assert 1 <= n <= 3 and (sc.classes[i, n:] == -1).all() and (sc.classes[i, :n] >= 0).all()
        covered = np.zeros(sc.masks[i].shape, dtype=int)
        for box, label, source in zip(sc.boxes[i, :n], sc.classes[i, :n], sc.sources[i, :n], strict=True):
            assert label == labels[source]
            x0, y0, x1, y1 = box.astype(int)
            own = sc.masks[i] == label + 1
            inside = np.zeros_like(own)
            inside[y0:y1, x0:x1] = True
            mine = own & inside
            # tight: every edge row and column of the box holds some of the item
            assert mine[y0].any() and mine[y1 - 1].any() and mine[:, x0].any() and mine[:, x1 - 1].any()
            covered += mine
            # the item's own pixels sit in the box
            patch = sc.images[i][y0:y1, x0:x1]
            assert np.isin(patch[mine[y0:y1, x0:x1]], items[source]).all()
        # masks agree with the pixels: items' pixels are labelled, the rest is background
        assert covered.max() <= 1, "two items claim one pixel"
        assert (covered.astype(bool) == (sc.masks[i] > 0)).all()
        assert (sc.images[i][sc.masks[i] == 0] == background).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_boxes_and_masks_agree_with_pixels(channels):
    items, labels = small_items(channels, size=28 if channels == 1 else 32)
    sc = scenes.make_scenes(items, labels, 60, canvas=scenes.canvas_size(items.shape[1]), seed=1)
    check_scene_agrees_with_pixels(sc, items, labels)
    assert set(sc.counts) == {1, 2, 3}


def test_grayscale_boxes_are_tight_around_nonzero_pixels():
    item = np.zeros((1, 28, 28, 1), dtype="float32")
    item[0, 5:9, 10:20] = 1.0  # rows 5–8, columns 10–19
    sc = scenes.make_scenes(item, np.array([7]), 5, canvas=64, min_items=1, max_items=1, seed=0)
    for box, image in zip(sc.boxes[:, 0], sc.images, strict=True):
        x0, y0, x1, y1 = box.astype(int)
        assert (x1 - x0, y1 - y0) == (10, 4)
        assert image[y0:y1, x0:x1].min() == 1.0 and image.sum() == 40


def test_items_never_overlap():
    items, labels = small_items(1)
    sc = scenes.make_scenes(items, labels, 300, canvas=64, min_items=3, max_items=3, seed=2)
    for boxes in sc.boxes:
        for a in range(3):
            for b in range(a + 1, 3):
                width = min(boxes[a, 2], boxes[b, 2]) - max(boxes[a, 0], boxes[b, 0])
                height = min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1])
                assert width <= 0 or height <= 0


def test_bad_arguments_are_named():
    items, labels = small_items(1)
    with pytest.raises(ValueError, match="canvas 50 is too small.*at least 64"):
        scenes.make_scenes(items, labels, 5, canvas=50)
    with pytest.raises(ValueError, match="max_items"):
        scenes.make_scenes(items, labels, 5, max_items=4)
    with pytest.raises(ValueError, match="count must be a whole number"):
        scenes.make_scenes(items, labels, 0)
    with pytest.raises(ValueError, match="one label each"):
        scenes.make_scenes(items, labels[:3], 5)


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
        check_scene_agrees_with_pixels(sc, items, getattr(splits, f"y_{split}"))
    # every item drawn on a validation or test scene is an item of that split and of no other
    train_items = {item.tobytes() for item in splits.x_train}
    for split in ("val", "test"):
        items = getattr(splits, f"x_{split}")
        used = made[split].sources[made[split].sources >= 0]
        assert not {items[k].tobytes() for k in used} & train_items, f"a {split} item is a training item"
