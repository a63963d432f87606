"""Exercise checks: each ``exercise_NN_k(answer)`` tests a learner's answer on cases the learner
cannot see, and says what is wrong, not just that something is. Introduced in lesson 01.

A lesson calls ``checks.exercise_01_1(conv2d)`` after its exercise cell. The checks of lesson NN
live in ``utils/checks/lessonNN.py``; this package finds them by name.
"""

from __future__ import annotations

import importlib
import re

from utils.checks.feedback import ExerciseFailed, exercise, expect, expect_close

__all__ = ["ExerciseFailed", "exercise", "expect", "expect_close"]

_NAME = re.compile(r"exercise_(\d\d)_\d+")


def __getattr__(name: str):
    match = _NAME.fullmatch(name)
    if not match:
        raise AttributeError(f"module 'utils.checks' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"utils.checks.lesson{match[1]}")
    except ModuleNotFoundError:
        raise AttributeError(f"no checks for lesson {match[1]}: utils/checks/lesson{match[1]}.py "
                             f"does not exist") from None
    return getattr(module, name)
