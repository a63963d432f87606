"""Lesson 09's exercise checks accept the notebook's solutions and reject plausible mistakes with
a message that says what is wrong."""

from __future__ import annotations

from utils import checks

import notebook_solutions
import numpy as np
import pytest


def solution(name: str):
    """The function ``name`` as the lesson's solution cell defines it."""
    return notebook_solutions.solution("09_training_fast_and_well.ipynb", name, {"np": np})


def test_solutions_pass(capsys):
    for hidden in (False, True):
        checks.exercise_09_1(solution("triangle"), hidden=hidden)
        checks.exercise_09_2(solution("cutout"), hidden=hidden)
    assert capsys.readouterr().out.count("correct") == 4


def triangle(start_at_peak=False, early_peak=False, ahead=False, floor=0.0, whole_decay=False,
             negative=False, slow=False, late_end=False):
    """The schedule with one plausible mistake."""
    def schedule(step, peak, warmup_steps, total_steps):
        if start_at_peak:
            warmup_steps = 0
        if step < warmup_steps:
            if early_peak:
                return peak * min(step / max(warmup_steps - 1, 1), 1.0)
            return peak * (step + ahead) / warmup_steps
        if late_end:  # the decay's length read as total_steps, after the warm-up
            return peak * max(0.0, 1 - (step - warmup_steps) / total_steps)
        if step >= total_steps and not negative:
            return floor * peak
        length = total_steps if whole_decay else total_steps - warmup_steps
        fraction = (step - warmup_steps) / (total_steps - warmup_steps)
        if slow:
            return peak * (1 - fraction / 2)
        if whole_decay:
            return peak * (total_steps - step) / length
        return peak * (floor + (1 - floor) * (1 - fraction))
    return schedule


WRONG_09_1 = [
    (triangle(start_at_peak=True), "it starts at the peak: a warm-up starts at 0"),
    (triangle(early_peak=True), "it reaches the peak at step 9; counted from step 0"),
    (triangle(ahead=True), "its warm-up is one step ahead: step 0 uses learning rate 0"),
    (triangle(floor=0.1), "does not reach 0 at step 50: decay all the way to 0"),
    (triangle(whole_decay=True), "its decay runs over all the steps; it starts after the warm-up"),
    (triangle(negative=True), "it goes below 0 after the last step: hold it at 0"),
    (triangle(slow=True), "it decays too slowly: a straight line from the peak"),
    (triangle(late_end=True), "its decay lasts 50 steps after the warm-up and ends at step 60"),
    (lambda step, peak, warmup_steps, total_steps: None, "returned None at step 0, expected a number"),
]


@pytest.mark.parametrize("answer, message", WRONG_09_1)
def test_triangle_mistakes_are_named(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_09_1(answer, hidden=True)


def cutout(every=False, inverted=False, fill=None, in_place=False, inside=False, corner=False,
           one_place=False, plus_one=False, first_channel=False, negative_slice=False, global_rng=False):
    """Cutout with one plausible mistake; a loop over the images, as a learner might write it."""
    def erase(images, rng, size=8, p=0.5):
        out = images if in_place else images.copy()
        n, h, w, _ = images.shape
        rng = np.random.default_rng() if global_rng else rng
        draw = rng.random(n)
        chosen = np.ones(n, bool) if every else (draw > p if inverted else draw < p)
        if inside:
            cy = rng.integers(size // 2, h - size // 2 + 1, n)
            cx = rng.integers(size // 2, w - size // 2 + 1, n)
        else:
            cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
        if one_place:
            cy, cx = np.full(n, cy[0]), np.full(n, cx[0])
        for i in np.flatnonzero(chosen):
            top, left = (cy[i], cx[i]) if corner else (cy[i] - size // 2, cx[i] - size // 2)
            side = size + plus_one
            rows = slice(top, top + side) if negative_slice else slice(max(top, 0), max(top + side, 0))
            cols = slice(left, left + side) if negative_slice else slice(max(left, 0), max(left + side, 0))
            value = images[i].mean() if fill == "mean" else (fill or 0.0)
            if first_channel:
                out[i, rows, cols, 0] = value
            else:
                out[i, rows, cols] = value
        return out
    return erase


WRONG_09_2 = [
    (cutout(every=True), "you erased a square in 100% of the images, expected about 50%"),
    (cutout(inverted=True), "in 20% of the images, expected about 80%"),
    (cutout(negative_slice=True), "a slice whose start is negative, which counts from the end"),
    (cutout(fill="mean"), "an erased pixel holds .*; fill with 0"),
    (cutout(fill=1.0), "an erased pixel holds 1; fill with 0"),
    (cutout(in_place=True), "changed the images it was given: erase in a copy"),
    (cutout(inside=True), "no square is cut off by an edge"),
    (cutout(corner=True), "never by the top or left one: draw the square's centre uniformly"),
    (cutout(one_place=True), "every erased square is in the same place"),
    (cutout(plus_one=True), "erased area of 9×[89] pixels; a square is at most 8×8"),
    (cutout(first_channel=True), "erased in only some of their 3 channels"),
    (cutout(global_rng=True), "two calls with generators of the same seed gave different images"),
]


@pytest.mark.parametrize("answer, message", WRONG_09_2)
def test_cutout_mistakes_are_named(answer, message):
    with pytest.raises(checks.ExerciseFailed, match=message):
        checks.exercise_09_2(answer, hidden=True)


def test_a_stub_passes_through():
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError):
        checks.exercise_09_1(stub)
    with pytest.raises(NotImplementedError):
        checks.exercise_09_2(stub)
