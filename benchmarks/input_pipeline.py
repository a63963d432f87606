"""Seconds per epoch of the fast recipe's training with each input pipeline of `utils.recipe`.

    python benchmarks/input_pipeline.py              # all 54,000 training images, 5 epochs each
    python benchmarks/input_pipeline.py --limit 2000 --epochs 2

For each pipeline it trains the recipe's network from the same initial weights on the same
flipped images, one `model.fit` call per epoch as `recipe.train_recipe` does: Keras's own from
NumPy arrays; `recipe.epoch_batches` with its autotuning turned back on, the one thing it
changes; then `recipe.epoch_batches` as the recipe uses it. It runs them in that order, in one
process, and prints the seconds of each epoch (the flips and the `model.fit` call), which
include any wait for a pipeline to end. Nothing is validated. TensorFlow runs with the kernel
settings of the environment (its defaults unless TF_ENABLE_ONEDNN_OPTS or ONEDNN_MAX_CPU_ISA are
set); the header names them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASET = "fashion_mnist"
PIPELINES = ("arrays", "tf.data, autotuned", "tf.data")  # Keras's own; epoch_batches tuned; the recipe's


def measure(pipeline: str, limit: int | None, epochs: int, seed: int = 0) -> list[dict]:
    """One row per epoch: its seconds, the flips and the ``model.fit`` call."""
    from utils import data, recipe, training

    import keras
    import tensorflow as tf

    splits = data.load_dataset(DATASET, limit=limit, seed=seed)
    fast = recipe.Recipe(epochs=epochs)
    training.set_seed(seed)
    model = recipe.build(fast, splits.x_train.shape[1:], splits.spec.num_classes)
    steps_per_epoch = -(-len(splits.x_train) // fast.batch_size)
    recipe.compile_recipe(model, fast, steps_per_epoch)
    targets = keras.utils.to_categorical(splits.y_train, splits.spec.num_classes)
    augment_rng, order_rng = recipe.random_streams(seed)

    rows = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        images = recipe.flip_and_shift(splits.x_train, augment_rng, fast.flip, fast.shift)
        if pipeline == "arrays":
            model.fit(images, targets, batch_size=fast.batch_size, epochs=1, verbose=0)
        else:
            batches = recipe.epoch_batches(images, targets, fast.batch_size, order_rng)
            if pipeline == "tf.data, autotuned":
                autotuned = tf.data.Options()
                autotuned.autotune.enabled = True  # the options given last win
                batches = batches.with_options(autotuned)
            model.fit(batches, epochs=1, shuffle=False, verbose=0)
        rows.append({"pipeline": pipeline, "epoch": epoch, "seconds": time.perf_counter() - start,
                     "images": len(splits.x_train)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| pipeline | epoch | seconds |", "|---|---|---|"]
    lines += [f"| {r['pipeline']} | {r['epoch']} | {r['seconds']:.1f} |" for r in rows]
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """Each pipeline's epochs: median [lowest–highest] seconds; the first epoch, which builds the
    training step, left out."""
    lines = []
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        later = [r["seconds"] for r in rows if r["pipeline"] == pipeline and r["epoch"] > 1]
        if not later:
            lines.append(f"{pipeline}: no epoch after the first")
        else:
            lines.append(f"{pipeline}: epochs 2 to {len(later) + 1}, median {statistics.median(later):.1f} s "
                         f"per epoch [{min(later):.1f}–{max(later):.1f}], all {sum(later):.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per pipeline (default: 5)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: give 1 or more")
    from utils.tools import reproduce

    settings = {key: os.environ[key] for key in reproduce.STORED_OUTPUTS_ENV if key in os.environ}
    rows = [row for pipeline in PIPELINES for row in measure(pipeline, args.limit, args.epochs)]
    import tensorflow as tf

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"{reproduce.fingerprint()['cpu']}, TensorFlow {tf.__version__}, kernel settings: "
          f"{settings or 'TensorFlow defaults'}, {rows[0]['images']:,} training images")
    print(table(rows))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
