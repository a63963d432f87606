"""The stored outputs guard the code: a model changed without re-running a lesson fails nbval, in the
cells that show what changed, and only there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
LESSON = REPO / "notebooks" / "02_cnn_architecture.ipynb"
pytestmark = pytest.mark.slow  # executes lesson 02 twice under nbval


def nbval(package_parent: Path, env: dict[str, str]) -> tuple[int, str, dict[int, str]]:
    """Lesson 02 under nbval with the `utils` in ``package_parent``: exit code, report, failed cells."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-rf", "--nbval",
         "--nbval-current-env", f"--nbval-sanitize-with={REPO / 'tests' / 'nbval_sanitize.cfg'}",
         "--rootdir", str(package_parent), str(LESSON)],
        cwd=package_parent, env={**env, "PYTHONPATH": str(package_parent)}, capture_output=True, text=True,
        timeout=600)
    report = result.stdout + result.stderr
    failed = {int(number): reason for number, reason in re.findall(r"^FAILED \S*::Cell (\d+) - (.*)$", report,
                                                                    flags=re.MULTILINE)}
    return result.returncode, report, failed


def test_a_layer_changed_without_rerunning_fails_nbval_in_the_cells_it_changes(tmp_path, subprocess_env):
    shutil.copytree(REPO / "utils", tmp_path / "utils", ignore=shutil.ignore_patterns("__pycache__"))
    code, report, failed = nbval(tmp_path, subprocess_env)
    assert (code, failed) == (0, {}), report[-3000:]  # the copy as it is: the stored outputs hold

    # cnn3 with a Dense layer of 65 units instead of 64.
    models = tmp_path / "utils" / "models.py"
    source = models.read_text()
    assert source.count('layers.Dense(64, activation="relu", name="dense")') == 1
    models.write_text(source.replace('layers.Dense(64, activation="relu", name="dense")',
                                     'layers.Dense(65, activation="relu", name="dense")'))
    code, report, failed = nbval(tmp_path, subprocess_env)
    cells = [cell for cell in nbformat.read(LESSON, as_version=4).cells if cell.cell_type == "code"]
    builds_cnn3 = {index for index, cell in enumerate(cells) if "models.cnn3" in cell.source}
    assert code == 1 and sorted(failed) == sorted(builds_cnn3) == [6, 11], report[-3000:]
    assert f"{len(builds_cnn3)} failed, {len(cells) - len(builds_cnn3)} passed" in report
    for index in builds_cnn3:  # a difference in what the cell printed, not an error
        section = report.split(f"::Cell {index} _")[1].split("\n___")[0]
        assert f"Cell {index}: Cell outputs differ" in section and "mismatch 'stdout'" in section, section
    assert "- cnn3 on 28x28x1 images: 93,909 parameters" in report  # fresh, then stored
    assert "+ cnn3 on 28x28x1 images: 93,322 parameters" in report
