"""utils/checks/lesson08.py: the notebook's solutions pass, and plausible wrong answers are rejected
with a message that says what is wrong."""

from __future__ import annotations

from pathlib import Path

from utils import checks
from utils.checks import ExerciseFailed

import nbformat
import numpy as np
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "08_detection_and_segmentation.ipynb"


def solution(name: str):
    """The function ``name`` as the notebook's solution cell defines it."""
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells
             if "solution" in c.metadata.get("tags", []) and f"def {name}(" in c.source]
    assert len(cells) == 1, f"expected one solution cell defining {name}, found {len(cells)}"
    namespace = {"np": np}
    exec(cells[0], namespace)
    return namespace[name]


def test_the_notebook_solutions_pass(capsys):
    for hidden in (False, True):
        checks.exercise_08_1(solution("iou_centre_size"), hidden=hidden)
        checks.exercise_08_2(solution("mask_ious"), hidden=hidden)
    assert capsys.readouterr().out.count("correct") == 4


def corners(box, plus=0.0, centred=True):
    x, y, w, h = box
    if centred:
        return x - w / 2, y - h / 2, x + w / 2 + plus, y + h / 2 + plus
    return x, y, x + w + plus, y + h + plus


def iou_with(plus=0.0, centred=True, clip=True, union_once=True):
    def iou_centre_size(a, b):
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = corners(a, plus, centred), corners(b, plus, centred)
        width, height = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
        inter = max(width, 0) * max(height, 0) if clip else width * height
        areas = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0)
        return inter / (areas - inter if union_once else areas)
    return iou_centre_size


@pytest.mark.parametrize("wrong, message", [
    (iou_with(plus=1.0), "no \\+ 1 on widths or heights"),
    (iou_with(union_once=False), "identical boxes .* the union counts the shared area once"),
    (iou_with(clip=False), "far apart .* clip them at 0"),
    (iou_with(centred=False), "taken as the top-left corner"),
    (lambda a, b: np.array([1.0, 0.0]), "expected one number"),
])
def test_wrong_box_ious_are_rejected_with_the_reason(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        checks.exercise_08_1(wrong, hidden=True)


def ious_with(union="once", absent=np.nan, divide_by_true=False):
    def mask_ious(true_mask, predicted_mask, num_classes):
        values = []
        for c in range(num_classes):
            t, p = true_mask == c, predicted_mask == c
            size = t.sum() if divide_by_true else (t | p).sum() if union == "once" else t.sum() + p.sum()
            values.append((t & p).sum() / size if (t | p).any() else absent)
        return np.array(values, dtype=float)
    return mask_ious


@pytest.mark.parametrize("wrong, message", [
    (ious_with(union="twice"), "counts pixels that both masks give the class once, not twice"),
    (ious_with(absent=0.0), "class 4 is in neither mask, so its IoU is undefined; you returned 0"),
    (ious_with(divide_by_true=True), "you divided by the class's true pixels only"),
    (lambda t, p, k: ious_with()(t, p, k)[:-1], r"shape \(4,\), expected \(5,\)"),
])
def test_wrong_mask_ious_are_rejected_with_the_reason(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        checks.exercise_08_2(wrong, hidden=True)


def test_a_stub_passes_through():
    def stub(a, b):
        raise NotImplementedError("write it")
    with pytest.raises(NotImplementedError):
        checks.exercise_08_1(stub)
