"""The course website (`make site`): its build, its links, and every lesson page in Chromium.

The tests use the site in _build/site/. A missing build is built first (about 15 s); a
build older than its sources (a notebook or lesson page changed since) fails them, so the
checks never pass on pages that no longer match the notebooks. Screenshots go to
test-artifacts/site/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from utils.course import GITHUB_BRANCH, GITHUB_REPOSITORY, colab_url
from utils.tools.lessons import heading, load_lessons

import pytest
from browser_jupyterlab import LOCAL, descendant_pids, find_chromium, free_port, is_alive, launch_chromium

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "_build" / "site"
ARTIFACTS = REPO / "test-artifacts" / "site"
BUILD_TIMEOUT_S = 300
SUMMARY_TOTAL = {"02": "Total params: 93,322"}  # lesson number: text its page must show


def _load_builder():
    spec = importlib.util.spec_from_file_location("website_build", REPO / "website" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


@pytest.fixture(scope="module")
def site() -> Path:
    """The built site: built now if there is none; a stale one fails the test."""
    if not (SITE / builder.STAMP).is_file():
        result = subprocess.run([sys.executable, "website/build.py", "--out", str(SITE)], cwd=REPO,
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert result.returncode == 0, f"the site build failed:\n{result.stdout}\n{result.stderr}"
    stale = builder.stale_sources(SITE)
    if stale:
        pytest.fail(f"{SITE.relative_to(REPO)} is stale: {', '.join(stale)} changed after it was built; "
                    "run `make site`")
    return SITE


def _copy_sources(target: Path) -> Path:
    for folder in ("notebooks", "lessons", "website", "utils", "docs"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("README.md", "CONTRIBUTING.md"):
        shutil.copy(REPO / name, target / name)
    return target


def test_a_changed_notebook_makes_the_build_stale(tmp_path):
    root, site_dir = _copy_sources(tmp_path / "repo"), tmp_path / "site"
    site_dir.mkdir()
    assert builder.stale_sources(site_dir, root) == ["(no finished build: build-sources.json is missing)"]
    (site_dir / builder.STAMP).write_text(json.dumps({"sources": builder.source_hashes(root)}))
    assert builder.stale_sources(site_dir, root) == []

    notebook = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))[-1]
    notebook.write_bytes(notebook.read_bytes() + b"\n")
    (root / "lessons" / "99_new_lesson.md").write_text("---\n---\n")
    assert builder.stale_sources(site_dir, root) == ["lessons/99_new_lesson.md", f"notebooks/{notebook.name}"]


def test_lesson_links_point_into_the_site_or_to_github():
    pages = {"README.md": "index.md",
             "notebooks/02_cnn_architecture.ipynb": "lessons/02_cnn_architecture.ipynb"}
    markdown = ("[next](02_cnn_architecture.ipynb#quiz) [all](../README.md#lessons) "
                "[bench](../benchmarks/README.md) "
                "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://x.org/a)")
    assert builder.localise(markdown, "notebooks/01_convolution_and_pooling.ipynb",
                            "lessons/01_convolution_and_pooling.ipynb", pages, REPO) == (
        "[next](02_cnn_architecture.ipynb#quiz) [all](../index.md#lessons) "
        f"[bench](https://github.com/{GITHUB_REPOSITORY}/blob/{GITHUB_BRANCH}/benchmarks/README.md) "
        "[![Open In Colab](/badges/open-in-colab.svg)](https://x.org/a)")
    with pytest.raises(builder.SiteError, match="links to gone.md, but the repository has no lessons/gone"):
        builder.localise("[x](gone.md)", "lessons/01_convolution_and_pooling.md", "index.md", pages, REPO)


def test_an_anchor_to_a_section_the_page_leaves_out_points_to_github():
    markdown = "## Quick start\n\nSee [versions](#supported-versions) and [start](#quick-start)."
    assert builder.localise(markdown, "README.md", "instructors.md", {}, REPO).endswith(
        f"[versions](https://github.com/{GITHUB_REPOSITORY}/blob/{GITHUB_BRANCH}/README.md"
        "#supported-versions) and [start](#quick-start).")


def test_keras_empty_html_summary_outputs_are_dropped():
    empty = {"output_type": "display_data", "data": {"text/html": ['<pre style="white-space:pre"></pre>\n'],
                                                     "text/plain": ["\n"]}}
    table = {"output_type": "display_data",
             "data": {"text/html": ["<pre>cnn3</pre>"], "text/plain": ["cnn3"]}}
    assert builder.is_empty_html(empty) and not builder.is_empty_html(table)
    assert not builder.is_empty_html({"output_type": "stream", "text": "Total params: 93,322"})


# --- links ------------------------------------------------------------------------------------

class _Page(HTMLParser):
    """The ids of an HTML page and the URLs it links to or loads, with their tags."""

    def __init__(self, text: str):
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        anchors = ("id", "name") if tag == "a" else ("id",)
        self.ids.update(values[key] for key in anchors if values.get(key))
        for key in ("href", "src"):
            if values.get(key):
                self.urls.append((tag, values[key]))


def link_problems(site_dir: Path) -> tuple[list[str], int]:
    """Broken internal links, missing anchors and resources from other hosts; and the count checked."""
    pages = {path: _Page(path.read_text(encoding="utf-8")) for path in site_dir.rglob("*.html")
             if "_static" not in path.relative_to(site_dir).parts}  # the theme's Jinja macros live there
    problems, checked = [], 0
    for path, page in pages.items():
        where = path.relative_to(site_dir)
        for tag, url in page.urls:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https"):
                if tag != "a":
                    problems.append(f"{where}: <{tag}> loads {url} from another host")
                continue
            if parts.scheme or (not parts.path and not parts.fragment):
                continue  # mailto:, data:, javascript:, a bare "#"
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file():
                problems.append(f"{where}: <{tag}> {url} points to a missing file")
            elif parts.fragment and target in pages and unquote(parts.fragment) not in pages[target].ids:
                problems.append(f"{where}: {url}: no id {parts.fragment!r} in {target.relative_to(site_dir)}")
    return problems, checked


def test_no_broken_link_or_anchor(site, tmp_path):
    problems, checked = link_problems(site)
    assert not problems, "\n".join(problems)
    assert checked > 100, f"only {checked} internal links found: is the site complete?"

    # The check itself catches a broken link and a missing anchor.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.html").write_text('<a href="missing.html">x</a><a href="#nowhere">y</a><p id="here"></p>'
                                       '<a href="#here">z</a><img src="https://example.org/x.png">')
    problems, _ = link_problems(broken)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "<a> missing.html points to a missing file", "#nowhere: no id 'nowhere' in index.html",
        "<img> loads https://example.org/x.png from another host"]


def test_the_landing_page_introduces_every_lesson_from_its_page(site):
    source = (SITE.parent / f"{SITE.name}-source" / "index.md").read_text(encoding="utf-8")
    introductions = source.split("## What the lessons teach", 1)[1].split("\n## ", 1)[0]
    for lesson in load_lessons(REPO):
        assert f"**[{heading(lesson)}](lessons/{lesson['path'].stem}.ipynb)**" in introductions
        assert builder.overview(lesson) in introductions, f"{lesson['path'].name}: its overview"


def test_the_pages_come_from_their_own_sources_not_the_readme():
    assert "README.md" not in builder.source_hashes(REPO)
    assert set(builder.DOCUMENTS) == {"website/index.md", "docs/instructors.md", "CONTRIBUTING.md"}


def test_landing_table_comes_from_the_lesson_pages(site):
    page = (site / "index.html").read_text(encoding="utf-8")
    table = page[page.index("<table"):page.index("</table>")]
    lessons = load_lessons(REPO)
    assert table.count("<tr") == len(lessons) + 1, "one row per lesson page, plus the header"
    for lesson in lessons:
        assert f'href="lessons/{lesson["path"].stem}.html"' in table
        assert lesson["title"] in table and colab_url(lesson["notebook"]) in table


# --- the browser ------------------------------------------------------------------------------

@pytest.fixture
def chromium() -> str:
    executable = find_chromium()
    if executable is None:
        pytest.fail("no Chromium found: install it with `make system-deps-test` (Debian's `chromium`), "
                    "or point $COURSE_CHROMIUM at a Chromium or Chrome binary")
    return executable


class StaticServer:
    """`python -m http.server` for a folder, on a free port of 127.0.0.1."""

    def __init__(self, folder: Path, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                 "--directory", str(folder)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                LOCAL.open(self.base, timeout=2).close()
                return
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    output = log.read_text(errors="replace")
                    raise RuntimeError(f"http.server did not start:\n{output}") from error
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class PageWatch:
    """Console errors, uncaught exceptions, failed requests and requests to other hosts."""

    def __init__(self, page, base: str):
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"uncaught error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        page.on("request", lambda r: r.url.startswith((base, "data:", "blob:"))
                or self.problems.append(f"request to another host: {r.url}"))

    def take(self) -> list[str]:
        found, self.problems[:] = list(self.problems), []
        return found


def open_page(page, watch: PageWatch, url: str, screenshot: str) -> None:
    """Load a page, wait for its images, save a full-page screenshot; fail on any problem."""
    page.goto(url, wait_until="load")
    page.wait_for_function("Array.from(document.images).every(img => img.complete)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / screenshot, full_page=True)
    problems = watch.take()
    assert not problems, f"{url}:\n" + "\n".join(problems)


def check_quiz(page, lesson: dict) -> None:
    """Every answer of the quiz is hidden, and shows when its "Answer" line is clicked."""
    answers = page.locator("section#quiz details")
    expected = lesson["body"].split("## Quiz", 1)[1].count("<details>")
    assert answers.count() == expected > 0, f"{answers.count()} quiz answers on the page, page has {expected}"
    for index in range(answers.count()):
        answer = answers.nth(index)
        text = answer.locator("p").first
        assert answer.evaluate("d => !d.open") and not text.is_visible(), f"answer {index + 1} is not hidden"
        answer.locator("summary").click()
        assert answer.evaluate("d => d.open") and text.is_visible(), f"answer {index + 1} did not open"
        assert text.inner_text().startswith("Answer: ")
    page.locator("section#quiz").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"{lesson['path'].stem}-quiz-open.png")


def stored_figures(lesson: dict) -> int:
    """How many images the lesson's notebook stores among its outputs."""
    notebook = json.loads((REPO / lesson["notebook"]).read_text(encoding="utf-8"))
    return sum("image/png" in output.get("data", {})
               for cell in notebook["cells"] for output in cell.get("outputs", []))


def check_lesson(page, lesson: dict, previous: str, following: str) -> None:
    number = f"{int(lesson['number']):02d}"
    assert page.title().startswith(heading(lesson)), f"title {page.title()!r}"
    assert page.get_by_role("heading", level=1, name=heading(lesson)).is_visible()

    # Every figure the notebook stores is on the page, loaded (lesson 02 stores none).
    widths = page.locator("article .cell_output img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    stored = stored_figures(lesson)
    assert len(widths) == stored, f"{len(widths)} figures on the page, the notebook stores {stored}"
    assert all(width > 0 for width in widths), f"figures that did not load: {widths}"
    badge = page.locator(f'article a[href="{colab_url(lesson["notebook"])}"] img').first
    assert badge.evaluate("img => img.naturalWidth") > 0, "no Open in Colab badge"

    objectives = page.locator("section#objectives li").all_inner_texts()
    plain_quotes = str.maketrans("‘’“”", "''\"\"")  # Sphinx typesets quotes in prose
    assert [item.translate(plain_quotes) for item in objectives] == lesson["objectives"]

    text = page.locator("article").inner_text()
    assert "\x1b[" not in text and "[0m" not in text, "ANSI escape codes in the page's text"
    if number in SUMMARY_TOTAL:
        shown = page.get_by_text(SUMMARY_TOTAL[number]).first
        assert shown.is_visible(), f"{SUMMARY_TOTAL[number]!r} is not shown"

    assert page.locator(".prev-next-area a.left-prev").get_attribute("href") == previous
    assert page.locator(".prev-next-area a.right-next").get_attribute("href") == following
    check_quiz(page, lesson)


@pytest.mark.browser
def test_every_page_in_chromium(site, tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    lessons = load_lessons(REPO)
    stems = [lesson["path"].stem for lesson in lessons]
    assert sum(map(stored_figures, lessons)) > 0, "no lesson stores a figure: nothing to check"
    children_before = descendant_pids(os.getpid())
    server = StaticServer(site, tmp_path / "http.log")
    try:
        with sync_playwright() as playwright:
            context = launch_chromium(playwright, tmp_path / "chromium", chromium)
            try:
                page = context.new_page()
                page.set_viewport_size({"width": 1600, "height": 1000})  # a common laptop screen
                page.set_default_timeout(20_000)
                watch = PageWatch(page, server.base)

                open_page(page, watch, server.base, "index.png")
                assert page.locator("article table tbody tr").count() == len(lessons)
                page.get_by_role("link", name=lessons[0]["title"], exact=True).click()
                page.wait_for_url(f"**/lessons/{stems[0]}.html")

                for index, lesson in enumerate(lessons):
                    open_page(page, watch, f"{server.base}lessons/{stems[index]}.html", f"{stems[index]}.png")
                    previous = f"{stems[index - 1]}.html" if index else "../index.html"
                    following = f"{stems[index + 1]}.html" if stems[index + 1:] else "../instructors.html"
                    check_lesson(page, lesson, previous, following)
                    assert not watch.take()

                open_page(page, watch, f"{server.base}instructors.html", "instructors.png")
                assert page.get_by_role("heading", name="Re-running lessons: the course runner").is_visible()
                assert page.get_by_text("papermill").first.is_visible()
                open_page(page, watch, f"{server.base}contributing.html", "contributing.png")
                assert page.get_by_role("heading", name="Adding a lesson").is_visible()

                # Full-text search (Sphinx's index, in the browser): an objective's words find its lesson.
                last = lessons[-1]
                page.goto(f"{server.base}search.html?q={quote(last['objectives'][0])}", wait_until="load")
                results = page.locator("#search-results a")
                results.first.wait_for()
                hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
                assert any(f"lessons/{last['path'].stem}.html" in href for href in hrefs), hrefs
                page.screenshot(path=ARTIFACTS / "search.png", full_page=True)
                assert not watch.take()
            finally:
                context.close()
    finally:
        server.stop()
    assert server.process.returncode is not None
    left_behind = {pid for pid in descendant_pids(os.getpid()) - children_before if is_alive(pid)}
    assert not left_behind, f"processes left behind: {left_behind}"
