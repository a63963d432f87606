"""Figures are compared: an unchanged re-render passes, a real change fails, under nbval too.

The real changes are the ones a stale notebook shows: curves of another seed or another epoch
count, a matrix with other counts, a missing panel, another label.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from utils import models, plots, training, visualize
from utils.tools import figures

import matplotlib
import nbformat
import numpy as np
import pytest
from matplotlib import pyplot as plt

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]


def drawn(plot, *args, **kwargs) -> bytes:
    """The PNG of what a course plot function draws (they call plt.show() and return nothing)."""
    plt.close("all")
    plot(*args, **kwargs)
    return png(plt.gcf())


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # as the inline backend does
    plt.close(figure)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def histories():
    """Real training curves of a small cnn2: seeds 0 and 1 for 3 epochs, seed 0 for 2."""
    rng = np.random.default_rng(0)
    x = rng.random((512, 28, 28, 1), dtype=np.float32)
    y = (x[:, :14].mean(axis=(1, 2, 3)) > x[:, 14:].mean(axis=(1, 2, 3))).astype("int64")
    found = {}
    for seed, epochs in ((0, 3), (1, 3), (0, 2)):
        training.set_seed(seed)
        model = training.compile_model(models.build("cnn2", (28, 28, 1), 2))
        history = model.fit(x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=epochs,
                            batch_size=64, verbose=0)
        found[seed, epochs] = {"cnn1": history.history}
    return found


def rms_of(expected: bytes, actual: bytes, tmp_path) -> tuple[list[float], list]:
    return figures.compare_figures([expected], [actual], tmp_path)


def test_an_unchanged_rerender_passes(histories, tmp_path):
    first = drawn(plots.plot_history, histories[0, 3])
    again = drawn(plots.plot_history, histories[0, 3])
    rms, differences = rms_of(first, again, tmp_path)
    assert rms == [0.0] and differences == []
    assert not tmp_path.exists() or not any(tmp_path.iterdir()), "images left for a match"


@pytest.mark.parametrize("other", [(1, 3), (0, 2)], ids=["another seed", "another epoch count"])
def test_curves_of_another_run_fail(histories, other, tmp_path):
    rms, differences = rms_of(drawn(plots.plot_history, histories[0, 3]),
                              drawn(plots.plot_history, histories[other]), tmp_path)
    assert len(differences) == 1, rms
    difference = differences[0]
    print(f"curves of {other} against (0, 3): {difference.message}")
    if difference.rms is None:  # other tick labels can change the figure's size: a difference too
        assert "size" in difference.message.lower()
        assert set(difference.images) == {"expected", "actual"}
    else:
        assert difference.rms > figures.TOLERANCE
        assert f"RMS {difference.rms:.3f} > tolerance" in difference.message
        assert set(difference.images) == {"expected", "actual", "diff"}
    assert all(path.is_file() for path in difference.images.values())


def test_another_matrix_and_another_label_fail(tmp_path):
    names = [f"class {k}" for k in range(10)]
    matrix = np.diag(np.full(10, 90)) + 1
    changed = matrix.copy()
    changed[3, 5] += 7  # one count of one cell
    base = drawn(visualize.plot_confusion_matrix, matrix, names)
    for other in (drawn(visualize.plot_confusion_matrix, changed, names),
                  drawn(visualize.plot_confusion_matrix, matrix, names, title="Confusion matrix (test)")):
        rms, differences = rms_of(base, other, tmp_path)
        print(f"confusion matrix, one change: RMS {rms[0]:.3f}")
        assert differences and rms[0] > figures.TOLERANCE, rms


def test_a_missing_panel_fails(tmp_path):
    images = np.random.default_rng(0).random((5, 28, 28, 1))
    all_five = drawn(plots.show_images, images, columns=5)
    four = drawn(plots.show_images, images[:4], columns=5)
    _, differences = rms_of(all_five, four, tmp_path)
    assert differences, "a figure with a panel missing passed"
    assert differences[0].rms is None or differences[0].rms > figures.TOLERANCE


def test_another_size_and_another_count_of_figures_fail(histories, tmp_path):
    small = plt.figure(figsize=(3, 2))
    small.add_subplot().plot([0, 1])
    curves = drawn(plots.plot_history, histories[0, 3])
    _, differences = rms_of(curves, png(small), tmp_path / "size")
    assert differences and differences[0].rms is None and "size" in differences[0].message.lower()
    _, differences = figures.compare_figures([curves], [], tmp_path / "count")
    assert differences and "drew 0 figure(s); the stored outputs have 1" in differences[0].message


def _notebook_with_figure(seed: int, outputs_from: int | None = None):
    """A notebook drawing a line of `seed`, its stored figure drawn with `outputs_from`."""
    source = ("import matplotlib.pyplot as plt\nimport numpy as np\n"
              f"values = np.random.default_rng({seed}).random(20)\n"
              "plt.plot(values)\nplt.title('values')\nplt.show()")
    figure = plt.figure()
    plt.plot(np.random.default_rng(seed if outputs_from is None else outputs_from).random(20))
    plt.title("values")
    cell = nbformat.v4.new_code_cell(source, execution_count=1, outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(png(figure)).decode(),
                              "text/plain": "<Figure size 640x480 with 1 Axes>"})])
    return nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def _nbval(folder: Path, **env_vars) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "notebooks" / "conftest.py", folder / "conftest.py")
    env = {key: value for key, value in os.environ.items() if key != "COURSE_FIGURES"}
    env.update(MPLBACKEND="module://matplotlib_inline.backend_inline", **env_vars)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval",
         "--nbval-current-env", "--rootdir", str(folder), str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_nbval_fails_a_stale_figure_and_names_the_cell(tmp_path):
    fresh, stale = tmp_path / "fresh", tmp_path / "stale"
    for folder, notebook in ((fresh, _notebook_with_figure(0)), (stale, _notebook_with_figure(0, 1))):
        folder.mkdir()
        nbformat.write(notebook, folder / "figure.ipynb")

    passed = _nbval(fresh)
    assert passed.returncode == 0, passed.stdout[-3000:]

    failed = _nbval(stale)
    report = failed.stdout
    assert failed.returncode == 1, report[-3000:]
    assert "Figures differ" in report and "figure.ipynb, cell 0: figure 0: RMS" in report, report[-3000:]
    artifacts = tmp_path / "test-artifacts" / "figures" / "figure" / "cell-0"
    assert {p.name for p in artifacts.iterdir()} == {
        "figure-0-expected.png", "figure-0-actual.png", "figure-0-actual-failed-diff.png"}

    text_only = _nbval(stale, COURSE_FIGURES="off")  # make test-lowest: text only
    assert text_only.returncode == 0, text_only.stdout[-3000:]
    typo = _nbval(stale, COURSE_FIGURES="of")
    assert typo.returncode != 0 and "COURSE_FIGURES='of'; valid choices: compare, off" in (
        typo.stdout + typo.stderr), typo.stdout[-2000:]
