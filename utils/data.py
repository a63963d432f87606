"""The course's datasets: a registry, checksummed loading from the Keras cache, staging.

Data comes, in order, from the standard Keras cache (``$KERAS_HOME`` or ``~/.keras``),
from the Keras download when the machine is online, or from a local copy that
``course data stage`` copies into the cache. Every cached file is checked against
its SHA-256 before it is read; a bad file is reported, never replaced silently.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Debian's package `dataset-fashion-mnist` installs the real files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
# Set to 1 to never try the Keras download (tests, air-gapped classrooms).
OFFLINE_ENV = "COURSE_OFFLINE"
# A JSON file {dataset: {file name: sha256}} of extra accepted checksums. The test
# suite uses it for the small Keras-format files it writes; loads label it.
EXTRA_CHECKSUMS_ENV = "COURSE_EXTRA_CHECKSUMS"

_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class DataError(Exception):
    """Base class of the course's data errors (their messages say how to fix them)."""


class UnknownDatasetError(DataError, ValueError):
    """A dataset name that is not in the registry."""


class InvalidSplitError(DataError, ValueError):
    """A bad ``limit``, ``validation_fraction`` or ``seed``."""


class DataNotAvailableError(DataError, FileNotFoundError):
    """A dataset file that is neither cached nor downloadable."""


class ChecksumError(DataError):
    """A cached or staged file whose SHA-256 is not the expected one."""


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, where Keras caches it, and its checksum."""

    cache_path: str  # relative to the Keras home, exactly where Keras puts it
    origin: str  # the URL Keras downloads it from
    sha256: str
    local_name: str  # its name in a local copy, e.g. the upstream archive name
    extract: bool = False  # Keras also unpacks it next to the archive

    @property
    def name(self) -> str:
        return Path(self.cache_path).name


@dataclass(frozen=True)
class DatasetSpec:
    """What the course knows about one dataset."""

    name: str
    title: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    keras_loader: str
    files: tuple[DataFile, ...]
    train_size: int
    test_size: int
    local_copies: tuple[str, ...] = field(default=())

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _idx_files(subdir: str, sums: dict[str, str]) -> tuple[DataFile, ...]:
    return tuple(
        DataFile(f"datasets/{subdir}/{fname}", _KERAS_BASE + fname, sha, fname)
        for fname, sha in sums.items()
    )


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        input_shape=(28, 28, 1),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        keras_loader="keras.datasets.fashion_mnist.load_data",
        files=_idx_files("fashion-mnist", {
            "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        }),
        train_size=60000,
        test_size=10000,
        local_copies=(DEBIAN_FASHION_MNIST,),
    ),
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        input_shape=(28, 28, 1),
        class_names=tuple(str(digit) for digit in range(10)),
        keras_loader="keras.datasets.mnist.load_data",
        files=(DataFile("datasets/mnist.npz", _KERAS_BASE + "mnist.npz",
                        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                        "mnist.npz"),),
        train_size=60000,
        test_size=10000,
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        input_shape=(32, 32, 3),
        class_names=("airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"),
        keras_loader="keras.datasets.cifar10.load_data",
        files=(DataFile("datasets/cifar-10-batches-py-target_archive",
                        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                        "cifar-10-python.tar.gz", extract=True),),
        train_size=50000,
        test_size=10000,
    ),
}


def dataset_names() -> list[str]:
    """The names of the supported datasets. Introduced in lesson 05."""
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``, or a clear error. Introduced in lesson 02."""
    if name not in DATASETS:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; valid choices: {', '.join(dataset_names())}")
    return DATASETS[name]


def keras_home() -> Path:
    """The Keras cache folder: ``$KERAS_HOME`` or ``~/.keras``, as Keras resolves it."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def fix_command(name: str) -> str:
    """The shell command that puts ``name`` into the Keras cache on an offline machine."""
    spec = get_spec(name)
    if spec.local_copies:
        return (f"apt-get install dataset-{name.replace('_', '-')} && "
                f"course data stage {name} --from {spec.local_copies[0]}")
    names = " ".join(f.local_name for f in spec.files)
    return (f"download {names} from {' '.join(f.origin for f in spec.files)} "
            f"on a connected machine, then: course data stage {name} --from DIR")


def _extra_checksums(name: str) -> dict[str, str]:
    path = os.environ.get(EXTRA_CHECKSUMS_ENV)
    if not path:
        return {}
    return json.loads(Path(path).read_text()).get(name, {})


def uses_extra_checksums(name: str, checksums: dict[str, str] | None = None) -> bool:
    """True when the cached files of ``name`` are test files accepted by extra checksums.

    ``checksums`` (file name -> SHA-256) are the files' known checksums; the others are computed.
    """
    extra, known = _extra_checksums(name), checksums or {}
    home = keras_home()
    return any(
        (home / f.cache_path).exists()
        and (known[f.name] if f.name in known else sha256_of(home / f.cache_path)) == extra.get(f.name)
        for f in get_spec(name).files
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, data_file: DataFile, dataset: str) -> None:
    """Raise ChecksumError, naming the file, unless ``path`` has the expected SHA-256; return it."""
    actual = sha256_of(path)
    accepted = {data_file.sha256, _extra_checksums(dataset).get(data_file.name)}
    if actual not in accepted:
        raise ChecksumError(
            f"{path} is corrupted or truncated ({path.stat().st_size} bytes, sha256 "
            f"{actual[:12]}…, expected {data_file.sha256[:12]}…). It was left as it is; "
            f"delete it and run `course data prepare {dataset}` (or: {fix_command(dataset)})")
    return actual


def missing_files(name: str) -> list[Path]:
    """The cache paths of ``name`` that are not there yet."""
    home = keras_home()
    return [home / f.cache_path for f in get_spec(name).files
            if not (home / f.cache_path).exists()]


def offline() -> bool:
    """True when $COURSE_OFFLINE (OFFLINE_ENV) forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def _download(spec: DatasetSpec, data_file: DataFile) -> None:
    """Fetch one file into the Keras cache with Keras's own downloader."""
    from keras.utils import get_file

    subdir, fname = os.path.split(data_file.cache_path)
    if data_file.extract:  # Keras names the archive "<fname>_archive" and unpacks it
        fname = fname.removesuffix("_archive")
    get_file(fname=fname, origin=data_file.origin, file_hash=data_file.sha256,
             cache_subdir=subdir, cache_dir=str(keras_home()), extract=data_file.extract)


def _keras_version() -> str:
    import keras

    return keras.__version__


def ensure_cached(name: str) -> dict[str, Path]:
    """Make sure every file of ``name`` is in the Keras cache and verified; return the paths.

    Cached files are verified, never replaced. Missing files are downloaded with
    Keras unless offline; if that fails the error names the file and the fix.
    """
    return _ensure_verified(name)[0]


def _ensure_verified(name: str) -> tuple[dict[str, Path], dict[str, str]]:
    """``ensure_cached``, with each file's SHA-256 as it was verified: each file is read once."""
    spec = get_spec(name)
    checksums = {}
    home = keras_home()
    for data_file in spec.files:
        path = home / data_file.cache_path
        if not path.exists():
            reason = f"{OFFLINE_ENV}=1 is set" if offline() else None
            if reason is None:
                try:
                    _download(spec, data_file)
                except Exception as error:  # noqa: BLE001 - any download failure
                    reason = f"the download failed: {str(error).strip().splitlines()[-1]}"
            if reason is None and not path.exists():
                reason = (f"the download finished without writing it (Keras {_keras_version()} "
                          "caches this file under another name)")
            if reason is not None:
                raise DataNotAvailableError(
                    f"{spec.title} is not available: {path} is missing and {reason}. "
                    f"Fix: {fix_command(name)}") from None
        checksums[data_file.name] = verify_file(path, data_file, name)
    return {f.name: home / f.cache_path for f in spec.files}, checksums


# Readers for the exact formats Keras caches.

def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    magic = int.from_bytes(raw[:4], "big")
    dims = magic & 0xFF
    if magic >> 8 != 0x08 or dims != expected_dims:
        raise DataError(f"{path} is not an idx file of {expected_dims} dimension(s)")
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _read_fashion_mnist(paths: dict[str, Path]):
    train = (_read_idx(paths["train-images-idx3-ubyte.gz"], 3),
             _read_idx(paths["train-labels-idx1-ubyte.gz"], 1))
    test = (_read_idx(paths["t10k-images-idx3-ubyte.gz"], 3),
            _read_idx(paths["t10k-labels-idx1-ubyte.gz"], 1))
    return train, test


def _read_mnist(paths: dict[str, Path]):
    with np.load(paths["mnist.npz"], allow_pickle=False) as arrays:
        return ((arrays["x_train"], arrays["y_train"]),
                (arrays["x_test"], arrays["y_test"]))


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batches (dicts, lists, bytes, NumPy arrays) and nothing else.

    A pickle can name any importable function and call it; this one refuses every
    global except the three NumPy needs to rebuild an array.
    """

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch")


def _read_cifar10(paths: dict[str, Path]):
    def batch(archive, member):
        raw = archive.extractfile(f"cifar-10-batches-py/{member}").read()
        entries = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        images = np.asarray(entries[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return images.transpose(0, 2, 3, 1), np.asarray(entries[b"labels"], dtype=np.uint8)

    archive_path = paths["cifar-10-batches-py-target_archive"]
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            parts = [batch(archive, f"data_batch_{i}") for i in range(1, 6)]
            test = batch(archive, "test_batch")
    except (tarfile.TarError, KeyError, pickle.UnpicklingError) as error:
        raise DataError(f"{archive_path} is not a CIFAR-10 python archive: {error}") from None
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, test


_READERS = {"fashion_mnist": _read_fashion_mnist, "mnist": _read_mnist, "cifar10": _read_cifar10}


def load_raw(name: str):
    """The dataset as Keras gives it: ``(x_train, y_train), (x_test, y_test)``, uint8, NHWC."""
    paths = ensure_cached(name)
    return _READERS[name](paths)


@dataclass
class Splits:
    """Train, validation and test arrays, scaled to [0, 1] with a channel axis."""

    spec: DatasetSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    limit: int | None
    seed: int
    test_files: bool = False

    @property
    def label(self) -> str:
        """The dataset's name, marked when the run is limited or uses test files."""
        marks = []
        if self.limit is not None:
            marks.append(f"LIMITED with limit={self.limit}: {len(self.y_train):,} train, "
                         f"{len(self.y_val):,} validation, {len(self.y_test):,} test images, a quick run")
        if self.test_files:
            marks.append("small test files, not the real data")
        return self.spec.title + (f" ({'; '.join(marks)})" if marks else "")

    def describe(self) -> str:
        """A few lines of dataset facts: splits, shapes, classes. Introduced in lesson 01."""
        rows = [self.label]
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            rows.append(f"  {split:<5} x {str(x.shape):<20} {x.dtype}  "
                        f"y {str(y.shape):<9} classes {len(np.unique(y))}")
        rows.append(f"  pixels in [{self.x_train.min():.0f}, {self.x_train.max():.0f}]; "
                    f"{self.spec.num_classes} classes: {', '.join(self.spec.class_names)}")
        return "\n".join(rows)


def stratified_indices(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices with each class in proportion to its share of ``labels``."""
    classes, sizes = np.unique(labels, return_counts=True)
    share = sizes * count / len(labels)
    quota = np.floor(share).astype(int)
    quota[np.argsort(-(share - quota), kind="stable")[: count - quota.sum()]] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))


def split_sizes(spec: DatasetSpec, limit: int | None = None,
                validation_fraction: float = 0.1) -> tuple[int, int, int]:
    """The (train, validation, test) sizes that ``load_dataset`` returns. Introduced in lesson 04.

    ``limit`` keeps at most that many images of the training set, which is then split into
    train and validation, and at most that many of the test set.
    """
    check_split_args(spec, validation_fraction, limit, 0)
    pool = spec.train_size if limit is None else min(limit, spec.train_size)
    val = round(validation_fraction * pool)
    return pool - val, val, spec.test_size if limit is None else min(limit, spec.test_size)


def check_split_args(spec: DatasetSpec, validation_fraction, limit, seed) -> None:
    """Raise InvalidSplitError naming a bad validation_fraction, limit or seed."""
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) \
            or not 0 < validation_fraction <= 0.5:
        raise InvalidSplitError(
            f"validation_fraction must be a number in (0, 0.5]; got {validation_fraction!r}")
    smallest = 10 * spec.num_classes
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or not smallest <= limit <= spec.train_size):
        raise InvalidSplitError(
            f"limit must be None (the full data) or a whole number from {smallest} "
            f"to {spec.train_size} for {spec.name}; got {limit!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidSplitError(f"seed must be a whole number >= 0; got {seed!r}")


def _scale(images: np.ndarray) -> np.ndarray:
    images = images.astype("float32") / 255.0
    return images[..., np.newaxis] if images.ndim == 3 else images


def load_dataset(name: str = "fashion_mnist", validation_fraction: float = 0.1,
                 limit: int | None = None, seed: int = 0) -> Splits:
    """Load any course dataset the same way. Introduced in lesson 01.

    The validation set is a seeded, stratified part of the training set; the test set
    is left untouched. ``limit`` keeps a stratified subset (each class in proportion to its
    share) of at most that many images of the training set, before it is split into train
    and validation, and of the test set, for quick runs. ``split_sizes`` gives the sizes.
    """
    spec = get_spec(name)
    check_split_args(spec, validation_fraction, limit, seed)
    paths, checksums = _ensure_verified(name)
    (x_train, y_train), (x_test, y_test) = _READERS[name](paths)
    y_train, y_test = y_train.reshape(-1).astype("int64"), y_test.reshape(-1).astype("int64")
    rng = np.random.default_rng(seed)
    if limit is not None:
        keep = stratified_indices(y_train, min(limit, len(y_train)), rng)
        x_train, y_train = x_train[keep], y_train[keep]
        keep = stratified_indices(y_test, min(limit, len(y_test)), rng)
        x_test, y_test = x_test[keep], y_test[keep]
    val = stratified_indices(y_train, round(validation_fraction * len(y_train)), rng)
    train = np.setdiff1d(np.arange(len(y_train)), val)
    return Splits(spec, _scale(x_train[train]), y_train[train], _scale(x_train[val]), y_train[val],
                  _scale(x_test), y_test, limit, seed, test_files=uses_extra_checksums(name, checksums))


# Staging a local copy into the cache.

def stage(name: str, source: str | os.PathLike) -> list[Path]:
    """Copy a local copy of ``name`` into the Keras cache, verifying every file first."""
    spec = get_spec(name)
    source = Path(source)
    home = keras_home()
    staged = []
    for data_file in spec.files:
        candidates = [source / data_file.local_name, source / data_file.name]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DataNotAvailableError(
                f"{source} has no {data_file.local_name}; a copy of {spec.title} needs: "
                f"{', '.join(f.local_name for f in spec.files)}")
        verify_file(found, data_file, name)
        target = home / data_file.cache_path
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
            with open(found, "rb") as stream:
                shutil.copyfileobj(stream, partial)
        os.replace(partial.name, target)
        staged.append(target)
    return staged


def prepare(name: str) -> str:
    """Get ``name`` into the cache: already cached, a known local copy, or the download."""
    spec = get_spec(name)
    if not missing_files(name):
        ensure_cached(name)
        return f"{spec.title}: cached in {keras_home() / 'datasets'} and verified"
    for copy in spec.local_copies:
        if Path(copy).is_dir():
            stage(name, copy)
            return f"{spec.title}: staged from {copy} and verified"
    ensure_cached(name)
    return f"{spec.title}: downloaded by Keras and verified"


def status_rows() -> list[tuple[str, str]]:
    """One ``(dataset, state)`` row per dataset, for ``course data status``."""
    rows = []
    for name in dataset_names():
        missing = missing_files(name)
        if missing:
            rows.append((name, f"missing {', '.join(p.name for p in missing)}"))
            continue
        try:
            ensure_cached(name)
            rows.append((name, "cached, checksums OK"))
        except DataError as error:
            rows.append((name, f"BAD: {error}"))
    return rows
