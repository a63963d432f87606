"""Build the course website from the committed notebooks and lesson pages, executing nothing.

    python website/build.py            build into _build/site/ (what `make site` runs)
    python website/build.py --check    exit 1 when that build is missing or older than its sources

Each lesson page is the lesson's notebook with its stored outputs (the ones nbval checks),
the objectives from its lesson page after the title, and the lesson page's quiz at the end.
Every other page has a source of its own: the landing page is website/index.md, with the lesson
table of utils.tools.lessons.lesson_table (as in the README) and each lesson's overview from its
page; the instructors' page is docs/instructors.md and the contributors' CONTRIBUTING.md. Sphinx
renders it all; the hashes of every
source file go into build-sources.json, so a build older than its sources can be told apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from utils import course
from utils.tools.lessons import heading, lesson_table, load_lessons, replace_block

import nbformat

ROOT = Path(__file__).resolve().parents[1]
WEBSITE = ROOT / "website"
DEFAULT_OUT = ROOT / "_build" / "site"
STAMP = "build-sources.json"
SOURCES = ("notebooks/[0-9][0-9]_*.ipynb", "lessons/[0-9][0-9]_*.md", "website/index.md", "docs/*.md",
           "CONTRIBUTING.md", "website/*.py", "website/_static/*", "website/badges/*",
           "utils/tools/lessons.py", "utils/course.py")
# Repository files that are pages of the site, and the page each becomes.
DOCUMENTS = {"website/index.md": "index.md", "docs/instructors.md": "instructors.md",
             "CONTRIBUTING.md": "contributing.md"}
OVERVIEWS = "<!-- lesson-overviews -->"
# Badge images from other hosts, replaced by local copies so that the site needs no network.
LOCAL_BADGES = {
    "https://colab.research.google.com/assets/colab-badge.svg": "open-in-colab.svg",
    "https://img.shields.io/badge/view%20on-GitHub-181717?logo=github": "view-on-github.svg",
}
# Keras' rich console leaves an empty <pre> as an HTML output next to the printed summary.
EMPTY_PRE = re.compile(r"\s*<pre[^>]*>\s*</pre>\s*")
MARKDOWN_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)\)")


class SiteError(RuntimeError):
    """Sources that the site cannot be built from."""


def source_hashes(root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of every file the site is built from, by path relative to ``root``."""
    files = sorted({path for pattern in SOURCES for path in root.glob(pattern) if path.is_file()})
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in files}


def stale_sources(site: Path, root: Path = ROOT) -> list[str]:
    """The sources changed, added or removed since ``site`` was built (all of them if it never was)."""
    try:
        recorded = json.loads((site / STAMP).read_text(encoding="utf-8"))["sources"]
    except (OSError, ValueError, KeyError):
        return ["(no finished build: build-sources.json is missing)"]
    current = source_hashes(root)
    return sorted(name for name in recorded.keys() | current.keys()
                  if recorded.get(name) != current.get(name))


def overview(lesson: dict) -> str:
    """The first paragraph of a lesson page's ``## Overview``."""
    found = re.search(r"(?ms)^## Overview\s*\n\s*(.+?)(?:\n\s*\n|\Z)", lesson["body"])
    if not found:
        raise SiteError(f"lessons/{lesson['path'].name} has no '## Overview' section")
    return " ".join(found[1].split())


def landing_page(root: Path, lessons: list[dict], pages: dict[str, str]) -> str:
    """website/index.md for the site, with the lesson table and each lesson's overview filled in."""
    origin = "website/index.md"
    text = (root / origin).read_text(encoding="utf-8")
    if OVERVIEWS not in text:
        raise SiteError(f"{origin} needs a line {OVERVIEWS}")
    table = "\n".join(line for line in lesson_table(lessons).splitlines() if not line.startswith("<!--"))
    overviews = "\n\n".join(f"**[{heading(lesson)}](../lessons/{lesson['path'].name})** "
                              f"({lesson['level']}). {overview(lesson)}" for lesson in lessons)
    text = replace_block(text, "@LESSON_TABLE@").replace(OVERVIEWS, overviews)
    text = localise(text, origin, "index.md", pages, root)
    # The table's links are relative to the README, where the same table stands.
    return text.replace("@LESSON_TABLE@", localise(table, "README.md", "index.md", pages, root), 1)


def localise(markdown: str, origin: str, page: str, pages: dict[str, str], root: Path) -> str:
    """Markdown from the repository file ``origin``, rewritten for the site page ``page``.

    Badge images become the local copies. A relative link to a file that the site shows
    (``pages`` maps repository paths to site pages) points to that page; one to any other
    file of the repository points to the file on GitHub; one to a missing file is an error.
    An anchor to a heading that this page leaves out points to that heading on GitHub.
    """

    def fix(match: re.Match) -> str:
        opening, target = match.groups()
        if target in LOCAL_BADGES:
            return f"{opening}/badges/{LOCAL_BADGES[target]})"
        if target.startswith("#") and target[1:] not in headings:  # a section this page leaves out
            return f"{opening}https://github.com/{course.GITHUB_REPOSITORY}/blob/{course.GITHUB_BRANCH}/{origin}{target})"
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        in_repo = posixpath.normpath(posixpath.join(posixpath.dirname(origin), path))
        if in_repo in pages:
            link = posixpath.relpath(pages[in_repo], posixpath.dirname(page) or ".")
            return f"{opening}{link}{'#' + anchor if anchor else ''})"
        if in_repo.startswith("../") or not (root / in_repo).exists():
            raise SiteError(f"{origin} links to {target}, but the repository has no {in_repo}")
        github = f"https://github.com/{course.GITHUB_REPOSITORY}/blob/{course.GITHUB_BRANCH}/{in_repo}"
        return f"{opening}{github}{'#' + anchor if anchor else ''})"

    headings = {slug(title) for title in re.findall(r"(?m)^#{1,6} (.+)$", markdown)}
    return MARKDOWN_LINK.sub(fix, markdown)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and MyST write it: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def quiz_section(lesson: dict) -> str:
    """The lesson page's ``## Quiz`` section, without the navigation line that ends the page."""
    quiz = re.search(r"(?ms)^## Quiz\s*$.*?(?=^## |^---\s*$|\Z)", lesson["body"])
    if not quiz:
        raise SiteError(f"lessons/{lesson['path'].name} has no '## Quiz' section")
    # Questions as bold lines, not headings: the page's contents list shows "Quiz" once.
    return re.sub(r"(?m)^### (.+)$", r"**\1**", quiz.group(0).strip())


def is_empty_html(output) -> bool:
    """A display output whose only HTML is an empty <pre> (Keras' summary leaves one)."""
    html = output.get("data", {}).get("text/html")
    return html is not None and bool(EMPTY_PRE.fullmatch("".join(html)))


def lesson_notebook(lesson: dict, root: Path, pages: dict[str, str]):
    """The lesson's notebook, stored outputs kept, with its objectives and quiz added."""
    notebook = nbformat.read(root / lesson["notebook"], as_version=4)
    title = notebook.cells[0] if notebook.cells else None
    if title is None or title.cell_type != "markdown" or not title.source.startswith("# "):
        raise SiteError(f"{lesson['notebook']}: the first cell should be the title ('# {heading(lesson)}')")
    page, page_source = pages[lesson["notebook"]], f"lessons/{lesson['path'].name}"
    objectives = "\n".join(f"- {item}" for item in lesson["objectives"])
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell(
        f"## Objectives\n\nAfter this lesson you can:\n\n{objectives}"))
    notebook.cells.append(nbformat.v4.new_markdown_cell(
        localise(quiz_section(lesson), page_source, page, pages, root)))
    for cell in notebook.cells[:-1]:
        if cell.cell_type == "markdown":
            cell.source = localise(cell.source, lesson["notebook"], page, pages, root)
        elif cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs if not is_empty_html(output)]
    return notebook


def write_sources(root: Path, source: Path) -> list[dict]:
    """Write the Sphinx source tree: landing page, one page per lesson, instructors' page."""
    lessons = load_lessons(root)
    if not lessons:
        raise SiteError(f"no lesson pages lessons/NN_slug.md under {root}")
    pages = dict(DOCUMENTS)  # the README stays on GitHub: the landing page is its own
    for lesson in lessons:
        page = f"lessons/{lesson['path'].stem}.ipynb"
        pages.update({f"lessons/{lesson['path'].name}": page, lesson["notebook"]: page})
    shutil.rmtree(source, ignore_errors=True)
    (source / "lessons").mkdir(parents=True)
    shutil.copytree(WEBSITE / "badges", source / "badges")

    toctree = "\n".join(f"lessons/{lesson['path'].stem}" for lesson in lessons)
    landing = landing_page(root, lessons, pages)
    (source / "index.md").write_text(
        f"{landing}\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toctree}\ninstructors\ncontributing\n```\n",
        encoding="utf-8")
    for origin, page in DOCUMENTS.items():
        if page != "index.md":
            text = (root / origin).read_text(encoding="utf-8")
            (source / page).write_text(localise(text, origin, page, pages, root), encoding="utf-8")
    for lesson in lessons:
        nbformat.write(lesson_notebook(lesson, root, pages), source / pages[lesson["notebook"]])
    return lessons


def build(out: Path, root: Path = ROOT) -> float:
    """Build the site into ``out``; returns the wall time in seconds."""
    start = time.monotonic()
    hashes = source_hashes(root)  # before reading anything: a later edit makes the build stale
    source, doctrees = out.parent / f"{out.name}-source", out.parent / f"{out.name}-doctrees"
    write_sources(root, source)
    for folder in (out, doctrees):  # a full build every time: no page kept from an older one
        shutil.rmtree(folder, ignore_errors=True)
    # -W: any warning (a broken reference, an unreadable output) fails the build.
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
               "-c", str(WEBSITE), "-d", str(doctrees), str(source), str(out)]
    if subprocess.run(command, cwd=root).returncode:
        raise SiteError("sphinx-build failed; its messages are above")
    (out / ".nojekyll").touch()
    (out / STAMP).write_text(json.dumps({"sources": hashes}, indent=1), encoding="utf-8")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the site's folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only say whether the built site is up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_sources(args.out)
        print(f"{args.out}: stale, changed since the build: {', '.join(stale)}; run `make site`" if stale
              else f"{args.out}: up to date")
        return 1 if stale else 0
    try:
        seconds = build(args.out.resolve())
    except (SiteError, OSError, ValueError) as error:
        print(f"website: error: {error}", file=sys.stderr)
        return 1
    print(f"website: built {args.out} in {seconds:.1f} s; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
