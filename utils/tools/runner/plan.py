"""Planning `course run`: which lessons, which parameter values, one run per combination.

Everything here is checked before anything executes: an unknown lesson, dataset or parameter,
or a value of the wrong type, is a ``RunError`` naming the value and the valid choices.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from utils import course
from utils.tools import CHECKOUT

KERNEL = "python3"
SUCCEEDED = ("ok", "reused")
# The lessons' switch for the test set. `course run` sets it on every run of a lesson that
# declares it: False for the candidates, True only with --final, for the one setting named.
REPORT_TEST = "report_test"
_NO_LITERAL = object()  # a default the parameters cell computes instead of writing literally


class RunError(ValueError):
    """Bad input to `course run`; the message names the value and the valid choices."""


@dataclass(frozen=True, eq=False)
class Lesson:
    path: Path
    defaults: dict  # parameter name -> literal default, or _NO_LITERAL

    @property
    def stem(self) -> str:
        return self.path.stem

    def code_hash(self) -> str:
        import nbformat

        cells = nbformat.read(self.path, as_version=4).cells
        code = "\n\0".join(cell.source for cell in cells if cell.cell_type == "code")
        return hashlib.sha256(code.encode()).hexdigest()

    def text(self) -> str:
        """The notebook file's text: what a worker receives, so it needs no copy of the course's files."""
        return self.path.read_text(encoding="utf-8")


@dataclass(eq=False)
class Run:
    lesson: Lesson
    parameters: dict  # only the ones given on the command line that the lesson declares
    folder: str
    status: str = "pending"
    wall_time_s: float | None = None
    results: dict = field(default_factory=dict)
    error: str = ""
    attempts: int = 0  # times it was handed to a worker in this command

    @property
    def label(self) -> str:
        return f"{self.lesson.stem} [{self.folder}]"

    def notebook(self, out: Path) -> Path:
        return out / self.folder / f"{self.lesson.stem}.ipynb"

    @property
    def datasets(self) -> tuple[str, ...]:
        """The course dataset its `dataset` parameter names, given or by default; () without one."""
        from utils import data

        name = self.parameters.get("dataset", self.lesson.defaults.get("dataset"))
        return (name,) if isinstance(name, str) and name in data.dataset_names() else ()


def default_notebooks() -> Path:
    """The lesson notebooks: this package's checkout, else ./notebooks."""
    checkout = CHECKOUT / "notebooks"
    return checkout if checkout.is_dir() else Path.cwd() / "notebooks"


def find_lessons(folder: Path) -> list[Path]:
    """The lesson notebooks ``NN_name.ipynb`` in ``folder``, in order."""
    lessons = sorted(folder.glob("[0-9][0-9]_*.ipynb")) if folder.is_dir() else []
    if not lessons:
        raise RunError(f"--notebooks {folder}: no lesson notebooks NN_name.ipynb there")
    return lessons


def select_lessons(paths: list[Path], wanted: list[str] | None) -> list[Lesson]:
    """The lessons named by number (``3``, ``03``) or stem, with their parameters' defaults."""
    import papermill

    by_name = {}
    for path in paths:
        by_name.update({path.stem: path, path.name[:2]: path, str(int(path.name[:2])): path})
    chosen = []
    for name in wanted or [path.name[:2] for path in paths]:
        if name not in by_name:
            raise RunError(f"unknown lesson {name!r}; valid choices: "
                           + ", ".join(f"{p.name[:2]} ({p.stem})" for p in paths))
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    lessons = []
    for path in chosen:
        declared = papermill.inspect_notebook(str(path))
        lessons.append(Lesson(path, {name: _literal(info["default"]) for name, info in declared.items()}))
    return lessons


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return _NO_LITERAL


def parse_value(text: str):
    """A command-line value as a Python literal (``5``, ``None``, ``'a'``), else as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def gather_values(args: argparse.Namespace) -> dict[str, list[tuple[str, object]]]:
    """Parameter name -> [(how it was given, value), ...] from --dataset, --epochs and --set."""
    given: dict[str, list[tuple[str, object]]] = {}
    for name in ("dataset", "epochs"):
        for text in getattr(args, name) or []:
            given.setdefault(name, []).append((f"--{name} {text}", parse_value(text)))
    for item in args.set or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise RunError(f"--set {item!r}: expected NAME=VALUE, e.g. --set batch_size=128")
        if name.strip() == REPORT_TEST:
            raise RunError(f"--set {item}: course run sets {REPORT_TEST} itself, False for every "
                           "candidate; to evaluate the test set, name one setting and add --final")
        given.setdefault(name.strip(), []).append((f"--set {item}", parse_value(text.strip())))
    return given


def check_values(given: dict, lessons: list[Lesson]) -> dict[str, list]:
    """Validate every name and value; return name -> distinct values, in a fixed order."""
    declared = sorted({name for lesson in lessons for name in lesson.defaults} - {REPORT_TEST})
    values: dict[str, list] = {}
    for name, items in given.items():
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RunError(f"{items[0][0]}: no selected lesson has a parameter {name!r}{hint}; "
                           f"valid choices: {', '.join(declared) or 'none'}")
        for option, value in items:
            try:
                _check({name: value}, lessons)
            except ValueError as error:
                raise RunError(f"{option}: {error}") from None
            if value not in values.setdefault(name, []):
                values[name].append(value)
    order = ["dataset", "epochs"] + sorted(set(values) - {"dataset", "epochs"})
    return {name: values[name] for name in order if name in values}


def _check(parameters: dict, lessons: list[Lesson]) -> None:
    """course.check_parameters on the names it knows; other names must match the defaults' type."""
    import utils

    if "architecture" in parameters:  # its check imports Keras: keep TensorFlow's start-up notes away
        utils.import_tensorflow_quietly()
    known = {}
    for name, value in parameters.items():
        try:
            course.check_parameters(**{name: value})
            known[name] = value
        except TypeError:  # a parameter the course's checks do not know: compare with the defaults
            for lesson in lessons:
                default = lesson.defaults.get(name, _NO_LITERAL)
                if default is _NO_LITERAL or default is None or _same_type(value, default):
                    continue
                raise ValueError(f"{name} must be a {type(default).__name__} like the default "
                                 f"{default!r} of {lesson.stem}; got {value!r}") from None
    course.check_parameters(**known)


def _same_type(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def folder_name(parameters: dict) -> str:
    """A combination's folder: ``mnist-e5-batch_size=128``; ``defaults`` when nothing was given.

    A final run (``report_test=True``) gets ``-final`` added, or is ``final`` alone; the
    candidates' ``report_test=False`` is not named.
    """
    parts = []
    for name, value in parameters.items():
        if name == REPORT_TEST:
            continue
        text = re.sub(r"[^\w.+-]", "_", str(value))
        parts.append(text if name == "dataset" else f"e{text}" if name == "epochs" else f"{name}={text}")
    if parameters.get(REPORT_TEST) is True:
        parts.append("final")
    return "-".join(parts) or "defaults"


def plan_runs(lessons: list[Lesson], values: dict[str, list], final: bool = False) -> list[Run]:
    """One run per lesson and combination of the values of the parameters that lesson declares.

    A lesson that declares ``report_test`` gets it on every run: False, so that candidates are
    compared on validation with the test set untouched; True with ``final``, which needs one
    setting of such a lesson, since the test set reports a choice once and does not make it.
    """
    runs = []
    for lesson in lessons:
        axes = {name: options for name, options in values.items() if name in lesson.defaults}
        combinations = list(itertools.product(*axes.values()))
        if final and REPORT_TEST in lesson.defaults and len(combinations) > 1:
            several = ", ".join(f"{name}: {' '.join(map(str, options))}" for name, options in axes.items()
                                if len(options) > 1)
            raise RunError(f"--final: {lesson.stem} would run {len(combinations)} settings ({several}); "
                           "the test set reports the setting you chose on validation, so give one value "
                           "per parameter")
        for combination in combinations:
            parameters = json.loads(json.dumps(dict(zip(axes, combination, strict=True))))
            if REPORT_TEST in lesson.defaults:
                parameters[REPORT_TEST] = final
            effective = {k: v for k, v in lesson.defaults.items() if v is not _NO_LITERAL}
            try:
                _check({**effective, **parameters}, [lesson])
            except ValueError as error:
                raise RunError(f"{lesson.stem} with {describe(parameters)}: {error}") from None
            runs.append(Run(lesson, parameters, folder_name(parameters)))
    return runs


def describe(parameters: dict) -> str:
    """Parameters as ``dataset=mnist, epochs=5``; ``its defaults`` when there are none."""
    return ", ".join(f"{k}={v}" for k, v in parameters.items()) or "its defaults"
