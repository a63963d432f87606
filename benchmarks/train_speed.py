"""Training speed: the course's recipe against the widely copied tutorial recipes.

Every row trains on the real Fashion-MNIST (60,000 training and 10,000 test images),
one row after another, each in a fresh Python process started by this script, so
that every row's peak resident memory is its own and no row inherits another's
warm-up. After each epoch the row evaluates the test set; that evaluation is timed
apart and left out of the training time.

Rows
  baseline-cnn3  tutorial recipe: cnn3, compile(optimizer="adam"), fit on NumPy arrays,
                 batch 64, validation_split=0.2 (48,000 training images), 5 epochs
  baseline-cnn2  tutorial recipe: cnn2, the same, batch 32, 10 epochs
  course-cnn3    the course's recipe through utils.training: load_dataset (10 % validation,
  course-cnn2    54,000 training images), compile_model, train; batch size, epochs, learning
                 rate and decay are read from lesson 03's notebook (notebooks/03_training.ipynb)

Columns
  s/epoch     median wall time of the epochs after the first (all of them when there
              is one); an epoch includes the recipe's own validation pass
  img/s       training images per second at that speed
  GFLOP/s     achieved, by the formula below
  t->0.90     training time until the test accuracy first reaches 0.90 (measured at epoch ends)
  t->base     training time until the test accuracy first reaches the final test accuracy
              of the baseline row of the same model
  train s     wall time of the whole training call, without the test evaluations
  train cpu s CPU time of that call, all threads: about 2 x train s means the row had both
              cores to itself, about 1 x that other work took one of them
  eval s      the per-epoch test evaluations that were left out
  peak MiB    peak resident memory of the row's process (ru_maxrss), data and framework included
  vs base     t->base of this row divided by t->base of its baseline: below 1 is faster
Ratios measured in one run are what to compare; absolute times vary between machines. The
table runs `--repeats` times (3 by default) and ends with each ratio's median over the runs.

FLOPs are counted analytically from the layers, per image:
  MACs     = sum over Conv2D of out_h·out_w·c_out·(k_h·k_w·c_in) + sum over Dense of n_in·n_out
             (bias additions, activations and pooling are left out: under 1 % here)
  forward  = 2·MACs
  training = 3·forward = 6·MACs   (the backward pass costs about twice the forward pass)
  GFLOP/s  = (n_train·6·MACs + n_val·2·MACs) / seconds per epoch / 1e9

`--resnet` runs lesson 06's small ResNet instead (section 3's: widths 16, 32, 64, stem stride 1,
batch norm, global average pooling) with the course's recipe (Adam, cosine decay) for longer, and
reports the training time until the test accuracy first reaches 0.93 and 0.94 (goal: 0.94
within 10 minutes on 2 cores).

`--frontier` runs the accuracy frontier instead: the fast recipe of utils.recipe
next to the tutorial baseline and the course's lesson 03 recipe, each over three seeds, and
reports the training seconds to 0.92, 0.93 and 0.94. Validation decides: a row's checkpoint for
a goal is the first epoch end at which its validation accuracy reaches the goal, and the test set
is evaluated only there and once at the end. Goals: 0.93 within 5 and 0.94 within 10 minutes of
training on 2 cores (median over the seeds). The fast rows also measure, untimed, the accuracy of
the same model predicted the other way (with or without the test-time flip), and a last table
gives the flip's gain paired by seed.

`--levers` runs the short lever exploration instead (batch size and learning rate, cosine
decay, tf.data cache+prefetch, threads, mixed precision, XLA, the JAX backend).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = "fashion_mnist"
SEED = 0
TARGET_ACCURACY = 0.90
EVAL_BATCH = 512  # the per-epoch test evaluation, the same for every row

# The course's recipe is read from this lesson, so the benchmark runs what the lessons run.
COURSE_LESSON = REPO / "notebooks" / "03_training.ipynb"


@dataclass(frozen=True)
class Recipe:
    """One row: a model and the way it is trained."""

    name: str
    architecture: str
    style: str  # "tutorial": fit(validation_split=0.2); "course": utils.training
    batch_size: int
    epochs: int
    learning_rate: float = 1e-3
    cosine: bool = False  # cosine decay of the learning rate to 0 over the run
    pipeline: str = "numpy"  # "numpy": fit on arrays; "tf.data": cache + shuffle + prefetch
    threads: int = 0  # intra-op threads, 0 = the framework's default (all cores)
    precision: str = "float32"  # or "mixed_bfloat16"
    jit: bool = False
    backend: str = "tensorflow"
    baseline: str | None = None  # the row this one is compared with
    widths: tuple[int, ...] | None = None  # for architecture "small_resnet"
    seed: int = SEED  # of the weights, the shuffling and the augmentation (the split stays seed 0's)
    variant: str | None = None  # the fast recipe with one ingredient removed or added (--ablation)
    train_limit: int | None = None  # train on this many training images, validate on all (--ablation)


def lesson_recipe(notebook: Path = COURSE_LESSON) -> dict:
    """batch_size and epochs of the lesson's `parameters` cell, and the learning rate and
    decay of its `compile` (a CosineDecay schedule, or a constant learning rate)."""
    import ast

    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    found = {}
    for cell in cells:
        tree = ast.parse("".join(cell["source"]))
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in tree.body:
                target = node.targets[0] if isinstance(node, ast.Assign) else None
                if isinstance(target, ast.Name) and target.id in ("batch_size", "epochs"):
                    found[target.id] = ast.literal_eval(node.value)
        for node in ast.walk(tree):
            name = getattr(node.func, "attr", None) if isinstance(node, ast.Call) else None
            keywords = {k.arg: k.value for k in node.keywords} if name else {}
            if name == "CosineDecay":
                rate = keywords.get("initial_learning_rate", node.args[0] if node.args else None)
                found.update(learning_rate=ast.literal_eval(rate), cosine=True)
            elif name == "Adam" and "learning_rate" not in found:
                rate = keywords.get("learning_rate", node.args[0] if node.args else None)
                if rate is None or isinstance(rate, ast.Constant):
                    found.update(learning_rate=ast.literal_eval(rate) if rate else 1e-3, cosine=False)
    missing = {"batch_size", "epochs", "learning_rate", "cosine"} - set(found)
    if missing:
        raise SystemExit(f"{notebook.name}: could not read {', '.join(sorted(missing))} of the "
                         "course recipe (a `parameters` cell and a compile with Adam)")
    return found


def main_rows(backend: str) -> list[Recipe]:
    course = dict(style="course", backend=backend, **lesson_recipe())
    return [
        Recipe("baseline-cnn3", "cnn3", "tutorial", 64, 5, backend=backend),
        Recipe("course-cnn3", "cnn3", baseline="baseline-cnn3", **course),
        Recipe("baseline-cnn2", "cnn2", "tutorial", 32, 10, backend=backend),
        Recipe("course-cnn2", "cnn2", baseline="baseline-cnn2", **course),
    ]


RESNET_GOALS = (0.93, 0.94)  # test accuracies whose time the --resnet row reports
RESNET_WIDTHS = (16, 32, 64)  # lesson 06's small ResNet


def resnet_rows() -> list[Recipe]:
    """Lesson 06's best model, trained longer with the course's recipe."""
    return [Recipe("resnet", "small_resnet", "course", 128, 20, learning_rate=2e-3, cosine=True,
                   widths=RESNET_WIDTHS)]


FRONTIER_GOALS = (0.92, 0.93, 0.94)  # accuracies whose training time --frontier reports
FRONTIER_SEEDS = (0, 1, 2)
# Lesson 03's recipe trained for about as long as the fast recipe; the cosine decay stretches over
# all the epochs. Chosen from the fast recipe's median of 543 s at 18.2 s per epoch of lesson 03's
# recipe (2-core Xeon, 2026-12-07). Since its own input pipeline the fast recipe trains in 357 s,
# and 30 epochs took 309 s, about 7/8 of it (2-core AMD EPYC, benchmarks/README.md).
EQUAL_TIME_EPOCHS = 30


def frontier_rows(seeds=FRONTIER_SEEDS) -> list[Recipe]:
    """The tutorial baseline, lesson 03's recipe, the same for about the fast recipe's training time
    (the equal-time control) and the fast recipe (utils.recipe), once per seed."""
    from utils import recipe as fast

    course = dict(style="course", **lesson_recipe())
    rows = []
    for seed in seeds:
        rows += [Recipe("baseline-cnn3", "cnn3", "tutorial", 64, 5, seed=seed),
                 Recipe("course-cnn3", "cnn3", seed=seed, **course),
                 Recipe("course-cnn3-long", "cnn3", seed=seed, **(course | {"epochs": EQUAL_TIME_EPOCHS})),
                 Recipe("fast", "fast_cnn", "fast", fast.Recipe().batch_size, fast.Recipe().epochs,
                        learning_rate=fast.Recipe().learning_rate, cosine=True, seed=seed)]
    return rows


ABLATION_TRAIN_IMAGES = 18_000  # the ablation's scale: a stratified subset of the 54,000
ABLATION_EPOCHS = 5


def ablation_rows(seeds=FRONTIER_SEEDS, full_scale: bool = False) -> list[Recipe]:
    """The fast recipe, and the recipe with each ingredient removed or added in turn, once per seed;
    ``full_scale``: on all the training images for the recipe's epochs, the frontier's scale."""
    from utils import recipe as fast

    full = Recipe("fast", "fast_cnn", "fast", fast.Recipe().batch_size,
                  fast.Recipe().epochs if full_scale else ABLATION_EPOCHS,
                  learning_rate=fast.Recipe().learning_rate, cosine=True,
                  train_limit=None if full_scale else ABLATION_TRAIN_IMAGES)
    rows = []
    for seed in seeds:
        rows.append(replace(full, seed=seed))
        rows += [replace(full, name=name, variant=name, seed=seed) for name in fast.ABLATIONS]
    return rows


def _subset_train(splits, count: int | None, seed: int = SEED):
    """The splits with a stratified subset of ``count`` training images; validation and test kept."""
    if count is None:
        return splits
    from utils import data

    import numpy as np

    if count >= len(splits.y_train):
        return splits
    keep = data.stratified_indices(splits.y_train, count, np.random.default_rng(seed))
    return dataclasses.replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep])


def build_model(recipe: Recipe):
    """The recipe's model on Fashion-MNIST's shape."""
    from utils import models

    if recipe.architecture == "small_resnet":
        return models.small_resnet((28, 28, 1), 10, widths=tuple(recipe.widths or RESNET_WIDTHS))
    return models.build(recipe.architecture, (28, 28, 1), 10)


def lever_rows(epochs: int) -> list[Recipe]:
    base = Recipe("b64 lr1e-3 (reference)", "cnn3", "course", 64, epochs)
    rows = [
        base,
        replace(base, name="b128 lr2e-3", batch_size=128, learning_rate=2e-3),
        replace(base, name="b256 lr4e-3", batch_size=256, learning_rate=4e-3),
        replace(base, name="b64 lr2e-3 cosine", learning_rate=2e-3, cosine=True),
        replace(base, name="b128 lr2e-3 cosine", batch_size=128, learning_rate=2e-3, cosine=True),
        replace(base, name="b128 lr2e-3 cosine tf.data", batch_size=128, learning_rate=2e-3,
                cosine=True, pipeline="tf.data"),
        replace(base, name="b128 lr2e-3 cosine 1 thread", batch_size=128, learning_rate=2e-3,
                cosine=True, threads=1),
        replace(base, name="b128 lr2e-3 cosine mixed_bfloat16", batch_size=128, learning_rate=2e-3,
                cosine=True, precision="mixed_bfloat16"),
        replace(base, name="b128 lr2e-3 cosine jit_compile", batch_size=128, learning_rate=2e-3,
                cosine=True, jit=True),
        replace(base, name="b128 lr2e-3 cosine JAX backend", batch_size=128, learning_rate=2e-3,
                cosine=True, backend="jax"),
    ]
    return [base] + [replace(row, baseline=base.name) for row in rows[1:]]


# FLOPs, counted from the layers.

def forward_macs(model) -> int:
    """Multiply-accumulates of one image's forward pass through Conv2D and Dense layers."""
    from keras import layers

    macs = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, out_h, out_w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            c_in = layer.input.shape[-1]
            macs += out_h * out_w * c_out * k_h * k_w * c_in
        elif isinstance(layer, layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return macs


def training_flops_per_image(macs: int) -> int:
    """Training FLOPs of one image: forward = 2·MACs, training = 3·forward."""
    return 3 * 2 * macs


def epoch_flops(macs: int, n_train: int, n_val: int) -> int:
    """One epoch: every training image trained on, every validation image evaluated."""
    return n_train * training_flops_per_image(macs) + n_val * 2 * macs


# One row, in its own process.

def tensorflow_built_with_onednn() -> bool:
    """Whether this TensorFlow build has oneDNN (MKL) kernels.

    The one private TensorFlow API this project uses: TensorFlow tells it nowhere else.
    tests/test_benchmark.py fails when a release removes or changes it.
    """
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def _framework_facts(backend: str) -> dict:
    import keras

    facts = {"backend": backend, "keras": keras.__version__, "python": platform.python_version()}
    if backend == "tensorflow":
        import tensorflow as tf

        built_with = tensorflow_built_with_onednn()
        switched_off = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "") in ("0", "false", "False")
        gpus = tf.config.list_physical_devices("GPU")
        facts.update(tensorflow=tf.__version__, onednn=bool(built_with and not switched_off),
                     device=(tf.config.experimental.get_device_details(gpus[0]).get("device_name")
                             if gpus else "CPU"))
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        facts.update(jax=jax.__version__,
                     device="CPU" if device.platform == "cpu" else device.device_kind)
    return facts


def _load(recipe: Recipe, limit: int | None):
    """Training arrays, validation arrays or split, and test arrays, as the recipe gets them."""
    from utils import data

    if recipe.style == "tutorial":  # the tutorials: all 60,000 images, validation_split=0.2
        (x, y), (x_test, y_test) = data.load_raw(DATASET)
        if limit is not None:
            x, y, x_test, y_test = x[:limit], y[:limit], x_test[:limit], y_test[:limit]
        x, x_test = x[..., None].astype("float32") / 255.0, x_test[..., None].astype("float32") / 255.0
        n_val = int(len(x) * 0.2)
        return {"x": x, "y": y, "n_train": len(x) - n_val, "n_val": n_val,
                "x_test": x_test, "y_test": y_test}
    splits = data.load_dataset(DATASET, limit=limit, seed=SEED)
    return {"splits": splits, "n_train": len(splits.y_train), "n_val": len(splits.y_val),
            "x_test": splits.x_test, "y_test": splits.y_test}


def build_compiled(recipe: Recipe, loaded: dict, epochs: int):
    """The row's model, compiled as the tutorials do or with the course's recipe."""
    from utils import training

    model = build_model(recipe)
    if recipe.style == "tutorial":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        steps = training.total_steps(loaded["splits"], epochs, recipe.batch_size)
        training.compile_model(model, learning_rate=recipe.learning_rate,
                               decay_steps=steps if recipe.cosine else None)
    return model


def run_row(recipe: Recipe, limit: int | None, epochs: int | None) -> dict:
    """Train one recipe and return its measurements."""
    os.environ["KERAS_BACKEND"] = recipe.backend
    from utils import training

    import keras

    if recipe.backend == "tensorflow" and recipe.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(recipe.threads)
    if recipe.precision != "float32":
        keras.mixed_precision.set_global_policy(recipe.precision)
    epochs = epochs or recipe.epochs
    loaded = _load(recipe, limit)
    x_test, y_test = loaded["x_test"], loaded["y_test"]

    training.set_seed(SEED)
    model = build_compiled(recipe, loaded, epochs)
    if recipe.jit:
        model.jit_compile = True
    macs = forward_macs(model)

    epochs_log: list[dict] = []
    clock = {"eval": 0.0, "eval_cpu": 0.0}

    class TestEvaluation(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock["epoch"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now, cpu = time.perf_counter(), time.process_time()
            trained = now - clock["start"] - clock["eval"]
            trained_cpu = cpu - clock["start_cpu"] - clock["eval_cpu"]
            _, accuracy = self.model.evaluate(x_test, y_test, batch_size=EVAL_BATCH, verbose=0)
            clock["eval"] += time.perf_counter() - now
            clock["eval_cpu"] += time.process_time() - cpu
            epochs_log.append({"seconds": now - clock["epoch"], "trained": trained,
                               "trained_cpu": trained_cpu, "test_accuracy": float(accuracy)})

    callbacks = [TestEvaluation()]
    # The data pipeline's set-up counts as training.
    clock["start"], clock["start_cpu"] = time.perf_counter(), time.process_time()
    if recipe.style == "tutorial":
        model.fit(loaded["x"], loaded["y"], batch_size=recipe.batch_size, epochs=epochs,
                  validation_split=0.2, verbose=0, callbacks=callbacks)
    elif recipe.pipeline == "tf.data":
        import tensorflow as tf

        splits = loaded["splits"]
        train = (tf.data.Dataset.from_tensor_slices((splits.x_train, splits.y_train)).cache()
                 .shuffle(len(splits.y_train), seed=SEED).batch(recipe.batch_size)
                 .prefetch(tf.data.AUTOTUNE))
        val = (tf.data.Dataset.from_tensor_slices((splits.x_val, splits.y_val))
               .batch(recipe.batch_size).cache().prefetch(tf.data.AUTOTUNE))
        model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=callbacks)
    else:
        training.train(model, loaded["splits"], epochs, recipe.batch_size, verbose=0,
                       callbacks=callbacks)
    train_seconds = time.perf_counter() - clock["start"] - clock["eval"]
    train_cpu_seconds = time.process_time() - clock["start_cpu"] - clock["eval_cpu"]

    seconds = [e["seconds"] for e in epochs_log]
    steady = statistics.median(seconds[1:] if len(seconds) > 1 else seconds)
    result = {
        "recipe": asdict(recipe), "epochs": epochs, "limit": limit, "macs": macs,
        "n_train": loaded["n_train"], "n_val": loaded["n_val"], "n_test": len(y_test),
        "epoch_log": epochs_log, "seconds_per_epoch": steady,
        "first_epoch_seconds": seconds[0],
        "images_per_second": loaded["n_train"] / steady,
        "gflops_per_second": epoch_flops(macs, loaded["n_train"], loaded["n_val"]) / steady / 1e9,
        "train_seconds": train_seconds, "train_cpu_seconds": train_cpu_seconds,
        "eval_seconds": clock["eval"],
        "final_test_accuracy": epochs_log[-1]["test_accuracy"],
        "time_to_target": time_to(epochs_log, TARGET_ACCURACY),
        "time_to_goals": {str(goal): time_to(epochs_log, goal) for goal in RESNET_GOALS},
        "best_test_accuracy": max(e["test_accuracy"] for e in epochs_log),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    result.update(_framework_facts(recipe.backend))
    return result


class Checkpoints:
    """The validation accuracy after every epoch; the test accuracy only at the checkpoints: the
    first epoch end at or above each goal, and the last epoch. Test time is kept apart."""

    def __init__(self, last_epoch: int, goals=FRONTIER_GOALS):
        self.last_epoch, self.goals = last_epoch, goals
        self.epochs: list[dict] = []
        self.points: dict[str, dict] = {}
        self.eval_seconds = 0.0

    def epoch_end(self, model, epoch: int, trained: float, val_accuracy: float, test_accuracy,
                  other_test=None, other_val: float | None = None) -> None:
        """``other_test`` and ``other_val``: the accuracies of the other way to predict (fast rows:
        with or without the test-time flip, the one the recipe does not use), on the same model."""
        self.epochs.append({"epoch": epoch, "trained": trained, "val_accuracy": val_accuracy}
                           | ({"other_val_accuracy": other_val} if other_val is not None else {}))
        reached = [g for g in self.goals if str(g) not in self.points and val_accuracy >= g - 1e-9]
        if not reached and epoch != self.last_epoch:
            return
        start = time.perf_counter()
        point = {"epoch": epoch, "trained": trained, "val_accuracy": val_accuracy,
                 "test_accuracy": test_accuracy(model)}
        if other_test is not None:
            point |= {"other_val_accuracy": other_val, "other_test_accuracy": other_test(model)}
        self.eval_seconds += time.perf_counter() - start
        for goal in reached:
            self.points[str(goal)] = point
        if epoch == self.last_epoch:
            self.points["final"] = point


def run_frontier_row(recipe: Recipe, limit: int | None, epochs: int | None) -> dict:
    """Train one row, checking its validation accuracy after each epoch; evaluate the test set
    only at the checkpoints: the first epoch end at or above each goal, and the last."""
    from utils import recipe as fast
    from utils import training

    import keras

    loaded = _load(recipe, limit)
    x_test, y_test = loaded["x_test"], loaded["y_test"]
    epochs = epochs or recipe.epochs
    book = Checkpoints(epochs)
    # One clock for every row: from before the model is built to the end of training, less the
    # test evaluations.
    start = time.perf_counter()
    training.set_seed(recipe.seed)
    if recipe.style == "fast":
        settings = replace(fast.Recipe(), epochs=epochs, batch_size=recipe.batch_size,
                           learning_rate=recipe.learning_rate)
        if recipe.variant:
            settings = settings.variant(recipe.variant)
        model = fast.build(settings, x_test.shape[1:], 10)
        macs = forward_macs(model)

        def on_epoch(model, entry):
            trained = time.perf_counter() - start - book.eval_seconds
            if entry["val_accuracy"] is not None:
                # The other way to predict, on the same model: with the test-time flip if the
                # recipe predicts without it, and without it if with. Untimed.
                other = time.perf_counter()
                entry["other_val_accuracy"] = fast.accuracy(model, splits.x_val, splits.y_val,
                                                            not settings.tta)
                book.eval_seconds += time.perf_counter() - other
            book.epoch_end(model, entry["epoch"], trained, entry["val_accuracy"],
                           lambda m: fast.accuracy(m, x_test, y_test, settings.tta),
                           other_test=lambda m: fast.accuracy(m, x_test, y_test, not settings.tta),
                           other_val=entry.get("other_val_accuracy"))

        splits = _subset_train(loaded["splits"], recipe.train_limit)
        loaded["n_train"] = len(splits.y_train)
        fast.train_recipe(settings, splits, seed=recipe.seed, model=model, on_epoch=on_epoch)
        n_val_passes = 2 if settings.tta else 1
    else:
        model = build_compiled(recipe, loaded, epochs)
        macs = forward_macs(model)

        def test_accuracy(m):
            return float(m.evaluate(x_test, y_test, batch_size=EVAL_BATCH, verbose=0)[1])

        class AtEpochEnd(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                trained = time.perf_counter() - start - book.eval_seconds
                book.epoch_end(self.model, epoch + 1, trained, float(logs["val_accuracy"]), test_accuracy)

        if recipe.style == "tutorial":
            model.fit(loaded["x"], loaded["y"], batch_size=recipe.batch_size, epochs=epochs,
                      validation_split=0.2, verbose=0, callbacks=[AtEpochEnd()])
        else:
            training.train(model, loaded["splits"], epochs, recipe.batch_size, verbose=0,
                           callbacks=[AtEpochEnd()])
        n_val_passes = 1
    train_seconds = time.perf_counter() - start - book.eval_seconds
    epoch_log, checkpoints = book.epochs, book.points
    ends = [0.0] + [e["trained"] for e in epoch_log]
    per_epoch = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    steady = statistics.median(per_epoch[1:] if len(per_epoch) > 1 else per_epoch)
    result = {
        "recipe": asdict(recipe), "epochs": epochs, "limit": limit, "macs": macs,
        "n_train": loaded["n_train"], "n_val": loaded["n_val"], "n_test": len(y_test),
        "epoch_log": epoch_log, "checkpoints": checkpoints, "seconds_per_epoch": steady,
        "gflops_per_second": (loaded["n_train"] * training_flops_per_image(macs)
                              + n_val_passes * loaded["n_val"] * 2 * macs) / steady / 1e9,
        "train_seconds": train_seconds, "eval_seconds": book.eval_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if recipe.style == "fast":
        result["recipe_settings"] = settings.as_dict()
    result.update(_framework_facts(recipe.backend))
    return result


def time_to(epoch_log: list[dict], accuracy: float) -> float | None:
    """Training seconds until the test accuracy first reaches ``accuracy``; None if never."""
    for epoch in epoch_log:
        if epoch["test_accuracy"] >= accuracy - 1e-9:
            return epoch["trained"]
    return None


# The parent: one child process per row, then the table.

def jax_missing(extra_path: str | None) -> bool:
    """True when the JAX backend's rows cannot run: jax is neither installed nor in extra_path."""
    import importlib.util

    return importlib.util.find_spec("jax") is None and not (
        extra_path and (Path(extra_path) / "jax" / "__init__.py").exists())


def run_in_child(recipe: Recipe, limit, epochs, extra_path: str | None, frontier: bool = False) -> dict:
    if recipe.backend == "jax" and jax_missing(extra_path):
        return {"recipe": asdict(recipe), "skipped": "JAX is not installed (pip install jax)"}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "row.json"
        env = dict(os.environ, KERAS_BACKEND=recipe.backend, TF_CPP_MIN_LOG_LEVEL="3")
        if extra_path and recipe.backend == "jax":
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
        command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(asdict(recipe)),
                   "--child-out", str(out)]
        if limit is not None:
            command += ["--limit", str(limit)]
        if epochs is not None:
            command += ["--epochs", str(epochs)]
        if frontier:
            command.append("--frontier")
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"recipe": asdict(recipe), "error": " | ".join(tail) or f"exit {done.returncode}"}
        return json.loads(out.read_text())


def add_comparisons(results: list[dict]) -> None:
    """Fill in t->base and vs base: each row against its baseline's final accuracy."""
    by_name = {r["recipe"]["name"]: r for r in results}
    for result in results:
        if "epoch_log" not in result:
            continue
        base = by_name.get(result["recipe"]["baseline"] or result["recipe"]["name"])
        if base is None or "epoch_log" not in base:
            continue
        goal = base["final_test_accuracy"]
        mine, theirs = time_to(result["epoch_log"], goal), time_to(base["epoch_log"], goal)
        result["baseline_accuracy"] = goal
        result["time_to_baseline"] = mine
        result["vs_baseline"] = None if mine is None or not theirs else mine / theirs


COLUMNS = ["row", "model", "batch", "epochs", "n_train", "s/epoch", "img/s", "GFLOP/s",
           "t->0.90", "t->base", "train s", "train cpu s", "eval s", "test acc", "peak MiB",
           "vs base"]


def _num(value, digits=1, missing="never") -> str:
    return missing if value is None else f"{value:.{digits}f}"


def table_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    for r in results:
        recipe = r["recipe"]
        if "error" in r or "skipped" in r:
            why = f"failed: {r['error'][:60]}" if "error" in r else f"skipped: {r['skipped']}"
            rows.append([recipe["name"], recipe["architecture"], str(recipe["batch_size"])]
                        + ["-"] * (len(COLUMNS) - 4) + [why])
            continue
        rows.append([
            recipe["name"], recipe["architecture"], str(recipe["batch_size"]), str(r["epochs"]),
            str(r["n_train"]), _num(r["seconds_per_epoch"], 2), _num(r["images_per_second"], 0),
            _num(r["gflops_per_second"], 1), _num(r["time_to_target"]),
            _num(r.get("time_to_baseline")), _num(r["train_seconds"]), _num(r["train_cpu_seconds"]),
            _num(r["eval_seconds"]), _num(r["final_test_accuracy"], 4), _num(r["peak_rss_mib"], 0),
            _num(r.get("vs_baseline"), 2, missing="not reached"),
        ])
    return rows


def format_table(results: list[dict]) -> str:
    """A Markdown table, readable in a terminal and pasteable into the README."""
    from utils.course import padded_table

    return padded_table(COLUMNS, table_rows(results))


RESNET_COLUMNS = ["row", "model", "batch", "epochs", "n_train", "s/epoch", "t->0.93", "t->0.94",
                  "train s", "train cpu s", "best test acc", "final test acc", "peak MiB"]


def resnet_table(results: list[dict]) -> str:
    """The --resnet table: time to each goal accuracy."""
    from utils.course import padded_table

    rows = []
    for r in results:
        recipe = r["recipe"]
        if "epoch_log" not in r:
            rows.append([recipe["name"], recipe["architecture"], str(recipe["batch_size"])]
                        + ["-"] * (len(RESNET_COLUMNS) - 4) + [f"failed: {r.get('error', '?')[:60]}"])
            continue
        goals = r["time_to_goals"]
        rows.append([recipe["name"], f"{recipe['architecture']} {tuple(recipe['widths'] or ())}",
                     str(recipe["batch_size"]), str(r["epochs"]), str(r["n_train"]),
                     _num(r["seconds_per_epoch"], 2), _num(goals["0.93"]), _num(goals["0.94"]),
                     _num(r["train_seconds"]), _num(r["train_cpu_seconds"]),
                     _num(r["best_test_accuracy"], 4), _num(r["final_test_accuracy"], 4),
                     _num(r["peak_rss_mib"], 0)])
    return padded_table(RESNET_COLUMNS, rows)


FRONTIER_COLUMNS = ["row", "seed", "MACs", "epochs", "s/epoch", "GFLOP/s"] + [
    f"t->{goal} (test)" for goal in FRONTIER_GOALS] + ["final val", "final test", "train s", "peak MiB"]


def _reached(result: dict, goal: float) -> str:
    point = result["checkpoints"].get(str(goal))
    return "never" if point is None else f"{point['trained']:.1f} ({point['test_accuracy']:.4f})"


def frontier_table(results: list[dict]) -> str:
    """One line per row and seed: the training seconds at which the validation accuracy first
    reached each goal, and the test accuracy of that checkpoint in brackets."""
    from utils.course import padded_table

    rows = []
    for r in results:
        recipe = r["recipe"]
        if "epoch_log" not in r:
            rows.append([recipe["name"], str(recipe["seed"])] + ["-"] * (len(FRONTIER_COLUMNS) - 3)
                        + [f"failed: {r.get('error', '?')[:60]}"])
            continue
        final = r["checkpoints"]["final"]
        rows.append([recipe["name"], str(recipe["seed"]), f"{r['macs']:,}", str(r["epochs"]),
                     _num(r["seconds_per_epoch"], 2), _num(r["gflops_per_second"], 1)]
                    + [_reached(r, goal) for goal in FRONTIER_GOALS]
                    + [_num(final["val_accuracy"], 4), _num(final["test_accuracy"], 4),
                       _num(r["train_seconds"]), _num(r["peak_rss_mib"], 0)])
    return padded_table(FRONTIER_COLUMNS, rows)


def _spread(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    return (f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"
            if len(values) > 1 else f"{values[0]:.{digits}f}")


def _spread_or_never(values: list[float], digits: int) -> str:
    """Median [min–max] where ``math.inf`` stands for a seed that never got there."""
    def shown(value):
        return "never" if math.isinf(value) else f"{value:.{digits}f}"
    if len(values) == 1:
        return shown(values[0])
    return f"{shown(statistics.median(values))} [{shown(min(values))}–{shown(max(values))}]"


def frontier_summary(results: list[dict]) -> str:
    """Per row, over its seeds: the median and range of the time to each goal (a seed that never
    reached it counts as slower than all the others) and of the test accuracy at the checkpoints
    that reached it, and of the final test accuracy."""
    from utils.course import padded_table

    names = list(dict.fromkeys(r["recipe"]["name"] for r in results))
    columns = ["row", "seeds"] + [f"t->{goal} s" for goal in FRONTIER_GOALS] + [
        f"test at {goal}" for goal in FRONTIER_GOALS] + ["final test", "train s"]
    rows = []
    for name in names:
        done = [r for r in results if r["recipe"]["name"] == name and "checkpoints" in r]
        if not done:
            rows.append([name, "0 (failed)"] + ["-"] * (len(columns) - 2))
            continue
        times, tests = [], []
        for goal in FRONTIER_GOALS:
            points = [r["checkpoints"][str(goal)] for r in done if str(goal) in r["checkpoints"]]
            reached = f" ({len(points)} of {len(done)})" if points and len(points) < len(done) else ""
            seconds = [r["checkpoints"][str(goal)]["trained"] if str(goal) in r["checkpoints"] else math.inf
                       for r in done]
            times.append(_spread_or_never(seconds, 1) + reached if points else "never")
            tests.append(_spread([p["test_accuracy"] for p in points], 4))
        rows.append([name, str(len(done))] + times + tests + [
            _spread([r["checkpoints"]["final"]["test_accuracy"] for r in done], 4),
            _spread([r["train_seconds"] for r in done], 1)])
    return ("Over the seeds, median [min–max]; for t->goal a seed whose validation accuracy never "
            "reached the goal counts as the slowest, (k of n) counts the seeds that did:\n"
            + padded_table(columns, rows))


def ablation_table(results: list[dict]) -> str:
    """Per variant: the final validation accuracy over the seeds and its change from
    the full recipe (paired by seed), the test accuracy, and the training seconds."""
    from utils.course import padded_table

    done = [r for r in results if "checkpoints" in r]
    full = {r["recipe"]["seed"]: r for r in done if not r["recipe"]["variant"]}
    columns = ["row", "seeds", "val acc", "Δ val vs full", "test acc", "train s", "Δ s vs full"]
    rows = []
    for name in dict.fromkeys(r["recipe"]["name"] for r in results):
        failed = [r for r in results if r["recipe"]["name"] == name and "checkpoints" not in r]
        if failed:
            rows.append([name, f"failed: {failed[0].get('error', '?')[:60]}"] + ["-"] * (len(columns) - 2))
            continue
        mine = [r for r in done if r["recipe"]["name"] == name]
        paired = [r for r in mine if r["recipe"]["seed"] in full]
        val = [r["checkpoints"]["final"]["val_accuracy"] for r in mine]
        dval = [r["checkpoints"]["final"]["val_accuracy"]
                - full[r["recipe"]["seed"]]["checkpoints"]["final"]["val_accuracy"] for r in paired]
        dsec = [r["train_seconds"] - full[r["recipe"]["seed"]]["train_seconds"] for r in paired]
        rows.append([name, str(len(mine)), _spread(val, 4),
                     "-" if not mine or not mine[0]["recipe"]["variant"] else _spread(dval, 4),
                     _spread([r["checkpoints"]["final"]["test_accuracy"] for r in mine], 4),
                     _spread([r["train_seconds"] for r in mine], 1),
                     "-" if not mine or not mine[0]["recipe"]["variant"] else _spread(dsec, 1)])
    return ("Final accuracies after the last epoch, over the seeds, median [min–max]; Δ is the row "
            "minus the full recipe of the same seed (negative: the variant is worse):\n"
            + padded_table(columns, rows))


def test_time_flip_table(results: list[dict]) -> str:
    """Per fast row: the final validation and test accuracy of the same models predicting without
    and with the test-time flip, and the flip's gain, paired by seed. Empty if no row has both."""
    from utils.course import padded_table

    columns = ["row", "seeds", "val without", "val with", "Δ val", "test without", "test with", "Δ test"]
    rows = []
    for name in dict.fromkeys(r["recipe"]["name"] for r in results):
        finals = [(r["recipe_settings"]["tta"], r["checkpoints"]["final"]) for r in results
                  if r["recipe"]["name"] == name and "other_test_accuracy" in r.get("checkpoints", {})
                  .get("final", {})]
        if not finals:
            continue
        ways = {split: [(p[f"other_{split}_accuracy"], p[f"{split}_accuracy"]) if tta
                        else (p[f"{split}_accuracy"], p[f"other_{split}_accuracy"]) for tta, p in finals]
                for split in ("val", "test")}
        cells = []
        for split in ("val", "test"):
            without, with_flip = zip(*ways[split], strict=True)
            cells += [_spread(list(without), 4), _spread(list(with_flip), 4),
                      _spread([b - a for a, b in ways[split]], 4)]
        rows.append([name, str(len(finals))] + cells)
    if not rows:
        return ""
    return ("The test-time flip on the same models (final epoch), median [min–max]; Δ is with minus "
            "without, paired by seed:\n" + padded_table(columns, rows))


def header(results: list[dict], load_before, load_after, frontier: bool = False) -> str:
    facts = next((r for r in results if "epoch_log" in r), {})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    framework = (f"TensorFlow {facts.get('tensorflow')}, oneDNN {'on' if facts.get('onednn') else 'off'}"
                 if "tensorflow" in facts else f"JAX {facts.get('jax', '?')}")
    model_macs = {}
    for r in results:
        if "macs" in r:
            model_macs[r["recipe"]["architecture"]] = r["macs"]
    flops = ", ".join(f"{name} {macs:,} MACs = {training_flops_per_image(macs) / 1e6:.1f} MFLOP"
                      for name, macs in model_macs.items())
    return "\n".join([
        f"date: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        f"machine: {cores} cores usable ({os.cpu_count()} in the machine), "
        f"{platform.processor() or platform.machine()}, device {facts.get('device', '?')}",
        f"framework: {framework}, Keras {facts.get('keras')} ({facts.get('backend')} backend), "
        f"Python {facts.get('python')}",
        f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}",
        f"training FLOPs per image (6·MACs): {flops}",
    ] + ([f"goals {', '.join(map(str, FRONTIER_GOALS))}: validation accuracy checked after each epoch; "
          "the test set evaluated only at each goal's first checkpoint and at the end, its time "
          "excluded from training time"] if frontier else [
        f"target test accuracy {TARGET_ACCURACY}; test set evaluated after each epoch, "
        f"its time excluded from training time"]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time the course's training recipe against the tutorial recipes on "
                    "Fashion-MNIST and print one table (see the module docstring for the columns).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python benchmarks/train_speed.py                 # the full table (minutes on 2 cores)\n"
               "  python benchmarks/train_speed.py --quick         # 1 epoch on 1,000 images: a smoke test\n"
               "  python benchmarks/train_speed.py --levers --epochs 2   # the lever exploration\n"
               "  python benchmarks/train_speed.py --resnet        # lesson 06's ResNet: time to 0.93, 0.94\n"
               "  python benchmarks/train_speed.py --frontier      # fast recipe: seconds to 0.92–0.94\n"
               "  python benchmarks/train_speed.py --backend jax   # every row on Keras's JAX backend")
    parser.add_argument("--limit", type=int, default=None,
                        help="use at most this many training and test images (default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train every row for this many epochs instead of its recipe's")
    parser.add_argument("--quick", action="store_true", help="shorthand for --limit 1000 --epochs 1")
    parser.add_argument("--rows", default=None,
                        help="comma-separated row names to run (default: all)")
    parser.add_argument("--levers", action="store_true",
                        help="run the lever exploration rows instead of the main table")
    parser.add_argument("--resnet", action="store_true",
                        help="train lesson 06's small ResNet for longer (20 epochs) and report the time "
                             "to 0.93 and 0.94 test accuracy; runs once unless --repeats is given")
    parser.add_argument("--frontier", action="store_true",
                        help="the fast recipe (utils.recipe) next to the tutorial baseline and lesson 03's "
                             f"recipe, and lesson 03's recipe for {EQUAL_TIME_EPOCHS} epochs (about the fast "
                             "recipe's time), each over --seeds: training seconds to 0.92, 0.93 and 0.94 "
                             "(about 70 minutes)")
    parser.add_argument("--ablation", action="store_true",
                        help="the fast recipe and the recipe with each ingredient removed or added, over "
                             f"--seeds, {ABLATION_EPOCHS} epochs on {ABLATION_TRAIN_IMAGES:,} training "
                             "images (about 40 minutes)")
    parser.add_argument("--full-scale", action="store_true",
                        help="with --ablation: all the training images for the recipe's epochs, the "
                             "frontier's scale (about 9 minutes a row)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds of the --frontier rows (default: 0,1,2)")
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default="tensorflow",
                        help="Keras backend of the main table's rows (default: tensorflow)")
    parser.add_argument("--jax-path", default=None,
                        help="a folder to add to PYTHONPATH for rows on the JAX backend")
    parser.add_argument("--repeats", type=int, default=None,
                        help="run the whole table this many times and report the median ratio "
                             "(default: 3; 1 with --resnet)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write every result here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.limit = args.limit or 1000
        args.epochs = args.epochs or 1
        args.repeats = 1
    if args.repeats is None:
        args.repeats = 1 if (args.resnet or args.frontier or args.ablation) else 3
    if sum((args.resnet, args.levers, args.frontier, args.ablation)) > 1:
        parser.error("--resnet, --levers, --frontier and --ablation are different runs: choose one")
    seeds = FRONTIER_SEEDS
    if args.seeds is not None:
        try:
            seeds = tuple(int(seed) for seed in args.seeds.split(","))
        except ValueError:
            seeds = ()
        if not seeds or min(seeds) < 0:
            parser.error("--seeds takes whole numbers >= 0 separated by commas, like 0,1,2; "
                         f"got {args.seeds!r}")
        if not (args.frontier or args.ablation):
            parser.error("--seeds goes with --frontier or --ablation")
    for name in ("limit", "epochs", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a whole number of at least 1; got {value}")
    if args.full_scale and not args.ablation:
        parser.error("--full-scale goes with --ablation")
    if args.child:
        run = run_frontier_row if args.frontier else run_row
        result = run(Recipe(**json.loads(args.child)), args.limit, args.epochs)
        Path(args.child_out).write_text(json.dumps(result))
        return 0

    if args.backend == "jax" and not args.levers and jax_missing(args.jax_path):
        parser.error("--backend jax needs JAX: pip install jax, or pass --jax-path DIR")
    if args.levers:
        recipes = lever_rows(args.epochs or 2)
    elif args.resnet:
        recipes = resnet_rows()
    elif args.frontier or args.ablation:
        if args.repeats != 1:
            parser.error("--frontier and --ablation repeat over --seeds, not --repeats")
        recipes = frontier_rows(seeds) if args.frontier else ablation_rows(seeds, args.full_scale)
    else:
        recipes = main_rows(args.backend)
    if args.rows:
        wanted = [name.strip() for name in args.rows.split(",")]
        unknown = sorted(set(wanted) - {r.name for r in recipes})
        if unknown:
            parser.error(f"unknown row(s) {', '.join(unknown)}; valid choices: "
                         f"{', '.join(r.name for r in recipes)}")
        recipes = [r for r in recipes if r.name in wanted]

    load_before = os.getloadavg()[0]
    repeats = []
    for repeat in range(args.repeats):
        results = []
        for recipe in recipes:
            print(f"run {repeat + 1}/{args.repeats}: {recipe.name} seed {recipe.seed} …", file=sys.stderr,
                  flush=True)
            results.append(run_in_child(recipe, args.limit, args.epochs, args.jax_path,
                                        args.frontier or args.ablation))
        if not (args.frontier or args.ablation):
            add_comparisons(results)
        repeats.append(results)
    load_after = os.getloadavg()[0]
    if args.limit is not None:
        print(f"LIMITED run: at most {args.limit} training and test images, not a benchmark")
    print(header(repeats[0], load_before, load_after, frontier=args.frontier or args.ablation))
    if args.frontier:
        print("\n" + frontier_table(repeats[0]) + "\n\n" + frontier_summary(repeats[0]))
    if args.ablation:
        images = "all training images" if args.full_scale else \
            f"{ABLATION_TRAIN_IMAGES:,} training images (stratified)"
        print(f"\nscale: {images}, all validation images, {args.epochs or recipes[0].epochs} epochs; "
              "the validation accuracy decides\n"
              + ablation_table(repeats[0]))
    if (args.frontier or args.ablation) and test_time_flip_table(repeats[0]):
        print("\n" + test_time_flip_table(repeats[0]))
    for number, results in enumerate(repeats if not (args.frontier or args.ablation) else [], start=1):
        print(f"\nrun {number} of {len(repeats)}")
        print(resnet_table(results) if args.resnet else format_table(results))
    if not (args.resnet or args.frontier or args.ablation):
        print("\n" + ratio_summary(repeats))
    if args.json:
        Path(args.json).write_text(json.dumps(repeats if len(repeats) > 1 else repeats[0], indent=1))
    return 1 if any("error" in r for results in repeats for r in results) else 0


def ratio_summary(repeats: list[list[dict]]) -> str:
    """Each row's "vs base" in every run and their median: the figure to quote."""
    lines = ["vs base (time to the baseline's final accuracy, relative to the baseline), per run and median:"]
    for index, first in enumerate(repeats[0]):
        if not first["recipe"].get("baseline"):
            continue
        values = [results[index].get("vs_baseline") for results in repeats]
        reached = [v for v in values if v is not None]
        median = (f"{statistics.median(reached):.2f}" if len(reached) == len(values)
                  else "not reached in every run")
        lines.append(f"  {first['recipe']['name']:<14} "
                     f"{', '.join(_num(v, 2, missing='not reached') for v in values)}  ->  median {median}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # the repository's utils, also where it is not installed
    sys.exit(main())
