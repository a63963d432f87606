"""Checks of lesson 09's exercises: a triangular learning-rate schedule, and cutout augmentation."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def triangle_reference(step: int, peak: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps`` steps, as Keras's ``warmup_steps``
    counts them (the peak is first used at step ``warmup_steps``), then a linear decay that reaches
    0 at step ``total_steps`` and stays there."""
    if step < warmup_steps:
        return peak * step / warmup_steps
    if step >= total_steps:
        return 0.0
    return peak * (total_steps - step) / (total_steps - warmup_steps)


# (peak, warmup_steps, total_steps): every step from 0 to total_steps + 3 is asked for
TRIANGLE_CASES = [(4e-3, 10, 50), (0.1, 3, 7), (1e-3, 0, 20)]
HIDDEN_TRIANGLE_CASES = [(2e-3, 1, 2), (0.5, 25, 26), (3e-4, 7, 1000)]


def _triangle_diagnosis(found: dict, peak: float, warmup_steps: int, total_steps: int) -> str:
    """What a plausible mistake explains these learning rates, or ""."""
    def at(step):
        return found.get(step, np.nan)

    if warmup_steps and np.isclose(at(0), peak):
        return "it starts at the peak: a warm-up starts at 0"
    if warmup_steps and np.isclose(at(0), peak / warmup_steps):
        return "its warm-up is one step ahead: step 0 uses learning rate 0"
    if warmup_steps and np.isclose(at(warmup_steps - 1), peak):
        return (f"it reaches the peak at step {warmup_steps - 1}; counted from step 0, the warm-up's "
                f"{warmup_steps} steps end at step {warmup_steps}, where the peak is first used")
    if at(total_steps + 1) < 0:
        return "it goes below 0 after the last step: hold it at 0"
    if warmup_steps and np.isclose(at(total_steps), peak * warmup_steps / total_steps):
        return (f"its decay lasts {total_steps} steps after the warm-up and ends at step "
                f"{warmup_steps + total_steps}; it ends at step {total_steps}, counted from 0, so it "
                f"lasts total_steps - warmup_steps = {total_steps - warmup_steps} steps (the decay_steps "
                "of Keras's CosineDecay count the steps after the warm-up)")
    if at(total_steps - 1) > 0 and not np.isclose(at(total_steps), 0):
        return (f"it does not reach 0 at step {total_steps}: decay all the way to 0, not to a fraction "
                "of the peak")
    middle = (warmup_steps + total_steps) // 2
    expected = triangle_reference(middle, peak, warmup_steps, total_steps)
    if np.isclose(at(middle), peak * (total_steps - middle) / total_steps):
        return "its decay runs over all the steps; it starts after the warm-up"
    if not np.isclose(at(middle), expected) and at(middle) > expected:
        return ("it decays too slowly: a straight line from the peak at the warm-up's end to 0 at the "
                "last step")
    return ""


@exercise("09.1")
def exercise_09_1(triangle, hidden=False):
    """Compare a learner's schedule with the reference at every step of several cases."""
    cases = TRIANGLE_CASES + (HIDDEN_TRIANGLE_CASES if hidden else [])
    for peak, warmup_steps, total_steps in cases:
        where = f"with peak {peak:g}, warmup_steps {warmup_steps}, total_steps {total_steps}"
        found = {}
        for step in range(total_steps + 4):
            value = triangle(step, peak, warmup_steps, total_steps)
            try:
                found[step] = float(value)
            except (TypeError, ValueError):
                expect(False, f"{where}, your function returned {value!r} at step {step}, expected a number")
        for step, value in found.items():
            expected = triangle_reference(step, peak, warmup_steps, total_steps)
            if not np.isclose(value, expected, rtol=1e-4, atol=1e-7 * peak):
                why = _triangle_diagnosis(found, peak, warmup_steps, total_steps)
                expect(False, f"{where}, your learning rate at step {step} is {value:.6g}, expected "
                              f"{expected:.6g}" + (f": {why}" if why else ""))
    return f"It matches the schedule at every step of {len(cases)} cases"


# (height, width, channels, size, p): images whose every pixel is above 0, so erasing shows
CUTOUT_CASES = [(28, 28, 1, 8, 0.5), (32, 32, 3, 10, 0.8)]
HIDDEN_CUTOUT_CASES = [(20, 24, 1, 6, 0.3), (28, 28, 1, 9, 0.5)]
CUTOUT_IMAGES = 3000


def _boxes(changed: np.ndarray):
    """For each image's changed-pixel mask (n, h, w): its bounding box (top, bottom, left, right),
    exclusive ends, or None where nothing changed."""
    boxes = []
    for mask in changed:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes.append(None if not len(rows) else (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1))
    return boxes


def _mean_midpoint(length: int, size: int) -> float:
    """The mean midpoint of a square's clipped extent along one axis, its centre uniform."""
    starts = np.arange(length) - size // 2
    return float(np.mean([(max(start, 0) + min(start + size, length)) / 2 for start in starts]))


@exercise("09.2")
def exercise_09_2(cutout, hidden=False):
    """Check a learner's cutout by the properties of its output on many images: only squares of
    zeros, in the right share of the images, anywhere, cut off by the edges."""
    cases = CUTOUT_CASES + (HIDDEN_CUTOUT_CASES if hidden else [])
    for number, (height, width, channels, size, p) in enumerate(cases):
        where = f"for {height}×{width}×{channels} images, size {size}, p {p}"
        data_rng = np.random.default_rng(100 + number)
        images = data_rng.uniform(0.1, 1.0, (CUTOUT_IMAGES, height, width, channels)).astype("float32")
        before = images.copy()
        out = cutout(images, np.random.default_rng(number), size=size, p=p)
        expect(np.array_equal(images, before),
               f"{where}, your function changed the images it was given: erase in a copy")
        expect(isinstance(out, np.ndarray) and out.shape == images.shape and out.dtype == images.dtype,
               f"{where}, your function returned {type(out).__name__} "
               f"{getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}, expected a new array of "
               f"shape {images.shape} and dtype {images.dtype}")
        changed = out != images
        filled = out[changed]
        if np.any(filled != 0):
            expect(False, f"{where}, an erased pixel holds {filled[filled != 0][0]:.4g}; fill with 0")
        pixels = changed.any(axis=-1)
        expect(np.array_equal(changed, np.repeat(pixels[..., None], channels, axis=-1)),
               f"{where}, some pixels are erased in only some of their {channels} channels: erase all "
               "channels of a pixel")
        boxes = _boxes(pixels)
        erased = [box for box in boxes if box is not None]
        for index, box in enumerate(boxes):
            if box is None:
                continue
            top, bottom, left, right = box
            expect(pixels[index, top:bottom, left:right].all(),
                   f"{where}, image {index}'s erased pixels do not form one filled rectangle")
            expect(bottom - top <= size and right - left <= size,
                   f"{where}, image {index} has an erased area of {bottom - top}×{right - left} pixels; "
                   f"a square is at most {size}×{size}")
            inside = top > 0 and left > 0 and bottom < height and right < width
            expect(not inside or (bottom - top, right - left) == (size, size),
                   f"{where}, image {index} has an erased area of {bottom - top}×{right - left} pixels away "
                   f"from the edges, expected {size}×{size}")
        share = len(erased) / len(images)
        expect(abs(share - p) < 0.05,
               f"{where}, you erased a square in {share:.0%} of the images, expected about {p:.0%}: "
               "erase each image with probability p"
               + (" (or a slice whose start is negative, which counts from the end and erases "
                  "nothing: clip the start at 0)" if 0 < p - share < 0.2 else ""))
        expect(len({box for box in erased}) > 1,
               f"{where}, every erased square is in the same place: draw a centre for each image")
        clipped = {edge: any(box[index] == outside
                             and (box[1] - box[0] if index < 2 else box[3] - box[2]) < size for box in erased)
                   for edge, index, outside in (("top", 0, 0), ("bottom", 1, height), ("left", 2, 0),
                                                ("right", 3, width))}
        expect(clipped["bottom"] or clipped["right"] or clipped["top"] or clipped["left"],
               f"{where}, no square is cut off by an edge: the centre is any pixel of the image, so a "
               "square near the edge is cut off by it")
        expect(clipped["top"] and clipped["left"],
               f"{where}, squares are cut off by the bottom and right edges but never by the top or left "
               "one: draw the square's centre uniformly, not its top-left corner")
        expect(clipped["bottom"] and clipped["right"],
               f"{where}, squares are cut off by the top and left edges but never by the bottom or right "
               "one: draw the square's centre uniformly, not its bottom-right corner")
        centres = np.array([((box[0] + box[1]) / 2, (box[2] + box[3]) / 2) for box in erased])
        expected = (_mean_midpoint(height, size), _mean_midpoint(width, size))
        expect(np.all(np.abs(centres.mean(axis=0) - expected) < 1.0),
               f"{where}, the erased squares sit around {tuple(np.round(centres.mean(axis=0), 1))} on "
               f"average, expected about {tuple(np.round(expected, 1))}: draw the centre uniformly")
        again = cutout(images, np.random.default_rng(number), size=size, p=p)
        expect(np.array_equal(again, out),
               f"{where}, two calls with generators of the same seed gave different images: draw every "
               "random number from rng")
    return f"It erases squares as cutout does in {len(cases)} cases of {CUTOUT_IMAGES:,} images"
