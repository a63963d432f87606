"""utils/data.py: registry, loading from the Keras cache, the download path, staging, errors."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import pickletools
import subprocess
import sys
import tarfile
from pathlib import Path

from utils import data
from utils.tools.cli import main as course

import numpy as np
import pytest
from keras_format_files import (
    CIFAR_PER_BATCH,
    CIFAR_TEST,
    MNIST_TEST,
    MNIST_TRAIN,
    _python2_pickle,
    sha256,
    write_cifar10_archive,
    write_fashion_idx,
    write_mnist_npz,
)


def test_registry_records_shape_classes_loader_and_checksums():
    assert data.dataset_names() == ["cifar10", "fashion_mnist", "mnist"]
    expected = {"mnist": ((28, 28, 1), "keras.datasets.mnist.load_data"),
                "fashion_mnist": ((28, 28, 1), "keras.datasets.fashion_mnist.load_data"),
                "cifar10": ((32, 32, 3), "keras.datasets.cifar10.load_data")}
    for name, (shape, loader) in expected.items():
        spec = data.get_spec(name)
        assert spec.input_shape == shape and spec.keras_loader == loader
        assert spec.num_classes == len(set(spec.class_names)) == 10
        assert spec.files and all(len(f.sha256) == 64 for f in spec.files)


def test_unknown_dataset_names_the_valid_choices():
    with pytest.raises(data.UnknownDatasetError, match=r"'imagenet'.*cifar10, fashion_mnist, mnist"):
        data.load_dataset("imagenet")


def test_real_fashion_mnist_splits(keras_home):
    splits = data.load_dataset("fashion_mnist", seed=0)
    assert splits.x_train.shape == (54000, 28, 28, 1) and splits.x_val.shape == (6000, 28, 28, 1)
    assert splits.x_test.shape == (10000, 28, 28, 1)
    assert splits.x_train.dtype == np.float32
    assert 0.0 == splits.x_train.min() and splits.x_train.max() == 1.0
    # stratified validation split: 600 of each class, the rest for training
    assert np.bincount(splits.y_val).tolist() == [600] * 10
    assert splits.label == "Fashion-MNIST" and not splits.test_files


def test_validation_comes_from_training_set_and_split_is_seeded(keras_home):
    (x_train, _), (x_test, _) = data.load_raw("fashion_mnist")
    a = data.load_dataset("fashion_mnist", limit=1000, seed=1)
    b = data.load_dataset("fashion_mnist", limit=1000, seed=1)
    c = data.load_dataset("fashion_mnist", limit=1000, seed=2)
    assert np.array_equal(a.x_val, b.x_val) and not np.array_equal(a.x_val, c.x_val)
    train_images = {image.tobytes() for image in x_train}
    test_images = {image.tobytes() for image in x_test}
    for image in np.rint(a.x_val[..., 0] * 255).astype(np.uint8):
        assert image.tobytes() in train_images and image.tobytes() not in test_images
    val_rows = {image.tobytes() for image in a.x_val}
    assert not val_rows & {image.tobytes() for image in a.x_train}


def test_limit_takes_a_stratified_subset_and_labels_the_run(keras_home):
    splits = data.load_dataset("fashion_mnist", limit=1000)
    assert len(splits.x_train) + len(splits.x_val) == 1000 and len(splits.x_test) == 1000
    assert np.bincount(splits.y_train, minlength=10).tolist() == [90] * 10
    assert splits.label.startswith("Fashion-MNIST (LIMITED with limit=1000: 900 train, 100 validation, "
                                   "1,000 test images")
    assert "LIMITED" in splits.describe()


SMALL_FILE_SIZES = {"mnist": (MNIST_TRAIN, MNIST_TEST), "cifar10": (5 * CIFAR_PER_BATCH, CIFAR_TEST)}


@pytest.mark.parametrize("name, limit", [("fashion_mnist", None), ("fashion_mnist", 1000),
                                         ("fashion_mnist", 20_000), ("mnist", 200), ("cifar10", 150)])
def test_split_sizes_are_what_load_dataset_returns(keras_home, name, limit):
    spec = data.get_spec(name)
    if name in SMALL_FILE_SIZES:  # the small test files hold fewer images than the real data
        train_size, test_size = SMALL_FILE_SIZES[name]
        spec = dataclasses.replace(spec, train_size=train_size, test_size=test_size)
    splits = data.load_dataset(name, limit=limit)
    assert data.split_sizes(spec, limit) == (len(splits.y_train), len(splits.y_val), len(splits.y_test))


def test_split_sizes_above_ten_thousand_cap_the_test_set():
    assert data.split_sizes(data.get_spec("fashion_mnist"), 20_000) == (18_000, 2_000, 10_000)


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 5}, r"limit must be None .* from 100 to 60000 for fashion_mnist; got 5"),
    ({"limit": 2.5}, r"got 2.5"),
    ({"limit": True}, r"got True"),
    ({"limit": 10**6}, r"got 1000000"),
    ({"validation_fraction": 0}, r"validation_fraction must be a number in \(0, 0.5\]; got 0"),
    ({"validation_fraction": 0.9}, r"got 0.9"),
    ({"validation_fraction": "0.1"}, r"got '0.1'"),
    ({"seed": -1}, r"seed must be a whole number >= 0; got -1"),
])
def test_bad_limit_fraction_or_seed(keras_home, kwargs, message):
    with pytest.raises(data.InvalidSplitError, match=message):
        data.load_dataset("fashion_mnist", **kwargs)


def test_small_mnist_in_keras_npz_format(keras_home):
    splits = data.load_dataset("mnist")
    assert splits.x_train.shape[1:] == (28, 28, 1)
    assert len(splits.x_train) + len(splits.x_val) == MNIST_TRAIN and len(splits.x_test) == MNIST_TEST
    assert splits.test_files and "small test files" in splits.label


def test_small_cifar10_reads_as_the_format_says(keras_home, tmp_path):
    """The CIFAR-10 python format: each batch a pickled dict, b"data" rows of 3072 bytes (the red
    plane, then green, then blue, each 32x32 row by row) and b"labels"."""
    (x_train, y_train), (x_test, y_test) = data.load_raw("cifar10")
    assert x_train.shape == (300, 32, 32, 3) and x_test.shape == (100, 32, 32, 3)
    archive = keras_home / "datasets" / "cifar-10-batches-py-target_archive"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as stream:
        batch = pickle.load(stream, encoding="bytes")  # the test's own file: safe to unpickle
    rows = np.asarray(batch[b"data"], dtype=np.uint8)
    assert np.array_equal(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), x_test)
    assert np.array_equal(x_test[:, 0, 1, 2], rows[:, 2 * 1024 + 0 * 32 + 1])  # blue at row 0, column 1
    assert np.array_equal(np.asarray(batch[b"labels"]), y_test)


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_a_load_reads_each_file_once_to_check_it(keras_home, monkeypatch, name):
    hashed = []
    sha256_of = data.sha256_of
    monkeypatch.setattr(data, "sha256_of", lambda path: hashed.append(Path(path).name) or sha256_of(path))
    splits = data.load_dataset(name, limit=100)
    assert splits.test_files  # the small test files, recognised by their checksums
    assert sorted(hashed) == sorted(Path(f.cache_path).name for f in data.get_spec(name).files)


def test_the_small_cifar10_pickles_bytes_as_python_2_strings():
    """What keras_format_files' pickler (a private standard-library class) must keep doing."""
    opcodes = {op.name for op, _, _ in pickletools.genops(_python2_pickle({b"data": b"x" * 300, b"k": b"y"}))}
    assert {"BINSTRING", "SHORT_BINSTRING"} <= opcodes and "BINBYTES" not in opcodes
    assert pickle.loads(_python2_pickle({b"k": b"y"}), encoding="bytes") == {b"k": b"y"}


def test_cifar10_pickle_cannot_run_code(keras_home):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    archive = keras_home / "datasets" / "cifar-10-batches-py-target_archive"
    raw = pickle.dumps({b"data": Exploit(), b"labels": []})
    with tarfile.open(archive, "w:gz") as tar:
        for member in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    checksums = Path(os.environ[data.EXTRA_CHECKSUMS_ENV])
    accepted = json.loads(checksums.read_text())
    accepted["cifar10"][archive.name] = sha256(archive)
    checksums.write_text(json.dumps(accepted))
    with pytest.raises(data.DataError, match=r"refusing to load (posix|os)\.system"):
        data.load_raw("cifar10")


def test_fashion_reader_matches_keras_loader(test_keras_env):
    """Our idx reader and keras.datasets.fashion_mnist.load_data() give identical arrays."""
    script = ("import numpy as np, keras\n"
              "from utils import data\n"
              "ours = data.load_raw('fashion_mnist')\n"
              "theirs = keras.datasets.fashion_mnist.load_data()\n"
              "assert all(np.array_equal(o, t) for a, b in zip(ours, theirs) for o, t in zip(a, b))\n"
              "print('identical')\n")
    env = {**os.environ, **test_keras_env}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "identical" in result.stdout


def test_missing_offline_names_the_file_and_the_fix(keras_home):
    (keras_home / "datasets" / "mnist.npz").unlink()
    with pytest.raises(data.DataNotAvailableError) as error:
        data.load_dataset("mnist")
    message = str(error.value)
    assert str(keras_home / "datasets" / "mnist.npz") in message
    assert "COURSE_OFFLINE=1" in message and "course data stage mnist --from" in message


def test_missing_fashion_mnist_fix_names_the_debian_package(keras_home):
    for path in (keras_home / "datasets" / "fashion-mnist").iterdir():
        path.unlink()
    with pytest.raises(data.DataNotAvailableError, match=(
            r"apt-get install dataset-fashion-mnist && course data stage fashion_mnist "
            r"--from /usr/share/datasets/fashion-mnist")):
        data.load_dataset("fashion_mnist")


def test_failed_download_reports_the_reason(keras_home, monkeypatch):
    (keras_home / "datasets" / "mnist.npz").unlink()
    monkeypatch.delenv(data.OFFLINE_ENV)

    def no_network(**kwargs):
        raise Exception(f"URL fetch failure on {kwargs['origin']}: None -- Name or service not known")

    monkeypatch.setattr("keras.utils.get_file", no_network)
    with pytest.raises(data.DataNotAvailableError, match=r"the download failed: URL fetch failure"):
        data.load_dataset("mnist")


def test_online_path_downloads_with_keras_into_the_cache(keras_home, monkeypatch, tmp_path):
    """With no cached file and a network, Keras's get_file fills the standard cache."""
    (keras_home / "datasets" / "mnist.npz").unlink()
    monkeypatch.delenv(data.OFFLINE_ENV)
    calls = []

    def fake_get_file(fname, origin, file_hash, cache_subdir, cache_dir, extract):
        calls.append((fname, origin, cache_subdir, cache_dir))
        return str(write_mnist_npz(Path(cache_dir) / cache_subdir / fname))

    monkeypatch.setattr("keras.utils.get_file", fake_get_file)
    splits = data.load_dataset("mnist")
    assert calls == [("mnist.npz", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
                      "datasets", str(keras_home))]
    assert len(splits.x_test) == MNIST_TEST


def test_a_download_that_writes_another_file_name_is_reported(keras_home, monkeypatch):
    """Keras before 3.6 cached CIFAR-10 under another name: say so, not "missing and None"."""
    archive = keras_home / "datasets" / "cifar-10-batches-py-target_archive"
    archive.unlink()
    monkeypatch.delenv(data.OFFLINE_ENV)
    unpacked = archive.with_name("cifar-10-batches-py")
    monkeypatch.setattr("keras.utils.get_file", lambda **kwargs: str(unpacked))
    with pytest.raises(data.DataNotAvailableError,
                       match=r"target_archive is missing and the download finished without writing it "
                             r"\(Keras 3\.\d+\.\d+ caches this file under another name\)\. Fix: "):
        data.load_dataset("cifar10")


def test_truncated_file_is_reported_and_left_alone(keras_home, monkeypatch):
    path = keras_home / "datasets" / "mnist.npz"
    path.write_bytes(path.read_bytes()[:1000])
    monkeypatch.delenv(data.OFFLINE_ENV)
    monkeypatch.setattr("keras.utils.get_file", lambda **kw: pytest.fail("re-downloaded a bad file"))
    with pytest.raises(data.ChecksumError, match=rf"{path} is corrupted or truncated \(1000 bytes"):
        data.load_dataset("mnist")
    assert path.stat().st_size == 1000


def test_real_checksum_is_enforced_without_the_test_override(keras_home, monkeypatch):
    monkeypatch.delenv(data.EXTRA_CHECKSUMS_ENV)
    with pytest.raises(data.ChecksumError, match="mnist.npz is corrupted"):
        data.load_dataset("mnist")


def test_stage_copies_verified_files_into_the_keras_cache(keras_home, tmp_path):
    source = write_fashion_idx(tmp_path / "copy")
    checksums = Path(os.environ[data.EXTRA_CHECKSUMS_ENV])
    accepted = json.loads(checksums.read_text())
    accepted["fashion_mnist"] = {p.name: sha256(p) for p in source.iterdir()}
    checksums.write_text(json.dumps(accepted))
    target = keras_home / "datasets" / "fashion-mnist"
    for link in target.iterdir():
        link.unlink()
    staged = data.stage("fashion_mnist", source)
    assert sorted(p.name for p in staged) == sorted(p.name for p in source.iterdir())
    assert all(not p.is_symlink() and p.read_bytes() == (source / p.name).read_bytes() for p in staged)
    assert data.load_dataset("fashion_mnist", limit=100).x_train.shape == (90, 28, 28, 1)


def test_stage_rejects_a_bad_copy_and_copies_nothing(keras_home, tmp_path):
    source = tmp_path / "copy"
    write_cifar10_archive(source / "cifar-10-python.tar.gz")
    target = keras_home / "datasets" / "cifar-10-batches-py-target_archive"
    before = target.read_bytes()
    with pytest.raises(data.ChecksumError, match="cifar-10-python.tar.gz is corrupted"):
        data.stage("cifar10", source)
    assert target.read_bytes() == before
    with pytest.raises(data.DataNotAvailableError, match=r"has no mnist.npz"):
        data.stage("mnist", tmp_path / "empty")


def test_cli_stage_and_status(keras_home, tmp_path, capsys):
    source = tmp_path / "copy"
    source.mkdir()
    (source / "mnist.npz").write_bytes((keras_home / "datasets" / "mnist.npz").read_bytes())
    (keras_home / "datasets" / "mnist.npz").unlink()
    assert course(["data", "stage", "mnist", "--from", str(source)]) == 0
    assert course(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert "MNIST: staged and verified" in out and "mnist          cached, checksums OK" in out


def test_cli_errors_exit_2_with_the_message(keras_home, capsys):
    (keras_home / "datasets" / "mnist.npz").unlink()
    assert course(["data", "prepare", "mnist"]) == 2
    assert "course data: error: MNIST is not available" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        course(["data", "stage", "imagenet", "--from", "."])
    assert exit_info.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err
