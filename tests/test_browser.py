"""A lesson run in JupyterLab, in a real browser: the system Chromium driven by Playwright.

The test copies the cheapest lesson that shows a model summary and a figure into a
temporary folder, without its outputs, opens it in a throwaway JupyterLab, runs it with
the menu's Run > Run All Cells, and checks what the page shows. Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from browser_jupyterlab import (
    CHROMIUM_ENV,
    JupyterLab,
    descendant_pids,
    find_chromium,
    is_alive,
    launch_chromium,
)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts" / "browser"
TIME_LIMIT_S = 170  # the whole test, server start and shutdown included
SUMMARY_MARK = "Total params"  # last lines of keras' model.summary()
NOTEBOOK_ENV = "COURSE_BROWSER_NOTEBOOK"


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/html", "") + data.get("text/plain", "")


def _shows_summary_and_figure(notebook) -> bool:
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    return (any(SUMMARY_MARK in _output_text(output) for output in outputs)
            and any("image/png" in output.get("data", {}) for output in outputs))


def cheapest_lesson() -> Path:
    """The first lesson whose stored outputs show a model summary and a figure.

    $COURSE_BROWSER_NOTEBOOK names another notebook instead (to try the test on a draft).
    """
    if os.environ.get(NOTEBOOK_ENV):
        return Path(os.environ[NOTEBOOK_ENV]).resolve()
    lessons = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for path in lessons:
        if _shows_summary_and_figure(nbformat.read(path, as_version=4)):
            return path
    pytest.fail(f"no lesson in {NOTEBOOKS.relative_to(REPO)} shows a model summary and a figure "
                f"(looked at: {', '.join(p.name for p in lessons) or 'none'})")


def copy_without_outputs(source: Path, target: Path) -> int:
    """Copy a notebook with outputs and execution counts cleared; returns its code cell count."""
    notebook = nbformat.read(source, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code_cells:
        cell.outputs = []
        cell.execution_count = None
    nbformat.write(notebook, target)
    return len(code_cells)


class Deadline:
    """One time budget shared by every wait of the test."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(self.end - time.monotonic(), 0.0)

    def wait_for(self, condition, what: str, interval: float = 0.5, stable: int = 1):
        """Poll until `condition()` is truthy `stable` times in a row; returns its last value."""
        hits = 0
        while True:
            value = condition()
            hits = hits + 1 if value else 0
            if hits >= stable:
                return value
            if self.left() <= 0:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(interval)


def _fail_on_dialog(page) -> None:
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        raise AssertionError(f"JupyterLab opened a dialog: {dialog.first.inner_text()!r}")


def kernel_ready(page) -> bool:
    _fail_on_dialog(page)
    name = page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").inner_text()
    status = " ".join(page.locator(".jp-StatusBar-TextItem").all_inner_texts())
    return "No Kernel" not in name and "| Idle" in status


def prompts(page) -> list[str]:
    return [text.strip() for text in page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]


def run_finished(page) -> bool:
    """Kernel idle and no cell queued or running."""
    _fail_on_dialog(page)
    status = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").get_attribute("data-status")
    return status == "idle" and "[*]:" not in prompts(page)


def use_menu(page, menu: str, item: str) -> None:
    """Click a menu of JupyterLab's menu bar, then one of its items (exact labels)."""
    page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(f"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(f"^{re.escape(item)}$")).click()


def save_notebook(page, path: Path, code_cells: int, deadline: Deadline) -> None:
    """Save through JupyterLab's own command (File > Save Notebook); wait until it is on disk."""
    use_menu(page, "File", "Save Notebook")

    def saved() -> bool:
        _fail_on_dialog(page)
        try:
            notebook = nbformat.read(path, as_version=4)
        except (OSError, ValueError):
            return False
        counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
        return len(counts) == code_cells and None not in counts

    deadline.wait_for(saved, "the notebook to be saved")


def screenshots(page, stem: str) -> list[Path]:
    """One screenshot with the model summary in view, one of the whole notebook."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    written = []
    summary = page.locator(".jp-OutputArea-output", has_text=SUMMARY_MARK)
    if summary.count():
        summary.first.scroll_into_view_if_needed()
        written.append(ARTIFACTS / f"{stem}-summary.png")
        page.screenshot(path=written[-1])
    scroller = "document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')"
    height = page.evaluate(f"{scroller}?.scrollHeight ?? 1000")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 200, 16000)})
    page.evaluate(f"{scroller}?.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # let the resized page lay out
    written.append(ARTIFACTS / f"{stem}-full.png")
    page.screenshot(path=written[-1])
    return written


def blank_screenshot_problem(path: Path, width: int) -> str:
    """What makes a screenshot not show a rendered page ('' when it does): its width, or blankness."""
    from matplotlib.image import imread

    pixels = imread(path)[..., :3]  # RGB in [0, 1]
    if pixels.shape[1] != width:
        return f"{path.name} is {pixels.shape[1]} px wide, not {width}"
    colours, counts = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0, return_counts=True)
    drawn = 1 - counts.max() / counts.sum()  # pixels not of the background colour
    if len(colours) < 50 or drawn < 0.02:
        return f"{path.name} looks blank: {len(colours)} colours, {drawn:.1%} of it off the background"
    return ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def chromium() -> str:
    executable = find_chromium()
    if executable is None:
        pytest.fail("no Chromium found: install it with `make system-deps-test` (Debian's `chromium`), "
                    f"or point ${CHROMIUM_ENV} at a Chromium or Chrome binary")
    return executable


def test_lesson_runs_in_jupyterlab(tmp_path, subprocess_env, chromium):
    from playwright.sync_api import sync_playwright

    deadline = Deadline(TIME_LIMIT_S)
    lesson = cheapest_lesson()
    stored_hash = _sha256(lesson)
    root = tmp_path / "root"
    root.mkdir()
    copied = root / lesson.name
    code_cells = copy_without_outputs(lesson, copied)
    children_before = descendant_pids(os.getpid())

    lab = JupyterLab(root, tmp_path / "jupyter", subprocess_env)
    with lab, sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "chromium", chromium)
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            page.goto(lab.url(lesson.name))
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell")
            deadline.wait_for(lambda: kernel_ready(page), "the kernel to start")
            assert set(prompts(page)) == {"[ ]:"}, "the copy should start with no cell executed"

            # Run > Run All Cells: JupyterLab's own command, as a learner would use it.
            use_menu(page, "Run", "Run All Cells")
            deadline.wait_for(lambda: any(p != "[ ]:" for p in prompts(page)), "the run to start")
            deadline.wait_for(lambda: run_finished(page), "the kernel to go idle", stable=3)

            written = screenshots(page, lesson.stem)
            page.set_viewport_size({"width": 1400, "height": 1000})
            error_outputs = [text for text in page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
                if "Traceback" in text or "Error" in text]
            assert not error_outputs, f"error output on the page:\n{error_outputs[0]}"
            final_prompts = prompts(page)
            assert final_prompts == [f"[{n}]:" for n in range(1, code_cells + 1)], (
                f"Run All did not execute every cell in order: {final_prompts}")

            summary = page.locator(".jp-OutputArea-output", has_text=SUMMARY_MARK)
            assert summary.count() >= 1, "no model summary on the page"
            assert page.locator(".jp-OutputArea-output", has_text="Layer (type)").count() >= 1, (
                "the model summary has no layer table")
            figures = page.locator(".jp-OutputArea-output.jp-RenderedImage img")
            assert figures.count() >= 1, "no figure on the page"
            assert figures.first.evaluate("img => img.complete && img.naturalWidth > 0"), (
                "the figure did not render")

            save_notebook(page, copied, code_cells, deadline)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error if this fails too
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=ARTIFACTS / f"{lesson.stem}-failure.png")
            raise
        finally:
            context.close()

    # The saved copy proves the kernel ran every cell, once, in order, without errors.
    executed = nbformat.read(copied, as_version=4)
    counts = [cell.execution_count for cell in executed.cells if cell.cell_type == "code"]
    assert counts == list(range(1, code_cells + 1))
    errors = [output for cell in executed.cells for output in cell.get("outputs", [])
              if output.output_type == "error"]
    assert not errors, json.dumps(errors[0], indent=1)

    assert _sha256(lesson) == stored_hash, "the stored lesson was modified"
    problems = [blank_screenshot_problem(path, 1400) for path in written]
    assert written and not any(problems), problems
    assert not lab.leftover_pids, f"processes had to be killed after shutdown: {lab.leftover_pids}"
    left_behind = {pid for pid in descendant_pids(os.getpid()) - children_before if is_alive(pid)}
    assert not left_behind, f"processes left behind: {left_behind}"
