"""Small MNIST and CIFAR-10 files in the exact formats Keras caches, for tests.

``write_keras_home(folder)`` fills ``folder`` as a Keras home (``datasets/mnist.npz``,
``datasets/cifar-10-batches-py-target_archive``) and writes a checksum file that
``COURSE_EXTRA_CHECKSUMS`` points the loader at, since these files are not the real ones.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

MNIST_TRAIN, MNIST_TEST = 300, 100
CIFAR_PER_BATCH, CIFAR_TEST = 60, 100


def _labels(count: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.arange(count) % 10  # every class equally often
    rng.shuffle(labels)
    return labels.astype(np.uint8)


def _images(labels: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Noise plus a bright block whose position encodes the class, so a CNN can learn it."""
    images = rng.integers(0, 60, size=(len(labels), *shape), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        row, col = divmod(int(label), 5)
        image[4 + 10 * row: 12 + 10 * row, 2 + 5 * col: 6 + 5 * col] = 255
    return images


def write_mnist_npz(path: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    y_train, y_test = _labels(MNIST_TRAIN, rng), _labels(MNIST_TEST, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:  # np.savez would add ".npz" to a str path
        np.savez_compressed(stream, x_train=_images(y_train, (28, 28), rng), y_train=y_train,
                            x_test=_images(y_test, (28, 28), rng), y_test=y_test)
    return path


class _Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 ``str`` (BINSTRING), as in the original CIFAR-10 files.

    The project's one private standard-library API: only the pure-Python pickler's dispatch table
    can be extended for bytes. test_data.py checks that it still writes BINSTRING.
    """

    def save_bytes(self, obj):
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", size) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def _python2_pickle(value) -> bytes:
    stream = io.BytesIO()
    _Python2Pickler(stream, protocol=2).dump(value)
    return stream.getvalue()


def write_cifar10_archive(path: Path, seed: int = 2) -> Path:
    """A ``cifar-10-python.tar.gz`` look-alike: pickled dicts with bytes keys, CHW rows."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        members = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for member in members:
            count = CIFAR_TEST if member == "test_batch" else CIFAR_PER_BATCH
            labels = _labels(count, rng)
            hwc = _images(labels, (32, 32, 3), rng)
            rows = hwc.transpose(0, 3, 1, 2).reshape(count, 3072)
            batch = {b"batch_label": member.encode(), b"labels": labels.tolist(),
                     b"data": rows, b"filenames": [b"img_%d.png" % i for i in range(count)]}
            raw = _python2_pickle(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path


def write_fashion_idx(folder: Path, train: int = 200, test: int = 100, seed: int = 3) -> Path:
    """Fashion-MNIST's four idx ``.gz`` files, small."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = _labels(count, rng)
        images = _images(labels, (28, 28), rng)
        header = (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
        header = (0x0801).to_bytes(4, "big") + count.to_bytes(4, "big")
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + labels.tobytes()))
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_keras_home(home: Path) -> Path:
    """Write small MNIST and CIFAR-10 into the Keras home ``home``; return the checksum file."""
    mnist = write_mnist_npz(home / "datasets" / "mnist.npz")
    cifar = write_cifar10_archive(home / "datasets" / "cifar-10-batches-py-target_archive")
    checksums = home / "test-checksums.json"
    checksums.write_text(json.dumps({"mnist": {mnist.name: sha256(mnist)},
                                     "cifar10": {cifar.name: sha256(cifar)}}))
    return checksums
