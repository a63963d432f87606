"""Notebook hygiene: the plumbing every lesson shares, checked for every notebook.

Badges, the setup cell, the parameters cell, execution order, metadata and JSON layout are
checked here so that nobody has to check them by hand. `ruff` runs here too, on the code
and on the notebooks' code cells.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from utils import course
from utils.tools import figures, outputs, reproduce

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SETUP_MARK = '"google.colab" in sys.modules'
# The normaliser, as in .pre-commit-config.yaml: stable JSON and cell ids, outputs kept.
NORMALISE = ["nbstripout", "--keep-output", "--keep-count"]
# "course": the machine that made the outputs, and a CPU-dependent cell's measured tolerances
# (utils/tools/reproduce.py, utils/tools/outputs.py)
NOTEBOOK_METADATA = {"kernelspec", "language_info", "course"}
CELL_METADATA = {"tags", "course"}
RUFF_PATHS = ("utils", "tests", "notebooks", "benchmarks", "website")


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def each_notebook(test):
    return pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)(test)


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def setup_cells(notebook) -> list:
    return [cell for cell in code_cells(notebook) if SETUP_MARK in cell.source]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks in notebooks/"


@each_notebook
def test_one_parameters_cell(path):
    tagged = [cell for cell in read(path).cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{relative(path)}: {len(tagged)} cells tagged `parameters`, expected 1"
    assert tagged[0].cell_type == "code"


@each_notebook
def test_executed_once_in_order_without_errors(path):
    cells = code_cells(read(path))
    assert all(cell.source.strip() for cell in cells), f"{relative(path)}: empty code cell"
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{relative(path)}: execution counts {counts}; re-execute it top to bottom (make notebooks)")
    for cell in cells:
        for output in cell.outputs:
            assert output.output_type != "error", (
                f"{relative(path)}: cell {cell.execution_count} stored an error: {output.get('ename')}")
            if output.output_type == "execute_result":
                assert output.execution_count == cell.execution_count


@each_notebook
def test_badges_point_at_this_notebook(path):
    title = read(path).cells[0]
    assert title.cell_type == "markdown"
    colab = set(re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", title.source))
    github = set(re.findall(r"https://github\.com/[^)\s\"']+/blob/[^)\s\"']+", title.source))
    assert colab == {course.colab_url(relative(path))}, f"Colab badge of {relative(path)}: {colab}"
    assert github == {course.github_url(relative(path))}, f"GitHub badge of {relative(path)}: {github}"


@each_notebook
def test_setup_cell_is_the_shared_one(path):
    notebook = read(path)
    found = setup_cells(notebook)
    assert len(found) == 1, f"{relative(path)}: {len(found)} setup cells, expected 1"
    setup = found[0]
    assert setup is code_cells(notebook)[0], "the setup cell comes before any other code"
    assert setup.outputs == [], "outside Colab the setup cell prints nothing"
    assert f"git+https://github.com/{course.GITHUB_REPOSITORY}" in setup.source, (
        f"the setup cell must install from the configured repository {course.GITHUB_REPOSITORY}")


def test_every_lesson_has_the_same_setup_cell():
    sources = {relative(path): "".join(cell.source for cell in setup_cells(read(path))) for path in NOTEBOOKS}
    distinct = set(sources.values())
    assert len(distinct) <= 1, "setup cells differ: " + ", ".join(
        f"{name} (variant {sorted(distinct).index(source) + 1})" for name, source in sources.items())


@each_notebook
def test_kernelspec_is_python3(path):
    name = read(path).metadata.get("kernelspec", {}).get("name")
    assert name == "python3", f"{relative(path)}: kernelspec {name!r}; choose the Python 3 kernel and save"


@each_notebook
def test_no_volatile_or_personal_metadata(path):
    notebook = read(path)
    extra = set(notebook.metadata) - NOTEBOOK_METADATA
    assert not extra, f"{relative(path)}: notebook metadata {sorted(extra)} (widget state, tool records)"
    for index, cell in enumerate(notebook.cells):
        extra = set(cell.get("metadata", {})) - CELL_METADATA
        assert not extra, (f"{relative(path)}: cell {index} metadata {sorted(extra)}; "
                           f"normalise with: {' '.join(NORMALISE)}")
        for output in cell.get("outputs", []):
            assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {}), "widget output"


def _output_texts(notebook):
    for cell in code_cells(notebook):
        for output in cell.outputs:
            if output.output_type == "stream":
                yield output.text
            elif output.output_type == "error":
                yield "\n".join(output.traceback)
            else:
                for mime, value in output.get("data", {}).items():
                    if not mime.startswith("image/"):
                        yield value if isinstance(value, str) else str(value)


def _local_path_patterns() -> list[str]:
    literal = {str(REPO), tempfile.gettempdir() + "/"}
    if len(str(Path.home())) > 1:
        literal.add(str(Path.home()) + "/")
    return [re.escape(text) for text in sorted(literal)] + [
        r"site-packages", r"/(?:home|Users)/\w", r"[A-Za-z]:\\\\?Users\\"]


@each_notebook
def test_no_local_paths_in_outputs(path):
    pattern = re.compile("|".join(_local_path_patterns()))
    for text in _output_texts(read(path)):
        match = pattern.search(text)
        if match:
            context = text[max(match.start() - 60, 0):match.end() + 60]
            pytest.fail(f"{relative(path)}: an output shows a local path: …{context}…")


@each_notebook
def test_json_is_normalised(path):
    normalised = subprocess.run([sys.executable, "-m", *NORMALISE, "--textconv", str(path)],
                                capture_output=True, text=True, encoding="utf-8", check=True).stdout
    assert path.read_text(encoding="utf-8") == normalised, (
        f"{relative(path)} is not normalised: run `{' '.join(NORMALISE)} {relative(path)}` "
        "(or `pre-commit run --all-files`)")


def test_ruff():
    paths = [name for name in RUFF_PATHS if (REPO / name).exists()]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *paths], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"ruff check {' '.join(paths)}:\n{result.stdout}{result.stderr}"


@each_notebook
def test_title_states_the_level_and_run_time_of_its_page(path):
    """The title cell and the lesson page give the same level and measured run time."""
    from utils.tools import lessons

    page = REPO / "lessons" / f"{path.stem}.md"
    meta, _ = lessons.parse_page(page)
    expected = f"**Level:** {meta['level']} · **Run time:** {meta['run_time']} on 2 CPU cores"
    assert expected in read(path).cells[0].source, (
        f"{relative(path)}: the title cell should say {expected!r}, as {relative(page)} does "
        "(`make lesson-times` writes both)")


IGNORE_TAG = "nbval-ignore-output"
IGNORE_REASON = "# nbval-ignore-output:"  # the first line of an ignored cell says why
MAX_IGNORED_SHARE = 0.05


def ignored_cells() -> list[tuple[str, int, str]]:
    """(notebook, cell index, first line) of every code cell nbval does not compare."""
    return [(relative(path), index, cell.source.splitlines()[0] if cell.source else "")
            for path in NOTEBOOKS for index, cell in enumerate(read(path).cells)
            if cell.cell_type == "code" and IGNORE_TAG in cell.get("metadata", {}).get("tags", [])]


def test_ignored_cells_say_why_and_are_few():
    ignored = ignored_cells()
    total = sum(len(code_cells(read(path))) for path in NOTEBOOKS)
    print(f"{len(ignored)} of {total} code cells ignored by nbval:",
          *(f"  {name} cell {index}: {line}" for name, index, line in ignored), sep="\n")
    silent = [f"{name} cell {index}" for name, index, line in ignored
              if not (line.startswith(IGNORE_REASON) and line[len(IGNORE_REASON):].strip())]
    assert not silent, (f"cells tagged {IGNORE_TAG} without a first line `{IGNORE_REASON} <what is volatile "
                        f"and why it cannot be sanitised>`: {', '.join(silent)}")
    assert len(ignored) <= MAX_IGNORED_SHARE * total, (
        f"{len(ignored)} of {total} code cells ignored; at most {MAX_IGNORED_SHARE:.0%}: sanitise the "
        "volatile text in tests/nbval_sanitize.cfg instead")


def test_the_ignore_rule_rejects_a_cell_without_a_reason(monkeypatch, tmp_path):
    """The rule above fails on an ignored cell whose first line gives no reason."""
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print(1)", metadata={"tags": [IGNORE_TAG]}),
        *(nbformat.v4.new_code_cell(f"x = {k}") for k in range(30))])
    nbformat.write(notebook, tmp_path / "99_x.ipynb")
    monkeypatch.setattr(sys.modules[__name__], "NOTEBOOKS", [tmp_path / "99_x.ipynb"])
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    with pytest.raises(AssertionError, match="without a first line"):
        test_ignored_cells_say_why_and_are_few()
    notebook.cells[0].source = f"{IGNORE_REASON} the time of day\nprint(1)"
    nbformat.write(notebook, tmp_path / "99_x.ipynb")
    test_ignored_cells_say_why_and_are_few()


@each_notebook
def test_the_outputs_say_where_they_were_made_and_how_to_compare_them_elsewhere(path):
    notebook = read(path)
    made_on = reproduce.stored_fingerprint(notebook)
    assert made_on and set(made_on) == set(reproduce.fingerprint()), (
        f"{relative(path)}: no record of the machine that made its outputs; re-execute with `make notebooks`")
    for index, cell in enumerate(notebook.cells):
        tolerance = outputs.cell_tolerance(cell)
        if tolerance is None:
            continue
        where = f"{relative(path)}, cell {index}"
        assert set(tolerance) <= {"atol", "rtol", "figure_rms", "unchecked"}, where
        assert len(tolerance.get("figure_rms", [])) == len(figures.pngs(cell.get("outputs", []))), (
            f"{where}: a tolerance for each figure; run `make cpu-dependence`")
        for entry in tolerance.get("unchecked", []):
            assert entry.get("line") and entry.get("why"), f"{where}: an unchecked line without its reason"


@each_notebook
def test_a_lesson_that_reports_a_test_set_declares_report_test(path):
    """`course run` leaves the test set alone for its candidates through this parameter, so a
    lesson whose stored results hold a test metric must declare it, with True as the default."""
    import papermill

    results = course.read_results(nbformat.read(path, as_version=4))
    declared = papermill.inspect_notebook(str(path))
    if any(key.startswith("test") for key in results):
        assert "report_test" in declared, f"{relative(path)} reports a test metric without report_test"
    if "report_test" in declared:
        assert declared["report_test"]["default"] == "True", declared["report_test"]
