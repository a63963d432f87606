"""The summary of a `course run`: Markdown, CSV, JSON and one plot, rewritten after every run.

Each file is written to a temporary file in OUT/, then renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from utils.course import padded_table
from utils.tools.runner.plan import REPORT_TEST, SUCCEEDED, Run, describe

# Parameters are compared on validation accuracy, as lesson 03 teaches; test accuracy exists
# only for a final run (--final) and is written beside it. Each lesson gets its own panel.
PLOT_METRIC = "val_accuracy"
REPORTED_METRIC = "test_accuracy"


def write_atomic(path: Path, content: bytes) -> None:
    """Write a file through a temporary one in its folder, then rename: readers never see half of it."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")  # one runner per OUT: its lock
    partial.write_bytes(content)
    os.replace(partial, path)


def _shown_results(run: Run) -> dict:
    """The results worth a column: without the lesson number and the lesson's own parameters."""
    return {k: v for k, v in run.results.items() if k != "lesson" and k not in run.lesson.defaults}


def _format(value) -> str:
    if isinstance(value, float):
        return str(round(value, 4))
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def results_text(run: Run) -> str:
    """A run's key results as ``name=value, …``."""
    shown = ", ".join(f"{k}={_format(v)}" for k, v in _shown_results(run).items())
    return shown or ("no results recorded" if run.status in SUCCEEDED else "")


def setting(run: Run) -> str:
    """The parameters given to a run, ``final`` added to a --final run's; ``defaults`` when none."""
    given = {k: v for k, v in run.parameters.items() if k != REPORT_TEST}
    text = describe(given) if given else "defaults"
    return f"{text}, final" if run.parameters.get(REPORT_TEST) is True else text


def markdown_table(runs: list[Run]) -> str:
    """The summary as a Markdown table, padded so it also reads well in a terminal."""
    header = ["lesson", "parameters", "status", "wall time", "key results / error"]
    rows = [[run.lesson.stem, setting(run), run.status,
             "" if run.wall_time_s is None else f"{run.wall_time_s:.1f} s",
             run.error if run.error else results_text(run)] for run in runs]
    return padded_table(header, [[cell.replace("|", "\\|") for cell in row] for row in rows])


def test_set_line(runs: list[Run]) -> str:
    """What the summary says of the test set: which final settings evaluated it, or that none did."""
    final = [run for run in runs if run.parameters.get(REPORT_TEST) is True]
    done = [run for run in final if run.status in SUCCEEDED]
    if done:
        return "Final setting, the test set evaluated once: " + "; ".join(
            f"{run.lesson.stem} ({setting(run)})" for run in done) + "."
    if final:
        return "Final setting, the test set not evaluated yet: " + "; ".join(
            f"{run.lesson.stem} ({setting(run)}) {run.status}" for run in final) + "."
    if any(REPORT_TEST in run.parameters for run in runs):
        return ("Candidates: compared on validation, the test set not evaluated. Run the setting "
                "you choose again with `--final` to report its test accuracy.")
    return "No run of these lessons evaluates the test set."


def summary_records(runs: list[Run], out: Path) -> list[dict]:
    """The runs as summary.json lists them."""
    return [{"lesson": run.lesson.stem, "folder": run.folder, "parameters": run.parameters,
             "status": run.status,
             "wall_time_s": None if run.wall_time_s is None else round(run.wall_time_s, 1),
             "results": run.results, "error": run.error,
             "notebook": str(run.notebook(out).relative_to(out))} for run in runs]


def write_summary(out: Path, runs: list[Run], command: str) -> None:
    """Rewrite OUT/summary.{md,csv,json} and OUT/comparison.png from the runs' current state."""
    records = summary_records(runs, out)
    counts = ", ".join(f"{sum(r['status'] == s for r in records)} {s}"
                       for s in dict.fromkeys(r["status"] for r in records))
    text = (f"# Course run\n\n`{command}`\n\n{len(records)} runs: {counts}. "
            f"Notebooks: `<folder>/<lesson>.ipynb`.\n\n{test_set_line(runs)}\n\n{markdown_table(runs)}\n")
    write_atomic(out / "summary.md", text.encode())
    write_atomic(out / "summary.json", json.dumps({"command": command, "runs": records},
                                                   indent=1).encode())
    columns = ["lesson", "folder", "parameters", "status", "wall_time_s", "error", "notebook"]
    result_keys = [k for k in dict.fromkeys(k for r in records for k in r["results"]) if k not in columns]
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(columns + result_keys)
    for r in records:
        cells = [r["results"].get(k, "") for k in result_keys]
        writer.writerow([r["lesson"], r["folder"], json.dumps(r["parameters"]), r["status"],
                         r["wall_time_s"], r["error"], r["notebook"],
                         *[c if isinstance(c, (str, int, float)) else json.dumps(c) for c in cells]])
    write_atomic(out / "summary.csv", stream.getvalue().encode())
    write_plot(out, runs)


def plotted_points(runs: list[Run]) -> dict[str, list[tuple[str, float, float | None]]]:
    """Per lesson: (run folder, validation accuracy, test accuracy or None) of each finished run."""
    points: dict[str, list] = {}
    for run in runs:
        value = run.results.get(PLOT_METRIC)
        if run.status in SUCCEEDED and isinstance(value, (int, float)):
            test = run.results.get(REPORTED_METRIC)
            points.setdefault(run.lesson.stem, []).append(
                (run.folder, float(value), float(test) if isinstance(test, (int, float)) else None))
    return points


def write_plot(out: Path, runs: list[Run]) -> Path | None:
    """OUT/comparison.png: one panel per lesson, validation accuracy by parameters, test written beside."""
    path = out / "comparison.png"
    points = plotted_points(runs)
    if not points:
        path.unlink(missing_ok=True)  # never leave a plot of an earlier command
        return None
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot, no display

    widest = max(len(rows) for rows in points.values())
    figure = Figure(figsize=(max(6.0, 1.5 + 1.1 * widest), 3.2 * len(points)), layout="constrained")
    panels = figure.subplots(len(points), 1, squeeze=False)[:, 0]
    for axes, (stem, rows) in zip(panels, points.items(), strict=True):
        bars = axes.bar(range(len(rows)), [value for _, value, _ in rows], 0.6)
        axes.bar_label(bars, [f"val {value:.3f}" + ("" if test is None else f"\ntest {test:.3f}")
                              for _, value, test in rows], fontsize=8)
        axes.set_xticks(range(len(rows)), [folder for folder, _, _ in rows],
                        rotation=15 if len(rows) > 3 else 0)
        axes.set_ylim(0, 1.15)
        axes.set_ylabel("validation accuracy")
        axes.set_title(stem)
    figure.suptitle("Validation accuracy by parameters (choose on it; test only for a --final run)")
    stream = io.BytesIO()
    figure.savefig(stream, format="png", dpi=110)
    write_atomic(path, stream.getvalue())
    return path
