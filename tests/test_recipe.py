"""utils.recipe: the fast recipe's ingredients, each checked on small arrays."""

from __future__ import annotations

import copy
from dataclasses import fields

from utils import recipe
from utils.data import Splits, get_spec

import numpy as np
import pytest


def _images(n=6, size=5):
    return np.arange(n * size * size, dtype="float32").reshape(n, size, size, 1) + 1


def test_flip_and_shift_off_is_the_identity():
    images = _images()
    out = recipe.flip_and_shift(images, np.random.default_rng(0), flip=False, shift=0)
    assert np.array_equal(out, images) and out.dtype == images.dtype


def test_flip_mirrors_about_half_the_images_and_nothing_else():
    images = _images(n=400)
    out = recipe.flip_and_shift(images, np.random.default_rng(0), flip=True, shift=0)
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))  # every image one or the other
    assert 150 < sum(mirrored) < 250


def test_shift_moves_each_image_within_the_bound_and_fills_with_zeros():
    images = _images(n=200, size=6)
    shift = 2
    out = recipe.flip_and_shift(images, np.random.default_rng(1), flip=False, shift=shift)
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
    offsets = set()
    for o, p in zip(out, padded, strict=True):
        found = [(dy, dx) for dy in range(2 * shift + 1) for dx in range(2 * shift + 1)
                 if np.array_equal(o, p[dy:dy + 6, dx:dx + 6])]
        assert len(found) == 1  # a window of the zero-padded image
        offsets.add(found[0])
    assert len(offsets) == (2 * shift + 1) ** 2  # every offset drawn: no bias to one side


def test_the_same_seed_draws_the_same_augmentation():
    images = _images(n=50)
    first = recipe.flip_and_shift(images, np.random.default_rng(3))
    assert np.array_equal(first, recipe.flip_and_shift(images, np.random.default_rng(3)))
    assert not np.array_equal(first, recipe.flip_and_shift(images, np.random.default_rng(4)))


def _rates(schedule, steps):
    return [float(schedule(step)) if callable(schedule) else schedule for step in steps]


def test_schedule_warms_up_linearly_then_decays_to_zero():
    r = recipe.Recipe(epochs=4, learning_rate=1e-2, warmup_epochs=1.0)
    schedule = recipe.learning_rate_schedule(r, steps_per_epoch=10)
    rates = _rates(schedule, range(41))
    assert rates[0] == pytest.approx(0.0) and rates[5] == pytest.approx(5e-3)
    assert rates[10] == pytest.approx(1e-2) == max(rates)
    assert rates[40] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_schedule_without_warm_up_starts_at_the_peak_and_without_decay_holds_it():
    no_warmup = _rates(recipe.learning_rate_schedule(
        recipe.Recipe(epochs=2, learning_rate=1e-2, warmup_epochs=0), 10), [0, 10, 20])
    assert no_warmup[0] == pytest.approx(1e-2) and no_warmup[2] == pytest.approx(0.0, abs=1e-9)
    held = _rates(recipe.learning_rate_schedule(
        recipe.Recipe(epochs=2, learning_rate=1e-2, cosine=False, warmup_epochs=1.0), 10), [0, 5, 10, 20])
    assert held == pytest.approx([0.0, 5e-3, 1e-2, 1e-2])
    assert recipe.learning_rate_schedule(
        recipe.Recipe(learning_rate=1e-2, cosine=False, warmup_epochs=0), 10) == 1e-2


def test_each_ablation_row_changes_its_own_ingredient_and_nothing_else():
    full = recipe.Recipe()
    expected = {"without flips": {"flip": False, "tta": False}, "without test-time flip": {"tta": False},
                "without cosine decay": {"cosine": False}, "with warm-up 1 epoch": {"warmup_epochs": 1.0},
                "with shift 2": {"shift": 2}, "with label smoothing 0.1": {"label_smoothing": 0.1},
                "with Keras's array input": {"pipeline": "arrays"}}
    assert set(recipe.ABLATIONS) == set(expected)
    for name, change in expected.items():
        varied = full.variant(name)
        changed = {f.name: getattr(varied, f.name) for f in fields(recipe.Recipe)
                   if getattr(varied, f.name) != getattr(full, f.name)}
        assert changed == change, name


def test_the_dropped_ingredients_are_off_by_default():
    assert recipe.Recipe().shift == 0 and recipe.Recipe().label_smoothing == 0.0


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="unknown variant 'without dropout'; valid choices: without flips"):
        recipe.Recipe().variant("without dropout")


def test_label_smoothing_reaches_the_loss():
    model = recipe.fast_cnn((8, 8, 1), 3, widths=(4, 8), convs=(1, 1))
    recipe.compile_recipe(model, recipe.Recipe(label_smoothing=0.2), 5)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.2)
    assert model.loss.get_config()["from_logits"] and model.output.shape[-1] == 3


def test_tta_averages_the_image_and_its_mirror_image():
    model = recipe.fast_cnn((8, 8, 1), 3, widths=(4, 8), convs=(1, 1))
    images = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    plain = recipe.predict_tta(model, images, tta=False)
    mirror = recipe.predict_tta(model, images[:, :, ::-1], tta=False)
    assert np.allclose(recipe.predict_tta(model, images, tta=True), (plain + mirror) / 2, atol=1e-6)
    assert np.allclose(plain.sum(axis=1), 1.0, atol=1e-5)


def test_train_recipe_logs_every_epoch_and_calls_back():
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1)).astype("float32")
    y = np.arange(64) % 3
    splits = Splits(get_spec("fashion_mnist"), x[:48], y[:48], x[48:], y[48:], x[48:], y[48:], None, 0)
    seen = []
    r = recipe.Recipe(epochs=2, batch_size=16, widths=(4, 8), convs=(1, 1))
    model, log = recipe.train_recipe(r, splits, seed=0, on_epoch=lambda m, e: seen.append(e["epoch"]))
    assert [e["epoch"] for e in log] == seen == [1, 2]
    assert 0 < log[0]["seconds"] < log[1]["seconds"] and 0 <= log[1]["val_accuracy"] <= 1
    assert model.output.shape[-1] == 3
    _, last_only = recipe.train_recipe(r, splits, seed=0, validate_each_epoch=False)
    assert last_only[0]["val_accuracy"] is None and last_only[1]["val_accuracy"] == log[1]["val_accuracy"]


def test_epoch_batches_show_every_image_once_in_the_generators_order():
    images = _images(n=10, size=2)
    targets = np.eye(10, dtype="float32")
    batches = list(recipe.epoch_batches(images, targets, 4, np.random.default_rng(3)))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    seen = np.concatenate([y.numpy().argmax(axis=1) for _, y in batches])
    assert np.array_equal(seen, np.random.default_rng(3).permutation(10))
    first = np.concatenate([x.numpy() for x, _ in batches])
    assert np.array_equal(first, images[seen])  # each image stays with its target
    untuned = recipe.epoch_batches(images, targets, 4, np.random.default_rng(0))
    assert untuned.options().autotune.enabled is False


def test_train_recipe_gives_the_same_batches_with_and_without_flips_and_refuses_unknown_pipelines(
        monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    y = np.arange(32) % 2
    splits = Splits(get_spec("fashion_mnist"), x[:24], y[:24], x[24:], y[24:], x[24:], y[24:], None, 0)
    orders = []
    real = recipe.epoch_batches
    monkeypatch.setattr(recipe, "epoch_batches", lambda images, targets, size, order_rng: (
        orders.append(copy.deepcopy(order_rng).permutation(len(images)).tolist())
        or real(images, targets, size, order_rng)))
    r = recipe.Recipe(epochs=2, batch_size=8, widths=(4,), convs=(1,))
    recipe.train_recipe(r, splits, seed=1, validate_each_epoch=False)
    recipe.train_recipe(r.variant("without flips"), splits, seed=1, validate_each_epoch=False)
    assert orders[:2] == orders[2:] and orders[0] != orders[1]
    with pytest.raises(ValueError, match="unknown pipeline 'numpy'; valid choices: tf.data, arrays"):
        recipe.train_recipe(recipe.Recipe(pipeline="numpy"), splits)
