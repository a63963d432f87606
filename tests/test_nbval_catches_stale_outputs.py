"""The stored outputs guard the code: a model changed without re-running a lesson fails nbval."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LESSON = REPO / "notebooks" / "02_cnn_architecture.ipynb"


def test_changing_a_layer_width_without_rerunning_fails_nbval(tmp_path, subprocess_env):
    # A copy of utils whose cnn3 has a Dense layer of 65 units instead of 64.
    shutil.copytree(REPO / "utils", tmp_path / "utils")
    models = tmp_path / "utils" / "models.py"
    source = models.read_text()
    assert 'layers.Dense(64, activation="relu", name="dense")' in source
    models.write_text(source.replace('layers.Dense(64, activation="relu", name="dense")',
                                     'layers.Dense(65, activation="relu", name="dense")'))
    env = {**subprocess_env, "PYTHONPATH": str(tmp_path)}
    imported = subprocess.run([sys.executable, "-c", "import utils; print(utils.__file__)"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert imported.strip() == str(tmp_path / "utils" / "__init__.py")

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval",
         "--nbval-current-env", f"--nbval-sanitize-with={REPO / 'tests' / 'nbval_sanitize.cfg'}",
         "--rootdir", str(tmp_path), str(LESSON)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report[-3000:]
    assert "93,909" in report and "93,322" in report, report[-3000:]  # fresh vs stored total
    assert os.path.getsize(LESSON) > 0
