"""Shared fixtures: a temporary Keras home with real Fashion-MNIST and small test files."""

from __future__ import annotations

import os
from pathlib import Path

from utils.tools import reproduce

reproduce.apply()  # before TensorFlow is imported, here and in every child process

from utils import data  # noqa: E402

import pytest  # noqa: E402
from keras_format_files import write_keras_home  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _real_fashion_mnist_folder() -> Path | None:
    """Where the real Fashion-MNIST is: the user's Keras cache, or Debian's package."""
    cached = data.keras_home() / "datasets" / "fashion-mnist"
    for folder in (cached, Path(data.DEBIAN_FASHION_MNIST)):
        if all((folder / f.name).is_file() for f in data.get_spec("fashion_mnist").files):
            return folder
    return None


def make_test_keras_home(home: Path) -> dict[str, str]:
    """A Keras home holding the real Fashion-MNIST (linked) and small MNIST and CIFAR-10.

    Returns the environment variables that point the course at it, offline.
    """
    checksums = write_keras_home(home)
    real = _real_fashion_mnist_folder()
    if real is not None:
        target = home / "datasets" / "fashion-mnist"
        target.mkdir(parents=True, exist_ok=True)
        for data_file in data.get_spec("fashion_mnist").files:
            link = target / data_file.name
            if not link.exists():
                link.symlink_to((real / data_file.name).resolve())
    return {"KERAS_HOME": str(home), data.EXTRA_CHECKSUMS_ENV: str(checksums),
            data.OFFLINE_ENV: "1"}


@pytest.fixture(scope="session")
def test_keras_env(tmp_path_factory) -> dict[str, str]:
    """Environment variables of a session-wide test Keras home (for subprocesses)."""
    env = make_test_keras_home(tmp_path_factory.mktemp("keras-home"))
    if not (Path(env["KERAS_HOME"]) / "datasets" / "fashion-mnist").exists():
        pytest.fail("the real Fashion-MNIST is missing: run `make data` "
                    f"(or: {data.fix_command('fashion_mnist')})")
    return env


@pytest.fixture
def keras_home(tmp_path, monkeypatch, test_keras_env) -> Path:
    """This test's own Keras home, set in the environment of this process."""
    env = make_test_keras_home(tmp_path / "keras")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Path(env["KERAS_HOME"])


@pytest.fixture
def subprocess_env(test_keras_env, tmp_path) -> dict[str, str]:
    """A full environment for child processes (papermill kernels, the course CLI)."""
    env = dict(os.environ)
    env.update(test_keras_env)
    env["COURSE_MODEL_CACHE"] = str(tmp_path / "model-cache")
    return env
