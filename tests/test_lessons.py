"""Tests of utils/tools/lessons.py: the lesson pages, their checks and the README's lesson table."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from utils.course import colab_url
from utils.tools import lessons
from utils.tools.cli import main

import pytest

REPO = Path(__file__).resolve().parents[1]
README = "# Course\n\n## Lessons\n\n<!-- lessons:start -->\n<!-- lessons:end -->\n\nAfter the table.\n"


@pytest.fixture
def course(tmp_path) -> Path:
    """A copy of the lesson pages, a stand-in file per notebook, and a README with a fresh table."""
    shutil.copytree(REPO / "lessons", tmp_path / "lessons")
    (tmp_path / "notebooks").mkdir()
    for lesson in lessons.load_lessons(tmp_path):
        (tmp_path / lesson["notebook"]).write_text("{}")
    (tmp_path / "README.md").write_text(README)
    assert main(["lessons", "table", "--write", "--root", str(tmp_path)]) == 0
    return tmp_path


def page(root: Path, number: int) -> Path:
    return next((root / "lessons").glob(f"{number:02d}_*.md"))


def mark_unmeasured(path: Path) -> None:
    unmeasured = f"run_time: {lessons.UNMEASURED}"
    path.write_text(re.sub(r"(?m)^run_time:.*$", unmeasured, path.read_text(), count=1))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_lesson_pages_are_valid():
    problems = [p for p in lessons.check(REPO) if not p.startswith("README.md")]
    assert problems == []


def test_readme_lesson_table_is_up_to_date():
    problems = [p for p in lessons.check(REPO) if p.startswith("README.md")]
    assert problems == [], "run `course lessons table --write` (README.md needs the lessons markers)"


def test_every_lesson_notebook_has_a_page():
    pages = {lesson["notebook"] for lesson in lessons.load_lessons(REPO)}
    notebooks = {f"notebooks/{nb.name}" for nb in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert notebooks <= pages


def test_front_matter_reads_the_same_as_yaml():
    """The front matter is plain YAML too, so GitHub renders it as a table."""
    yaml = pytest.importorskip("yaml")
    for path in sorted((REPO / "lessons").glob("[0-9][0-9]_*.md")):
        meta, _ = lessons.parse_page(path)
        by_yaml = yaml.safe_load(path.read_text().split("---\n")[1])
        assert {key: value if isinstance(value, list) else str(value)
                for key, value in by_yaml.items()} == meta, path.name


def test_the_copy_passes_every_check(course):
    assert lessons.check(course) == []


def test_table_rows_link_page_and_colab(course):
    table = lessons.lesson_table(lessons.load_lessons(course))
    rows = [line for line in table.splitlines() if line.startswith("| 0")]
    assert len(rows) == len(list((course / "lessons").glob("*.md")))
    first = lessons.load_lessons(course)[0]
    assert rows[0].startswith(f"| 01 | [{first['title']}](lessons/{first['path'].name}) | ")
    assert f"]({colab_url(first['notebook'])}) |" in rows[0]
    assert f"| {first['level']} | {first['run_time']} |" in rows[0]


def test_an_unmeasured_lesson_shows_a_dash(course):
    mark_unmeasured(page(course, 1))
    rows = lessons.lesson_table(lessons.load_lessons(course)).splitlines()
    assert "| beginner | — |" in next(row for row in rows if row.startswith("| 01 |"))


def test_stale_table_is_detected_and_rewritten(course, capsys):
    assert lessons.set_run_time(page(course, 1), 100) == "1 min 40 s"
    assert any("lesson table is stale" in p for p in lessons.check(course))
    assert main(["lessons", "check", "--root", str(course)]) == 1
    assert "stale" in capsys.readouterr().err

    assert main(["lessons", "table", "--write", "--root", str(course)]) == 0
    readme = (course / "README.md").read_text()
    assert "| 1 min 40 s |" in readme
    assert readme.startswith("# Course\n\n## Lessons\n") and readme.endswith("\n\nAfter the table.\n")
    assert lessons.check(course) == []
    assert main(["lessons", "table", "--write", "--root", str(course)]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_page_pointing_to_a_missing_notebook(course):
    (course / "notebooks" / "03_training.ipynb").unlink()
    assert "lessons/03_training.md: points to a missing notebook: notebooks/03_training.ipynb" \
        in lessons.check(course)


def test_page_pointing_to_another_notebook(course):
    edit(page(course, 2), "notebook: notebooks/02_cnn_architecture.ipynb", "notebook: notebooks/02_cnn.ipynb")
    problems = "\n".join(lessons.check(course))
    assert "should be 'notebooks/02_cnn_architecture.ipynb'" in problems
    assert "missing notebook: notebooks/02_cnn.ipynb" in problems


@pytest.mark.parametrize("number, old, new, expected", [
    (2, "(03_training.md)", "(04_what_the_network_learned.md)", "02_cnn_architecture.md: next-lesson"),
    (3, "[← Lesson 02", "[Lesson 02", "lessons/03_training.md: previous-lesson link should be"),
    (1, "[All lessons]", "[← Lesson 02 — CNN architecture and counting parameters](02_cnn_architecture.md) · "
     "[All lessons]", "lessons/01_convolution_and_pooling.md: previous-lesson link should be absent"),
    (2, "Lesson 03 — Training and evaluating a CNN →", "Lesson 03 — Training →", "next-lesson link"),
])
def test_inconsistent_navigation(course, number, old, new, expected):
    edit(page(course, number), old, new)
    problems = lessons.check(course)
    assert any(expected in p for p in problems), problems


def test_a_missing_page_breaks_numbering_and_navigation(course):
    page(course, 3).unlink()
    problems = "\n".join(lessons.check(course))
    remaining = len(list((course / "lessons").glob("[0-9][0-9]_*.md")))
    assert f"lesson numbers must run 1, 2, … {remaining}" in problems
    assert "02_cnn_architecture.md: next-lesson link" in problems


NO_ANSWER = "quiz question 1 has no valid answer"


@pytest.mark.parametrize("old, new, expected", [
    ("**Answer: B.** Only", "**Answer: E.** Only", f"{NO_ANSWER}: 'Answer: E' names no option"),
    ("**Answer: B.** Only", "The answer is B. Only", f"{NO_ANSWER}: it needs exactly one"),
    ("**Answer: B.** Only", "**Answer: B.** Only\n\n**Answer: C.** Or", NO_ANSWER),
    ("- D. 1\n", "", None),  # three options are still a valid question
    ("- A. 0\n", "", "quiz question 1: options must be lines"),
])
def test_quiz_without_a_valid_answer(course, old, new, expected):
    edit(page(course, 1), old, new)
    problems = lessons.check(course)
    if expected is None:
        assert problems == []
    else:
        prefix = "lessons/01_convolution_and_pooling.md: "
        assert any(p.startswith(prefix + expected) for p in problems), problems


def test_answer_needs_an_explanation(course):
    path = page(course, 2)
    text = path.read_text()
    start = text.index("**Answer: A.**")
    path.write_text(text[:start] + "**Answer: A.**" + text[text.index("\n", start):])
    assert any("needs a one-line explanation" in p for p in lessons.check(course))


def test_quiz_needs_three_to_five_questions(course):
    path = page(course, 3)
    text = path.read_text()
    path.write_text(text[:text.index("### 3.")] + text[text.index("\n---\n", text.index("### 3.")):])
    assert "lessons/03_training.md: quiz has 2 questions, not 3–5" in lessons.check(course)


@pytest.mark.parametrize("old, new, expected", [
    ("level: beginner", "level: easy", "level 'easy' is not one of: beginner, intermediate, advanced"),
    ("run_time: unmeasured", "run_time: 90 seconds", "run_time '90 seconds' is neither"),
    ("run_time: unmeasured", "run_time: ", "front matter needs 'run_time: …'"),
    ("number: 1\n", "number: 2\n", "number '2' does not match the file name"),
    ("title: ", "titel: ", "front matter needs 'title: …'"),
    ("objectives:\n", "objectives:\nlearning\n", "line 8: cannot read 'learning'"),
])
def test_front_matter_problems(course, old, new, expected):
    mark_unmeasured(page(course, 1))
    edit(page(course, 1), old, new)
    problems = lessons.check(course)
    assert any(expected in p for p in problems), problems


def test_cli_table_prints_the_block(course, capsys):
    assert main(["lessons", "table", "--root", str(course)]) == 0
    out = capsys.readouterr().out
    assert out.strip() in (course / "README.md").read_text()


@pytest.mark.parametrize("readme", [None, "# Course without markers\n", f"{lessons.END}\n{lessons.START}\n"])
def test_write_needs_a_readme_with_markers(course, capsys, readme):
    if readme is None:
        (course / "README.md").unlink()
    else:
        (course / "README.md").write_text(readme)
    assert main(["lessons", "table", "--write", "--root", str(course)]) == 1
    assert "course lessons table: error: " in capsys.readouterr().err
    assert any(p.startswith("README.md") for p in lessons.check(course))


def test_check_reports_clearly(course, capsys):
    assert main(["lessons", "check", "--root", str(course)]) == 0
    (course / "notebooks" / "01_convolution_and_pooling.ipynb").unlink()
    assert main(["lessons", "check", "--root", str(course)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["course lessons check: lessons/01_convolution_and_pooling.md: points to a missing "
                   "notebook: notebooks/01_convolution_and_pooling.ipynb", "1 problem(s)"]


@pytest.mark.parametrize("seconds, text", [(100, "1 min 40 s"), (120, "2 min"), (45.4, "45 s"), (0.2, "0 s")])
def test_format_run_time(seconds, text):
    assert lessons.format_run_time(seconds) == text
    assert lessons.RUN_TIME.fullmatch(text)
