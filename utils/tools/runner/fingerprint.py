"""What decides a run's results besides its notebook and parameters, where the run executes.

A run is reused only when its recorded fingerprint equals the current one: the course
package's code, the versions of Python and of the frameworks, and the checksums of the dataset
files it reads. A change to any of them executes the run again.
"""

from __future__ import annotations

import hashlib
import platform
from importlib.metadata import packages_distributions, version
from pathlib import Path

import utils
from utils import data

PACKAGE = Path(utils.__file__).resolve().parent
FRAMEWORKS = ("tensorflow", "keras", "numpy", "scipy", "sklearn", "matplotlib", "papermill",
              "ipykernel")  # importable names; their distributions' versions count


def package_sha256(package: Path = PACKAGE) -> str:
    """One SHA-256 over the names and contents of the package's files (no byte code)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def framework_versions() -> dict[str, list[str]]:
    """``{"keras": ["keras==3.15.1"], ...}``: the distributions installed for each framework."""
    installed = packages_distributions()
    return {name: sorted(f"{dist}=={version(dist)}" for dist in set(installed.get(name, [])))
            for name in FRAMEWORKS}


def dataset_sha256(name: str) -> dict[str, str | None]:
    """The SHA-256 of each of the dataset's cached files; None for a missing one."""
    home = data.keras_home()
    files = {f.name: home / f.cache_path for f in data.get_spec(name).files}
    return {key: data.sha256_of(path) if path.is_file() else None for key, path in files.items()}


def environment(datasets: tuple[str, ...] | list[str] = ()) -> dict:
    """This machine's fingerprint for runs reading ``datasets`` (JSON, as notebook metadata stores it)."""
    return {"course_package_sha256": package_sha256(), "python": platform.python_version(),
            "frameworks": framework_versions(),
            "datasets": {name: dataset_sha256(name) for name in sorted(set(datasets))}}
