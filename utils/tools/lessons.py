"""Lesson pages (``lessons/NN_slug.md``): their checks and the README's lesson table.

A page starts with front matter between ``---`` lines: ``key: value`` lines and one list,
``objectives``, of ``  - item`` lines. Its ``## Quiz`` section holds ``###`` questions,
each with options ``- A. …`` and one answer line ``**Answer: B.** why``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from utils.course import badge_row, colab_url
from utils.tools import CHECKOUT

START, END = "<!-- lessons:start -->", "<!-- lessons:end -->"
FIELDS = ("number", "title", "level", "run_time", "notebook", "objectives")
LEVELS = ("beginner", "intermediate", "advanced")
UNMEASURED = "unmeasured"  # run_time until the lesson has been timed
RUN_TIME = re.compile(r"\d+ min( \d+ s)?|\d+ s")  # "1 min 40 s", "2 min", "45 s"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
OPTION = re.compile(r"- ([A-Z])\. \S.*")
ANSWER = re.compile(r"\*\*Answer: ([A-Z])\.\*\*(.*)")
PREV_LINK, NEXT_LINK = re.compile(r"\[← [^\]]+\]\([^)]+\)"), re.compile(r"\[[^\]]+ →\]\([^)]+\)")


class LessonError(ValueError):
    """A lesson page or README that cannot be read as the course expects."""


def parse_page(path: Path) -> tuple[dict, str]:
    """A page's front matter (strings, and lists of strings) and its body."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != "---" or "---" not in lines[1:]:
        raise LessonError(f"{path.name}: no front matter (a '---' line, key: value lines, '---')")
    end, meta, key = lines.index("---", 1), {}, None
    for number, line in enumerate(lines[1:end], start=2):
        item, field = re.fullmatch(r"  - (.+)", line), re.fullmatch(r"([a-z_]+):(.*)", line)
        if item and isinstance(meta.get(key), list):
            meta[key].append(item[1].strip())
        elif field and field[1] not in meta:
            key, value = field[1], field[2].strip()
            meta[key] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value or []
        else:
            raise LessonError(f"{path.name}, line {number}: cannot read {line!r} "
                              f"(expected 'key: value', a new key, or '  - item' under a list)")
    return meta, "\n".join(lines[end + 1:])


def load_lessons(root: Path) -> list[dict]:
    """Every page under ``root/lessons`` as a dict: its front matter plus ``path`` and ``body``."""
    return [{**meta, "path": path, "body": body}
            for path in sorted((root / "lessons").glob("[0-9][0-9]_*.md"))
            for meta, body in [parse_page(path)]]


def format_run_time(seconds: float) -> str:
    """A measured wall time as pages write it: ``1 min 40 s``, ``2 min``, ``45 s``."""
    minutes, rest = divmod(round(seconds), 60)
    return " ".join([f"{minutes} min"] * bool(minutes) + [f"{rest} s"] * bool(rest or not minutes))


def set_run_time(page: Path, seconds: float) -> str:
    """Write a measured run time into a page's front matter; return the text written."""
    text = format_run_time(seconds)
    page.write_text(re.sub(r"(?m)^run_time:.*$", f"run_time: {text}",
                           page.read_text(encoding="utf-8"), count=1), encoding="utf-8")
    return text


def heading(lesson: dict) -> str:
    """A lesson's title line, as its page and its neighbours' links write it."""
    return f"Lesson {int(lesson['number']):02d} — {lesson['title']}"


def nav_link(lesson: dict, direction: str) -> str:
    """The link to ``lesson`` from its neighbour; ``direction`` is "previous" or "next"."""
    text = f"← {heading(lesson)}" if direction == "previous" else f"{heading(lesson)} →"
    return f"[{text}]({lesson['path'].name})"


def lesson_table(lessons: list[dict]) -> str:
    """The README's lesson table, generated from the pages."""
    rows = ["<!-- generated from lessons/*.md by `course lessons table --write`; edit the pages -->",
            "| # | Lesson | Level | Run time | Open |", "|---|---|---|---|---|"]
    for lesson in lessons:
        run_time = "—" if lesson["run_time"] == UNMEASURED else lesson["run_time"]
        rows.append(f"| {int(lesson['number']):02d} | [{lesson['title']}](lessons/{lesson['path'].name}) "
                    f"| {lesson['level']} | {run_time} "
                    f"| [![Open In Colab]({COLAB_BADGE})]({colab_url(lesson['notebook'])}) |")
    return "\n".join(rows)


def replace_block(readme: str, table: str) -> str:
    """The README text with the block between the markers replaced by ``table``."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise LessonError(f"README.md needs one '{START}' line followed by one '{END}' line")
    before, rest = readme.split(START)
    return f"{before}{START}\n{table}\n{END}{rest.split(END)[1]}"


def quiz_problems(body: str) -> list[str]:
    """What is wrong with a page's quiz: 3–5 questions, each with exactly one valid answer."""
    quiz = re.search(r"(?ms)^## Quiz\s*$(.*?)(?=^## |\Z)", body)
    if not quiz:
        return ["has no '## Quiz' section"]
    questions = re.split(r"(?m)^### ", quiz[1])[1:]
    problems = [] if 3 <= len(questions) <= 5 else [f"quiz has {len(questions)} questions, not 3–5"]
    for where, question in ((f"quiz question {i}", q) for i, q in enumerate(questions, start=1)):
        lines = [line.strip() for line in question.splitlines()]
        letters = [m[1] for m in map(OPTION.fullmatch, lines) if m]
        answers = [m for m in map(ANSWER.fullmatch, lines) if m]
        if len(letters) < 2 or letters != [chr(ord("A") + i) for i in range(len(letters))]:
            problems.append(f"{where}: options must be lines '- A. …', '- B. …', … (found {letters})")
        if len(answers) != 1:
            problems.append(f"{where} has no valid answer: it needs exactly one line "
                            f"'**Answer: X.** why' (found {len(answers)})")
        elif answers[0][1] not in letters:
            problems.append(f"{where} has no valid answer: 'Answer: {answers[0][1]}' names no option "
                            f"(options: {', '.join(letters)})")
        elif not answers[0][2].strip():
            problems.append(f"{where}: the answer line needs a one-line explanation after '**Answer: X.**'")
    return problems


def page_problems(lesson: dict, root: Path, previous: dict | None, following: dict | None) -> list[str]:
    """What is wrong with one page, given its neighbours in the course."""
    problems = [f"front matter needs '{name}: …'" for name in FIELDS if not lesson.get(name)]
    problems += [f"front matter '{name}' must be a single 'key: value' line" for name in FIELDS[:-1]
                 if lesson.get(name) and not isinstance(lesson[name], str)]
    if problems:
        return problems
    number, name, stem, body = lesson["number"], lesson["path"].name, lesson["path"].stem, lesson["body"]
    if not number.isdigit() or f"{int(number):02d}_" != name[:3]:
        return [f"number {number!r} does not match the file name {name}"]
    if lesson["level"] not in LEVELS:
        problems.append(f"level {lesson['level']!r} is not one of: {', '.join(LEVELS)}")
    if lesson["run_time"] != UNMEASURED and not RUN_TIME.fullmatch(lesson["run_time"]):
        problems.append(f"run_time {lesson['run_time']!r} is neither '{UNMEASURED}' nor like '1 min 40 s'")
    if not isinstance(lesson["objectives"], list):
        problems.append("objectives must be a list of '  - …' lines")
    notebook = lesson["notebook"]
    if notebook != f"notebooks/{stem}.ipynb":
        problems.append(f"notebook {notebook!r} should be 'notebooks/{stem}.ipynb'")
    if not (root / notebook).is_file():
        problems.append(f"points to a missing notebook: {notebook}")
    if f"# {heading(lesson)}" not in body.splitlines():
        problems.append(f"needs the title line '# {heading(lesson)}'")
    if badge_row(notebook) not in body:
        problems.append(f"needs the badge row of {notebook}: {badge_row(notebook)}")
    for direction, pattern, neighbour in (("previous", PREV_LINK, previous), ("next", NEXT_LINK, following)):
        found = pattern.findall(body)
        try:
            expected = [nav_link(neighbour, direction)] if neighbour else []
        except (KeyError, TypeError, ValueError):
            continue  # the neighbour's own problems are reported
        if found != expected:
            problems.append(f"{direction}-lesson link should be {' '.join(expected) or 'absent'}; "
                            f"found {' '.join(found) or 'none'}")
    return problems + quiz_problems(body)


def check(root: Path) -> list[str]:
    """Every problem with the pages, their notebooks and navigation, and the README's table."""
    try:
        lessons = load_lessons(root)
    except LessonError as error:
        return [f"lessons/{error}"]
    if not lessons:
        return [f"no lesson pages lessons/NN_slug.md under {root}"]
    numbers = [lesson.get("number") for lesson in lessons]
    problems = [] if numbers == [str(i) for i in range(1, len(lessons) + 1)] else [
        f"lesson numbers must run 1, 2, … {len(lessons)} in file order; found {numbers}"]
    for index, lesson in enumerate(lessons):
        neighbours = (lessons[index - 1] if index else None, (lessons[index + 1:] or [None])[0])
        problems += [f"lessons/{lesson['path'].name}: {problem}"
                     for problem in page_problems(lesson, root, *neighbours)]
    pages = {lesson["path"].stem for lesson in lessons}
    problems += [f"notebooks/{nb.name} has no lesson page lessons/{nb.stem}.md"
                 for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")) if nb.stem not in pages]
    readme = root / "README.md"
    try:
        current = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        if replace_block(current, lesson_table(lessons)) != current:
            problems.append("README.md: the lesson table is stale; run `course lessons table --write`")
    except LessonError as error:
        problems.append(str(error) if readme.is_file() else "README.md is missing")
    except (KeyError, TypeError, ValueError):
        pass  # a page lacks what the table needs, reported above
    return problems


def _command(args) -> int:
    root, readme = Path(args.root), Path(args.root) / "README.md"
    if args.action == "check":
        problems = check(root)
        for problem in problems:
            print(f"course lessons check: {problem}", file=sys.stderr)
        print(f"{len(problems)} problem(s)" if problems else "lessons OK: pages, notebooks, "
              "navigation, quizzes, README table", file=sys.stderr if problems else sys.stdout)
        return 1 if problems else 0
    try:
        lessons = load_lessons(root)
        table = lesson_table(lessons)
        if not args.write:
            print(table)
            return 0
        current = readme.read_text(encoding="utf-8")
        updated = replace_block(current, table)
    except (OSError, KeyError, TypeError, ValueError) as error:
        print(f"course lessons table: error: {error}; `course lessons check` says more", file=sys.stderr)
        return 1
    if updated != current:
        readme.write_text(updated, encoding="utf-8")
    print(f"README.md: lesson table {'updated' if updated != current else 'already up to date'} "
          f"({len(lessons)} lessons)")
    return 0


def add_parser(subparsers) -> None:
    """The ``course lessons`` command: ``table [--write]`` and ``check``."""
    checkout = CHECKOUT  # the repository, when installed editable
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", metavar="DIR",
                        default=str(checkout if (checkout / "lessons").is_dir() else Path.cwd()),
                        help="the repository folder holding lessons/ and README.md (default: %(default)s)")
    parser = subparsers.add_parser(
        "lessons", help="check the lesson pages and generate the README's lesson table",
        description="The lesson pages lessons/NN_slug.md and the README table generated from them.")
    actions = parser.add_subparsers(dest="action", required=True)
    table = actions.add_parser("table", parents=[common], help="print the lesson table")
    table.add_argument("--write", action="store_true", help=f"rewrite README.md between {START} and {END}")
    actions.add_parser("check", parents=[common],
                       help="check front matter, notebooks, navigation, quizzes and the README table")
    parser.set_defaults(handler=_command)
