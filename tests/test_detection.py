"""utils/detection.py: IoU, non-maximum suppression, average precision and class IoU on cases
computed by hand."""

from __future__ import annotations

from utils import detection

import numpy as np
import pytest


def boxes(*rows):
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("a, b, expected", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),  # 5×5 overlap; 100 + 100 − 25
    ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges share no pixel (exclusive maxima)
    ((0, 0, 10, 10), (30, 30, 40, 40), 0.0),  # far apart: no negative intersection
    ((0, 0, 10, 10), (2, 2, 6, 6), 16 / 100),  # inside
    ((0, 0, 4, 2), (2, 0, 6, 2), 4 / 12),
])
def test_box_iou_by_hand(a, b, expected):
    assert detection.box_iou(np.array(a, float), np.array(b, float)) == pytest.approx(expected)
    assert detection.box_iou(np.array(b, float), np.array(a, float)) == pytest.approx(expected)


def test_box_iou_broadcasts_to_a_pairwise_matrix():
    a = boxes((0, 0, 10, 10), (5, 5, 15, 15))
    b = boxes((0, 0, 10, 10), (10, 0, 20, 10), (0, 0, 5, 5))
    matrix = detection.box_iou(a[:, None], b[None])
    assert matrix.shape == (2, 3)
    assert matrix == pytest.approx(np.array([[1, 0, 0.25], [25 / 175, 25 / 175, 0]]))


def test_nms_keeps_the_best_of_each_overlapping_group():
    found = boxes((0, 0, 10, 10), (1, 0, 11, 10), (20, 20, 30, 30), (0, 1, 10, 11), (21, 20, 31, 30))
    scores = np.array([0.6, 0.9, 0.8, 0.5, 0.3])
    # IoU of box 1 with box 0 is 90/110 > 0.5: box 0 goes, and box 3 (81/119 with box 1) too
    assert detection.non_max_suppression(found, scores, 0.5).tolist() == [1, 2]
    # a strict threshold keeps what overlaps less than it
    assert detection.non_max_suppression(found, scores, 0.95).tolist() == [1, 2, 0, 3, 4]
    assert detection.non_max_suppression(boxes(), np.array([]), 0.5).tolist() == []


def test_average_precision_by_hand():
    truths = [(boxes((0, 0, 10, 10), (20, 20, 30, 30)), np.array([0, 0]))]
    # best first: a hit, a miss (wrong place), a hit; recall 0.5, 0.5, 1; precision 1, 1/2, 2/3
    # precision made non-increasing from the right: 1, 2/3, 2/3; AP = 0.5·1 + 0 + 0.5·2/3
    detections = [(boxes((0, 0, 10, 10), (40, 40, 50, 50), (20, 20, 30, 30)), np.array([0, 0, 0]),
                   np.array([0.9, 0.8, 0.7]))]
    assert detection.average_precision(detections, truths, 0) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_average_precision_counts_a_duplicate_and_a_wrong_class_as_misses():
    truths = [(boxes((0, 0, 10, 10)), np.array([1])), (boxes((0, 0, 10, 10)), np.array([1]))]
    detections = [(boxes((0, 0, 10, 10), (0, 0, 10, 9)), np.array([1, 1]), np.array([0.9, 0.8])),
                  (boxes((0, 0, 10, 10)), np.array([2]), np.array([0.95]))]
    # class 1: hit (recall 1/2), duplicate miss; the other scene's item never found: AP = 0.5
    assert detection.average_precision(detections, truths, 1) == pytest.approx(0.5)
    # class 2 has no true box: its AP is undefined and left out of the mean, as VOC and COCO do
    assert np.isnan(detection.average_precision(detections, truths, 2))
    perfect = [(b, c, np.ones(len(c))) for b, c in truths]
    assert detection.average_precision(perfect, truths, 1) == pytest.approx(1.0)


def test_average_precision_needs_iou_half():
    truths = [(boxes((0, 0, 10, 10)), np.array([0]))]
    just = [(boxes((0, 0, 10, 5)), np.array([0]), np.array([1.0]))]  # IoU 50/100 = 0.5: a hit
    short = [(boxes((0, 0, 10, 4)), np.array([0]), np.array([1.0]))]  # IoU 0.4: a miss
    assert detection.average_precision(just, truths, 0) == 1.0
    assert detection.average_precision(short, truths, 0) == 0.0


def test_class_ious_by_hand():
    true = np.array([[0, 0, 1, 1], [0, 0, 2, 2]])
    predicted = np.array([[0, 1, 1, 1], [0, 0, 2, 0]])
    # class 0: 3 shared of 5; class 1: 2 of 3; class 2: 1 of 2; class 3 in neither
    ious = detection.class_ious(true, predicted, 4)
    assert ious[:3] == pytest.approx([3 / 5, 2 / 3, 1 / 2]) and np.isnan(ious[3])
