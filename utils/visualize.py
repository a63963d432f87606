"""Looking inside a trained CNN (lesson 04): feature maps, filters, errors, attributions."""

from __future__ import annotations

from utils.plots import as_picture

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from scipy import stats


def activation_model(model: keras.Model, layer_names) -> keras.Model:
    """Lesson 04's activation model: the named layers' outputs as a dict.

    It uses ``model.inputs``, which Keras 3 defines once the model is built (it starts with
    ``keras.Input(shape)``, or ``model.build((None, *shape))`` was called). ``model.input``
    does not work here: a ``Sequential`` model raises an AttributeError for it.
    """
    if not _has_inputs(model):
        raise ValueError(f"model {model.name!r} has never been built, so it has no inputs yet; "
                         "start it with keras.Input(shape) or call model.build((None, *shape))")
    return keras.Model(inputs=model.inputs,
                       outputs={name: model.get_layer(name).output for name in layer_names},
                       name=f"{model.name}_activations")


def _has_inputs(model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def plot_feature_maps(image, maps: np.ndarray, layer_name: str, caption: str = "", columns: int = 8):
    """Every channel of one layer's output for one image, next to the image. Introduced in lesson 04.

    ``maps`` has shape (height, width, channels). Each map has its own colour scale:
    yellow is where that filter responds most strongly, dark purple where it does not.
    """
    maps = np.asarray(maps)
    channels = maps.shape[-1]
    rows = -(-channels // columns)
    fig = plt.figure(figsize=(1.3 * columns + 2.6, 1.3 * rows + 0.9))
    grid = fig.add_gridspec(rows, columns + 2)
    picture, cmap = as_picture(image)
    image_ax = fig.add_subplot(grid[: min(rows, 2), :2])
    image_ax.imshow(picture, cmap=cmap)
    image_ax.set_title("input", fontsize=10)
    image_ax.axis("off")
    for channel in range(channels):
        ax = fig.add_subplot(grid[channel // columns, 2 + channel % columns])
        ax.imshow(maps[..., channel], cmap="viridis")
        ax.text(0.03, 0.97, str(channel), transform=ax.transAxes, fontsize=7, color="white",
                va="top", ha="left")
        ax.axis("off")
    height, width = maps.shape[:2]
    fig.suptitle(f"{layer_name}: {channels} feature maps of {height}×{width}"
                 + (f" for {caption}" if caption else ""))
    fig.tight_layout()
    plt.show()


def plot_filters(layer: keras.layers.Layer, columns: int = 8, title: str | None = None):
    """The learned kernels of a first conv layer, one small image each. Introduced in lesson 04.

    Each kernel is drawn on its own scale, so that weak filters show their pattern too.
    Grey inputs: red weights are positive, blue negative, white zero. Colour inputs:
    each kernel is scaled to [0, 1] and shown as an RGB patch.
    """
    kernels = np.asarray(layer.get_weights()[0])  # (height, width, input channels, filters)
    k_h, k_w, c_in, filters = kernels.shape
    if c_in not in (1, 3):
        raise ValueError(f"{layer.name} sees {c_in} input channels; only a first conv layer "
                         "(1 or 3 input channels) can be drawn as images")
    rows = -(-filters // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.1 * rows + 0.6), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= filters:
            continue
        kernel = kernels[..., index]
        if c_in == 1:
            limit = np.abs(kernel).max() + 1e-12
            ax.imshow(kernel[..., 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            low, high = kernel.min(), kernel.max()
            ax.imshow((kernel - low) / (high - low + 1e-12))
        ax.set_title(str(index), fontsize=8)
    scheme = "red positive, blue negative" if c_in == 1 else "as RGB"
    fig.suptitle(title or f"{layer.name}: {filters} learned {k_h}×{k_w} filters "
                          f"({scheme}, each on its own scale)")
    fig.tight_layout()
    plt.show()


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): rows true, columns predicted. Introduced in lesson 04."""
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def plot_confusion_matrix(matrix: np.ndarray, class_names, title: str = "Confusion matrix"):
    """The matrix with class names and counts, coloured by share of the row. Introduced in lesson 04."""
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = len(class_names)
    fig, ax = plt.subplots(figsize=(0.75 * size + 2.5, 0.75 * size + 1.6))
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for row in range(size):
        for column in range(size):
            ax.text(column, row, f"{matrix[row, column]}", ha="center", va="center", fontsize=8,
                    color="white" if share[row, column] > 0.5 else "black")
    ax.set_xticks(range(size), class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(size), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, shrink=0.8, label="share of the true class")
    fig.tight_layout()
    plt.show()


def most_confused_pairs(matrix: np.ndarray, class_names, top: int = 5) -> list[tuple[str, str, int, float]]:
    """The largest off-diagonal cells: (true, predicted, count, share of true). Introduced in lesson 04."""
    matrix = np.asarray(matrix)
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(-off_diagonal, axis=None, kind="stable")[:top]
    pairs = []
    for flat in order:
        true, predicted = divmod(int(flat), matrix.shape[1])
        if off_diagonal[true, predicted] == 0:
            break
        pairs.append((class_names[true], class_names[predicted], int(matrix[true, predicted]),
                      float(matrix[true, predicted] / max(matrix[true].sum(), 1))))
    return pairs


def plot_misclassified(images, y_true, y_pred, confidence, class_names, count: int = 15,
                       columns: int = 5, title: str | None = None) -> np.ndarray:
    """The most confident mistakes with true and predicted labels. Introduced in lesson 04.

    Returns the indices shown, most confident first.
    """
    y_true, y_pred, confidence = np.asarray(y_true), np.asarray(y_pred), np.asarray(confidence)
    wrong = np.flatnonzero(y_true != y_pred)
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.1 * columns, 2.5 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, shown, strict=False):
        picture, cmap = as_picture(images[index])
        ax.imshow(picture, cmap=cmap)
        ax.set_title(f"true: {class_names[y_true[index]]}\npred: {class_names[y_pred[index]]} "
                     f"({confidence[index]:.0%})", fontsize=8.5)
    fig.suptitle(title or f"{len(shown)} most confident mistakes of {len(wrong)}")
    fig.tight_layout()
    plt.show()
    return shown


def forward_to_logits(model: keras.Model, pixels, layer_name: str | None = None):
    """Run a Sequential model layer by layer up to its class scores, eagerly. Introduced in lesson 04.

    Returns (``layer_name``'s output or None, the class logits). Attributions use the
    class score before the softmax (the logit): after the softmax a confident prediction
    saturates and its gradients vanish. Calling the layers eagerly adds nothing to the
    model's graph, so this works on any built or loaded Sequential model.
    """
    *body, last = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(f"the last layer of {model.name!r} must be Dense; it is {type(last).__name__}")
    if layer_name is not None and layer_name not in [layer.name for layer in body]:
        raise ValueError(f"{model.name!r} has no layer {layer_name!r} before its last layer; "
                         f"valid choices: {', '.join(layer.name for layer in body)}")
    maps, x = None, pixels
    for layer in body:
        x = layer(x, training=False)
        if layer.name == layer_name:
            maps = x
    logits = keras.ops.matmul(x, last.kernel) + last.bias if last.use_bias else \
        keras.ops.matmul(x, last.kernel)
    return maps, logits


# saliency_map, grad_cam_units and grad_cam are lesson 04's code, word for word (a test checks it).

def saliency_map(model, image, class_index):
    """|∂ class score / ∂ pixel|, the largest over colour channels. Introduced in lesson 04."""
    pixels = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        tape.watch(pixels)  # pixels are a constant, not a variable: ask the tape to follow them
        _, logits = forward_to_logits(model, pixels)
        score = logits[0, class_index]  # the class score before the softmax
    gradient = tape.gradient(score, pixels)[0]  # ∂ score / ∂ each pixel
    return tf.reduce_max(tf.abs(gradient), axis=-1).numpy()


def grad_cam_units(model, image, class_index, layer_name):
    """Grad-CAM of one class at one conv layer: one value per unit of the layer's map.

    Introduced in lesson 04.
    """
    pixels = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        maps, logits = forward_to_logits(model, pixels, layer_name)
        score = logits[0, class_index]  # the class score before the softmax
    gradients = tape.gradient(score, maps)[0]  # ∂ score / ∂ each value of each feature map
    weights = tf.reduce_mean(gradients, axis=(0, 1))  # one weight per map: its mean gradient
    return tf.nn.relu(tf.reduce_sum(maps[0] * weights, axis=-1)).numpy()  # weighted sum, positive part


def grad_cam(model, image, class_index, layer_name):
    """Grad-CAM of one class at one conv layer, placed on the image, in [0, 1]. Introduced in lesson 04."""
    heat = grad_cam_units(model, image, class_index, layer_name)
    centres = unit_centres(model, layer_name)  # the pixel each unit's receptive field is centred on
    pixels = np.arange(image.shape[0])
    heat = np.array([np.interp(pixels, centres, row) for row in heat])  # each row, to the image width
    heat = np.array([np.interp(pixels, centres, column) for column in heat.T]).T  # each column
    return heat / (heat.max() + 1e-12)  # 1 at the strongest evidence


def receptive_fields(model: keras.Model) -> list[tuple[str, int, int]]:
    """Per conv or pooling layer: (name, output size, receptive field in pixels). Introduced in lesson 04.

    The receptive field is the width of the input window that one output value depends on.
    A layer with several inputs (a residual block's ``Add``) takes the widest of its inputs'
    fields, so a model with skips is followed along its longest path (lesson 06).
    """
    return [(name, size, field) for name, size, field, _ in _field_geometry(model)]


def unit_centres(model: keras.Model, layer_name: str) -> np.ndarray:
    """Where each unit of a conv or pooling layer looks: the input pixel at the centre of its
    receptive field, along one axis (the pixel index, a half for an even field). Introduced in
    lesson 04.

    Without padding, unit 0 of a layer with an 8-pixel field is centred at pixel 3.5, not at 0:
    stretching a small map edge to edge over the image puts its values in the wrong place.
    """
    geometry = {name: (size, centre) for name, size, _, centre in _field_geometry(model)}
    if layer_name not in geometry:
        raise ValueError(f"{layer_name!r} is not a conv or pooling layer of {model.name!r}; "
                         f"valid choices: {', '.join(geometry)}")
    size, (first, jump) = geometry[layer_name]
    return first + jump * np.arange(size)


def _field_geometry(model: keras.Model) -> list[tuple[str, int, int, tuple[float, int]]]:
    """Per conv or pooling layer: name, output size, field, and (centre of unit 0, jump) in
    input pixels. The standard recurrence: field += (kernel - 1) * jump, the centre moves by
    ((kernel - 1) / 2 - left padding) * jump, jump *= stride; "same" pads as TensorFlow does
    (the smaller half on the left)."""
    windows = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D,
               keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    inputs_of = _input_layers(model)
    rows, seen = [], {}  # seen: layer name -> (field, jump, centre of unit 0) of its output
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        field, jump, first = max([seen.get(name, (1, 1, 0.0)) for name in inputs_of.get(layer.name, [])]
                                 or [(1, 1, 0.0)])
        if isinstance(layer, windows):
            if hasattr(layer, "kernel_size"):
                kernel = (layer.kernel_size[0] - 1) * layer.dilation_rate[0] + 1
            else:
                kernel = layer.pool_size[0]
            stride, size_in = layer.strides[0], int(layer.input.shape[1])
            size_out = int(layer.output.shape[1])
            padding = max((size_out - 1) * stride + kernel - size_in, 0) if layer.padding == "same" else 0
            first += ((kernel - 1) / 2 - padding // 2) * jump
            field += (kernel - 1) * jump
            jump *= stride
            rows.append((layer.name, size_out, field, (first, jump)))
        seen[layer.name] = (field, jump, first)
    return rows


def _input_layers(model: keras.Model) -> dict[str, list[str]]:
    """Layer name -> the names of the layers it takes its inputs from, from the model's config.

    The config is the graph a saved model is rebuilt from, so a model loaded from a ``.keras``
    file gives the same answer as a freshly built one. A Sequential model is a chain.
    """
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers]
        return dict(zip(names[1:], ([name] for name in names[:-1]), strict=True))

    def histories(node):
        if isinstance(node, dict):
            if "keras_history" in node:
                yield node["keras_history"][0]
            for value in node.values():
                yield from histories(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                yield from histories(value)

    return {entry["name"]: list(dict.fromkeys(histories(entry.get("inbound_nodes", []))))
            for entry in model.get_config()["layers"]}


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two maps of the same shape. Introduced in lesson 04.

    Tied values share their average rank, as Spearman defines it (attribution maps are full of
    ties: many pixels are exactly 0). NaN where it is undefined: a constant map, or a map with NaN.
    """
    a, b = np.ravel(np.asarray(a, dtype=float)), np.ravel(np.asarray(b, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"maps of different sizes: {a.size} and {b.size} values")
    if np.isnan(a).any() or np.isnan(b).any() or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def calibration_bins(confidence, correct, bins: int = 10):
    """How far a classifier's confidence is from its accuracy. Introduced in lesson 04.

    The interval (0, 1] is cut into ``bins`` equal bins, each closed on the right: a confidence of
    exactly 0.9 falls into (0.8, 0.9], and 0 into the first bin. Returns one row per non-empty bin,
    (low, high, count, mean confidence, accuracy), and the expected calibration error: the mean
    over all predictions of |accuracy - mean confidence| of their bin (Guo et al., 2017).
    """
    confidence = np.ravel(np.asarray(confidence, dtype=float))
    correct = np.ravel(np.asarray(correct))
    if confidence.shape != correct.shape:
        raise ValueError(f"{confidence.size} confidences but {correct.size} correct/wrong flags")
    if confidence.size == 0:
        raise ValueError("no predictions to bin")
    if not ((confidence >= 0) & (confidence <= 1)).all():  # NaN fails this too
        bad = confidence[~((confidence >= 0) & (confidence <= 1))][0]
        raise ValueError(f"confidences must lie in [0, 1]; got {bad}")
    if not np.isin(correct, (0, 1)).all():
        raise ValueError("correct must hold True/False (or 1/0) per prediction")
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be a whole number of at least 1; got {bins!r}")
    edges = np.arange(bins + 1) / bins  # exact decimals: 9 / 10 == 0.9
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows, error = [], 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            mean_confidence, accuracy = confidence[members].mean(), correct[members].mean()
            rows.append((edges[b], edges[b + 1], int(members.sum()), float(mean_confidence), float(accuracy)))
            error += members.sum() * abs(accuracy - mean_confidence)
    return rows, float(error / confidence.size)


def plot_attributions(model: keras.Model, images, y_true, class_names, layer_name: str,
                      title: str = "Where the model looks", class_indices=None):
    """Per image: input, saliency map and Grad-CAM for a class. Introduced in lesson 04.

    The class is the model's own prediction, or ``class_indices[k]`` for image k (for instance
    another model's predictions, to compare two models' maps for the same class).
    """
    images = np.asarray(images)
    probabilities = model.predict(images, verbose=0)
    fig, axes = plt.subplots(len(images), 3, figsize=(7.2, 2.7 * len(images) + 0.6), squeeze=False)
    for row, (image, truth, probs) in enumerate(zip(images, y_true, probabilities, strict=True)):
        predicted = int(np.argmax(probs))
        shown = predicted if class_indices is None else int(class_indices[row])
        picture, cmap = as_picture(image)
        saliency = saliency_map(model, image, shown)
        heat = grad_cam(model, image, shown, layer_name)
        axes[row, 0].imshow(picture, cmap=cmap)
        axes[row, 0].set_title(f"true: {class_names[int(truth)]}\npred: {class_names[predicted]} "
                               f"({probs[predicted]:.0%})", fontsize=9)
        axes[row, 1].imshow(saliency, cmap="hot")
        axes[row, 1].set_title(f"saliency for\n{class_names[shown]}", fontsize=9)
        axes[row, 2].imshow(picture, cmap=cmap)
        axes[row, 2].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[row, 2].set_title(f"Grad-CAM ({layer_name}) for\n{class_names[shown]}", fontsize=9)
        for ax in axes[row]:
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def plot_runs(runs: dict, metric: str = "loss", title: str | None = None):
    """One panel per variant, train vs validation ``metric``, one line per seed. Introduced in lesson 05.

    ``runs`` maps a name to a History dict, or to a list of them (or of ``regularize.Trained``),
    one per seed. The dot marks each run's best validation epoch.
    """
    names = list(runs)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names) + 0.6, 3.3), sharey=True,
                             squeeze=False)
    histories = {name: [getattr(item, "history", item) for item in
                        (runs[name] if isinstance(runs[name], list) else [runs[name]])] for name in names}
    for ax, name in zip(axes[0], names, strict=True):
        for index, history in enumerate(histories[name]):
            epochs = np.arange(1, len(history[metric]) + 1)
            labels = ("train", "validation") if index == 0 else (None, None)
            ax.plot(epochs, history[metric], color="C0", alpha=0.8, linewidth=1.2, label=labels[0])
            ax.plot(epochs, history[f"val_{metric}"], color="C1", alpha=0.8, linewidth=1.2,
                    linestyle="--", label=labels[1])
            values = history[f"val_{metric}"]
            best = int(np.argmin(values) if "loss" in metric else np.argmax(values))
            ax.plot(best + 1, values[best], "o", color="C1", markersize=4)
        seeds = len(histories[name])
        ax.set_title(name + (f" ({seeds} seeds)" if seeds > 1 else ""), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if "loss" in metric:  # one diverging first epoch must not flatten every other curve
        values = np.concatenate([np.asarray(h[key]) for group in histories.values() for h in group
                                 for key in (metric, f"val_{metric}")])
        axes[0, 0].set_ylim(0, 1.1 * np.percentile(values, 98))
    axes[0, 0].set_ylabel(metric)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title or f"Training vs validation {metric} (dot: best validation epoch of each run)")
    fig.tight_layout()
    plt.show()
