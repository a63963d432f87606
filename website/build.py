"""Build the course website from the committed notebooks and lesson pages, executing nothing.

    python website/build.py            build into _build/site/ (what `make site` runs)
    python website/build.py --check    exit 1 when that build is missing or older than its sources

Each lesson page is the lesson's notebook with its stored outputs (the ones nbval checks),
the objectives from its lesson page after the title, and the lesson page's quiz at the end.
The landing page's table comes from utils.tools.lessons.lesson_table, as the README's does; the
instructors' page is a set of README sections. Sphinx renders it all; the hashes of every
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
from utils.tools.lessons import heading, lesson_table, load_lessons

import nbformat

ROOT = Path(__file__).resolve().parents[1]
WEBSITE = ROOT / "website"
DEFAULT_OUT = ROOT / "_build" / "site"
STAMP = "build-sources.json"
SOURCES = ("notebooks/[0-9][0-9]_*.ipynb", "lessons/[0-9][0-9]_*.md", "README.md", "website/*.py",
           "website/_static/*", "website/badges/*", "utils/tools/lessons.py", "utils/course.py")
# README sections shown on the site, by heading; the landing page also gets the text above "## Lessons".
LANDING_SECTIONS = ("Open the lessons",)
INSTRUCTOR_SECTIONS = ("Quick start", "Supported versions", "Re-run a lesson with other parameters",
                       "Re-running lessons: the course runner", "Data")
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


def readme_sections(readme: str) -> dict[str, str]:
    """The README's ``## `` sections by heading, and its text before the first one under ""."""
    parts = re.split(r"(?m)^## (.+)$", readme)
    sections = {"": parts[0]}
    sections.update((title.strip(), body) for title, body in zip(parts[1::2], parts[2::2], strict=True))
    return sections


def pick_sections(sections: dict[str, str], titles: tuple[str, ...]) -> str:
    """The named README sections, as Markdown with their ``## `` headings."""
    missing = [title for title in titles if title not in sections]
    if missing:
        raise SiteError(f"README.md has no section {', '.join(map(repr, missing))}; "
                        f"its sections: {', '.join(repr(t) for t in sections if t)}")
    return "".join(f"## {title}\n{sections[title]}" for title in titles)


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
        return f"{opening}https://github.com/{course.GITHUB_REPOSITORY}/blob/{course.GITHUB_BRANCH}/{in_repo})"

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
    sections = readme_sections((root / "README.md").read_text(encoding="utf-8"))
    pages = {"README.md": "index.md"}
    for lesson in lessons:
        page = f"lessons/{lesson['path'].stem}.ipynb"
        pages.update({f"lessons/{lesson['path'].name}": page, lesson["notebook"]: page})
    shutil.rmtree(source, ignore_errors=True)
    (source / "lessons").mkdir(parents=True)
    shutil.copytree(WEBSITE / "badges", source / "badges")

    table = "\n".join(line for line in lesson_table(lessons).splitlines() if not line.startswith("<!--"))
    toctree = "\n".join(f"lessons/{lesson['path'].stem}" for lesson in lessons)
    landing = localise(f"{sections[''].strip()}\n\n## Lessons\n\n{table}\n\n"
                       f"{pick_sections(sections, LANDING_SECTIONS)}", "README.md", "index.md", pages, root)
    (source / "index.md").write_text(
        f"{landing}\n**Instructors:** [run the lessons with other parameters](instructors.md).\n\n"
        f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toctree}\ninstructors\n```\n", encoding="utf-8")
    instructors = ("# For instructors\n\nEvery lesson also runs unattended, with other parameters, "
                   "from the command line.\n\n"
                   f"{pick_sections(sections, INSTRUCTOR_SECTIONS)}")
    (source / "instructors.md").write_text(localise(instructors, "README.md", "instructors.md", pages, root),
                                           encoding="utf-8")
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
