"""The exercise checks (utils/checks): each one rejects plausible wrong answers with a message
that says what is wrong, reports to the grades file, and lets a stub's NotImplementedError through.
The lessons' own solutions passing is proven in test_exercises.py.
"""

from __future__ import annotations

import json

from utils import checks, visualize
from utils.checks import lesson05

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

# Lesson 01 -------------------------------------------------------------------------------------


def _conv(image, kernel, stride, padding, symmetric=False):
    k_h, k_w = kernel.shape
    if padding == "same":
        if symmetric:  # the same padding on both sides
            image = np.pad(image, [(k_h // 2, k_h // 2), (k_w // 2, k_w // 2)])
        else:
            totals = [max((-(-n // stride) - 1) * stride + k - n, 0)
                      for n, k in zip(image.shape, kernel.shape, strict=True)]
            image = np.pad(image, [(t // 2, t - t // 2) for t in totals])
    out = np.zeros(((image.shape[0] - k_h) // stride + 1, (image.shape[1] - k_w) // stride + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i * stride:i * stride + k_h, j * stride:j * stride + k_w] * kernel)
    return out


def _pool(feature_map, size, reduce=np.mean, drop=True):
    h, w = (feature_map.shape[0] // size) * size, (feature_map.shape[1] // size) * size
    if not drop:
        rows, columns = range(0, feature_map.shape[0], size), range(0, feature_map.shape[1], size)
        return np.array([[reduce(feature_map[i:i + size, j:j + size]) for j in columns] for i in rows])
    return reduce(feature_map[:h, :w].reshape(h // size, size, w // size, size), axis=(1, 3))


# Lesson 02 -------------------------------------------------------------------------------------

def _count(input_shape, num_classes, bias=1, same=True):
    height, width, channels = input_shape
    conv1 = (25 * channels + bias) * 16
    height, width = (height if same else height - 4) // 2, (width if same else width - 4) // 2
    conv2 = (9 * 16 + bias) * 32
    height, width = (height - 2) // 2, (width - 2) // 2
    return conv1 + conv2 + (height * width * 32 + bias) * 64 + (64 + bias) * num_classes


def _cnn(*head, convs=(16, 32, 64)):
    def build(input_shape, num_classes):
        stack = [keras.Input(shape=input_shape)]
        for filters in convs:
            stack += [layers.Conv2D(filters, 3, activation="relu"), layers.MaxPooling2D(2)]
        return keras.Sequential(stack[:-1] + [layer() if callable(layer) else layer for layer in head]
                                + [layers.Dense(num_classes, activation="softmax")])
    return build


def _logits_cnn(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Conv2D(8, 3), layers.Conv2D(8, 3),
                             layers.GlobalAveragePooling2D(), layers.Dense(num_classes)])


# Lesson 03 -------------------------------------------------------------------------------------

def _ce(labels, logits, stable=True, mean=True):
    shifted = logits - logits.max(axis=1, keepdims=True) if stable else logits
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -log_p[np.arange(len(labels)), labels]
    return losses.mean() if mean else losses


# Lesson 04 -------------------------------------------------------------------------------------

def _ranked_saliency(rank):
    def saliency(model, image):
        _, logits = visualize.forward_to_logits(model, image[np.newaxis])
        return visualize.saliency_map(model, image, int(np.argsort(-np.asarray(logits)[0])[rank]))
    return saliency


def _probability_saliency(model, image):
    probabilities = model(image[np.newaxis]).numpy()[0]
    pixels = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        score = model(pixels)[0, int(np.argsort(probabilities)[-2])]
    return tf.reduce_max(tf.abs(tape.gradient(score, pixels)[0]), axis=-1).numpy()


def _activations(model, image, names, batch_axis=False):
    activation_model = keras.Model(model.inputs, {name: model.get_layer(name).output for name in names})
    maps = {name: keras.ops.convert_to_numpy(value)
            for name, value in activation_model([image[np.newaxis]]).items()}
    return maps if batch_axis else {name: value[0] for name, value in maps.items()}


# Lesson 05 -------------------------------------------------------------------------------------

def _choose_by(score, pick=min):
    def choose(experiment):
        values = {name: score(histories) for name, histories in experiment.items()}
        return pick(values, key=values.get)
    return choose


def _stopping(val_losses, patience, improves=lambda loss, best: loss < best, wait_limit=lambda w, p: w >= p,
              restore_last=False):
    best, best_epoch, waited = np.inf, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if improves(loss, best):
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if wait_limit(waited, patience):
                return epoch, epoch if restore_last else best_epoch
    return len(val_losses), best_epoch


WRONG = [
    ("01_1", lambda i, k, s, p: _conv(i, k, 1, p),
     "stride 2, padding='valid': your output is 26×26, expected 13×13"),
    ("01_1", lambda i, k, s, p: _conv(i, k, s, p, symmetric=True),
     "stride 2, padding='same': your output has the right size, 14×14, but differs from Conv2D's"),
    ("01_1", lambda i, k, s, p: _conv(i, k, s, "valid"),
     "padding='same': your output is 10×10, expected 12×12"),
    ("01_1", lambda i, k, s, p: _conv(i, k, s, p).tolist(),
     "your function returned list, expected a 2-D NumPy"),
    ("01_2", lambda f, s: _pool(f, s, np.max), "(that is the window's maximum, not its mean)"),
    ("01_2", lambda f, s: _pool(f, s, drop=False),
     "a 7×9 feature map and size 2: your output is 4×5, expected 3×4"),
    ("02_1", lambda shape, n: _count(shape, n, bias=0), "that is the number of weights without the biases"),
    ("02_1", lambda shape, n: _count(shape, n, same=False),
     "your count is 56,970, expected 79,498 (22,528 too few)"),
    ("02_1", lambda shape, n: float(_count(shape, n)), "returned 79498.0, expected a whole number"),
    ("02_2", _cnn(layers.Flatten), "your model flattens its feature maps; expected global average pooling"),
    ("02_2", _cnn(layers.GlobalAveragePooling2D, convs=(16,)),
     "your model has 1 Conv2D layer(s), expected at least 2"),
    ("02_2", _cnn(layers.GlobalAveragePooling2D, convs=(64, 64, 64)), "parameters, expected at most 25,000"),
    ("02_2", _logits_cnn, "expected probabilities that sum to 1 (a softmax output)"),
    ("03_1", lambda model: keras.losses.SparseCategoricalCrossentropy(),
     "last layer is Dense(10) with no activation (it outputs logits, raw scores), your loss has "
     "from_logits=False"),
    ("03_1", lambda model: keras.losses.SparseCategoricalCrossentropy(
        from_logits=model.layers[-1].get_config().get("activation") != "softmax"),
     "ends with Dense(4) then layers.Softmax() (it outputs probabilities), your loss has from_logits=True"),
    ("03_1", lambda model: keras.losses.CategoricalCrossentropy(), "your loss is CategoricalCrossentropy"),
    ("03_1", lambda model: "sparse_categorical_crossentropy",
     "your function returned str, expected a Keras loss"),
    ("03_2", lambda y, z: _ce(y, z, stable=False), "np.exp overflows for such logits"),
    ("03_2", lambda y, z: _ce(y, z, mean=False), "your result has shape (4,), expected a single number"),
    ("03_2", lambda y, z: _ce(y, z) * len(y), "4 images and 3 classes, your loss is"),
    ("04_1", _ranked_saliency(0), "your map is the saliency of the predicted class (ranked 1st)"),
    ("04_1", _ranked_saliency(2), "your map is the saliency of the class ranked 3rd"),
    ("04_1", _probability_saliency, "your map differentiates the class's probability"),
    ("04_1", lambda m, i: _ranked_saliency(1)(m, i)[np.newaxis],
     "your map has shape (1, 12, 12), expected (12, 12)"),
    ("04_2", lambda m, i, n: _activations(m, i, n, batch_axis=True),
     "for layer 'conv_b' your maps have shape (1, 3, 3, 8), expected (3, 3, 8)"),
    ("04_2", lambda m, i, n: list(_activations(m, i, n).values()),
     "your function returned list, expected a dict"),
    ("04_2", lambda m, i, n: _activations(m, i, n[:1]), "asked for layers ['conv_b', 'pool_a']"),
    ("05_1", _choose_by(lambda runs: np.mean([h["loss"][-1] for h in runs])),
     "it has the lowest training loss"),
    ("05_1", _choose_by(lambda runs: np.mean([h["val_accuracy"][-1] for h in runs]), max),
     "it has the highest validation accuracy"),
    ("05_1", _choose_by(lambda runs: runs[0]["val_loss"][-1]), "it is the best on the first seed only"),
    ("05_1", _choose_by(lambda runs: min(min(h["val_loss"]) for h in runs)),
     "it has the lowest validation loss of any epoch"),
    ("05_2", lambda v, p: _stopping(v, p, improves=lambda loss, best: loss <= best),
     "for validation losses [0.5, 0.5, 0.5, 0.4, 0.3] and patience 2, you stop after epoch 5, "
     "expected after 3"),
    ("05_2", lambda v, p: _stopping(v, p, wait_limit=lambda w, p: w > p),
     "you stop after epoch 7, expected after 6"),
    ("05_2", lambda v, p: _stopping(v, p, restore_last=True),
     "you restore the weights of epoch 6, expected those of"),
    ("05_2", lambda v, p: _stopping(v, p)[0], "your function returned 6, expected two epoch numbers"),
]


@pytest.mark.parametrize("exercise, answer, message", WRONG,
                         ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(WRONG)])
def test_a_wrong_answer_is_told_what_is_wrong(exercise, answer, message, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GRADES", str(tmp_path / "grades.jsonl"))
    with pytest.raises(checks.ExerciseFailed) as failure:
        getattr(checks, f"exercise_{exercise}")(answer)
    assert message in str(failure.value)
    assert str(failure.value).startswith(f"Exercise {exercise.replace('_', '.')}: ")
    record = json.loads((tmp_path / "grades.jsonl").read_text(encoding="utf-8"))
    expected = {"exercise": exercise.replace("_", "."), "passed": False, "message": str(failure.value)[15:]}
    assert record == expected


@pytest.mark.parametrize("exercise", sorted({exercise for exercise, _, _ in WRONG}))
def test_a_stub_passes_through_as_not_attempted(exercise, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GRADES", str(tmp_path / "grades.jsonl"))

    def stub(*args):
        raise NotImplementedError("write your solution")

    with pytest.raises(NotImplementedError):
        getattr(checks, f"exercise_{exercise}")(stub)
    assert json.loads((tmp_path / "grades.jsonl").read_text(encoding="utf-8"))["message"] == "not attempted"


def test_an_unknown_exercise_is_named():
    with pytest.raises(AttributeError, match="no checks for lesson 98"):
        checks.exercise_98_1  # noqa: B018


@pytest.mark.parametrize("val_losses, patience", lesson05.STOPPING_CASES)
def test_the_stopping_reference_is_what_keras_early_stopping_does(val_losses, patience):
    model = keras.Sequential([keras.Input(shape=(1,)), layers.Dense(1)])
    callback = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    callback.set_model(model)
    model.stop_training = False  # as fit() sets it
    callback.on_train_begin()
    for epoch, loss in enumerate(val_losses):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        if model.stop_training:
            break
    assert lesson05.stopping_reference(val_losses, patience) == (epoch + 1, callback.best_epoch + 1)
