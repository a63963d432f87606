"""Seeding, the course's training recipe, and a cache of trained models."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from utils import models

import keras
import numpy as np

# Trained models are cached here, keyed by their training configuration.
MODEL_CACHE_ENV = "COURSE_MODEL_CACHE"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow in one call. Introduced in lesson 02."""
    keras.utils.set_random_seed(seed)


def compile_model(model: keras.Model, learning_rate: float = 1e-3, from_logits: bool = False,
                  decay_steps: int | None = None) -> keras.Model:
    """Adam and sparse categorical cross-entropy, with accuracy. Introduced in lesson 03.

    ``from_logits=False`` goes with a softmax output layer; ``True`` with a linear one.
    ``decay_steps`` turns on a cosine decay of the learning rate over that many steps.
    """
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                  metrics=["accuracy"])
    return model


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that determines a trained model; its hash keys the model cache."""

    dataset: str
    architecture: str
    epochs: int
    batch_size: int
    seed: int
    limit: int | None
    learning_rate: float = 2e-3  # peak of the cosine decay
    # Optional (left out of the key when None, so older keys stay valid):
    widths: tuple[int, ...] | None = None  # small_resnet's block widths
    num_classes: int | None = None  # when the task has fewer classes than the dataset
    task: str | None = None  # the part of the dataset trained on, e.g. lesson 07's source task
    bn_momentum: float | None = None  # of every BatchNormalization layer, when not Keras's 0.99

    def build(self, input_shape) -> keras.Model:
        """A fresh, untrained model of this configuration's architecture."""
        from utils import data

        classes = self.num_classes or data.get_spec(self.dataset).num_classes
        if self.architecture == "small_resnet":
            if self.widths is None:
                raise ValueError("a small_resnet configuration needs widths, e.g. widths=(16, 32, 64)")
            model = models.small_resnet(input_shape, classes, widths=self.widths)
        else:
            model = models.build(self.architecture, input_shape, classes)
        if self.bn_momentum is not None:
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = self.bn_momentum
        return model

    def key(self) -> str:
        """A hash of what the trained model depends on: the configuration, the architecture's layer
        configuration, the course's code, the dataset's files and the TensorFlow and Keras versions.
        A change to any of them trains a new model instead of loading a stale one."""
        from utils import data

        import tensorflow as tf

        model = self.build(data.get_spec(self.dataset).input_shape)
        # An input layer's automatic name counts the models built so far: leave it out.
        layers = [(type(layer).__name__, "" if isinstance(layer, keras.layers.InputLayer) else layer.name,
                   str(layer.output.shape), layer.count_params(), str(layer.get_config().get("activation")))
                  for layer in model.layers]
        fields = {name: value for name, value in asdict(self).items()
                  if value is not None or name not in _OPTIONAL_FIELDS}
        data_files = [file.sha256 for file in data.get_spec(self.dataset).files]
        text = json.dumps({**fields, "layers": layers, "keras": keras.__version__,
                           "tensorflow": tf.__version__, "code": code_hash(), "data": data_files,
                           "extra_checksums": _extra_checksums()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        limit = "all images" if self.limit is None else f"limit {self.limit}"
        task = f" ({self.task})" if self.task else ""
        return (f"{self.architecture} on {self.dataset}{task}, {self.epochs} epochs, "
                f"batch {self.batch_size}, "
                f"seed {self.seed}, {limit}")

    def slug(self) -> str:
        limit = "full" if self.limit is None else f"limit{self.limit}"
        return (f"{self.dataset}-{self.architecture}-e{self.epochs}-b{self.batch_size}"
                f"-s{self.seed}-{limit}-{self.key()}")


_OPTIONAL_FIELDS = ("widths", "num_classes", "task", "bn_momentum")


def _extra_checksums() -> str:
    """The contents of the file that $COURSE_EXTRA_CHECKSUMS names (the tests' small data files)."""
    from utils import data

    path = os.environ.get(data.EXTRA_CHECKSUMS_ENV)
    return Path(path).read_text(encoding="utf-8") if path and Path(path).is_file() else (path or "")


def code_hash(package: Path | None = None) -> str:
    """SHA-256 of the course package's modules (``utils/*.py``): what builds, trains and feeds a model."""
    package = package or Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def model_cache_dir() -> Path:
    """Where trained models are cached: ``$COURSE_MODEL_CACHE`` or ``~/.cache/cnn-course/models``."""
    default = Path.home() / ".cache" / "cnn-course" / "models"
    return Path(os.environ.get(MODEL_CACHE_ENV) or default)


def total_steps(splits, epochs: int, batch_size: int) -> int:
    """Optimizer steps in a whole run, the length of the cosine decay. Introduced in lesson 03."""
    return epochs * math.ceil(len(splits.x_train) / batch_size)


def train(model: keras.Model, splits, epochs: int, batch_size: int, verbose: int = 2,
          callbacks=None, validation_batch_size: int | None = None) -> keras.callbacks.History:
    """Fit on the training split, validating on the validation split, as lesson 03 does."""
    return model.fit(splits.x_train, splits.y_train, validation_data=(splits.x_val, splits.y_val),
                     epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=callbacks,
                     validation_batch_size=validation_batch_size)


def save_to_cache(model: keras.Model, history: dict, config: TrainingConfig) -> Path:
    """Save a trained model and its history under its configuration. Introduced in lesson 03."""
    folder = model_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{config.slug()}.keras"
    with tempfile.TemporaryDirectory(dir=folder) as scratch:  # write, then rename
        partial = Path(scratch) / target.name
        model.save(partial)
        (Path(scratch) / "history.json").write_text(json.dumps(
            {"config": asdict(config), "history": history}, indent=1))
        os.replace(Path(scratch) / "history.json", target.with_suffix(".json"))
        os.replace(partial, target)
    return target


def load_or_train(config: TrainingConfig, splits, verbose: int = 2):
    """The cached model for ``config``, trained now if absent. Introduced in lesson 04.

    Returns ``(model, history, trained_now)``; history is a dict of per-epoch lists.
    """
    target = model_cache_dir() / f"{config.slug()}.keras"
    if target.exists() and target.with_suffix(".json").exists():
        history = json.loads(target.with_suffix(".json").read_text())["history"]
        return keras.models.load_model(target), history, False
    set_seed(config.seed)
    model = config.build(splits.spec.input_shape)
    classes = model.outputs[0].shape[-1]  # a Sequential model has no `output` (lesson 04)
    if classes != splits.spec.num_classes:
        raise ValueError(f"the configuration gives {classes} classes but the data has "
                         f"{splits.spec.num_classes}: set num_classes={splits.spec.num_classes}")
    compile_model(model, learning_rate=config.learning_rate,
                  decay_steps=total_steps(splits, config.epochs, config.batch_size))
    history = train(model, splits, config.epochs, config.batch_size, verbose=verbose).history
    save_to_cache(model, history, config)
    return model, history, True


def evaluate(model: keras.Model, splits) -> dict:
    """Test-set loss and accuracy, evaluated once. Introduced in lesson 03."""
    results = model.evaluate(splits.x_test, splits.y_test, verbose=0, return_dict=True)
    return {"test_loss": float(results["loss"]), "test_accuracy": float(results["accuracy"])}


def predict_classes(model: keras.Model, images: np.ndarray, batch_size: int = 512):
    """Predicted class and its probability for each image. Introduced in lesson 04."""
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return probabilities.argmax(axis=1), probabilities.max(axis=1), probabilities


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time in ``logs['seconds']``."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start
