"""The lessons' own code and its `utils` copies are the same code, and each "Introduced in lesson
NN" in a docstring is true.

Each lesson shows the code of its topic (a model listing, a `compile`, a `GradientTape`, a
callback). Later lessons call a copy in `utils`; these tests take the statement or function out
of the stored notebook and compare it with the copy.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

from utils import data, detection, models, plots, recipe, regularize, scenes, training, transfer, visualize

import keras
import nbformat
import numpy as np
import pytest
from keras import layers

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SHAPES = [(28, 28, 1), (32, 32, 3)]


def code_cells(lesson: str) -> list[str]:
    path = next(NOTEBOOKS.glob(f"{lesson}_*.ipynb"))
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def lesson_node(lesson: str, kind: type, name: str) -> ast.AST:
    """The one top-level statement of a lesson that assigns, calls or defines ``name``."""
    found = []
    for source in code_cells(lesson):
        for node in ast.parse(source).body:
            if kind is ast.FunctionDef and isinstance(node, ast.FunctionDef) and node.name == name:
                found.append(node)
            elif kind is ast.Assign and isinstance(node, ast.Assign) and \
                    any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                found.append(node)
            elif kind is ast.Expr and isinstance(node, ast.Expr) and ast.unparse(node).startswith(name):
                found.append(node)
    assert len(found) == 1, f"lesson {lesson}: expected one {kind.__name__} of {name!r}, found {len(found)}"
    return found[0]


def run_statement(node: ast.AST, **namespace) -> dict:
    namespace = {"keras": keras, "layers": layers, "np": np, **namespace}
    exec(compile(ast.Module(body=[node], type_ignores=[]), "<lesson>", "exec"), namespace)
    return namespace


def architecture(model: keras.Model) -> list:
    """The model's layers and their configurations, without Keras's generated input-layer name."""
    config = model.get_config()
    return [config["name"]] + [
        (layer["class_name"], {k: v for k, v in layer["config"].items()
                               if not (layer["class_name"] == "InputLayer" and k == "name")})
        for layer in config["layers"]]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variable, builder", [
    ("cnn3", models.cnn3), ("cnn2", models.cnn2), ("dense", models.dense_only)])
def test_lesson_02_listings_are_the_models_of_utils(variable, builder, shape):
    spec = SimpleNamespace(input_shape=shape, num_classes=10)
    listed = run_statement(lesson_node("02", ast.Assign, variable), spec=spec)[variable]
    assert architecture(listed) == architecture(builder(shape, 10))


def test_a_changed_listing_is_caught():
    spec = SimpleNamespace(input_shape=(28, 28, 1), num_classes=10)
    node = lesson_node("02", ast.Assign, "cnn3")
    changed = ast.parse(ast.unparse(node).replace("Dense(64,", "Dense(65,")).body[0]
    listed = run_statement(changed, spec=spec)["cnn3"]
    assert architecture(listed) != architecture(models.cnn3((28, 28, 1), 10))


def test_lesson_03_compile_is_training_compile_model():
    splits = SimpleNamespace(x_train=np.zeros((1000, 1)))
    lesson = models.cnn3((28, 28, 1), 10)
    run_statement(lesson_node("03", ast.Expr, "model.compile("), model=lesson, training=training,
                  splits=splits, epochs=3, batch_size=64)
    copy = training.compile_model(models.cnn3((28, 28, 1), 10), learning_rate=2e-3,
                                  decay_steps=training.total_steps(splits, 3, 64))
    configs = [model.get_compile_config() for model in (lesson, copy)]
    for config in configs:
        config["optimizer"]["config"].pop("name")  # Keras numbers optimizers: adam, adam_1, …
    assert configs[0] == configs[1]
    assert configs[0]["optimizer"]["config"]["learning_rate"]["class_name"] == "CosineDecay"


def function_source(node: ast.FunctionDef) -> str:
    """A function without its docstring, with ``visualize.`` references made local."""
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) and \
        isinstance(node.body[0].value, ast.Constant) else node.body
    bare = copy.deepcopy(node)
    bare.body = body
    return ast.unparse(bare).replace("visualize.", "")


@pytest.mark.parametrize("name", ["saliency_map", "grad_cam_units", "grad_cam"])
def test_lesson_04_attributions_are_the_functions_of_utils(name):
    in_lesson = function_source(lesson_node("04", ast.FunctionDef, name))
    in_utils = function_source(ast.parse(inspect.getsource(getattr(visualize, name))).body[0])
    assert in_lesson == in_utils, f"lesson 04's {name} and visualize.{name} differ"


def test_lesson_05_listing_is_regularized_cnn():
    for shape in SHAPES:
        listed = run_statement(lesson_node("05", ast.Assign, "cnn3_bn_dropout"), shape=shape,
                               classes=10)["cnn3_bn_dropout"]
        copy = regularize.regularized_cnn(shape, 10, batch_norm=True, dropout=0.3)
        assert architecture(listed) == architecture(copy)


def test_lesson_05_callback_is_regularize_early_stopping():
    listed = run_statement(lesson_node("05", ast.Assign, "early_stopping"))["early_stopping"]
    copy = regularize.early_stopping(patience=listed.patience)
    facts = ("monitor", "mode", "patience", "min_delta", "baseline", "restore_best_weights",
             "start_from_epoch", "verbose")
    assert {f: getattr(listed, f) for f in facts} == {f: getattr(copy, f) for f in facts}


@pytest.mark.parametrize("name", ["box_iou", "non_max_suppression", "average_precision", "class_ious"])
def test_lesson_08_measures_are_the_functions_of_utils(name):
    in_lesson = function_source(lesson_node("08", ast.FunctionDef, name))
    in_utils = function_source(ast.parse(inspect.getsource(getattr(detection, name))).body[0])
    assert in_lesson == in_utils, f"lesson 08's {name} and detection.{name} differ"


@pytest.mark.parametrize("dataset", data.dataset_names())
@pytest.mark.parametrize("builder", ["localiser", "detector", "unet"])
def test_lesson_08_models_count_by_formula_on_every_dataset(builder, dataset):
    spec = data.get_spec(dataset)
    canvas = scenes.canvas_size(spec.input_shape[0])
    namespace = run_statement(lesson_node("08", ast.FunctionDef, "conv_block"))
    namespace = run_statement(lesson_node("08", ast.FunctionDef, builder), **namespace)
    model = namespace[builder]((canvas, canvas, spec.input_shape[2]), spec.num_classes)
    rows = models.layer_counts(model)
    assert all(row.agrees for row in rows), [row for row in rows if not row.agrees]
    assert sum(row.by_formula for row in rows) == model.count_params()
    assert "MISMATCH" not in models.count_table(model)


def test_lesson_06_residual_block_is_models_residual_block():
    in_lesson = function_source(lesson_node("06", ast.FunctionDef, "residual_block"))
    in_utils = function_source(ast.parse(inspect.getsource(models.residual_block)).body[0])
    assert in_lesson == in_utils, "lesson 06's residual_block and models.residual_block differ"


def test_lesson_06_quotes_lesson_03s_recorded_validation_accuracy():
    from utils import course

    quoted = run_statement(lesson_node("06", ast.Assign, "LESSON_03_VAL_ACCURACY"))["LESSON_03_VAL_ACCURACY"]
    recorded = course.read_results(nbformat.read(next(NOTEBOOKS.glob("03_*.ipynb")), as_version=4))
    assert quoted == recorded["val_accuracy"], (quoted, recorded)


def test_lesson_09_network_is_recipe_fast_cnn():
    in_lesson = function_source(lesson_node("09", ast.FunctionDef, "fast_cnn"))
    in_utils = function_source(ast.parse(inspect.getsource(recipe.fast_cnn)).body[0])
    assert in_lesson == in_utils, "lesson 09's fast_cnn and recipe.fast_cnn differ"


def test_lesson_09_flips_are_the_recipes():
    random_flips = run_statement(lesson_node("09", ast.FunctionDef, "random_flips"))["random_flips"]
    images = np.random.default_rng(0).random((64, 6, 5, 3)).astype("float32")
    for seed in range(3):
        ours = random_flips(images, np.random.default_rng(seed))
        theirs = recipe.flip_and_shift(images, np.random.default_rng(seed), flip=True, shift=0)
        assert np.array_equal(ours, theirs)
        assert 0 < np.sum(np.any(ours != images, axis=(1, 2, 3))) < len(images)


def test_lesson_09_test_time_flip_is_recipe_predict_tta():
    predict_with_flip = run_statement(lesson_node("09", ast.FunctionDef, "predict_with_flip"))[
        "predict_with_flip"]
    training.set_seed(0)
    model = recipe.fast_cnn((8, 8, 1), 3, widths=(4, 8), convs=(1, 1))
    images = np.random.default_rng(0).random((20, 8, 8, 1)).astype("float32")
    assert np.allclose(predict_with_flip(model, images), recipe.predict_tta(model, images), atol=1e-6)
    assert not np.allclose(predict_with_flip(model, images), recipe.predict_tta(model, images, tta=False))


# "Introduced in lesson NN": lesson NN is the first that calls it (``module.name``), or it is
# the utils copy of lesson NN's own code, checked above.
MODULES = {"data": data, "models": models, "training": training, "plots": plots,
           "visualize": visualize, "regularize": regularize, "detection": detection, "scenes": scenes,
           "transfer": transfer, "recipe": recipe}
COPIES = {"models.dense_only": "02", "visualize.saliency_map": "04", "visualize.grad_cam": "04",
          "visualize.grad_cam_units": "04",
          "regularize.early_stopping": "05", "training.compile_model": "03",
          "detection.box_iou": "08", "detection.non_max_suppression": "08",
          "detection.average_precision": "08", "detection.class_ious": "08",
          "models.residual_block": "06", "recipe.fast_cnn": "09", "recipe.predict_tta": "09"}
METHODS = {"data.Splits.describe": r"\.describe\("}


def claims() -> list[tuple[str, str]]:
    found = []
    for module_name, module in MODULES.items():
        for name, member in inspect.getmembers(module, lambda m: inspect.isfunction(m) or inspect.isclass(m)):
            if getattr(member, "__module__", None) != module.__name__:
                continue
            objects = [(f"{module_name}.{name}", member)]
            if inspect.isclass(member):
                objects += [(f"{module_name}.{name}.{m}", f) for m, f in vars(member).items() if callable(f)]
            for qualified, obj in objects:
                match = re.search(r"Introduced in lesson (\d\d)", inspect.getdoc(obj) or "")
                if match:
                    found.append((qualified, match[1]))
    return found


def test_there_are_claims():
    assert len(claims()) > 20


@pytest.mark.parametrize("qualified, lesson", claims(), ids=[name for name, _ in claims()])
def test_introduced_in_lesson_is_true(qualified, lesson):
    pattern = METHODS.get(qualified, r"\b" + re.escape(qualified) + r"\b")
    lessons = sorted(nb.name[:2] for nb in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                     if any(re.search(pattern, source) for source in code_cells(nb.name[:2])))
    first = min(lessons + ([COPIES[qualified]] if qualified in COPIES else []), default=None)
    assert first == lesson, f"{qualified} says it is introduced in lesson {lesson}; first used in {first}"
