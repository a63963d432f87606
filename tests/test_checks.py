"""The exercise checks (utils/checks): each one rejects plausible wrong answers with a message
that says what is wrong, in grading mode (visible and hidden cases), and lets a stub's
NotImplementedError through. The lessons' own solutions passing is proven in test_exercises.py;
lessons 06 to 08 have their own files.
"""

from __future__ import annotations

import re
from pathlib import Path

from utils import checks, visualize
from utils.checks import lesson04, lesson05
from utils.tools import exercises, grading

import keras
import numpy as np
import pytest
from keras import layers

REPO = Path(__file__).resolve().parents[1]

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


def _depthwise(image, kernel, bias, mistake=None):
    k, channels = kernel.shape[0], image.shape[-1]
    if mistake == "same":
        image = np.pad(image, [(k // 2, (k - 1) // 2), (k // 2, (k - 1) // 2), (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(image, (k, k), axis=(0, 1))  # (h', w', c, k, k)
    weights = kernel[:, :, :, 0]
    if mistake == "flipped":
        weights = weights[::-1, ::-1]
    elif mistake == "first kernel":
        weights = np.repeat(weights[:, :, :1], channels, axis=2)
    per_channel = np.einsum("hwcij,ijc->hwc", windows, weights)
    return {"no bias": per_channel, "relu": np.maximum(per_channel + bias, 0),
            "summed": per_channel.sum(axis=-1, keepdims=True) + bias}.get(mistake, per_channel + bias)


# Lesson 02 -------------------------------------------------------------------------------------

def _count(input_shape, num_classes, bias=1, same=True, ceil=False, second_same=False):
    height, width, channels = input_shape
    pool = (lambda n: -(-n // 2)) if ceil else (lambda n: n // 2)
    conv1 = (25 * channels + bias) * 16
    height, width = pool(height if same else height - 4), pool(width if same else width - 4)
    conv2 = (9 * 16 + bias) * 32
    loss = 0 if second_same else 2
    height, width = pool(height - loss), pool(width - loss)
    return conv1 + conv2 + (height * width * 32 + bias) * 64 + (64 + bias) * num_classes


def _all_conv(convs=(16, 32, 64), kernel=3, head="conv", score_activation=None, flatten=False,
              softmax=True, dense=False):
    """The lesson's all-convolutional net, or a plausible mistake in it."""
    def build(input_shape, num_classes):
        stack = [keras.Input(shape=input_shape)]
        for filters in convs:
            stack += [layers.Conv2D(filters, kernel, activation="relu"), layers.MaxPooling2D(2)]
        stack = stack[:-1]
        if head == "conv":
            stack.append(layers.Conv2D(num_classes, 1, activation=score_activation))
        stack.append(layers.Flatten() if flatten else layers.GlobalAveragePooling2D())
        if dense:
            stack.append(layers.Dense(num_classes))
        if softmax:
            stack.append(layers.Softmax())
        return keras.Sequential(stack)
    return build


def _head_mistake(*head):
    """The lesson's net with ``head`` (fresh layers, from a function) after its class-score convolution."""
    def build(input_shape, num_classes):
        return keras.Sequential([keras.Input(shape=input_shape), layers.Conv2D(16, 3, activation="relu"),
                                 layers.MaxPooling2D(2), layers.Conv2D(32, 3, activation="relu"),
                                 layers.Conv2D(num_classes, 1), *(make() for make in head)])
    return build


def _linear_all_conv(input_shape, num_classes):
    """Convolutions with no activation: one linear map."""
    return keras.Sequential([keras.Input(shape=input_shape), layers.Conv2D(16, 3), layers.MaxPooling2D(2),
                             layers.Conv2D(32, 3), layers.Conv2D(num_classes, 1),
                             layers.GlobalAveragePooling2D(), layers.Softmax()])


# Lesson 03 -------------------------------------------------------------------------------------

def _ce(labels, logits, stable=True, mean=True):
    shifted = logits - logits.max(axis=1, keepdims=True) if stable else logits
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -log_p[np.arange(len(labels)), labels]
    return losses.mean() if mean else losses


def _ce_over_batch(labels, logits):
    """The softmax taken over the batch (axis 0), the wrong axis."""
    shifted = logits - logits.max(axis=0, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


# Lesson 04 -------------------------------------------------------------------------------------

def _occlusion(**mistake):
    """An occlusion map as the check computes it, with one plausible mistake."""
    def answer(model, image, class_index, patch, stride, fill):
        return lesson04.occlusion_reference(model, image, class_index, patch, stride, fill, **mistake)
    return answer


def _occlusion_ceil(model, image, class_index, patch, stride, fill):
    count = tuple(-(-(size - patch) // stride) + 1 for size in image.shape[:2])  # rounded up
    return lesson04.occlusion_reference(model, image, class_index, patch, stride, fill, count=count)


def _occlusion_of_predicted(model, image, class_index, patch, stride, fill):
    predicted = int(np.argmax(np.asarray(model(image[np.newaxis]))[0]))
    return lesson04.occlusion_reference(model, image, predicted, patch, stride, fill)


def _fields_of(model, field=1, jump_first=False, skip_pools=False, pool_stride_is_window=False,
               jumps=True, axes=(0, 1)):
    """(height, width) receptive fields by the recurrence; the flags make plausible mistakes."""
    fields = {}
    for axis in axes:
        jump, grown = 1, field
        for layer in model.layers:
            kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
            if kernel is None:
                continue
            is_pool = not hasattr(layer, "kernel_size")
            if not (is_pool and skip_pools):
                stride = kernel[axis] if (is_pool and pool_stride_is_window) else layer.strides[axis]
                if jump_first:
                    jump *= stride
                grown += (kernel[axis] - 1) * (jump if jumps else 1)
                jump = jump if jump_first else jump * stride
            fields[layer.name] = fields.get(layer.name, ()) + (grown,)
    return fields


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
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "no bias"), "(that is without the bias"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "relu"), "(that has a ReLU"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "flipped"), "(the kernel is flipped"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "first kernel"), "(every channel used channel 0's kernel"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b)[..., :1],
     "a 5×6×2 image and a 3×3 kernel per channel: your output has shape (3, 4, 1), expected (3, 4, 2)"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "no bias").sum(axis=-1, keepdims=True),
     "(one channel: that sums over the channels, as Conv2D does"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "summed"), "(that sums over the channels, as Conv2D does"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b, "same"),
     "your output has shape (5, 6, 2), expected (3, 4, 2)"),
    ("01_2", lambda i, k, b: _depthwise(i, k, b).tolist(), "your function returned list, expected a NumPy"),
    ("02_1", lambda shape, n: _count(shape, n, bias=0), "that is the number of weights without the biases"),
    ("02_1", lambda shape, n: _count(shape, n, same=False),
     "your count is 56,970, expected 79,498 (22,528 too few): Conv2D(16, 5, padding='same') keeps"),
    ("02_1", lambda shape, n: _count(shape, n, ceil=True),
     "MaxPooling2D(2) drops a last row or column that does not fill a window; round down"),
    ("02_1", lambda shape, n: _count(shape, n, second_same=True), "a 3×3 kernel loses 2 pixels per axis"),
    ("02_1", lambda shape, n: float(_count(shape, n)), "returned 79498.0, expected a whole number"),
    ("02_2", _all_conv(head="dense", dense=True), "your model has a Dense layer; expected none"),
    ("02_2", _all_conv(flatten=True, head="conv", convs=(8, 8)), "your model flattens its feature maps"),
    ("02_2", _all_conv(score_activation="relu"), "has activation 'relu': class scores before the softmax"),
    ("02_2", _all_conv(score_activation="softmax", softmax=False),
     "applies the softmax at every pixel before the averaging"),
    ("02_2", _all_conv(softmax=False), "expected probabilities that sum to 1 (a softmax after the pooling)"),
    ("02_2", _all_conv(kernel=1), "0 Conv2D layer(s) with a kernel larger than 1×1, expected at least 2"),
    ("02_2", _all_conv(convs=(32, 64, 128)), "parameters, expected at most 25,000"),
    ("02_2", _linear_all_conv, "your Conv2D layer 'conv2d"),
    ("02_2", _head_mistake(lambda: layers.Activation("softmax"), layers.GlobalAveragePooling2D),
     "applies softmax to the class scores before the pooling"),
    ("02_2", _head_mistake(layers.ReLU, layers.GlobalAveragePooling2D, layers.Softmax),
     "applies relu to the class scores before the pooling"),
    ("02_2", _head_mistake(layers.GlobalAveragePooling2D, layers.ReLU, layers.Softmax),
     "applies relu to the averaged class scores"),
    ("02_2", _head_mistake(layers.GlobalAveragePooling2D, lambda: layers.Activation("tanh"), layers.Softmax),
     "applies tanh to the averaged class scores"),
    ("03_1", lambda model: keras.losses.SparseCategoricalCrossentropy(),
     "last layer is Dense(10) with no activation (it outputs logits, raw scores), your loss has "
     "from_logits=False"),
    ("03_1", lambda model: keras.losses.SparseCategoricalCrossentropy(
        from_logits=model.layers[-1].get_config().get("activation") != "softmax"),
     "ends with Dense(4) then layers.Softmax() (it outputs probabilities), your loss has from_logits=True"),
    ("03_1", lambda model: keras.losses.CategoricalCrossentropy(), "your loss is CategoricalCrossentropy"),
    ("03_1", lambda model: "sparse_categorical_crossentropy",
     "your function returned str, expected a Keras loss"),
    ("03_1", lambda model: keras.losses.SparseCategoricalCrossentropy(
        from_logits="softmax" not in model.name),
     "(it outputs probabilities), your loss has from_logits=True"),
    ("03_2", lambda y, z: _ce(y, z, stable=False), "np.exp overflows for such logits"),
    ("03_2", lambda y, z: _ce(y, z, mean=False), "your result has shape (4,), expected a single number"),
    ("03_2", lambda y, z: _ce(y, z) * len(y), "that is the sum over the batch; take the mean"),
    ("03_2", _ce_over_batch, "the softmax runs over each image's logits (axis=1), not over the batch"),
    ("04_1", _occlusion(subtract=False), "(that is the probability on the covered image; subtract it"),
    ("04_1", _occlusion(sign=-1), "(that is the covered probability minus the original one"),
    ("04_1", _occlusion(channels=0), "(only the first channel is covered; fill the patch in every channel)"),
    ("04_1", _occlusion(covered_fill=0.0), "(your patch is filled with 0, expected fill=0.5)"),
    ("04_1", _occlusion_of_predicted, "(that is the map of the class the model predicts; use class_index)"),
    ("04_1", _occlusion_ceil, "your map has shape (4, 4), expected (4, 3), one value per position"),
    ("04_1", lambda m, i, k, p, s, f: _occlusion()(m, i, k, p, s, f).T, "(rows and columns are swapped"),
    ("04_2", lambda m: _fields_of(m, jumps=False), "yours adds k - 1"),
    ("04_2", lambda m: _fields_of(m, jump_first=True), "add (k - 1)·j first, then multiply the jump"),
    ("04_2", lambda m: _fields_of(m, field=0), "the input's field is 1 pixel, not 0"),
    ("04_2", lambda m: _fields_of(m, skip_pools=True), "pooling layers are windows too"),
    ("04_2", lambda m: _fields_of(m, pool_stride_is_window=True), "need not equal its pool_size"),
    ("04_2", lambda m: _fields_of(m, axes=(1, 0)), "your pairs are (width, height)"),
    ("04_2", lambda m: _fields_of(m, axes=(0, 0)), "your widths are the heights"),
    ("04_2", lambda m: {name: h for name, (h, _) in _fields_of(m).items()},
     "a field is a pair (height, width), not one number"),
    ("04_2", lambda m: {name: field for name, _, field in visualize.receptive_fields(m)},
     "a field is a pair (height, width), not one number"),
    ("04_2", lambda m: {k: v for k, v in _fields_of(m).items() if k.startswith("conv")},
     "expected the conv and pooling layers"),
    ("04_2", lambda m: list(_fields_of(m).values()), "your function returned list, expected a dict"),
    ("05_1", _choose_by(lambda runs: np.mean([min(h["val_loss"]) for h in runs])),
     "it has the lowest mean val_loss, which includes the penalty"),
    ("05_1", _choose_by(lambda runs: np.mean([h["val_cross_entropy"][-1] for h in runs])),
     "it is the lowest at the last epoch"),
    ("05_1", _choose_by(lambda runs: sum(min(h["val_cross_entropy"]) for h in runs)),
     "it has the lowest sum over its seeds"),
    ("05_1", _choose_by(lambda runs: np.median([min(h["val_cross_entropy"]) for h in runs])),
     "it has the lowest median over the seeds"),
    ("05_1", _choose_by(lambda runs: min(min(h["val_cross_entropy"]) for h in runs)),
     "it has the best single seed"),
    ("05_1", _choose_by(lambda runs: min(runs[0]["val_cross_entropy"])),
     "it is the best on the first seed only"),
    ("05_1", _choose_by(lambda runs: min(runs[-1]["val_cross_entropy"])),
     "it is the best on the last seed only"),
    ("05_1", _choose_by(lambda runs: np.mean([h["cross_entropy"][-1] for h in runs])),
     "it has the lowest training loss"),
    ("05_1", _choose_by(lambda runs: np.mean([max(h["val_accuracy"]) for h in runs]), max),
     "it has the highest validation accuracy"),
    ("05_1", lambda sweep: str(next(iter(sweep))), "expected one of the strengths"),
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
def test_a_wrong_answer_is_told_what_is_wrong(exercise, answer, message):
    with pytest.raises(checks.ExerciseFailed) as failure:
        getattr(checks, f"exercise_{exercise}")(answer, hidden=True)  # as grading runs it
    assert message in str(failure.value)
    assert str(failure.value).startswith(f"Exercise {exercise.replace('_', '.')}: ")


def test_every_exercise_has_three_wrong_answers():
    """Every exercise of every lesson: this file's table for 01–05, each later lesson's own module."""
    import importlib

    counts = {exercise: sum(e == exercise for e, _, _ in WRONG) for exercise, _, _ in WRONG}
    for path in sorted((REPO / "tests").glob("test_checks_lesson*.py")):
        module = importlib.import_module(path.stem)
        counts |= {name[6:]: len(value) for name, value in vars(module).items() if name.startswith("WRONG_")}
    every = sorted(e.id.replace(".", "_") for lesson in exercises.lesson_notebooks(REPO)
                   for e in grading.lesson_exercises(lesson))
    assert sorted(counts) == every, "an exercise without a table of wrong answers"
    assert min(counts.values()) >= 3, counts


def _lookup(table):
    """An answer tuned to the visible cases: it returns what they expect and guesses elsewhere."""
    def answer(*args):
        key = repr(args)
        return table[key] if key in table else table[next(iter(table))]
    return answer


# Answers that pass every visible case and fail on hidden ones.
TUNED = [
    ("05_1", _lookup({repr((sweep,)): min(sweep, key=lambda k: np.mean([min(h["val_cross_entropy"])
                                                                          for h in sweep[k]]))
                      for sweep in lesson05.VISIBLE_SWEEPS}), "expected one of the strengths"),
    ("05_2", _lookup({repr((list(v), p)): lesson05.stopping_reference(v, p)
                      for v, p in lesson05.STOPPING_CASES}),
     "for validation losses [0.4, 0.4, 0.4] and patience 1"),
    ("02_1", _count, None),  # the reference formula passes both
    ("02_1", lambda shape, n: _count(shape, n) if shape[0] % 2 == 0 or shape == (21, 35, 5)
     else _count(shape, n, ceil=True), "round down"),
]


@pytest.mark.parametrize("score", [
    lambda runs: min(runs[-1]["val_cross_entropy"]),  # the last seed
    lambda runs: sum(min(h["val_cross_entropy"]) for h in runs),
    lambda runs: np.median([min(h["val_cross_entropy"]) for h in runs]),
], ids=["last seed", "sum", "median"])
def test_exercise_05_1_visible_cases_reject_the_usual_pickers(score):
    with pytest.raises(checks.ExerciseFailed):
        checks.exercise_05_1(_choose_by(score))  # as the learner's notebook runs it


@pytest.mark.parametrize("exercise, answer, message", TUNED,
                         ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(TUNED)])
def test_hidden_cases_fail_an_answer_tuned_to_the_visible_ones(exercise, answer, message, capsys):
    check = getattr(checks, f"exercise_{exercise}")
    check(answer)
    assert "correct" in capsys.readouterr().out
    if message is None:
        check(answer, hidden=True)
        return
    with pytest.raises(checks.ExerciseFailed, match=re.escape(message)):
        check(answer, hidden=True)


@pytest.mark.parametrize("exercise", sorted({exercise for exercise, _, _ in WRONG}))
def test_a_stub_passes_through(exercise):
    def stub(*args):
        raise NotImplementedError("write your solution")

    for hidden in (False, True):
        with pytest.raises(NotImplementedError):
            getattr(checks, f"exercise_{exercise}")(stub, hidden=hidden)


def test_an_unknown_exercise_is_named():
    with pytest.raises(AttributeError, match="no checks for lesson 98"):
        checks.exercise_98_1  # noqa: B018


@pytest.mark.parametrize("val_losses, patience", lesson05.STOPPING_CASES + lesson05.HIDDEN_STOPPING_CASES)
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
