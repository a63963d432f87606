"""The lessons' Colab setup cell: it installs the course package in Colab, and only there.

In Colab the cell pip-installs the package from GitHub; TensorFlow, which Colab ships, must
stay as it is. The test plays Colab: a fresh virtual environment without the package, a
stand-in `google.colab` module imported at kernel start, and COURSE_PACKAGE_SOURCE pointing
at a local git clone of this repository instead of GitHub. As in Colab, pip fetches the
build backend (setuptools) from the package index to build the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SETUP_MARK = '"google.colab" in sys.modules'
SOURCE_ENV = "COURSE_PACKAGE_SOURCE"
DISTRIBUTION = "cnn-keras-course"
KERNEL_NAME = "colab-stand-in"

# Printed by a cell appended to the lesson: what the kernel imported, and from where.
REPORT_CELL = """\
import json
import sys

import tensorflow
import utils

print(json.dumps({"colab": "google.colab" in sys.modules, "utils": utils.__file__,
                  "tensorflow": tensorflow.__file__, "tensorflow_version": tensorflow.__version__}))
"""


def lesson_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def setup_cell(notebook) -> nbformat.NotebookNode:
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and SETUP_MARK in cell.source]
    assert len(cells) == 1, f"expected one setup cell (the one testing {SETUP_MARK}), found {len(cells)}"
    return cells[0]


@pytest.fixture(scope="module")
def first_lesson() -> Path:
    lessons = lesson_paths()
    if not lessons:
        pytest.fail(f"no lesson notebooks in {NOTEBOOKS.relative_to(REPO)}")
    return lessons[0]


@pytest.mark.parametrize("path", lesson_paths(), ids=lambda p: p.stem)
def test_setup_cell_does_nothing_outside_colab(path, capfd, monkeypatch):
    source = setup_cell(nbformat.read(path, as_version=4)).source
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr(subprocess, "check_call", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args))

    exec(compile(source, f"{path.name} setup cell", "exec"), {})

    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "outside Colab the setup cell must print nothing"
    assert calls == [], "outside Colab the setup cell must run nothing"


@pytest.mark.parametrize("path", lesson_paths(), ids=lambda p: p.stem)
def test_setup_cell_says_it_keeps_tensorflow(path):
    source = setup_cell(nbformat.read(path, as_version=4)).source
    comments = " ".join(line for line in source.splitlines() if line.lstrip().startswith("#"))
    assert "TensorFlow" in comments, "the setup cell must say, in a comment, that it keeps Colab's TensorFlow"
    assert SOURCE_ENV in source, f"the install source must be overridable through ${SOURCE_ENV}"


def clone_working_tree(target: Path) -> Path:
    """A git repository holding this checkout's files as they are now (committed or not)."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to clone the repository for the Colab setup test")
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for relative in filter(None, listed.decode().split("\0")):
        source = REPO / relative
        if source.is_file():  # listed but deleted in the working tree: leave it out
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    git = ["git", "-C", str(target), "-c", "user.name=course-test", "-c", "user.email=test@example.invalid",
           "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", "working tree"]):
        subprocess.run(git + command, check=True, capture_output=True)
    return target


def is_course_package(entry: str) -> bool:
    """Whether a site-packages entry belongs to this course's package, in any install form."""
    normalized = entry.lower().replace("-", "_")
    return (normalized == "utils" or normalized.startswith(("utils.", "cnn_keras_course"))
            or normalized.startswith("__editable__") and "cnn_keras_course" in normalized)


def colab_like_venv(root: Path) -> tuple[Path, Path, Path]:
    """A fresh virtual environment that has this environment's packages but not the course's.

    Installing TensorFlow anew would take minutes and gigabytes, so the venv sees the
    test environment's site-packages through a folder of symbolic links (named by a .pth
    file) that leaves out every trace of the course package: its code, its metadata, and
    its editable-install finder. Like Colab, the venv then has TensorFlow and lacks `utils`.
    Returns the venv's python, its own site-packages, and the folder of links.
    """
    venv = root / "venv"
    # From inside a venv, the venv module builds the new one on the base interpreter.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    own_site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())

    shared = root / "shared-site-packages"
    shared.mkdir()
    for site_dir in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(site_dir).iterdir():
            link = shared / entry.name
            if not is_course_package(entry.name) and not link.exists():
                link.symlink_to(entry)
    (own_site / "shared_site_packages.pth").write_text(f"{shared}\n")
    return python, own_site, shared


@pytest.mark.slow  # builds a virtual environment, executes lesson 01
def test_setup_cell_installs_the_package_in_colab(first_lesson, tmp_path, subprocess_env, monkeypatch):
    python, own_site, shared = colab_like_venv(tmp_path)
    clone = clone_working_tree(tmp_path / "clone")
    workdir = tmp_path / "work"  # not the repository, whose utils/ folder `import` would find
    workdir.mkdir()

    # Nothing from this environment's search path or user site may leak into the venv's.
    venv_env = {key: value for key, value in subprocess_env.items()
                if key not in ("PYTHONPATH", "PYTHONHOME", "PIP_USER", "PIP_TARGET", "PIP_PREFIX")}
    venv_env["PYTHONNOUSERSITE"] = "1"

    # The starting point is Colab's: TensorFlow installed, the course package not.
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, importlib.util as u; "
         "print(m.version('tensorflow'), u.find_spec('utils') is None)"],
        capture_output=True, text=True, check=True, cwd=workdir, env=venv_env)
    assert probe.stdout.split() == [metadata.version("tensorflow"), "True"]
    entries_before = {entry.name for entry in own_site.iterdir()}

    # Stand-in for Colab's runtime, which imports google.colab before the first cell runs.
    stub = tmp_path / "colab-stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab module."""\n')
    kernels = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.exec_lines=import google.colab"],
        "display_name": "Colab stand-in", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    kernel_env = {**venv_env,
                  SOURCE_ENV: f"git+file://{clone}",  # the one variable: a local clone instead of GitHub
                  "PYTHONPATH": str(tmp_path / "colab-stub")}

    notebook = nbformat.read(first_lesson, as_version=4)
    setup_index = notebook.cells.index(setup_cell(notebook))
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    client = NotebookClient(notebook, kernel_name=KERNEL_NAME, timeout=300,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=kernel_env)

    report = json.loads(notebook.cells[-1].outputs[-1]["text"])
    assert report["colab"] is True
    assert Path(report["utils"]).is_relative_to(own_site), f"utils came from {report['utils']}"
    assert Path(report["tensorflow"]).is_relative_to(shared), f"tensorflow came from {report['tensorflow']}"
    assert report["tensorflow_version"] == metadata.version("tensorflow")

    # pip added the course package and nothing else: TensorFlow was neither reinstalled nor upgraded.
    added = {entry.name for entry in own_site.iterdir()} - entries_before
    assert added and all(is_course_package(entry) for entry in added), f"pip installed {sorted(added)}"

    lesson_cells = [cell for cell in notebook.cells[setup_index + 1:-1] if cell.cell_type == "code"]
    assert lesson_cells and all(cell.execution_count for cell in lesson_cells)
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.output_type == "error"]
    assert not errors
