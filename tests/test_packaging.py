"""pyproject.toml is the one list of dependencies and packages; environment.yml installs from it.

The tooling (utils.tools) is installed too, and stays apart from what lessons import.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOWEST_CONSTRAINTS = REPO / ".ci" / "lowest-constraints.txt"
# The packages whose lowest allowed versions `make test-lowest` installs.
LOWEST_TESTED = {"tensorflow", "keras", "numpy", "scipy", "scikit-learn", "matplotlib", "papermill", "nbval"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirements() -> list[Requirement]:
    project = pyproject()
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    return [Requirement(d) for d in deps]


def lower_bounds() -> dict[str, Version]:
    """Each requirement's `>=` bound in pyproject.toml, by package name."""
    return {r.name: Version(s.version) for r in requirements() for s in r.specifier if s.operator == ">="}


def lowest_pins() -> dict[str, Version]:
    """The `name==version` pins of .ci/lowest-constraints.txt."""
    pins = {}
    for line in LOWEST_CONSTRAINTS.read_text().splitlines():
        if line.split("#")[0].strip():
            requirement = Requirement(line.split("#")[0])
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{LOWEST_CONSTRAINTS.name}: pin with ==, not {line!r}"
            pins[requirement.name] = Version(spec.version)
    return pins


def test_environment_yml_installs_the_package_with_its_extras():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = f"python={pyproject()['requires-python'].removeprefix('>=')}"
    assert pip == [f"-e .[{','.join(sorted(extras))}]"], "environment.yml must install exactly .[all extras]"
    # nothing but Python and pip from conda: every other dependency comes from pyproject.toml
    assert set(conda) == {python, "pip"}


def test_dependencies_are_ranges_with_keras_3():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    assert not [d for d in deps if "==" in d], "use compatible ranges, not pins"
    assert "tensorflow>=2.16.1,<3" in project["dependencies"]
    for needed in ("jupyterlab", "nbval", "papermill", "matplotlib", "numpy"):
        assert any(d.startswith(needed) for d in deps), needed


def test_lowest_constraints_pin_the_lower_bounds_of_pyproject():
    pins, bounds = lowest_pins(), lower_bounds()
    assert set(pins) == LOWEST_TESTED, f"{LOWEST_CONSTRAINTS.name} must pin exactly {sorted(LOWEST_TESTED)}"
    drift = {name: (str(pin), str(bounds.get(name))) for name, pin in pins.items() if bounds.get(name) != pin}
    assert not drift, f"pin differs from pyproject.toml's lower bound (pin, bound): {drift}"
    assert "-c .ci/lowest-constraints.txt" in (REPO / "Makefile").read_text(), "make test-lowest must use it"



def test_colab_pins_are_inside_pyproject_ranges_and_the_drift_lane_uses_them():
    pins = {}
    for line in (REPO / ".ci" / "colab-pins.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"colab-pins.txt: pin with ==, not {line!r}"
            pins[requirement.name] = Version(spec.version)
    assert {"tensorflow", "keras", "numpy"} <= set(pins)
    declared = {r.name: r.specifier for r in requirements()}
    outside = {name: f"{pin} not in {declared[name]}" for name, pin in pins.items()
               if not declared[name].contains(pin)}
    assert not outside, f"Colab ships versions that pyproject.toml refuses: {outside}"
    assert "-c .ci/colab-pins.txt" in (REPO / "Makefile").read_text(), "make test-colab must use it"

def test_python_and_lowest_versions_agree_everywhere():
    python = pyproject()["requires-python"].removeprefix(">=")
    assert re.fullmatch(r"3\.\d+", python), f"requires-python should be '>=3.N', not {python!r}"
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"] == \
        "py" + python.replace(".", "")
    readme = (REPO / "README.md").read_text()
    assert "\n## Supported versions\n" in readme, "the README needs a Supported versions section"
    supported = readme.split("\n## Supported versions\n", 1)[1].split("\n## ", 1)[0]
    bounds = lower_bounds()
    for stated in (f"Python {python} or newer", f"TensorFlow {bounds['tensorflow']} or newer",
                   f"Keras {bounds['keras']} or newer"):
        assert stated in supported, f"the README's Supported versions section must say {stated!r}"
    assert "Python 3." not in readme.replace(supported, ""), \
        "state the Python version once, in Supported versions"


def test_every_package_is_installed_and_the_course_command_is_the_tools_cli():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    found = sorted(".".join(path.parent.relative_to(REPO).parts)
                   for path in (REPO / "utils").rglob("__init__.py"))
    assert config["tool"]["setuptools"]["packages"] == found
    assert config["project"]["scripts"] == {"course": "utils.tools.cli:main"}
    extras = config["project"]["optional-dependencies"]
    assert [d for d in extras["cluster"] if d.startswith("distributed")]
    itself = [Requirement(d) for d in extras["test"] if Requirement(d).name == "cnn-keras-course"]
    assert [r.extras >= {"course", "cluster"} for r in itself] == [True]  # the tests use Dask


def imported_modules(source: str) -> list[str]:
    nodes = list(ast.walk(ast.parse(source)))
    return ([node.module or "" for node in nodes if isinstance(node, ast.ImportFrom)]
            + [alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names])


def test_what_lessons_import_never_imports_the_tooling():
    """The lessons' library (utils/*.py) and the notebooks stay apart from utils.tools."""
    for path in (REPO / "utils").glob("*.py"):
        if path.name != "__main__.py":  # `python -m utils` is the course command
            tooling = [m for m in imported_modules(path.read_text()) if m.startswith("utils.tools")]
            assert not tooling, f"utils/{path.name} imports {tooling}"
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        assert not [source for source in code if "utils.tools" in source], path.name


def course_modules_imported(path: Path) -> set[str]:
    """The modules of utils/ that one of them imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        module = node.module or "" if isinstance(node, ast.ImportFrom) and node.level == 0 else None
        if module == "utils":
            found |= {alias.name for alias in node.names}
        elif module and module.startswith("utils."):
            found.add(module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("utils.")}
    return found - {path.stem}


def test_the_course_modules_import_each_other_without_a_cycle():
    """Lesson-facing modules stand above the course-wide helpers they use, never in a circle with them."""
    graph = {path.stem: course_modules_imported(path) & {p.stem for p in (REPO / "utils").glob("*.py")}
             for path in (REPO / "utils").glob("*.py") if path.stem not in ("__init__", "__main__")}

    def cycle_from(module: str, path: list[str]) -> list[str]:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                return [*path[path.index(imported):], imported]
            found = cycle_from(imported, [*path, imported])
            if found:
                return found
        return []

    cycles = [cycle for module in sorted(graph) if (cycle := cycle_from(module, [module]))]
    assert not cycles, "utils modules in a circle: " + ", ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_course_command_runs_as_python_m_utils():
    done = subprocess.run([sys.executable, "-m", "utils", "run", "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage: course run" in done.stdout and "--scheduler ADDRESS" in done.stdout


def declared_distributions() -> set[str]:
    """The distributions pyproject.toml declares, the optional ones included, normalised."""
    project = pyproject()
    extras = project["optional-dependencies"].values()
    listed = [*project["dependencies"], *(d for extra in extras for d in extra)]
    return {re.sub(r"[-_.]+", "-", Requirement(d).name).lower() for d in listed}


def test_every_module_the_course_and_its_tests_import_is_declared():
    """Each third-party module that utils/ or tests/ imports comes from a distribution listed there."""
    from importlib.metadata import packages_distributions

    declared = declared_distributions()
    local = {path.stem for path in (REPO / "tests").glob("*.py")} | {"utils"}
    providers = packages_distributions()
    missing = {}
    for path in [*(REPO / "utils").rglob("*.py"), *(REPO / "tests").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names} - local - set(sys.stdlib_module_names):
                dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(top, [top])}
                if not dists & declared:
                    missing[top] = sorted(dists)
    assert not missing, f"imported but not declared in pyproject.toml (module: distributions): {missing}"


def test_markers_are_strict_and_declared():
    """A mistyped marker is an error, not a test that `-m` silently never selects."""
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split()
    declared = {line.split(":")[0] for line in options["markers"]}
    builtin = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
    used = {name for path in (REPO / "tests").glob("*.py")
            for name in re.findall(r"pytest\.mark\.(\w+)", path.read_text(encoding="utf-8"))}
    assert used - builtin <= declared and declared <= used, (sorted(used - builtin), sorted(declared))


# The one documented use of a dependency's private API each, in a function with its own test.
PRIVATE_API_WRAPPERS = {("benchmarks/train_speed.py", "tensorflow_built_with_onednn"),  # test_benchmark
                        ("tests/keras_format_files.py", "_Python2Pickler")}  # test_data
# Modules of a dependency that its documentation does not offer, whatever their names look like.
INTERNAL_MODULES = ("distributed.comm",)
# Calls that reach an attribute by a name given as a string.
BY_NAME = {"getattr", "setattr", "hasattr", "delattr"}


def private_uses(path: Path, local: set[str]) -> list[str]:
    """``line: code`` for each private name of another package that ``path`` uses outside the wrappers."""
    found = []

    def visit(node, scope: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not scope:
            wrapper = (path.relative_to(REPO).as_posix(), node.name) in PRIVATE_API_WRAPPERS
            scope = node.name if wrapper else ""
        private = False
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            private = ast.unparse(node.value) not in ("self", "cls")
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            called = ast.unparse(node.func).split(".")[-1]
            name = node.args[1]
            private = (called in BY_NAME and isinstance(name, ast.Constant) and isinstance(name.value, str)
                       and name.value.startswith("_") and not name.value.startswith("__")
                       and ast.unparse(node.args[0]).split(".")[0] not in {"self", "cls", *local})
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            is_from = isinstance(node, ast.ImportFrom)
            modules = [node.module or ""] if is_from else [alias.name for alias in node.names]
            names = [alias.name for alias in node.names] if is_from else []
            foreign = [m for m in modules if m.split(".")[0] not in local and m != "__future__"]
            private = any(part.startswith("_") or part in ("src", "python")  # keras.src, tensorflow.python
                          for m in foreign for part in m.split(".")[1:]) or \
                any(f"{m}.".startswith(f"{internal}.") for m in foreign for internal in INTERNAL_MODULES) or \
                bool(foreign and any(n.startswith("_") and not n.startswith("__") for n in names))
        if private and not scope:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_no_private_api_of_a_dependency_outside_its_one_wrapper():
    files = [*(REPO / "utils").rglob("*.py"), *(REPO / "tests").glob("*.py"),
             *(REPO / "notebooks").glob("*.py"), *(REPO / "benchmarks").glob("*.py"),
             *(REPO / "website").rglob("*.py"), *(REPO / ".ci").glob("*.py")]
    local = {"utils"} | {path.stem for path in files}
    found = [use for path in files for use in private_uses(path, local)]
    assert not found, "private APIs: use a public one, or wrap it in one function:\n" + "\n".join(found)


def _bin(folder: Path, tools: dict[str, str | None]) -> str:
    """A PATH of one folder: each tool a link to the real one (None) or a small script."""
    folder.mkdir()
    for name, script in tools.items():
        if script is None:
            (folder / name).symlink_to(shutil.which(name))
        else:
            (folder / name).write_text(f"#!/bin/sh\n{script}\n")
            (folder / name).chmod(0o755)
    return str(folder)


@pytest.mark.parametrize("tools, reason", [
    ({}, "no apt-get here"),
    ({"apt-get": "exit 3", "id": "echo 1000"}, "not root, and no sudo"),
    ({"apt-get": "exit 3", "id": "echo 1000", "sudo": "exit 1"}, "not root, and sudo needs a password"),
], ids=["no-apt-get", "no-sudo", "sudo-with-a-password"])
def test_system_packages_are_left_out_with_the_reason_and_the_make_target_goes_on(tmp_path, tools, reason):
    path = _bin(tmp_path / "bin", {"bash": None, "dpkg-query": None, "grep": None, **tools})
    done = subprocess.run(["bash", str(REPO / ".ci" / "debian-packages.sh"), "no-such-package", "bash"],
                          env={"PATH": path}, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"not installing no-such-package: {reason}"), done.stdout
    assert "install them by other means" in done.stdout


def test_the_private_api_check_sees_names_given_as_strings_and_internal_modules(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    probe = tmp_path / "probe.py"
    probe.write_text("import sys, urllib.request\nfrom distributed.comm.addressing import parse_address\n"
                     "getattr(sys, '_base_executable', None)\n"
                     "def patch(monkeypatch):\n    monkeypatch.setattr(urllib.request, '_opener', None)\n"
                     "getattr(sys, 'executable')\n")
    assert [use.split(": ", 1)[0] for use in private_uses(probe, {"utils"})] == [
        "probe.py:2", "probe.py:3", "probe.py:5"]
