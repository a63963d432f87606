"""pyproject.toml is the one list of dependencies; environment.yml installs from it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_package_with_its_extras():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda and "pip" in conda
    assert pip == [f"-e .[{','.join(sorted(extras))}]"], "environment.yml must install exactly .[all extras]"
    # nothing but Python and pip from conda: every other dependency comes from pyproject.toml
    assert set(conda) == {"python=3.11", "pip"}


def test_dependencies_are_ranges_with_keras_3():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    assert not [d for d in deps if "==" in d], "use compatible ranges, not pins"
    assert "tensorflow>=2.16,<3" in project["dependencies"]
    for needed in ("jupyterlab", "nbval", "papermill", "matplotlib", "numpy"):
        assert any(d.startswith(needed) for d in deps), needed
