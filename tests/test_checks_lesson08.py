"""utils/checks/lesson08.py: the notebook's solutions pass, and plausible wrong answers are rejected
with a message that says what is wrong."""

from __future__ import annotations

from utils import checks
from utils.checks import ExerciseFailed

import notebook_solutions
import numpy as np
import pytest


def solution(name: str):
    """The function ``name`` as the lesson's solution cell defines it."""
    return notebook_solutions.solution("08_detection_and_segmentation.ipynb", name, {"np": np})


def test_the_notebook_solutions_pass(capsys):
    for hidden in (False, True):
        checks.exercise_08_1(solution("nms_xywh"), hidden=hidden)
        checks.exercise_08_2(solution("class_ious_ignoring"), hidden=hidden)
    assert capsys.readouterr().out.count("correct") == 4


def nms_with(read="xywh", union_once=True, suppress_at=False, all_above=False, by_score=True,
             fixed_threshold=None, reversed_ties=False, ranks=False):
    """A learner's NMS, written the lesson's way, with one plausible mistake."""
    def nms_xywh(boxes, scores, iou_threshold=0.5):
        threshold = iou_threshold if fixed_threshold is None else fixed_threshold
        x, y, w, h = np.asarray(boxes, dtype=float).reshape(-1, 4).T
        x0, y0, x1, y1 = {"xywh": (x, y, x + w, y + h), "corners": (x, y, w, h),
                          "centre": (x - w / 2, y - h / 2, x + w / 2, y + h / 2)}[read]

        def iou(i, others):
            width = np.clip(np.minimum(x1[i], x1[others]) - np.maximum(x0[i], x0[others]), 0, None)
            height = np.clip(np.minimum(y1[i], y1[others]) - np.maximum(y0[i], y0[others]), 0, None)
            inter, areas = width * height, (x1 - x0) * (y1 - y0)
            with np.errstate(invalid="ignore", divide="ignore"):  # boxes read as corners can be empty
                return inter / (areas[i] + areas[others] - (inter if union_once else 0))

        def suppressed(ious):
            return ious >= threshold if suppress_at else ious > threshold

        order = np.argsort(-np.asarray(scores), kind="stable") if by_score else np.arange(len(scores))
        if reversed_ties:
            order = np.argsort(scores)[::-1]
        if all_above:
            keep = [int(i) for rank, i in enumerate(order) if not suppressed(iou(i, order[:rank])).any()]
        else:
            keep, rest = [], order
            while len(rest):
                best, rest = rest[0], rest[1:]
                keep.append(int(best))
                rest = rest[~suppressed(iou(best, rest))]
        return [int(np.flatnonzero(order == i)[0]) for i in keep] if ranks else keep
    return nms_xywh


def returns_boxes(boxes, scores, iou_threshold=0.5):
    return np.asarray(boxes)[nms_with()(boxes, scores, iou_threshold)]


def returns_a_mask(boxes, scores, iou_threshold=0.5):
    return np.isin(np.arange(len(scores)), nms_with()(boxes, scores, iou_threshold))


def returns_scores(boxes, scores, iou_threshold=0.5):
    return np.asarray(scores)[nms_with()(boxes, scores, iou_threshold)]


def fails_with_no_boxes(boxes, scores, iou_threshold=0.5):
    np.max(scores)  # raises on an empty array
    return nms_with()(boxes, scores, iou_threshold)


def test_a_correct_nms_passes():
    checks.exercise_08_1(nms_with(), hidden=True)


WRONG_08_1 = [
    (nms_with(read="corners"), "two boxes 4 wide.* read as corners"),
    (nms_with(read="centre"), "different widths.* read as the box's centre"),
    (nms_with(all_above=True), "chain.* kept \\[0\\], expected \\[0, 2\\]:.* suppressed ones included"),
    (nms_with(by_score=False), "scores not in input order.* took the boxes in input order"),
    (nms_with(suppress_at=True), "exactly 0.5.* only an IoU strictly above it suppresses"),
    (nms_with(union_once=False), "overlapping pair.* the union counts the shared area once"),
    (returns_boxes, "an array of shape \\(1, 4\\): boxes, not their indices"),
    (returns_a_mask, "a boolean mask"),
    (returns_scores, "floats, not indices"),
    (nms_with(fixed_threshold=0.5), "iou_threshold=0.3.* you used 0.5 whatever iou_threshold is"),
    (nms_with(reversed_ties=True), "same score.* equal scores are taken in input order"),
    (nms_with(ranks=True), "positions in the sorted order"),
    (lambda boxes, scores, iou_threshold=0.5: nms_with()(boxes, scores, iou_threshold)[::-1],
     "the right boxes, but list them best score first"),
    (fails_with_no_boxes, "no boxes at all.* raised ValueError.* return an empty list"),
]


@pytest.mark.parametrize("wrong, message", WRONG_08_1)
def test_wrong_nms_answers_are_rejected_with_the_reason(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        checks.exercise_08_1(wrong, hidden=True)


def ious_with(leave_out="both", absent=np.nan, union="once", hard_coded=None):
    """A learner's per-class IoU with one plausible mistake."""
    def class_ious_ignoring(true_mask, predicted_mask, num_classes, ignore=255):
        ignore = ignore if hard_coded is None else hard_coded
        values = []
        for c in range(num_classes):
            t, p = true_mask == c, predicted_mask == c
            if leave_out == "both":
                t, p = t[true_mask != ignore], p[true_mask != ignore]
            elif leave_out == "true only":
                t = t & (true_mask != ignore)
            elif leave_out == "as background":
                t = np.where(true_mask == ignore, 0, true_mask) == c
            size = {"once": (t | p).sum(), "twice": t.sum() + p.sum(), "true": t.sum()}[union]
            with np.errstate(invalid="ignore", divide="ignore"):
                values.append((t & p).sum() / size if (t | p).any() else absent)
        return np.array(values, dtype=float)
    return class_ious_ignoring


def without_the_ignore_argument(true_mask, predicted_mask, num_classes):
    return ious_with()(true_mask, predicted_mask, num_classes)


def test_a_correct_class_iou_passes():
    checks.exercise_08_2(ious_with(), hidden=True)


IGNORED_STILL_COUNT = "still counts the pixels whose true label is 255:.* not only out of the true one"


WRONG_08_2 = [
    (ious_with(leave_out="true only"), IGNORED_STILL_COUNT),
    (ious_with(leave_out="none"), IGNORED_STILL_COUNT),
    (ious_with(leave_out="as background"), "counted the pixels labelled 255 as background"),
    (ious_with(absent=0.0), "class 4: your IoU is 0, expected nan.* return np.nan for it, not 0"),
    (ious_with(union="twice"), "counts pixels that both masks give the class once, not twice"),
    (ious_with(union="true"), "you divided by the class's true pixels only"),
    (lambda t, p, k, ignore=255: ious_with()(t, p, k, ignore)[:-1], r"shape \(4,\), expected \(5,\)"),
    (ious_with(hard_coded=255), "ignore label is 99,.* labelled 255 whatever the ignore argument is"),
    (without_the_ignore_argument, "refused ignore=99"),
]


@pytest.mark.parametrize("wrong, message", WRONG_08_2)
def test_wrong_class_ious_are_rejected_with_the_reason(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        checks.exercise_08_2(wrong, hidden=True)


@pytest.mark.parametrize("check, answer", [
    (checks.exercise_08_1, nms_with(fixed_threshold=0.5)),  # the visible cases all use 0.5
    (checks.exercise_08_1, nms_with(reversed_ties=True)),  # no visible case has equal scores
    (checks.exercise_08_2, ious_with(hard_coded=255)),  # the visible cases all use 255
])
def test_the_hidden_cases_catch_answers_tuned_to_the_visible_ones(check, answer, capsys):
    check(answer)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ExerciseFailed):
        check(answer, hidden=True)


@pytest.mark.parametrize("check", [checks.exercise_08_1, checks.exercise_08_2])
def test_a_stub_passes_through(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")
    for hidden in (False, True):
        with pytest.raises(NotImplementedError):
            check(stub, hidden=hidden)
