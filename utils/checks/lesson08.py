"""Checks of lesson 08's exercises: non-maximum suppression of boxes in COCO's format, and the
per-class IoU of two masks whose ignored pixels count for no class."""

from __future__ import annotations

from utils.checks.feedback import ExerciseFailed, exercise, expect, expect_close

import numpy as np

# ---------------------------------------------------------------- 08.1: NMS on COCO boxes


def _corners(boxes, layout="xywh"):
    """x_min, y_min, x_max, y_max of (n, 4) boxes; ``layout`` says how the four numbers are read."""
    x, y, w, h = np.asarray(boxes, dtype=float).T
    if layout == "corners":  # the mistake of reading width and height as x_max and y_max
        return x, y, w, h
    if layout == "centre":  # the mistake of reading (x, y) as the centre
        return x - w / 2, y - h / 2, x + w / 2, y + h / 2
    return x, y, x + w, y + h


def _pairwise_ious(boxes, layout="xywh", union_once=True):
    """The IoU of every pair of boxes, as the lesson's box_iou computes it, in an (n, n) array."""
    x0, y0, x1, y1 = _corners(boxes, layout)
    width = np.clip(np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0), 0, None)
    height = np.clip(np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0), 0, None)
    intersection = width * height
    areas = (x1 - x0) * (y1 - y0)
    union = areas[:, None] + areas - (intersection if union_once else 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / union


def _nms(boxes, scores, iou_threshold, layout="xywh", union_once=True, at_threshold=False,
         suppressed_suppress=False, by_score=True, threshold=None, ranks=False, reversed_ties=False):
    """The indices greedy NMS keeps, best score first; the flags make plausible mistakes."""
    threshold = iou_threshold if threshold is None else threshold
    ious = _pairwise_ious(boxes, layout, union_once)
    suppresses = ious >= threshold if at_threshold else ious > threshold
    order = np.argsort(-np.asarray(scores), kind="stable") if by_score else np.arange(len(scores))
    if reversed_ties:  # np.argsort(scores)[::-1]: best first, but equal scores in reverse input order
        order = np.argsort(np.asarray(scores), kind="stable")[::-1]
    keep = []
    for rank, i in enumerate(order):
        judges = order[:rank] if suppressed_suppress else keep
        if not any(suppresses[i, j] for j in judges):
            keep.append(int(i))
    if ranks:  # positions in the sorted order instead of indices into boxes
        return [rank for rank, i in enumerate(order) if int(i) in keep]
    return keep


# (boxes as [x_min, y_min, width, height], scores, iou_threshold, what the case is)
_NMS_CASES = [
    ([[0, 0, 10, 10], [2, 1, 10, 10]], [0.9, 0.8], 0.5, "an overlapping pair (IoU 0.56)"),
    ([[0, 0, 10, 10], [3, 0, 10, 10], [6, 0, 10, 10]], [0.9, 0.8, 0.7], 0.5,
     "a chain P, Q, R (IoU 0.54 for P, Q and for Q, R; 0.25 for P, R)"),
    ([[0, 0, 5, 5], [50, 40, 5, 5]], [0.7, 0.6], 0.5, "boxes far apart"),
    ([[0, 0, 5, 5], [5, 0, 5, 5], [0, 5, 5, 5]], [0.9, 0.8, 0.7], 0.5, "boxes that only touch"),
    ([[0, 0, 2, 1], [0, 0, 1, 1]], [0.9, 0.8], 0.5, "a pair whose IoU is exactly 0.5"),
    ([[0, 0, 8, 8], [1, 1, 8, 8], [20, 0, 6, 6]], [0.3, 0.9, 0.95], 0.5,
     "scores not in input order, the best box last"),
    ([[0, 0, 4, 4], [1, 1, 4, 4]], [0.9, 0.8], 0.5, "two boxes 4 wide whose IoU is 0.39"),
    ([[1, 0, 4, 2], [0, 0, 3, 2]], [0.9, 0.8], 0.5, "boxes of different widths whose IoU is 0.4"),
    ([[0, 4, 10, 2], [4, 0, 2, 10], [4, 4, 2, 2]], [0.9, 0.8, 0.7], 0.5,
     "a wide and a tall box crossing, and the square where they cross"),
    (np.zeros((0, 4)), np.zeros(0), 0.5, "no boxes at all"),
]


def _hidden_nms_cases():
    rng = np.random.default_rng(81)
    corners = rng.uniform(0, 40, size=(14, 2))
    boxes = np.concatenate([corners, rng.uniform(4, 16, size=(14, 2))], axis=1).round(1)
    scores = rng.permutation(np.linspace(0.2, 0.95, 14))
    yield boxes, scores, 0.5, "14 boxes in a 56×56 image"
    yield boxes, scores, 0.3, "the same 14 boxes with iou_threshold=0.3"
    yield ([[10, 10, 10, 10], [12, 10, 10, 10], [14, 10, 10, 10], [30, 30, 4, 4]], [0.7, 0.9, 0.8, 0.1],
           0.7, "three boxes overlapping by IoU 0.67 and 0.43, with iou_threshold=0.7")
    yield [[0, 0, 4, 1], [1, 0, 1, 1]], [0.8, 0.9], 0.25, "a pair whose IoU is exactly iou_threshold=0.25"
    yield ([[5, 5, 6, 6], [6, 5, 6, 6], [40, 40, 3, 3]], [0.5, 0.5, 0.5], 0.5,
           "three boxes with the same score")
    yield [[2.5, 3.25, 4.5, 2.0], [3.0, 3.5, 4.0, 2.0]], [0.4, 0.6], 0.5, "fractional coordinates"
    yield [[7, 7, 3, 3]], [0.2], 0.5, "a single box"


# what a plausible mistake returns, and what to say about it
_NMS_MISTAKES = [
    (dict(threshold=0.5), "you used 0.5 whatever iou_threshold is: compare with the argument"),
    (dict(at_threshold=True), "a box whose IoU equals iou_threshold stays: only an IoU strictly above "
                              "it suppresses (IoU > iou_threshold)"),
    (dict(union_once=False), "the union counts the shared area once (area a + area b − intersection)"),
    (dict(layout="corners"), "it looks as if [x_min, y_min, width, height] were read as corners "
                             "[x_min, y_min, x_max, y_max]: a COCO box ends at x_min + width, "
                             "y_min + height"),
    (dict(layout="centre"), "it looks as if (x, y) were read as the box's centre: in COCO's format it is "
                            "the top-left corner, and the box spans x to x + width"),
    (dict(suppressed_suppress=True), "it looks as if every box were compared with all the boxes scored "
                                     "above it, suppressed ones included: compare it only with the boxes "
                                     "you kept, since a box that is suppressed suppresses nothing"),
    (dict(by_score=False), "it looks as if you took the boxes in input order: take them best score first "
                           "(np.argsort(-scores, kind=\"stable\"))"),
    (dict(reversed_ties=True), "boxes with equal scores are taken in input order: sort with "
                               "np.argsort(-scores, kind=\"stable\"), not np.argsort(scores)[::-1]"),
    (dict(ranks=True), "these are positions in the sorted order: return indices into boxes, "
                       "as order[...] gives them"),
]


def _rows(values) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:g}" for v in row) + "]" for row in values) + "]"


def _as_indices(found, n: int, what: str) -> list[int]:
    """The learner's result as a list of ints, or a failure that says why it is not indices."""
    said = f"for {what} your function returned"
    try:
        array = np.asarray(found)
    except (TypeError, ValueError):
        array = np.asarray(None)
    expect(array.dtype != bool, f"{said} a boolean mask {array.tolist()}; return the indices of the "
                                "boxes kept, best score first (a mask has no order)")
    expect(not (array.ndim == 2 and array.shape[-1] == 4),
           f"{said} an array of shape {array.shape}: boxes, not their indices; return the indices of "
           "the boxes kept (the caller takes boxes[keep] and scores[keep])")
    expect(array.ndim == 1 and array.dtype.kind in "iuf",
           f"{said} {found!r}; expected a list or 1-D array of the indices of the boxes kept")
    if array.size == 0:
        return []
    expect(array.dtype.kind in "iu", f"{said} {array.tolist()}: floats, not indices; return integer "
                                     "indices of the boxes kept (np.array(keep, dtype=int))")
    expect(array.min() >= 0 and array.max() < n,
           f"{said} {array.tolist()}, which are not all indices of its {n} boxes (0 to {n - 1})")
    expect(len(set(array.tolist())) == array.size, f"{said} {array.tolist()}: an index appears twice")
    return [int(i) for i in array]


@exercise("08.1")
def exercise_08_1(nms_xywh, hidden=False):
    """Check ``nms_xywh(boxes, scores, iou_threshold)`` on boxes given as [x_min, y_min, width, height]."""
    for boxes, scores, threshold, what in _NMS_CASES + (list(_hidden_nms_cases()) if hidden else []):
        boxes, scores = np.asarray(boxes, dtype=float).reshape(-1, 4), np.asarray(scores, dtype=float)
        if len(boxes) == 0:
            try:
                found = nms_xywh(boxes.copy(), scores.copy(), iou_threshold=threshold)
            except NotImplementedError:
                raise
            except Exception as error:
                raise ExerciseFailed(f"for {what} (boxes of shape (0, 4)) your function raised "
                                     f"{type(error).__name__}: {error}; with no boxes, keep none: return "
                                     "an empty list") from None
        else:
            found = nms_xywh(boxes.copy(), scores.copy(), iou_threshold=threshold)
        found = _as_indices(found, len(boxes), what)
        expected = _nms(boxes, scores, threshold)
        if found == expected:
            continue
        shown = f", boxes {_rows(boxes)} with scores {scores.tolist()}," if len(boxes) <= 4 else ""
        said = f"for {what}{shown or ','} your function kept {found}, expected {expected}"
        expect(sorted(found) != sorted(expected),
               f"{said}: the right boxes, but list them best score first (equal scores in input order)")
        for mistake, advice in _NMS_MISTAKES:
            expect(found != _nms(boxes, scores, threshold, **mistake), f"{said}: {advice}")
        expect(False, said)
    return "A box that is suppressed suppresses nothing, and a COCO box [x, y, w, h] spans x to x + w."


# ---------------------------------------------------------------- 08.2: per-class IoU, ignored pixels out

IGNORE = 255  # Pascal VOC's label of the pixels on object boundaries that no one could label


def _class_ious(true_mask, predicted_mask, num_classes, ignore=IGNORE, leave_out="both",
                absent=np.nan, union="once"):
    """Each class's IoU over the pixels whose true label is not ``ignore``; the other arguments make
    plausible mistakes: ``leave_out`` "none" or "as background", ``absent`` 0, ``union`` "twice"
    (area sum) or "true" (recall)."""
    true_mask, predicted_mask = np.asarray(true_mask), np.asarray(predicted_mask)
    if leave_out == "as background":
        true_mask = np.where(true_mask == ignore, 0, true_mask)
    labelled = true_mask != ignore if leave_out == "both" else np.ones(true_mask.shape, bool)
    true, predicted = true_mask[labelled], predicted_mask[labelled]
    ious = []
    for c in range(num_classes):
        t, p = true == c, predicted == c
        size = {"once": np.sum(t | p), "twice": np.sum(t) + np.sum(p), "true": np.sum(t)}[union]
        with np.errstate(invalid="ignore", divide="ignore"):
            ious.append(np.sum(t & p) / size if np.any(t | p) else absent)
    return np.array(ious, dtype=float)


def _mask_cases(hidden=False):
    """(true mask, predicted mask, number of classes, ignore label or None for the default, what it is)."""
    true = np.array([[0, 0, 1, 1], [0, 255, 2, 2], [3, 3, 255, 0]])
    predicted = np.array([[0, 1, 1, 1], [0, 2, 2, 0], [3, 0, 1, 0]])
    yield true, predicted, 5, None, "a 3×4 mask with two ignored pixels (255) and no class 4"
    rng = np.random.default_rng(8)
    true = rng.integers(0, 4, size=(2, 6, 6))
    predicted = np.where(rng.random((2, 6, 6)) < 0.7, true, rng.integers(0, 4, size=(2, 6, 6)))
    true[:, 2, :] = 255  # a boundary row in each image, which the model still labels
    yield true, predicted, 4, None, "a batch of two 6×6 masks whose third rows are ignored (255)"
    true = np.array([[0, 0, 255], [1, 1, 255]])
    predicted = np.array([[0, 0, 2], [1, 1, 1]])
    yield true, predicted, 3, None, "a 2×3 mask whose prediction says class 2 only where the truth is 255"
    if hidden:
        true = rng.integers(0, 5, size=(12, 12))
        true[rng.random((12, 12)) < 0.2] = 255
        predicted = np.where(rng.random((12, 12)) < 0.6, true, rng.integers(0, 5, size=(12, 12)))
        predicted[predicted == 255] = 4
        yield true, predicted, 6, None, "a 12×12 mask with 5 classes present and 20% ignored"
        true = rng.integers(0, 3, size=(3, 5, 5))
        predicted = true.copy()
        true[:, :, 0] = 99
        predicted[:, :, 0] = 2
        yield true, predicted, 3, 99, "a perfect prediction whose ignore label is 99"
        true = np.array([[-1, 0, 0, 1], [-1, 1, 1, 1], [-1, -1, 2, 2]])
        predicted = np.array([[3, 0, 1, 1], [0, 1, 1, 0], [3, 2, 2, 2]])
        yield true, predicted, 4, -1, "a 3×4 mask whose ignore label is −1"
        yield np.full((2, 3), 255), np.ones((2, 3), int), 2, None, "a mask ignored everywhere"


# what a plausible mistake returns (from the keyword arguments of _class_ious), and what to say
_MASK_MISTAKES = [
    (dict(ignore=IGNORE), "you left out the pixels labelled 255 whatever the ignore argument is: "
                          "leave out those whose true label is ignore"),
    (dict(leave_out="none"), "your IoU still counts the pixels whose true label is {ignore}: what the model "
                             "predicts there adds to that class's union. Leave those pixels out of both "
                             "masks, not only out of the true one"),
    (dict(leave_out="as background"), "you counted the pixels labelled {ignore} as background (class 0): "
                                      "leave them out of both masks"),
    (dict(absent=0.0), "a class that neither mask contains, once the ignored pixels are left out, has an "
                       "undefined IoU: return np.nan for it, not 0"),
    (dict(union="twice"), "the union counts pixels that both masks give the class once, not twice "
                          "(true + predicted − intersection)"),
    (dict(union="true"), "you divided by the class's true pixels only, not by the union"),
]


@exercise("08.2")
def exercise_08_2(class_ious_ignoring, hidden=False):
    """Check ``class_ious_ignoring(true_mask, predicted_mask, num_classes, ignore=255)`` against
    per-class IoUs that leave out the pixels whose true label is ``ignore``."""
    for true, predicted, num_classes, ignore, what in _mask_cases(hidden):
        arguments = (true.copy(), predicted.copy(), num_classes)
        try:
            found = class_ious_ignoring(*arguments, **({} if ignore is None else {"ignore": ignore}))
        except TypeError as error:
            if ignore is None or "ignore" not in str(error):
                raise
            raise ExerciseFailed(f"for {what} your function refused ignore={ignore}: it takes the ignore "
                                 "label as an argument, class_ious_ignoring(true_mask, predicted_mask, "
                                 "num_classes, ignore=255)") from None
        ignore = IGNORE if ignore is None else ignore
        found = np.asarray(found, dtype=float)
        expected = _class_ious(true, predicted, num_classes, ignore)
        expect(found.shape == expected.shape,
               f"for {what} your result has shape {found.shape}, expected ({num_classes},): one IoU per "
               "class, classes 0 to num_classes − 1")
        if np.allclose(found, expected, atol=1e-6, equal_nan=True):
            continue
        worst = int(np.argmax(np.where(np.isnan(found) != np.isnan(expected), np.inf,
                                       np.nan_to_num(np.abs(found - expected)))))
        said = (f"for {what}, class {worst}: your IoU is {found[worst]:.4g}, expected {expected[worst]:.4g}; "
                f"all of yours are {np.round(found, 3).tolist()}")
        for mistake, advice in _MASK_MISTAKES:
            mistaken = _class_ious(true, predicted, num_classes, **{"ignore": ignore, **mistake})
            expect(not np.allclose(found, mistaken, atol=1e-6, equal_nan=True),
                   f"{said}: {advice.format(ignore=ignore)}")
        for c in np.flatnonzero(np.isnan(expected)):
            expect(np.isnan(found[c]), f"for {what}: class {c} is in neither mask once the ignored pixels "
                                       f"are left out, so its IoU is undefined; you returned {found[c]:.4g}, "
                                       "expected nan")
        expect(not np.isnan(found[~np.isnan(expected)]).any(),
               f"for {what} you returned nan for a class that one of the masks contains")
        expect_close(found, expected, f"for {what}, the IoUs of the classes")
    return ("np.nanmean of these values is the mean IoU over the classes present; over a whole data set's "
            "masks it is the score Pascal VOC reports.")
