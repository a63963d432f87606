"""CONTRIBUTING.md's checklist for adding a lesson: every lesson is in every place it names.

``PLACES`` lists where a lesson ``notebooks/NN_slug.ipynb`` must be registered, what the
checklist ("## Adding a lesson") must say about each place, and how to tell whether a lesson is
there. The checks read files only, so they also run on a copy of the repository, where a new
lesson is added one place at a time.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = "## Adding a lesson"


def lessons(root: Path) -> list[tuple[str, str]]:
    """(NN, NN_slug) of every lesson, from its notebook or its page (a page alone counts too)."""
    stems = {path.stem for folder, pattern in (("notebooks", "*.ipynb"), ("lessons", "*.md"))
             for path in (root / folder).glob(f"[0-9][0-9]_{pattern}")}
    return sorted((stem[:2], stem) for stem in stems)


def _read(root: Path, name: str) -> str:
    path = root / name
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def quick_settings(root: Path) -> dict:
    """``QUICK`` of tests/test_notebooks_papermill.py, read without importing it."""
    source = _read(root, "tests/test_notebooks_papermill.py")
    for node in ast.parse(source).body if source else []:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "QUICK" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def has_wrong_answers(root: Path, number: str) -> bool:
    """Lessons 01–05 in the WRONG table of tests/test_checks.py, later ones in their own module."""
    return (f'("{number}_' in _read(root, "tests/test_checks.py").split("WRONG = [", 1)[-1]
            or f"WRONG_{number}_" in _read(root, f"tests/test_checks_lesson{number}.py"))


def table_row(text: str, start: str) -> bool:
    return any(line.strip().startswith(start) for line in text.splitlines())


class Place(NamedTuple):
    name: str  # how a failure names the place
    checklist: tuple[str, ...]  # what the checklist must say about it
    present: Callable[[Path, str, str], bool]  # (root, NN, NN_slug) → is the lesson there?


PLACES = [
    Place("the notebook", ("notebooks/NN_slug.ipynb", "make notebooks LESSONS=NN"),
          lambda root, nn, stem: (root / "notebooks" / f"{stem}.ipynb").is_file()),
    Place("the CPU-dependence table of CONTRIBUTING.md", ("make cpu-dependence LESSONS=NN", "On another CPU"),
          lambda root, nn, stem: table_row(_read(root, "CONTRIBUTING.md"), f"| {nn} |")),
    Place("the lesson page", ("lessons/NN_slug.md", "## Overview", "course lessons check"),
          lambda root, nn, stem: (root / "lessons" / f"{stem}.md").is_file()),
    Place("the checks", ("utils/checks/lessonNN.py", "exercise_NN_k", "hidden"),
          lambda root, nn, stem: (root / "utils" / "checks" / f"lesson{nn}.py").is_file()),
    Place("the student notebook", ("notebooks/exercises/NN_slug.ipynb", "course exercises build"),
          lambda root, nn, stem: (root / "notebooks" / "exercises" / f"{stem}.ipynb").is_file()),
    Place("the wrong answers", ("tests/test_checks_lessonNN.py", "WRONG_NN_k", "at least three"),
          lambda root, nn, stem: has_wrong_answers(root, nn)),
    Place("the quick settings", ("QUICK", "tests/test_notebooks_papermill.py"),
          lambda root, nn, stem: nn in quick_settings(root)),
    Place("the README's lesson table", ("course lessons table --write", "make lesson-times"),
          lambda root, nn, stem: table_row(_read(root, "README.md"), f"| {nn} | [")),
    Place("the lesson times of benchmarks/README.md", ("benchmarks/README.md",),
          lambda root, nn, stem: table_row(_read(root, "benchmarks/README.md"), f"| `{stem}` |")),
]
# Places that apply to some lessons only: the checklist names them, no lesson must have them.
OPTIONAL = ("tests/test_lesson_code.py", "Introduced in lesson NN", "tests/test_quiz_keys.py", "report_test")


def missing_places(root: Path, number: str, stem: str) -> list[str]:
    return [place.name for place in PLACES if not place.present(root, number, stem)]


def checklist_section(text: str) -> str:
    """CONTRIBUTING.md's "## Adding a lesson" section ("" when there is none)."""
    if f"\n{CHECKLIST}\n" not in f"\n{text}":
        return ""
    return f"\n{text}".split(f"\n{CHECKLIST}\n", 1)[1].split("\n## ", 1)[0]


def unnamed(text: str) -> list[str]:
    """What the checklist in ``text`` fails to say, place by place."""
    section = " ".join(checklist_section(text).split())
    wanted = [(place.name, said) for place in PLACES for said in place.checklist]
    wanted += [("a place that applies to some lessons", said) for said in OPTIONAL]
    return [f"{name}: {said!r}" for name, said in wanted if said not in section]


def test_the_checklist_names_every_place():
    problems = unnamed((REPO / "CONTRIBUTING.md").read_text(encoding="utf-8"))
    assert not problems, "the checklist in CONTRIBUTING.md does not name:\n" + "\n".join(problems)


def test_a_place_the_checklist_stops_naming_is_reported():
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = checklist_section(text)
    dropped = text.replace(section, section.replace("tests/test_notebooks_papermill.py", "the tests"))
    assert unnamed(dropped) == ["the quick settings: 'tests/test_notebooks_papermill.py'"]
    # Named elsewhere in the file, it does not count: only the checklist does.
    assert unnamed(dropped + "\n## Later\n\ntests/test_notebooks_papermill.py\n") == unnamed(dropped)


@pytest.mark.parametrize("number, stem", lessons(REPO), ids=[stem for _, stem in lessons(REPO)])
def test_every_lesson_is_in_every_place(number, stem):
    missing = missing_places(REPO, number, stem)
    assert not missing, f"lesson {stem} is missing from: {'; '.join(missing)}; see CONTRIBUTING.md"


def test_a_new_lesson_is_missing_from_every_place_until_it_is_added_there(tmp_path):
    root = tmp_path / "repo"
    for folder in ("notebooks", "lessons", "utils/checks"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    tests = [f"tests/{path.name}" for path in REPO.glob("tests/test_checks*.py")]
    for name in ("README.md", "CONTRIBUTING.md", "benchmarks/README.md", "tests/test_notebooks_papermill.py",
                 *tests):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    assert all(missing_places(root, number, stem) == [] for number, stem in lessons(root))

    (root / "lessons" / "10_new_lesson.md").write_text("---\n---\n")  # a page alone is a lesson too
    expected = [place.name for place in PLACES if place.name != "the lesson page"]
    assert missing_places(root, "10", "10_new_lesson") == expected
    adds = [
        lambda: (root / "notebooks" / "10_new_lesson.ipynb").write_text("{}"),
        lambda: (root / "CONTRIBUTING.md").write_text(_read(root, "CONTRIBUTING.md") + "\n| 10 | 1 |\n"),
        lambda: None,
        lambda: (root / "utils" / "checks" / "lesson10.py").write_text(""),
        lambda: (root / "notebooks" / "exercises" / "10_new_lesson.ipynb").write_text("{}"),
        lambda: (root / "tests" / "test_checks_lesson10.py").write_text("WRONG_10_1 = []\n"),
        lambda: (root / "tests" / "test_notebooks_papermill.py").write_text(
            _read(root, "tests/test_notebooks_papermill.py").replace('"08": {', '"10": {}, "08": {')),
        lambda: (root / "README.md").write_text(_read(root, "README.md") + "\n| 10 | [New](x) |\n"),
        lambda: (root / "benchmarks" / "README.md").write_text(
            _read(root, "benchmarks/README.md") + "\n| `10_new_lesson` | 1 s | 3 min | nothing |\n"),
    ]
    names = [place.name for place in PLACES]
    for count, (place, add) in enumerate(zip(PLACES, adds, strict=True), 1):
        add()
        assert place.name not in missing_places(root, "10", "10_new_lesson")
        assert missing_places(root, "10", "10_new_lesson") == [p for p in expected if p not in names[:count]]


DOCUMENTS = ("README.md", "docs/instructors.md", "CONTRIBUTING.md", "website/index.md")


def broken_links(root: Path, document: str) -> list[str]:
    """Relative links of a Markdown file to a file that does not exist or a heading it lacks."""
    import posixpath
    import re

    def anchors(path: Path) -> set[str]:
        titles = re.findall(r"(?m)^#{1,6} (.+)$", path.read_text(encoding="utf-8"))
        return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-") for title in titles}

    text = re.sub(r"(?s)```.*?```", "", _read(root, document))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = root / posixpath.normpath(posixpath.join(posixpath.dirname(document), path or document))
        if not linked.exists():
            broken.append(f"{document}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{document}: {target}: no such heading")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_documents_link_to_files_and_headings_that_exist(document):
    assert broken_links(REPO, document) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Course\n\n## Start\n")
    (tmp_path / "docs" / "instructors.md").write_text(
        "[ok](../README.md#start) [gone](../README.md#finish) [file](../missing.md)\n")
    assert broken_links(tmp_path, "docs/instructors.md") == [
        "docs/instructors.md: ../README.md#finish: no such heading",
        "docs/instructors.md: ../missing.md: no such file"]
