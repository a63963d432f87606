"""The course's models, and parameter counts computed from the formulas."""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers


def cnn3(input_shape, num_classes: int, name: str = "cnn3") -> keras.Model:
    """Three conv layers and a Dense 64 head (93,322 params on 28x28x1). Introduced in lesson 02."""
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Conv2D(64, 3, activation="relu", name="conv3"),
        layers.Flatten(name="flatten"),
        layers.Dense(64, activation="relu", name="dense"),
        layers.Dense(num_classes, activation="softmax", name="probabilities"),
    ], name=name)


def cnn2(input_shape, num_classes: int, name: str = "cnn2") -> keras.Model:
    """Two conv layers and a Dense 128 head (225,034 params on 28x28x1). Introduced in lesson 02."""
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="dense"),
        layers.Dense(num_classes, activation="softmax", name="probabilities"),
    ], name=name)


def dense_only(input_shape, num_classes: int, width: int = 128, depth: int = 3,
               name: str = "dense_only") -> keras.Model:
    """A network of Dense layers only, for comparison with the CNNs. Introduced in lesson 02."""
    stack = [keras.Input(shape=input_shape), layers.Flatten(name="flatten")]
    stack += [layers.Dense(width, activation="relu", name=f"dense{i + 1}") for i in range(depth)]
    stack.append(layers.Dense(num_classes, activation="softmax", name="probabilities"))
    return keras.Sequential(stack, name=name)


ARCHITECTURES = {"cnn3": cnn3, "cnn2": cnn2, "dense_only": dense_only}


def build(architecture: str, input_shape, num_classes: int) -> keras.Model:
    """Build a registered architecture by name, or say which names exist. Introduced in lesson 03."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; "
                         f"valid choices: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[architecture](input_shape, num_classes)


@dataclass(frozen=True)
class LayerCount:
    """One layer's parameter count, all and non-trainable: by the formula, and as Keras reports it."""

    name: str
    kind: str
    formula: str
    by_formula: int
    by_keras: int
    frozen_by_formula: int = 0  # non-trainable parameters
    frozen_by_keras: int = 0

    @property
    def agrees(self) -> bool:
        return self.by_formula == self.by_keras and self.frozen_by_formula == self.frozen_by_keras


def formula_count(layer, input_shape) -> tuple[str, int]:
    """A layer's parameter count from its configuration and input shape (lesson 02's formulas).

    Conv2D: (k_h·k_w·c_in + 1)·c_out.  Dense: (n_in + 1)·n_out.
    Conv2DTranspose: (k_h·k_w·c_in + 1)·c_out too; its kernel is stored as (k_h, k_w, c_out, c_in).
    BatchNormalization: 2·c + 2·c (γ and β are trained; the moving mean and variance are not).
    Layers without weights (pooling, flatten, global average pooling, dropout, …): 0.
    """
    bias = 1 if getattr(layer, "use_bias", False) else 0
    if isinstance(layer, layers.Conv2D):
        k_h, k_w = layer.kernel_size
        c_in, c_out = input_shape[-1], layer.filters
        return f"({k_h}·{k_w}·{c_in} + {bias})·{c_out}", (k_h * k_w * c_in + bias) * c_out
    if isinstance(layer, layers.Dense):
        n_in, n_out = input_shape[-1], layer.units
        return f"({n_in} + {bias})·{n_out}", (n_in + bias) * n_out
    if isinstance(layer, layers.Conv2DTranspose):  # kernel (k_h, k_w, c_out, c_in): the same count
        k_h, k_w = layer.kernel_size
        c_in, c_out = input_shape[-1], layer.filters
        return f"({k_h}·{k_w}·{c_in} + {bias})·{c_out}", (k_h * k_w * c_in + bias) * c_out
    if isinstance(layer, layers.BatchNormalization):
        channels = input_shape[-1]
        return f"2·{channels} + 2·{channels}", 4 * channels
    return "0", 0


def frozen_formula_count(layer, input_shape) -> int:
    """The non-trainable part of ``formula_count``: BatchNormalization's 2·c moving statistics."""
    return 2 * input_shape[-1] if isinstance(layer, layers.BatchNormalization) else 0


def layer_counts(model: keras.Model) -> list[LayerCount]:
    """Every layer's count by formula next to Keras's own count. Introduced in lesson 02."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):  # a Functional model lists its input; Sequential does not
            continue
        shape = getattr(getattr(layer, "input", None), "shape", None)  # None for several inputs
        formula, count = formula_count(layer, shape)
        frozen = sum(math.prod(weight.shape) for weight in layer.non_trainable_weights)
        rows.append(LayerCount(layer.name, type(layer).__name__, formula, count, layer.count_params(),
                               frozen_formula_count(layer, shape), frozen))
    return rows


def count_table(model: keras.Model) -> str:
    """The layer-by-layer comparison as a fixed-width text table. Introduced in lesson 02.

    A model with non-trainable parameters gets a column that splits them out.
    """
    rows = layer_counts(model)
    split = any(row.frozen_by_formula or row.frozen_by_keras for row in rows)
    frozen_header = f"{'non-trainable':>14}" if split else ""
    lines = [f"{'layer':<14}{'type':<20}{'formula':<22}{'by formula':>11}{frozen_header}{'Keras':>10}"]
    lines.append("-" * len(lines[0]))
    for row in rows:
        frozen = f"{row.frozen_by_formula:>14,}" if split else ""
        lines.append(f"{row.name:<14}{row.kind:<20}{row.formula:<22}{row.by_formula:>11,}{frozen}"
                     f"{row.by_keras:>10,}{'' if row.agrees else '  MISMATCH'}")
    lines.append("-" * len(lines[0]))
    total_frozen = f"{sum(r.frozen_by_formula for r in rows):>14,}" if split else ""
    lines.append(f"{'total':<56}{sum(r.by_formula for r in rows):>11,}{total_frozen}"
                 f"{model.count_params():>10,}")
    return "\n".join(lines)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Output length along one axis: floor((n + 2p − k) / s) + 1. Introduced in lesson 01.

    ``padding="same"`` pads so that the output is ceil(n / s), as Keras does.
    """
    if padding == "same":
        return math.ceil(size / stride)
    if padding == "valid":
        return (size - kernel) // stride + 1
    raise ValueError(f"unknown padding {padding!r}; valid choices: same, valid")


def residual_block(x, filters: int, stride: int = 1, name: str = "block"):
    """A ResNet basic block: conv–BN–ReLU, conv–BN, plus the input, then ReLU. Introduced in lesson 06.

    Where the block changes the shape (a stride, or a new number of channels), the shortcut is
    a 1×1 convolution with the same stride, followed by batch norm: the projection shortcut.
    """
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def small_resnet(input_shape, num_classes: int, widths=(32, 64, 128),
                 name: str = "small_resnet") -> keras.Model:
    """A stem, one residual block per width (each after the first halves the map), global average
    pooling and a softmax layer. Introduced in lesson 06.

    The layer ``gap`` ends the backbone: ``keras.Model(model.inputs, model.get_layer("gap").output)``.
    """
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for index, filters in enumerate(widths):
        x = residual_block(x, filters, stride=1 if index == 0 else 2, name=f"block{index + 1}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
