"""Tests of utils/visualize.py: activation models, confusion counts, attributions, plots."""

from __future__ import annotations

from utils import models, visualize

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest


@pytest.fixture
def figures(monkeypatch):
    """Collects the figures the plot helpers show, instead of showing them."""
    plt.switch_backend("Agg")
    shown = []

    def keep():
        shown.append(plt.gcf())

    monkeypatch.setattr(plt, "show", keep)
    yield shown
    plt.close("all")


@pytest.fixture(scope="module")
def cnn3():
    keras.utils.set_random_seed(0)
    return models.cnn3((28, 28, 1), 10)


def _image(shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_activation_model_returns_each_named_map(cnn3):
    activations = visualize.activation_model(cnn3, ["conv1", "conv2"])
    maps = activations.predict(_image()[np.newaxis], verbose=0)
    assert {name: value.shape for name, value in maps.items()} == {
        "conv1": (1, 26, 26, 32), "conv2": (1, 11, 11, 64)}


def test_keras3_sequential_has_no_model_input(cnn3):
    """Lesson 04 says so: the popular `Model(inputs=model.input, ...)` fails, `model.inputs` works."""
    with pytest.raises((AttributeError, ValueError), match="never been called"):
        keras.Model(inputs=cnn3.input, outputs=cnn3.get_layer("conv1").output)
    assert keras.Model(inputs=cnn3.inputs, outputs=cnn3.get_layer("conv1").output).output.shape[1:] \
        == (26, 26, 32)


def test_activation_model_explains_an_unbuilt_model():
    unbuilt = keras.Sequential([keras.layers.Conv2D(4, 3, name="conv1")], name="unbuilt")
    with pytest.raises(ValueError, match=r"'unbuilt' has never been built.*keras.Input\(shape\)"):
        visualize.activation_model(unbuilt, ["conv1"])
    unbuilt.build((None, 28, 28, 1))
    assert visualize.activation_model(unbuilt, ["conv1"]).output["conv1"].shape[1:] == (26, 26, 4)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = visualize.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 0], num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [2, 0, 1]]


def test_most_confused_pairs_are_ordered_with_their_share():
    matrix = np.array([[8, 2, 0], [0, 10, 0], [3, 0, 7]])
    pairs = visualize.most_confused_pairs(matrix, ["a", "b", "c"], top=5)
    assert pairs == [("c", "a", 3, pytest.approx(0.3)), ("a", "b", 2, pytest.approx(0.2))]
    assert visualize.most_confused_pairs(np.eye(3, dtype=int) * 5, ["a", "b", "c"]) == []


def test_saliency_of_a_linear_model_is_its_weights():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    saliency = visualize.saliency_map(model, _image((4, 4, 1)), class_index=2)
    weights = model.layers[-1].get_weights()[0][:, 2]
    np.testing.assert_allclose(saliency, np.abs(weights).reshape(4, 4), rtol=1e-5)


def test_grad_cam_covers_the_image_in_unit_range(cnn3):
    heat = visualize.grad_cam(cnn3, _image(), class_index=3, layer_name="conv2")
    assert heat.shape == (28, 28)
    assert heat.min() >= 0 and heat.max() <= 1


def test_attributions_need_a_dense_last_layer():
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv1"),
                              keras.layers.GlobalAveragePooling2D(name="gap")])
    with pytest.raises(ValueError, match="last layer of .* must be Dense; it is GlobalAveragePooling2D"):
        visualize.saliency_map(model, _image(), 0)


def test_lesson_04_plots_have_titles_and_class_names(cnn3, figures):
    names = [f"class {i}" for i in range(10)]
    images = np.stack([_image(seed=i) for i in range(6)])
    maps = visualize.activation_model(cnn3, ["conv1"]).predict(images[:1], verbose=0)["conv1"][0]
    visualize.plot_feature_maps(images[0], maps, "conv1", caption="test image 0")
    visualize.plot_filters(cnn3.get_layer("conv1"))
    visualize.plot_confusion_matrix(np.arange(100).reshape(10, 10), names)
    y_true, y_pred = np.array([0, 1, 2, 3, 4, 5]), np.array([0, 2, 2, 0, 0, 5])
    shown = visualize.plot_misclassified(images, y_true, y_pred,
                                         np.array([0.9, 0.6, 0.9, 0.95, 0.7, 0.9]), names)
    assert shown.tolist() == [3, 4, 1]  # the mistakes, most confident first
    visualize.plot_attributions(cnn3, images[:2], y_true[:2], names, layer_name="conv2")
    titles = [figure.get_suptitle() or figure.axes[0].get_title() for figure in figures]
    assert titles[0] == "conv1: 32 feature maps of 26×26 for test image 0"
    assert titles[1].startswith("conv1: 32 learned 3×3 filters")
    assert titles[2] == "Confusion matrix"
    assert titles[3] == "3 most confident mistakes of 3"
    assert titles[4] == "Where the model looks"
    confusion_axes = figures[2].axes[0]
    assert [label.get_text() for label in confusion_axes.get_xticklabels()] == names
    assert confusion_axes.get_xlabel() == "predicted class"


def test_filters_of_a_colour_layer_are_drawn(figures):
    model = models.cnn3((32, 32, 3), 10)
    visualize.plot_filters(model.get_layer("conv1"))
    with pytest.raises(ValueError, match="conv2 sees 32 input channels"):
        visualize.plot_filters(model.get_layer("conv2"))


def test_plot_runs_draws_one_panel_per_run(figures):
    history = {"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.8, 0.9],
               "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.4, 0.6, 0.6]}
    visualize.plot_runs({"one": history, "two": history}, metric="loss")
    axes = figures[0].axes
    assert [ax.get_title() for ax in axes] == ["one", "two"]


def test_plot_runs_draws_every_seed_of_a_variant(figures):
    def history(shift):
        return {"loss": [1.0, 0.5], "val_loss": [1.1 + shift, 0.8], "accuracy": [0.5, 0.7],
                "val_accuracy": [0.4, 0.6]}

    visualize.plot_runs({"three seeds": [history(0), history(0.1), history(0.2)], "one": history(0)})
    first, second = figures[0].axes
    assert first.get_title() == "three seeds (3 seeds)" and second.get_title() == "one"
    dashed = [line for line in first.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 3


def test_a_layers_input_tensors_are_the_objects_its_predecessors_output():
    """A freshly built model's graph: each layer's inputs are the outputs of the layers before it."""
    for model in (models.cnn3((28, 28, 1), 10), models.small_resnet((28, 28, 1), 10, widths=(8, 16, 32))):
        outputs = {id(layer.output) for layer in model.layers} | {id(tensor) for tensor in model.inputs}
        for layer in model.layers:
            inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
            assert all(id(tensor) in outputs for tensor in inputs), layer.name


def test_receptive_fields_of_cnn3(cnn3):
    assert visualize.receptive_fields(cnn3) == [("conv1", 26, 3), ("pool1", 13, 4), ("conv2", 11, 8),
                                                ("pool2", 5, 10), ("conv3", 3, 18)]


def test_receptive_fields_of_a_model_loaded_from_a_keras_file(cnn3, tmp_path):
    # lesson 04 takes lesson 03's model from the model cache: a saved and reloaded model
    resnet = models.small_resnet((28, 28, 1), 10, widths=(8, 16, 32))
    for model in (cnn3, resnet):
        model.save(tmp_path / f"{model.name}.keras")
        loaded = keras.models.load_model(tmp_path / f"{model.name}.keras")
        assert visualize.receptive_fields(loaded) == visualize.receptive_fields(model)


def test_unit_centres_of_cnn3(cnn3):
    # valid padding: conv2's unit 0 sees pixels 0-7, so it is centred at 3.5, and unit 10 at 23.5
    assert visualize.unit_centres(cnn3, "conv2").tolist() == [3.5 + 2 * i for i in range(11)]
    assert visualize.unit_centres(cnn3, "conv1").tolist() == [1.0 + i for i in range(26)]
    with pytest.raises(ValueError, match="'dense' is not a conv or pooling layer.*valid choices: conv1"):
        visualize.unit_centres(cnn3, "dense")


def _window_centre(model, layer_name, unit):
    """The midpoint of the input pixels that one unit's value depends on, from its gradient."""
    import tensorflow as tf

    probe = keras.Model(model.inputs, model.get_layer(layer_name).output)
    pixels = tf.ones((1, *model.input_shape[1:]))
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        value = probe(pixels)[0, unit, unit, 0]
    rows = np.flatnonzero(np.abs(tape.gradient(value, pixels).numpy()[0, :, :, 0]).sum(axis=1))
    return (rows[0] + rows[-1]) / 2


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_unit_centres_are_where_each_unit_looks(padding):
    # linear layers of ones: a unit's gradient is non-zero exactly on its receptive field
    ones = {"kernel_initializer": "ones", "use_bias": False}
    model = keras.Sequential([
        keras.Input((61, 61, 1)),
        keras.layers.Conv2D(1, 3, padding=padding, name="a", **ones),
        keras.layers.AveragePooling2D(2, padding=padding, name="b"),
        keras.layers.Conv2D(1, 5, strides=2, padding=padding, name="c", **ones),
        keras.layers.Conv2D(1, 3, dilation_rate=2, padding=padding, name="d", **ones),
    ])
    fields = {name: field for name, _, field in visualize.receptive_fields(model)}
    for name in "abcd":
        centres = visualize.unit_centres(model, name)
        unit = len(centres) // 2
        half = (fields[name] - 1) / 2
        assert 0 <= centres[unit] - half and centres[unit] + half <= 60  # its window lies inside the image
        assert centres[unit] == _window_centre(model, name, unit), (name, centres)


def test_grad_cam_is_placed_by_receptive_field_centres(cnn3):
    image = np.random.default_rng(0).random((28, 28, 1)).astype("float32")
    heat = next(heat for heat in (visualize.grad_cam(cnn3, image, k, "conv2") for k in range(10))
                if heat.max() > 0)  # a class with some positive evidence
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    # beyond the outermost centres (3.5 and 23.5) each row and column holds the edge unit's value
    assert np.allclose(heat[:4], heat[3]) and np.allclose(heat[24:], heat[24])
    assert np.allclose(heat[:, :4], heat[:, 3:4]) and np.allclose(heat[:, 24:], heat[:, 24:25])


def test_rank_correlation():
    ramp = np.arange(16.0).reshape(4, 4)
    assert visualize.rank_correlation(ramp, ramp ** 3) == pytest.approx(1.0)
    assert visualize.rank_correlation(ramp, -ramp) == pytest.approx(-1.0)


def _average_ranks(values):
    """Ranks 1..n, ties sharing the mean of the ranks they span: Spearman's definition."""
    values = np.ravel(values)
    ranks = np.empty(values.size)
    for value in np.unique(values):
        where = np.flatnonzero(values == value)
        first = np.sum(values < value)
        ranks[where] = first + (len(where) + 1) / 2
    return ranks


def test_rank_correlation_gives_tied_pixels_their_average_rank():
    # Two maps that are mostly exactly 0, as a fresh model's saliency and Grad-CAM are
    rng = np.random.default_rng(0)
    a = np.where(rng.random((12, 12)) < 0.7, 0.0, rng.random((12, 12)))
    b = np.where(rng.random((12, 12)) < 0.7, 0.0, rng.random((12, 12)))
    expected = np.corrcoef(_average_ranks(a), _average_ranks(b))[0, 1]
    assert visualize.rank_correlation(a, b) == pytest.approx(expected, abs=1e-12)
    # Ties ranked by position would make the value depend on where the pixels sit
    order = rng.permutation(a.size)
    shuffled = visualize.rank_correlation(a.ravel()[order], b.ravel()[order])
    assert shuffled == pytest.approx(visualize.rank_correlation(a, b), abs=1e-12)
    # Two maps that agree only in being 0 at the same pixels do correlate
    zero = rng.random((12, 12)) < 0.7
    assert visualize.rank_correlation(np.where(zero, 0, rng.random((12, 12))),
                                      np.where(zero, 0, rng.random((12, 12)))) > 0.5


@pytest.mark.parametrize("a, b", [
    (np.zeros((4, 4)), np.arange(16.0).reshape(4, 4)),  # a constant map: no ranking
    (np.arange(16.0).reshape(4, 4), np.full((4, 4), 3.0)),
    (np.where(np.eye(4) > 0, np.nan, 1.0) * np.arange(16.0).reshape(4, 4), np.arange(16.0).reshape(4, 4)),
], ids=["constant first", "constant second", "NaN"])
def test_rank_correlation_is_nan_where_it_is_undefined(a, b):
    assert np.isnan(visualize.rank_correlation(a, b))


def test_rank_correlation_rejects_maps_of_different_sizes():
    with pytest.raises(ValueError, match="different sizes: 16 and 9"):
        visualize.rank_correlation(np.zeros((4, 4)), np.zeros((3, 3)))


def test_attributions_work_on_a_saved_and_loaded_model(cnn3, tmp_path):
    """On a loaded model, a keras.Model over inner outputs gave no gradient; the eager pass does."""
    cnn3.save(tmp_path / "cnn3.keras")
    loaded = keras.models.load_model(tmp_path / "cnn3.keras")
    image = _image()
    np.testing.assert_allclose(visualize.grad_cam(loaded, image, 1, "conv2"),
                               visualize.grad_cam(cnn3, image, 1, "conv2"), atol=1e-5)
    _, logits = visualize.forward_to_logits(loaded, image[np.newaxis])
    np.testing.assert_allclose(keras.ops.softmax(logits).numpy(),
                               loaded.predict(image[np.newaxis], verbose=0), atol=1e-5)


def test_grad_cam_names_an_unknown_layer(cnn3):
    with pytest.raises(ValueError, match="no layer 'conv9' .* valid choices: conv1, pool1, conv2"):
        visualize.grad_cam(cnn3, _image(), 0, "conv9")


def test_calibration_bins_put_a_confidence_on_an_edge_into_the_lower_bin():
    rows, _ = visualize.calibration_bins([0.9, 0.3, 1.0, 0.0, 0.95], [1, 0, 1, 0, 0])
    assert [(round(low, 1), round(high, 1), count) for low, high, count, _, _ in rows] == [
        (0.0, 0.1, 1), (0.2, 0.3, 1), (0.8, 0.9, 1), (0.9, 1.0, 2)]
    assert rows[-1][3:] == pytest.approx((0.975, 0.5))


def test_calibration_error_is_zero_when_confidence_is_accuracy():
    confidence = np.repeat([0.25, 0.75], 4)
    correct = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    rows, error = visualize.calibration_bins(confidence, correct, bins=4)
    assert error == pytest.approx(0.0)
    assert [row[2] for row in rows] == [4, 4]  # empty bins are left out


def test_calibration_error_is_the_count_weighted_gap():
    confidence = [0.95] * 3 + [0.55]  # constant within each bin
    correct = [True, False, False, True]
    rows, error = visualize.calibration_bins(confidence, correct)
    assert error == pytest.approx((3 * abs(1 / 3 - 0.95) + abs(1 - 0.55)) / 4)
    constant_rows, constant_error = visualize.calibration_bins([0.8] * 5, [1] * 5)
    assert len(constant_rows) == 1 and constant_error == pytest.approx(0.2)


@pytest.mark.parametrize("confidence, correct, message", [
    ([0.5, np.nan], [1, 0], "confidences must lie in \\[0, 1\\]; got nan"),
    ([0.5, 1.2], [1, 0], "got 1.2"),
    ([0.5], [1, 0], "1 confidences but 2"),
    ([], [], "no predictions"),
    ([0.5, 0.6], [2, 0], "True/False"),
])
def test_calibration_bins_name_bad_input(confidence, correct, message):
    with pytest.raises(ValueError, match=message):
        visualize.calibration_bins(confidence, correct)
