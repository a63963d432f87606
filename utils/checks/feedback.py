"""What every exercise check shares: how it reports success and failure.

A check is a function decorated with ``@exercise("01.1")``. It calls the learner's answer on
cases and uses ``expect`` for each requirement, with a message that says what was found and
what was expected ("your output is 26×26, expected 13×13 with stride 2"). The first unmet
requirement raises ``ExerciseFailed`` with that message. A stub that still raises
``NotImplementedError`` passes through unchanged.

Each check has visible cases, the ones the notebook's check cell runs, and hidden cases that
only grading adds (``hidden=True``): an answer tuned to the visible messages still fails. The
grade never comes from the learner's kernel: ``course exercises grade`` runs the checks itself,
in a process of its own (``utils/tools/grading.py``).
"""

from __future__ import annotations

import functools

import numpy as np


class ExerciseFailed(AssertionError):
    """A learner's answer did not meet one requirement; the message says which and why."""

    def _render_traceback_(self) -> list[str]:  # IPython shows the message, not a traceback
        return [f"ExerciseFailed: {self}"]


def expect(condition, message: str) -> None:
    """Require ``condition``; otherwise fail with ``message`` (what was found, what was expected)."""
    if not condition:
        raise ExerciseFailed(message)


def expect_close(found, expected, what: str, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Require an array (or number) close to the expected one; say the shape or the worst entry."""
    found, expected = np.asarray(found), np.asarray(expected)
    expect(found.shape == expected.shape,
           f"{what}: your result has shape {found.shape}, expected {expected.shape}")
    if not np.allclose(found, expected, atol=atol, rtol=rtol):
        worst = np.unravel_index(np.argmax(np.abs(found - expected)), found.shape)
        position = f" at index {tuple(int(i) for i in worst)}" if found.ndim else ""
        raise ExerciseFailed(f"{what}: your value{position} is {found[worst]:.6g}, "
                             f"expected {expected[worst]:.6g}")


def exercise(exercise_id: str):
    """Make a check print its outcome; ``hidden=True`` adds the cases only grading runs."""
    def decorate(check):
        @functools.wraps(check)
        def run(answer, *, hidden: bool = False):
            try:
                note = check(answer, hidden=bool(hidden))
            except ExerciseFailed as failure:
                raise ExerciseFailed(f"Exercise {exercise_id}: {failure}") from None
            message = f"Exercise {exercise_id}: correct" + (f". {note}" if note else ".")
            print(message)  # returns None: a check cell's last line shows no value
        run.exercise_id = exercise_id
        return run
    return decorate
