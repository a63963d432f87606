"""Tests of utils/regularize.py: augmentation per dataset, the regularised CNN, early stopping."""

from __future__ import annotations

from utils import course, data, models, regularize

import keras
import numpy as np
import pytest


def _layer_facts(model):
    return [(type(layer).__name__, layer.name, tuple(layer.output.shape), layer.count_params())
            for layer in model.layers]


def _fake_splits(train=200, val=60, test=40, seed=0) -> data.Splits:
    rng = np.random.default_rng(seed)

    def part(count):
        return rng.random((count, 28, 28, 1), dtype=np.float32), np.arange(count) % 10

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = part(train), part(val), part(test)
    return data.Splits(data.get_spec("mnist"), x_train, y_train, x_val, y_val, x_test, y_test,
                       limit=None, seed=seed)


def test_with_every_option_off_it_is_cnn3():
    plain = regularize.regularized_cnn((28, 28, 1), 10)
    assert _layer_facts(plain) == _layer_facts(models.cnn3((28, 28, 1), 10))
    assert plain.count_params() == 93_322


def test_batch_norm_sits_between_each_convolution_and_its_relu():
    model = regularize.regularized_cnn((28, 28, 1), 10, batch_norm=True, dropout=0.3)
    names = [layer.name for layer in model.layers]
    assert names[:8] == ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2"]
    assert names[8:11] == ["conv3", "bn3", "relu3"]
    assert names[11:] == ["flatten", "dropout1", "dense", "dropout2", "probabilities"]
    for index in (1, 2, 3):
        assert model.get_layer(f"conv{index}").use_bias is False
    assert model.get_layer("bn1").count_params() == 4 * 32
    rows = {row.name: row for row in models.layer_counts(model)}
    assert (rows["bn2"].formula, rows["bn2"].frozen_by_formula, rows["bn2"].frozen_by_keras) == \
        ("2·64 + 2·64", 128, 128)
    assert all(row.agrees for row in rows.values())


@pytest.mark.parametrize("kwargs, message", [
    ({"dropout": 1.0}, "dropout must be a rate in"),
    ({"dropout": -0.1}, "dropout must be a rate in"),
    ({"dropout": True}, "dropout must be a rate in"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        regularize.regularized_cnn((28, 28, 1), 10, **kwargs)


def _layer_types(dataset):
    return [type(layer).__name__ for layer in regularize.augmentation_for(dataset).layers]


def test_digits_are_never_flipped():
    assert "RandomFlip" not in _layer_types("mnist")
    assert regularize.augmentation_reason("mnist").startswith("no flips")


@pytest.mark.parametrize("dataset", ["fashion_mnist", "cifar10"])
def test_clothes_and_objects_are_flipped_horizontally_only(dataset):
    flips = [layer for layer in regularize.augmentation_for(dataset).layers
             if isinstance(layer, keras.layers.RandomFlip)]
    assert len(flips) == 1 and flips[0].mode == "horizontal"


def test_every_dataset_has_an_augmentation_and_a_reason():
    assert sorted(regularize.AUGMENTATIONS) == data.dataset_names()
    for name in data.dataset_names():
        assert regularize.augmentation_reason(name)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(data.UnknownDatasetError, match="valid choices: cifar10, fashion_mnist, mnist"):
        regularize.augmentation_for("svhn")


def test_augmentation_changes_images_only_in_training():
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    augmentation = regularize.augmentation_for("fashion_mnist")
    assert np.array_equal(keras.ops.convert_to_numpy(augmentation(images, training=False)), images)
    assert not np.allclose(keras.ops.convert_to_numpy(augmentation(images, training=True)), images)


def test_early_stopping_restores_the_best_weights():
    callback = regularize.early_stopping(patience=4)
    assert (callback.monitor, callback.patience) == ("val_loss", 4)

    # Random labels: the model memorises the training images, so the validation loss turns up.
    keras.utils.set_random_seed(0)
    splits = _fake_splits(train=100, val=100)
    model = models.dense_only((28, 28, 1), 10, width=64, depth=1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    weights = []  # after each epoch, recorded before early stopping acts
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: weights.append(model.get_weights()))
    history = model.fit(splits.x_train, splits.y_train, validation_data=(splits.x_val, splits.y_val),
                        epochs=60, batch_size=50, verbose=0,
                        callbacks=[record, regularize.early_stopping(patience=2)]).history["val_loss"]
    best = int(np.argmin(history))
    assert len(history) < 60 and best == len(history) - 3  # it stopped, two epochs after the best
    for kept, at_best in zip(model.get_weights(), weights[best], strict=True):
        np.testing.assert_array_equal(kept, at_best)
    assert not all(np.array_equal(a, b) for a, b in zip(weights[best], weights[-1], strict=True))


def test_small_subset_is_stratified_and_keeps_the_test_set():
    splits = _fake_splits()
    small = regularize.small_subset(splits, train_size=50, val_size=20)
    assert (len(small.y_train), len(small.y_val), len(small.y_test)) == (50, 20, 40)
    assert np.bincount(small.y_train).tolist() == [5] * 10
    assert small.x_test is splits.x_test
    assert len(regularize.small_subset(splits, train_size=10_000).y_train) == 200


@pytest.mark.parametrize("size", [0, 5, 2.5, True, "100"])
def test_small_subset_names_a_bad_size(size):
    with pytest.raises(ValueError, match="train_size must be a whole number >= 10"):
        regularize.small_subset(_fake_splits(), train_size=size)


def test_train_variants_trains_each_model_per_seed_and_reports_it(capsys):
    splits = _fake_splits()

    def tiny():
        return models.dense_only((28, 28, 1), 10, width=8, depth=1)

    runs = regularize.train_variants({"a": tiny, "b": tiny}, splits, epochs=2, batch_size=50, seeds=(0, 1),
                                     callbacks=lambda: [regularize.early_stopping(patience=1)])
    assert list(runs) == ["a", "b"] and [run.seed for run in runs["a"]] == [0, 1]
    assert runs["a"][0].history["val_loss"] == pytest.approx(runs["b"][0].history["val_loss"])  # same seed
    assert runs["a"][0].history["val_loss"] != pytest.approx(runs["a"][1].history["val_loss"])
    assert isinstance(runs["a"][0].model, keras.Model)
    clean = runs["a"][0].model.evaluate(splits.x_train, splits.y_train, verbose=0, return_dict=True)
    assert runs["a"][0].train_accuracy == pytest.approx(clean["accuracy"])  # evaluate, not fit's log
    summaries = [line for line in capsys.readouterr().out.splitlines() if "seed(s)" in line]
    assert [line.split()[:3] for line in summaries] == [["a", "2", "seed(s)"], ["b", "2", "seed(s)"]]


def test_spread_table_gives_each_variant_at_its_best_epoch():
    def run(seed, val_cross_entropy, accuracy, val_accuracy):
        # fit's running accuracy (0.99) is not the gap's: the clean training accuracy is; the penalised
        # val_loss is not the comparison's: the cross-entropy is
        history = {"loss": [1.0, 0.5, 0.4], "accuracy": [0.5, 0.9, 0.99],
                   "val_loss": [v + 5 for v in val_cross_entropy], "val_cross_entropy": val_cross_entropy,
                   "val_accuracy": val_accuracy}
        return regularize.Trained(model=None, seed=seed, history=history, train_accuracy=accuracy)

    experiment = {"none": [run(0, [0.9, 0.6, 1.0], 0.9, [0.5, 0.7, 0.75]),
                           run(1, [0.9, 1.0, 0.8], 0.9, [0.5, 0.7, 0.8])],
                  "one seed": [run(0, [0.8, 0.7, 0.75], 0.8, [0.6, 0.65, 0.6])]}
    metrics = regularize.best_epoch_metrics(experiment["none"])
    assert metrics["best epoch"] == [2, 3] and metrics["val cross-entropy"] == [0.6, 0.8]
    assert metrics["val acc"] == [0.7, 0.8] and metrics["last val cross-entropy"] == [1.0, 0.8]
    assert metrics["train − val acc"] == pytest.approx([0.2, 0.1])
    table = regularize.spread_table(experiment)
    print(table)
    assert "| none     | 2.5 (2.0–3.0) | 0.700 (0.600–0.800) | 0.750 (0.700–0.800) |" in table
    assert "| one seed | 2.0           | 0.700               | 0.650               |" in table


def test_l2_penalises_every_kernel_and_no_bias():
    model = regularize.regularized_cnn((28, 28, 1), 10, l2=1e-3)
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    assert len(model.losses) == len(kernels) == 5
    expected = 1e-3 * sum(float(np.sum(kernel.numpy() ** 2)) for kernel in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    assert regularize.regularized_cnn((28, 28, 1), 10).losses == []


@pytest.mark.parametrize("l2", [-1e-4, True, "1e-4"])
def test_a_bad_l2_is_named(l2):
    with pytest.raises(ValueError, match="l2 must be a number >= 0"):
        regularize.regularized_cnn((28, 28, 1), 10, l2=l2)


def test_train_variants_uses_the_named_optimizer_and_logs_the_cross_entropy(capsys):
    splits = _fake_splits()

    def tiny(l2=0.0):
        penalty = keras.regularizers.L2(l2) if l2 else None
        return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(10, activation="softmax", kernel_regularizer=penalty)])

    runs = regularize.train_variants(
        {"adam": tiny, "adamw": tiny, "penalised": lambda: tiny(1.0)}, splits, epochs=2, batch_size=50,
        optimizers={"adamw": lambda rate: keras.optimizers.AdamW(rate, weight_decay=0.5)})
    assert isinstance(runs["adamw"][0].model.optimizer, keras.optimizers.AdamW)
    assert type(runs["adam"][0].model.optimizer) is keras.optimizers.Adam
    plain, penalised = runs["adam"][0].history, runs["penalised"][0].history
    assert plain["val_cross_entropy"] == pytest.approx(plain["val_loss"], rel=1e-5)
    assert all(loss > entropy + 1e-3 for loss, entropy in zip(penalised["val_loss"],
                                                               penalised["val_cross_entropy"], strict=True))


@pytest.mark.parametrize("value", [0, 1.5, -1e-3, True, "1e-3"])
def test_check_parameters_names_a_bad_learning_rate(value):
    with pytest.raises(ValueError, match="learning_rate must be a number between 0 and 1"):
        course.check_parameters(learning_rate=value)
    course.check_parameters(learning_rate=2e-3)


def test_augmentation_for_one_layer_only():
    shifts = regularize.augmentation_for("fashion_mnist", only="shift")
    assert [layer.name for layer in shifts.layers] == ["shift"]
    with pytest.raises(ValueError, match="fashion_mnist has no augmentation layer 'zoom'; it has flip, "):
        regularize.augmentation_for("fashion_mnist", only="zoom")


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_grey_images_are_filled_with_black_background(dataset):
    for layer in regularize.augmentation_for(dataset).layers:
        if hasattr(layer, "fill_mode"):
            assert (layer.fill_mode, layer.fill_value) == ("constant", 0.0)
