"""Tests of utils/transfer.py: source and target tasks, ImageNet backbones and their offline error."""

from __future__ import annotations

import socket
import urllib.request

from utils import course, data, transfer

import keras
import numpy as np
import pytest


def _fake_splits(train=600, val=200, test=100, seed=0) -> data.Splits:
    """Splits whose every image is unique: pixel [0, 0, 0] holds its id."""
    rng = np.random.default_rng(seed)
    ids = iter(range(1, 10**6))

    def part(count):
        images = rng.random((count, 28, 28, 1), dtype=np.float32)
        for image in images:
            image[0, 0, 0] = next(ids)
        return images, rng.permutation(np.arange(count) % 10)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = part(train), part(val), part(test)
    return data.Splits(data.get_spec("mnist"), x_train, y_train, x_val, y_val, x_test, y_test,
                       limit=None, seed=seed)


def _ids(images) -> set[float]:
    return set(images[:, 0, 0, 0].tolist())


def test_task_classes_split_the_classes_in_two():
    source, target = transfer.task_classes(data.get_spec("cifar10"))
    assert source == (0, 1, 2, 3, 4) and target == (5, 6, 7, 8, 9)
    with pytest.raises(ValueError, match="source_count must be a whole number from 1 to 9; got 10"):
        transfer.task_classes(data.get_spec("mnist"), source_count=10)


def test_source_task_keeps_only_its_classes_stratified_and_relabelled():
    splits = _fake_splits()
    source = transfer.source_task(splits, (0, 1, 2, 3, 4), train_size=100, val_size=50, seed=3)
    assert (len(source.y_train), len(source.y_val), len(source.y_test)) == (100, 50, 50)
    assert np.bincount(source.y_train).tolist() == [20] * 5
    assert source.spec.class_names == ("0", "1", "2", "3", "4") and source.spec.num_classes == 5
    original = dict(zip(splits.x_train[:, 0, 0, 0], splits.y_train, strict=True))
    assert all(original[i] == y for i, y in zip(source.x_train[:, 0, 0, 0], source.y_train, strict=True))
    again = transfer.source_task(splits, (0, 1, 2, 3, 4), train_size=100, val_size=50, seed=3)
    other = transfer.source_task(splits, (0, 1, 2, 3, 4), train_size=100, val_size=50, seed=4)
    assert np.array_equal(again.x_train, source.x_train) and not np.array_equal(other.x_train, source.x_train)


def test_target_task_labels_per_class_relabelled_seeded_and_nested():
    splits = _fake_splits()
    target = transfer.target_task(splits, (5, 6, 7, 8, 9), labels_per_class=7, val_per_class=4, seed=1)
    assert np.bincount(target.y_train).tolist() == [7] * 5 and np.bincount(target.y_val).tolist() == [4] * 5
    assert target.spec.class_names == ("5", "6", "7", "8", "9")
    original = dict(zip(splits.x_train[:, 0, 0, 0], splits.y_train, strict=True))
    assert all(original[i] == y + 5 for i, y in zip(target.x_train[:, 0, 0, 0], target.y_train, strict=True))
    assert len(target.y_test) == int(np.isin(splits.y_test, (5, 6, 7, 8, 9)).sum())
    larger = transfer.target_task(splits, (5, 6, 7, 8, 9), labels_per_class=20, val_per_class=4, seed=1)
    assert _ids(target.x_train) < _ids(larger.x_train)  # 7 per class are part of the 20
    assert np.array_equal(larger.x_val, target.x_val)  # the validation set does not depend on the count
    other = transfer.target_task(splits, (5, 6, 7, 8, 9), labels_per_class=7, val_per_class=4, seed=2)
    assert _ids(other.x_train) != _ids(target.x_train)


def test_no_image_is_in_two_tasks_or_two_splits():
    splits = _fake_splits()
    source = transfer.source_task(splits, (0, 1, 2, 3, 4), seed=0)
    target = transfer.target_task(splits, (5, 6, 7, 8, 9), labels_per_class=20, val_per_class=10, seed=0)
    parts = [_ids(task.x_train) | _ids(task.x_val) | _ids(task.x_test) for task in (source, target)]
    assert not parts[0] & parts[1]
    assert not (_ids(target.x_train) & _ids(target.x_val) or _ids(target.x_train) & _ids(target.x_test)
                or _ids(target.x_val) & _ids(target.x_test))


def test_target_task_asking_for_too_many_images_says_how_many_there_are():
    splits = _fake_splits(train=100)
    with pytest.raises(ValueError, match="training set: class 5 has 10 images, fewer than the 11 asked for"):
        transfer.target_task(splits, (5, 6), labels_per_class=11)
    with pytest.raises(ValueError, match="labels_per_class must be a whole number >= 1; got 0"):
        transfer.target_task(splits, (5, 6), labels_per_class=0)


def test_check_parameters_knows_the_lesson_07_parameters():
    course.check_parameters(backbone="efficientnetb0", label_counts=[10, 30], steps=5, pretrain_epochs=1,
                            val_per_class=3)
    with pytest.raises(ValueError, match="unknown backbone 'resnet'; valid choices: course, efficientnetb0, "
                                         "mobilenetv3small"):
        course.check_parameters(backbone="resnet")
    with pytest.raises(ValueError, match="label_counts must increase"):
        course.check_parameters(label_counts=[30, 10])
    with pytest.raises(ValueError, match="each of label_counts must be a whole number >= 1; got 0"):
        course.check_parameters(label_counts=[0, 10])


@pytest.mark.parametrize("name", sorted(transfer.BACKBONES))
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_imagenet_backbone_takes_course_images(name, shape):
    spec = transfer.BACKBONES[name]
    backbone = transfer.imagenet_backbone(name, shape, weights=None)
    names = [layer.name for layer in backbone.layers]
    assert ("gray_to_rgb" in names) == (shape[-1] == 1)
    assert backbone.get_layer("resize").output.shape[1:] == (spec.image_size, spec.image_size, 3)
    assert spec.top_block in names
    features = backbone(np.random.default_rng(0).random((2, *shape), dtype=np.float32))
    assert features.shape[0] == 2 and len(features.shape) == 2


def test_imagenet_backbone_scales_to_0_255_before_the_models_own_preprocessing():
    backbone = transfer.imagenet_backbone("mobilenetv3small", (28, 28, 1), weights=None)
    probe = keras.Model(backbone.inputs, backbone.get_layer("gray_to_rgb").output)
    out = keras.ops.convert_to_numpy(probe(np.ones((1, 28, 28, 1), dtype=np.float32)))
    assert out.shape == (1, 28, 28, 3) and np.allclose(out, 255.0)


def test_offline_imagenet_backbone_names_the_cause_and_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(transfer.BackboneNotAvailableError) as caught:
        transfer.imagenet_backbone("mobilenetv3small", (28, 28, 1))
    message = str(caught.value)
    assert "COURSE_OFFLINE=1 is set" in message and "backbone='course'" in message
    assert transfer.BACKBONES["mobilenetv3small"].weights_file in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__ is False


def test_failed_download_is_reported_without_a_deep_traceback(tmp_path, monkeypatch, request):
    # A real failed download: Keras's downloader goes through a proxy where nothing listens.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # urlopen caches its opener, proxies included: none before this test, so that the next call builds
    # one with the proxy above, and none after it, so that later calls build one without it.
    urllib.request.install_opener(None)
    request.addfinalizer(lambda: urllib.request.install_opener(None))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    with pytest.raises(transfer.BackboneNotAvailableError, match="the download failed: URL fetch failure") \
            as caught:
        transfer.imagenet_backbone("efficientnetb0", (32, 32, 3))
    assert "backbone='course'" in str(caught.value)
    assert caught.value.__suppress_context__  # raised "from None": one clear error, not two tracebacks
    assert not list((tmp_path / "models").glob("*.h5"))  # nothing half-written is kept


def test_course_or_unknown_names_are_refused_clearly():
    with pytest.raises(ValueError, match="the course backbone is the pretrained small ResNet"):
        transfer.imagenet_backbone("course", (28, 28, 1))
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        transfer.imagenet_backbone("vgg", (28, 28, 1))


def test_top_block_start_of_the_course_backbone():
    from utils import models

    net = models.small_resnet((28, 28, 1), 5, widths=(4, 4, 8, 8))
    backbone = keras.Model(net.inputs, net.get_layer("gap").output)
    assert transfer.top_block_start(backbone, "course") == "block4_conv1"
    assert transfer.top_block_start(backbone, "efficientnetb0") == "block7a_expand_conv"


def test_label_count_table_reads_mean_and_range():
    table = transfer.label_count_table({"scratch": {10: [0.5, 0.6, 0.7]}, "transfer": {10: [0.8, 0.8, 0.9]}})
    assert "0.600 (0.500–0.700)" in table and "10 per class" in table


def test_near_split_pairs_fashion_mnist_look_alikes_and_halves_other_datasets():
    source, target = transfer.near_split(data.get_spec("fashion_mnist"))
    names = data.get_spec("fashion_mnist").class_names
    assert sorted(source + target) == list(range(10)) and not set(source) & set(target)
    assert {names[c] for c in target} == {"Dress", "Coat", "Shirt", "Sneaker", "Bag"}
    assert transfer.near_split(data.get_spec("cifar10")) == transfer.task_classes(data.get_spec("cifar10"))


def test_shapes_task_is_balanced_seeded_and_its_classes_differ():
    far = transfer.shapes_task((28, 28, 1), train_size=500, val_size=50, seed=3)
    assert far.x_train.shape == (500, 28, 28, 1) and far.x_test.shape == (50, 28, 28, 1)
    assert np.bincount(far.y_train).tolist() == [100] * 5 and far.spec.class_names == transfer.SHAPES
    assert far.x_train.min() >= 0 and far.x_train.max() <= 1 and far.x_train.dtype == np.float32
    again = transfer.shapes_task((28, 28, 1), train_size=500, val_size=50, seed=3)
    assert np.array_equal(again.x_train, far.x_train)
    assert not np.array_equal(transfer.shapes_task((28, 28, 1), 500, 50, seed=4).x_train, far.x_train)
    # a ring covers less of its disc than a disc; a cross less than a square of the same size
    bright = far.x_train[..., 0] > 0.3
    area = [bright[far.y_train == c].sum(axis=(1, 2)).mean() for c in range(5)]
    disc, ring, square, triangle, cross = area
    assert ring < 0.8 * disc and triangle < square and cross < disc
    colour = transfer.shapes_task((32, 32, 3), 10, 5, seed=0)
    assert colour.x_train.shape == (10, 32, 32, 3)
    with pytest.raises(ValueError, match="train_size must be a whole number >= 5; got 3"):
        transfer.shapes_task((28, 28, 1), 3, 10)


def test_batch_order_gives_exactly_the_steps_in_full_shuffled_passes():
    order = transfer.batch_order(25, steps=4, batch_size=32, seed=0)
    assert len(order) == 128
    assert sorted(order[:25]) == list(range(25)) and sorted(order[25:50]) == list(range(25))
    assert np.array_equal(order, transfer.batch_order(25, 4, 32, seed=0))
    assert not np.array_equal(order, transfer.batch_order(25, 4, 32, seed=1))


def _tiny_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def test_retrainer_run_equals_a_run_on_a_new_model():
    from utils import training

    rng = np.random.default_rng(0)
    x, y = rng.random((20, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 20)
    start = _tiny_model(1).get_weights()
    fresh = _tiny_model(1)
    training.compile_model(fresh, learning_rate=1e-2, decay_steps=5)
    order = transfer.batch_order(20, 5, 8, seed=2)
    fresh.fit(x[order], y[order], batch_size=8, epochs=1, shuffle=False, verbose=0)
    trainer = transfer.Retrainer(_tiny_model(7), learning_rate=1e-2, steps=5, batch_size=8)
    trainer.fit(x, y, seed=9, weights=_tiny_model(5).get_weights())  # an earlier, different run
    trainer.fit(x, y, seed=2, weights=start)
    for found, expected in zip(trainer.model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    assert int(trainer.model.optimizer.iterations.numpy()) == 5


def test_probe_head_weights_give_the_probes_probabilities():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(3, 2, (40, 6)).astype(np.float32)
    features[:, 5] = 1.0  # a constant feature: StandardScaler leaves its scale at 1
    labels = rng.integers(0, 3, 40)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(features, labels)
    head = keras.layers.Dense(3, activation="softmax")
    head.build((None, 6))
    head.set_weights(transfer.probe_head_weights(probe))
    probe_input = rng.normal(3, 2, (10, 6)).astype(np.float32)
    found = keras.ops.convert_to_numpy(head(probe_input))
    np.testing.assert_allclose(found, probe.predict_proba(probe_input), atol=1e-5)


def test_verdict_says_who_won_in_every_seed():
    assert transfer.verdict([0.8, 0.7], [0.6, 0.65]) == "better in every seed"
    assert transfer.verdict([0.7, 0.6], [0.7 + 1e-8, 0.5]) == "no winner over the seeds"  # a tie is no win
    assert transfer.verdict([0.5, 0.5], [0.6, 0.55]).startswith("worse in every seed")
    assert transfer.verdict([0.7, 0.5], [0.6, 0.55]).startswith("no winner over the seeds")
