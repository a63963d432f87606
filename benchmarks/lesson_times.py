"""Lesson run times: every lesson executed with its default parameters, timed, as one table.

It runs the README's course command (`course run --final`, every lesson, default parameters,
the test set reported, one at a time) into a scratch folder with an empty model cache, so
lesson 04 reuses the model that lesson 03 trains in the same run, as it does for a learner
who goes through the course in order. Each lesson's time is papermill's wall time for the
whole notebook, kernel start included. `--write` records the times in the lesson pages'
`run_time` and the notebooks' title cells, and regenerates the README's lesson table.

`--in-place` executes each notebook in place instead, as `make notebooks` does (nbconvert, then
nbstripout), with the same fresh model cache, and times each the same way: one run both stores
the outputs and measures the times.

examples:
  python benchmarks/lesson_times.py --write
  python benchmarks/lesson_times.py --in-place --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from utils.course import padded_table, read_results
from utils.tools import cli, lessons, reproduce

import nbformat

REPO = Path(__file__).resolve().parents[1]
COURSE = [sys.executable, "-m", "utils"]  # the `course` command, from this interpreter


def run_course(out: Path) -> tuple[list[dict], float]:
    """Execute every lesson with its defaults into ``out``; the summary's runs and the total time."""
    env = dict(os.environ)
    env["COURSE_MODEL_CACHE"] = str(out / "model-cache")  # nothing trained earlier is reused
    started = time.perf_counter()
    done = subprocess.run([*COURSE, "run", "--final", "--out", str(out / "runs"), "--force"], env=env)
    total = time.perf_counter() - started
    summary = out / "runs" / "summary.json"
    if not summary.is_file():
        sys.exit(f"lesson_times: `course run` wrote no summary (exit status {done.returncode})")
    return json.loads(summary.read_text())["runs"], total


def run_in_place(out: Path, stems: list[str] | None = None) -> tuple[list[dict], float]:
    """Execute every lesson notebook in place (``make notebooks``), timed one by one."""
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    unknown = sorted(set(stems or []) - {notebook.stem[:2] for notebook in notebooks})
    if unknown:
        sys.exit(f"lesson_times: no lesson {', '.join(unknown)}; "
                 f"valid choices: {', '.join(n.stem[:2] for n in notebooks)}")
    env = reproduce.apply(dict(os.environ))  # the settings nbval checks the outputs with
    env["COURSE_MODEL_CACHE"] = str(out / "model-cache")
    bin_dir = Path(sys.executable).parent
    runs, started = [], time.perf_counter()
    for notebook in notebooks:
        if stems and notebook.stem[:2] not in stems:
            continue
        began = time.perf_counter()
        done = subprocess.run([str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                               "--inplace", "--ExecutePreprocessor.timeout=900", str(notebook)], env=env)
        seconds = time.perf_counter() - began
        if done.returncode == 0:  # the machine and settings that made these outputs
            executed = nbformat.read(notebook, as_version=4)
            reproduce.stamp(executed, reproduce.fingerprint(env))
            nbformat.write(executed, notebook)
        subprocess.run([str(bin_dir / "nbstripout"), "--keep-output", "--keep-count", str(notebook)],
                       check=True)
        ok = done.returncode == 0
        results = read_results(json.loads(notebook.read_text(encoding="utf-8"))) if ok else {}
        runs.append({"lesson": notebook.stem, "status": "ok" if ok else "failed",
                     "wall_time_s": seconds if ok else None, "results": results})
        if not ok:
            break  # later lessons may need this one's model
    return runs, time.perf_counter() - started


def table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        seconds = run["wall_time_s"]
        rows.append([run["lesson"], run["status"], "" if seconds is None else f"{seconds:.1f} s",
                     "" if seconds is None else lessons.format_run_time(seconds),
                     str(run["results"].get("test_accuracy", ""))])
    return padded_table(["lesson", "status", "wall time", "run_time (page)", "test accuracy"], rows)


# A notebook's title cell states its run time as "**Run time:** 1 min 40 s on 2 CPU cores".
TITLE_RUN_TIME = re.compile(r"(\*\*Run time:\*\* )(.+?)( on 2 CPU cores)")


def set_notebook_run_time(notebook: Path, run_time: str) -> None:
    """Write a page's run time into its notebook's title cell, leaving everything else as it is."""
    text = notebook.read_text(encoding="utf-8")
    updated, count = TITLE_RUN_TIME.subn(lambda m: m[1] + run_time + m[3], text, count=1)
    if count != 1:
        raise SystemExit(f"{notebook.name}: no '**Run time:** … on 2 CPU cores' in its title cell")
    notebook.write_text(updated, encoding="utf-8")


def write_pages(runs: list[dict]) -> None:
    """Record each succeeded lesson's time in its page and notebook title, then the README table."""
    for run in runs:
        page = REPO / "lessons" / f"{run['lesson']}.md"
        if run["status"] == "ok" and page.is_file():
            run_time = lessons.set_run_time(page, run["wall_time_s"])
            notebook = REPO / "notebooks" / f"{run['lesson']}.ipynb"
            if notebook.is_file():
                set_notebook_run_time(notebook, run_time)
            print(f"{page.relative_to(REPO)}: run_time {run_time}")
    cli.main(["lessons", "table", "--write", "--root", str(REPO)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true",
                        help="write the times into lessons/*.md (run_time) and the README's lesson table")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep the executed notebooks and summary in DIR (default: a scratch folder)")
    parser.add_argument("--in-place", action="store_true",
                        help="execute the notebooks in place, as `make notebooks` does")
    parser.add_argument("--lessons", default=None,
                        help="with --in-place: only these lessons, e.g. 06,07 (default: all)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lesson-times-") as scratch:
        out = Path(args.keep) if args.keep else Path(scratch)
        if args.in_place:
            runs, total = run_in_place(out, args.lessons.split(",") if args.lessons else None)
        else:
            runs, total = run_course(out)
    print(f"\nLessons with default parameters, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, {platform.machine()}, load average {os.getloadavg()[0]:.1f}\n")
    print(table(runs))
    print(f"\nall lessons: {total:.0f} s ({lessons.format_run_time(total)})")
    failed = [run["lesson"] for run in runs if run["status"] != "ok"]
    if args.write:
        write_pages(runs)
    if failed:
        print(f"failed: {', '.join(failed)}; their pages were left as they were", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
