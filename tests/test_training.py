"""Tests of utils/training.py's model-cache keys for lesson 07's small ResNet configurations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from utils import models, training

import numpy as np
import pytest

RESNET = training.TrainingConfig("mnist", "small_resnet", 1, 32, 0, None, widths=(4, 8), num_classes=5,
                                 task="source classes (0, 1, 2, 3, 4)", bn_momentum=0.9)


def test_key_does_not_depend_on_models_built_before():
    first = RESNET.key()
    models.small_resnet((28, 28, 1), 5, widths=(4, 8))  # moves Keras's automatic input-layer names on
    assert RESNET.key() == first


@pytest.mark.parametrize("change", [dict(widths=(4, 16)), dict(task="other classes"), dict(bn_momentum=0.99),
                                    dict(num_classes=4)])
def test_every_optional_field_changes_the_key(change):
    assert replace(RESNET, **change).key() != RESNET.key()


@pytest.mark.parametrize("change", ["tensorflow", "code", "data", "extra checksums"])
def test_what_a_trained_model_depends_on_changes_the_key(change, monkeypatch, tmp_path):
    """Lesson 04 loads lesson 03's model by its key: after an upgrade, a change to the course's
    code or other data files, a stale model must not be loaded as current."""
    from utils import data

    import tensorflow as tf

    before = RESNET.key()
    if change == "tensorflow":
        monkeypatch.setattr(tf, "__version__", tf.__version__ + ".post1")
    elif change == "code":
        copy = tmp_path / "utils"
        copy.mkdir()
        for path in Path(training.__file__).parent.glob("*.py"):
            (copy / path.name).write_bytes(path.read_bytes())
        assert training.code_hash(copy) == training.code_hash()
        (copy / "data.py").write_text((copy / "data.py").read_text() + "\n# one line more\n")
        monkeypatch.setattr(training, "code_hash", lambda: _ORIGINAL_CODE_HASH(copy))
    elif change == "data":
        spec = data.get_spec("mnist")
        other = replace(spec, files=(replace(spec.files[0], sha256="0" * 64), *spec.files[1:]))
        monkeypatch.setitem(data.DATASETS, "mnist", other)
    else:
        sums = tmp_path / "checksums.json"
        sums.write_text('{"mnist.npz": "0"}')
        monkeypatch.setenv(data.EXTRA_CHECKSUMS_ENV, str(sums))
        named = RESNET.key()
        assert named != before
        sums.write_text('{"mnist.npz": "1"}')  # the same file, other sums
    assert RESNET.key() != (named if change == "extra checksums" else before)


_ORIGINAL_CODE_HASH = training.code_hash


def test_build_applies_widths_classes_and_momentum():
    model = RESNET.build((28, 28, 1))
    assert model.output.shape[-1] == 5 and model.get_layer("block2_conv1").filters == 8
    assert {layer.momentum for layer in model.layers if hasattr(layer, "moving_mean")} == {0.9}
    with pytest.raises(ValueError, match="a small_resnet configuration needs widths"):
        replace(RESNET, widths=None).build((28, 28, 1))


def test_unset_optional_fields_leave_the_description_and_slug_as_before():
    plain = training.TrainingConfig("mnist", "cnn3", 2, 64, 1, 500)
    assert plain.describe() == "cnn3 on mnist, 2 epochs, batch 64, seed 1, limit 500"
    assert plain.slug().startswith("mnist-cnn3-e2-b64-s1-limit500-")



@pytest.mark.parametrize("architecture", ["cnn3", "small_resnet"])
def test_load_or_train_trains_then_loads(architecture, keras_home, tmp_path, monkeypatch):
    from utils import data

    monkeypatch.setenv(training.MODEL_CACHE_ENV, str(tmp_path / "cache"))
    splits = data.load_dataset("mnist", limit=100, seed=0)
    config = training.TrainingConfig("mnist", architecture, 1, 50, 0, 100,
                                     widths=(4, 8) if architecture == "small_resnet" else None)
    model, history, trained_now = training.load_or_train(config, splits, verbose=0)
    assert trained_now and len(history["val_accuracy"]) == 1  # a Sequential cnn3 trains too
    again, history_again, trained_again = training.load_or_train(config, splits, verbose=0)
    assert not trained_again and history_again == history
    # The trained weights come back, not a new model's: same values, same predictions.
    assert all(np.array_equal(a, b) for a, b in zip(again.get_weights(), model.get_weights(), strict=True))
    np.testing.assert_allclose(again.predict(splits.x_test[:8], verbose=0),
                               model.predict(splits.x_test[:8], verbose=0), rtol=1e-6)
