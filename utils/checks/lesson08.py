"""Checks of lesson 08's exercises: the IoU of two boxes given by centre and size, and the
per-class IoU of two masks."""

from __future__ import annotations

import math

from utils.checks.feedback import exercise, expect, expect_close

import numpy as np


def _iou(a, b, centred=True, clip=True, union_once=True, plus=0.0):
    """IoU of two (centre_x, centre_y, width, height) boxes; the flags make plausible mistakes."""
    def corners(box):
        x, y, w, h = box
        return (x - w / 2, y - h / 2, x + w / 2 + plus, y + h / 2 + plus) if centred else \
            (x, y, x + w + plus, y + h + plus)

    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = corners(a), corners(b)
    width, height = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    inter = max(0.0, width) * max(0.0, height) if clip else width * height
    areas = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0)
    return inter / (areas - inter if union_once else areas)


# (a, b, what the pair is); the expected IoU is computed by _iou
_BOX_CASES = [
    ((5.0, 5.0, 10.0, 10.0), (5.0, 5.0, 10.0, 10.0), "identical boxes"),
    ((5.0, 5.0, 10.0, 10.0), (40.0, 40.0, 6.0, 6.0), "boxes far apart"),
    ((5.0, 5.0, 10.0, 10.0), (15.0, 5.0, 10.0, 10.0), "boxes that only touch"),
    ((5.0, 5.0, 10.0, 10.0), (4.0, 4.0, 4.0, 4.0), "a small box inside a large one"),
    ((10.0, 10.0, 8.0, 4.0), (13.0, 11.0, 6.0, 6.0), "boxes of different shapes that overlap"),
    ((20.5, 7.25, 5.0, 3.5), (22.0, 8.0, 4.0, 2.0), "boxes with fractional coordinates"),
]
_HIDDEN_BOX_CASES = [
    ((0.0, 0.0, 2.0, 2.0), (1.0, 1.0, 2.0, 2.0), "boxes that share a quarter"),
    ((10.0, 10.0, 4.0, 4.0), (10.0, 13.0, 4.0, 4.0), "boxes stacked with a small vertical overlap"),
    ((3.0, 3.0, 6.0, 1.0), (3.0, 3.0, 1.0, 6.0), "a cross of a wide and a tall box"),
    ((50.0, 50.0, 0.5, 0.5), (50.2, 50.1, 0.5, 0.5), "two small boxes"),
]
# what a plausible mistake returns, and what to say about it
_MISTAKES = [
    (dict(clip=False), "an overlap's width and height cannot be negative: clip them at 0"),
    (dict(union_once=False), "the union counts the shared area once (area a + area b − intersection)"),
    (dict(centred=False), "it looks as if (centre_x, centre_y) were taken as the top-left corner; "
                          "a box spans centre ± size / 2"),
    (dict(plus=1.0), "no + 1 on widths or heights: these boxes are measured, not counted in pixels"),
]


@exercise("08.1")
def exercise_08_1(iou_centre_size, hidden=False):
    """Check ``iou_centre_size(a, b)`` on pairs of boxes given as (centre_x, centre_y, width, height)."""
    for a, b, what in _BOX_CASES + (_HIDDEN_BOX_CASES if hidden else []):
        found = iou_centre_size(a, b)
        expect(isinstance(found, (int, float, np.floating, np.integer)) and np.ndim(found) == 0,
               f"for {what} your function returned {found!r}; expected one number")
        found, expected = float(found), _iou(a, b)
        if math.isclose(found, expected, abs_tol=1e-6):
            continue
        said = f"for {what} {a} and {b} your IoU is {found:.4g}, expected {expected:.4g}"
        for mistake, advice in _MISTAKES:
            expect(not math.isclose(found, _iou(a, b, **mistake), abs_tol=1e-6), f"{said}: {advice}")
        expect(False, said)
    return "IoU ignores where the boxes are, only how well they agree."


def _reference_ious(true_mask, predicted_mask, num_classes):
    ious = []
    for c in range(num_classes):
        union = np.sum((true_mask == c) | (predicted_mask == c))
        ious.append(np.sum((true_mask == c) & (predicted_mask == c)) / union if union else np.nan)
    return np.array(ious)


def _mask_cases(hidden=False):
    rng = np.random.default_rng(8)
    true = np.array([[0, 0, 1, 1], [0, 0, 2, 2], [3, 3, 0, 0]])
    predicted = np.array([[0, 1, 1, 1], [0, 0, 2, 0], [3, 0, 0, 0]])
    yield true, predicted, 5, "a 3×4 mask where class 4 appears in neither mask"
    true = rng.integers(0, 4, size=(16, 16))
    predicted = np.where(rng.random((16, 16)) < 0.7, true, rng.integers(0, 4, size=(16, 16)))
    yield true, predicted, 4, "a 16×16 mask with 4 classes"
    yield np.zeros((2, 3, 3), int), np.ones((2, 3, 3), int), 3, "two masks, all background, predicted class 1"
    if hidden:
        true = rng.integers(0, 3, size=(9, 7))
        yield true, np.where(true == 2, 0, true), 3, "a 9×7 mask where the prediction never says class 2"
        yield true, true.copy(), 6, "a perfect prediction with classes 3 to 5 absent"


@exercise("08.2")
def exercise_08_2(mask_ious, hidden=False):
    """Check ``mask_ious(true_mask, predicted_mask, num_classes)`` against per-class IoUs."""
    for true, predicted, num_classes, what in _mask_cases(hidden):
        found = np.asarray(mask_ious(true.copy(), predicted.copy(), num_classes), dtype=float)
        expected = _reference_ious(true, predicted, num_classes)
        expect(found.shape == expected.shape,
               f"for {what} your result has shape {found.shape}, expected ({num_classes},): "
               "one IoU per class")
        for c in np.flatnonzero(np.isnan(expected)):
            expect(np.isnan(found[c]), f"for {what}: class {c} is in neither mask, so its IoU is "
                                       f"undefined; you returned {found[c]:.4g}, expected nan")
        expect(not np.isnan(found[~np.isnan(expected)]).any(),
               f"for {what} you returned nan for a class that one of the masks contains")
        known = ~np.isnan(expected)
        both = np.array([np.sum(true == c) + np.sum(predicted == c) for c in range(num_classes)])
        inter = np.array([np.sum((true == c) & (predicted == c)) for c in range(num_classes)])
        with np.errstate(invalid="ignore", divide="ignore"):
            summed = inter / both
            recall = inter / np.array([np.sum(true == c) for c in range(num_classes)])
        worst = int(np.flatnonzero(known)[np.argmax(np.abs(found - expected)[known])])
        if not np.allclose(found[known], expected[known], atol=1e-6):
            expect(not np.allclose(found[known], summed[known], atol=1e-6),
                   f"for {what}, class {worst}: your IoU is {found[worst]:.4g}, expected "
                   f"{expected[worst]:.4g}; the union counts pixels that both masks give the class once, "
                   "not twice")
            expect(not np.allclose(found[known], recall[known], atol=1e-6, equal_nan=True),
                   f"for {what}, class {worst}: your IoU is {found[worst]:.4g}, expected "
                   f"{expected[worst]:.4g}; you divided by the class's true pixels only, not by the union")
        expect_close(found[known], expected[known], f"for {what}, the IoUs of the classes present")
    return "np.nanmean of these values is the mean IoU."
