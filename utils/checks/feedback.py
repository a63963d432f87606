"""What every exercise check shares: how it reports success, failure and the grade.

A check is a function decorated with ``@exercise("01.1")``. It calls the learner's answer on
hidden cases and uses ``expect`` for each requirement, with a message that says what was
found and what was expected ("your output is 26×26, expected 13×13 with stride 2"). The
first unmet requirement raises ``ExerciseFailed`` with that message. A stub that still raises
``NotImplementedError`` passes through unchanged.

When the environment variable ``COURSE_GRADES`` names a file, every check appends one JSON
line to it: ``{"exercise": "01.1", "passed": true, "message": "..."}``. The grader reads it.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

GRADES_ENV = "COURSE_GRADES"


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


def _record(exercise_id: str, passed: bool, message: str) -> None:
    path = os.environ.get(GRADES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as grades:
            grades.write(json.dumps({"exercise": exercise_id, "passed": passed, "message": message}) + "\n")


def exercise(exercise_id: str):
    """Make a check report its outcome: a line for the learner, a JSON line for the grader."""
    def decorate(check):
        @functools.wraps(check)
        def run(*answer, **options):
            try:
                note = check(*answer, **options)
            except ExerciseFailed as failure:
                _record(exercise_id, False, str(failure))
                raise ExerciseFailed(f"Exercise {exercise_id}: {failure}") from None
            except NotImplementedError:
                _record(exercise_id, False, "not attempted")
                raise
            message = f"Exercise {exercise_id}: correct" + (f". {note}" if note else ".")
            _record(exercise_id, True, message)
            print(message)
        return run
    return decorate
