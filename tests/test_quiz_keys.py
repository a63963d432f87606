"""Quiz answers that are numbers are computed here, from `utils` and Keras, and compared with the key.

A lesson page's quiz marks its answer with ``**Answer: X.**``; the option X must state the
number that the course's own code computes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from utils import data, detection, models, recipe, regularize, training, visualize
from utils.tools import lessons

import keras
import numpy as np
import pytest
from keras import layers

REPO = Path(__file__).resolve().parents[1]


def answer_option(lesson: int, question: int) -> str:
    """The text of the option that the page's answer line names."""
    page = next(page for page in lessons.load_lessons(REPO) if int(page["number"]) == lesson)
    quiz = page["body"][page["body"].index("## Quiz"):]
    block = re.split(r"(?m)^### ", quiz)[question]
    letter = re.search(lessons.ANSWER, block)[1]
    return re.search(rf"(?m)^- {letter}\. (.*)$", block)[1]


def built(*stack) -> keras.Sequential:
    return keras.Sequential([keras.Input(stack[0]), *stack[1:]])


def conv2d_at_one_position() -> int:
    kernel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype="float32")
    patch = np.zeros((1, 3, 3, 1), dtype="float32")
    patch[0, :, 2, 0] = 1  # left and middle columns 0, right column 1
    layer = layers.Conv2D(1, 3, use_bias=False)
    layer.build((None, 3, 3, 1))
    layer.set_weights([kernel.reshape(3, 3, 1, 1)])
    return round(float(layer(patch)[0, 0, 0, 0]))


def max_pooled() -> str:
    grid = np.array([[1, 3, 2, 0], [4, 2, 1, 1], [0, 1, 5, 6], [2, 2, 7, 1]], dtype="float32")
    pooled = layers.MaxPooling2D(2)(grid[np.newaxis, :, :, np.newaxis])[0, :, :, 0].numpy().astype(int)
    return str(pooled.tolist()).replace(" ", "").replace(",", ", ")


def cnn3_without_conv3() -> int:
    return built((28, 28, 1), layers.Conv2D(32, 3), layers.MaxPooling2D(2), layers.Conv2D(64, 3),
                 layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(64), layers.Dense(10)).count_params()


def steps_per_epoch() -> int:
    train, _, _ = data.split_sizes(data.get_spec("fashion_mnist"))
    return training.total_steps(type("Splits", (), {"x_train": range(train)})(), 1, 64)


def conv1_and_batch_norm() -> str:
    model = regularize.regularized_cnn((28, 28, 1), 10, batch_norm=True)
    weights = [w for name in ("conv1", "bn1") for w in model.get_layer(name).weights]
    total = sum(math.prod(w.shape) for w in weights)
    trainable = sum(math.prod(w.shape) for name in ("conv1", "bn1")
                    for w in model.get_layer(name).trainable_weights)
    return f"{total}, of which {trainable} are trainable"


def mean_iou_of_all_background() -> str:
    true = np.zeros(1000, dtype=int)
    true[:150] = np.arange(150) % 10 + 1  # 15% of the pixels: items of 10 classes
    ious = detection.class_ious(true, np.zeros_like(true), 11)
    return f"{np.mean(true == 0):.2f} and {np.nanmean(ious):.2f}"


def conv2_maps_of_cnn3() -> str:
    shape = models.cnn3((28, 28, 1), 10).get_layer("conv2").output.shape
    return f"{shape[3]} feature maps of {shape[1]}×{shape[2]}"


def cnn3_gap_dense_on_cifar10() -> int:
    features = models.cnn3((32, 32, 3), 10).get_layer("conv3").output.shape[1:]
    head = built(tuple(features), layers.GlobalAveragePooling2D(), layers.Dense(64, name="dense"))
    return head.get_layer("dense").count_params()


def separable_on_16x16x64() -> int:
    layer = layers.SeparableConv2D(128, 3, padding="same")
    built((16, 16, 64), layer)
    return models.formula_count(layer, (None, 16, 16, 64))[1]


def receptive_field_after_pooling() -> int:
    model = built((28, 28, 1), layers.Conv2D(4, 3), layers.Conv2D(4, 3), layers.MaxPooling2D(2),
                  layers.Conv2D(4, 3))
    return visualize.receptive_fields(model)[-1][2]


def warmup_first_step_and_peak() -> str:
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 100, warmup_target=0.004, warmup_steps=20)
    optimizer = keras.optimizers.Adam(schedule)
    first = float(optimizer.learning_rate)  # the rate of the coming step, at iterations 0
    peak = next(step for step in range(120) if np.isclose(float(schedule(step)), 0.004))
    return f"{first:g}, and step {peak}"


KEYS = [
    # (lesson, question, the answer as the page must write it)
    (1, 1, lambda: str(conv2d_at_one_position())),
    (1, 2, lambda: "{0}×{0}".format(models.conv_output_size(28, 5, stride=2, padding="valid"))),
    (1, 3, max_pooled),
    (2, 1, lambda: f"{models.formula_count(layers.Conv2D(128, 3), (None, 9, 9, 64))[1]:,}"),
    (2, 2, lambda: f"{cnn3_without_conv3():,}"),
    (2, 3, lambda: f"{models.cnn3((32, 32, 3), 10).get_layer('dense').count_params():,}"),
    (2, 4, lambda: str(models.cnn3((56, 56, 1), 10).get_layer("conv1").count_params())),
    (3, 3, lambda: str(steps_per_epoch())),
    (3, 4, lambda: f"About {math.log(10):.2f}"),
    (4, 1, conv2_maps_of_cnn3),
    (4, 5, lambda: f"{visualize.unit_centres(models.cnn3((28, 28, 1), 10), 'conv2')[-1]:g}: its "
                   f"{visualize.receptive_fields(models.cnn3((28, 28, 1), 10))[2][2]}-pixel"),
    (5, 4, conv1_and_batch_norm),
    (6, 1, lambda: f"{cnn3_gap_dense_on_cifar10():,}"),
    (6, 2, lambda: f"{separable_on_16x16x64():,}"),
    (6, 4, lambda: str(receptive_field_after_pooling())),
    (8, 1, lambda: f"{detection.box_iou(np.array([0., 0, 20, 20]), np.array([10., 0, 30, 20])):.2f}"),
    (8, 2, lambda: f"{models.formula_count(layers.Conv2DTranspose(32, 2, 2), (None, 8, 8, 64))[1]:,}"),
    (8, 4, mean_iou_of_all_background),
    (9, 1, warmup_first_step_and_peak),
    (9, 2, lambda: f"{models.layer_macs(recipe.fast_cnn((28, 28, 1), 10).get_layer('conv2_1')):,}"),
]


def test_padding_that_keeps_the_size():
    """Lesson 01, question 4: the rows of zeros that `same` adds for a 3x3 kernel at stride 1."""
    padding = next(p for p in range(4) if (28 + 2 * p - 3) // 1 + 1 == 28)
    assert models.conv_output_size(28, 3, padding="same") == 28
    assert answer_option(1, 4) == str(padding)


@pytest.mark.parametrize("lesson, question, expected", KEYS, ids=[f"lesson{k[0]:02d}-q{k[1]}" for k in KEYS])
def test_numeric_answer_matches_the_courses_code(lesson, question, expected):
    option, value = answer_option(lesson, question), expected()
    assert value in option, (f"lesson {lesson:02d} quiz {question}: the key says {option!r}; "
                             f"the code gives {value}")


def check_yourself_answer(lesson: str, question: int) -> str:
    """The hidden answer of a notebook's "Check yourself" question."""
    notebook = next((REPO / "notebooks").glob(f"{lesson}_*.ipynb"))
    cell = next(c for c in json.loads(notebook.read_text())["cells"]
                if "## Check yourself" in "".join(c["source"]))
    answers = re.findall(r"<summary>Answer</summary>(.*?)</details>", "".join(cell["source"]), re.S)
    return answers[question - 1]


@pytest.mark.parametrize("lesson, question, expected", [
    ("01", 1, lambda: "{0}×{0}".format(models.conv_output_size(32, 5, padding="valid"))),
    ("02", 1, lambda: f"{models.formula_count(layers.Conv2D(16, 5), (None, 32, 32, 3))[1]:,}"),
])
def test_numeric_check_yourself_answer_matches_the_courses_code(lesson, question, expected):
    assert expected() in check_yourself_answer(lesson, question)
