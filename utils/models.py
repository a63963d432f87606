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
    DepthwiseConv2D: (k_h·k_w + 1)·c_in·m, with m the depth multiplier.
    SeparableConv2D: a depthwise k_h·k_w·c_in·m, then a pointwise (1×1) c_in·m·c_out, + c_out biases.
    Conv2DTranspose: (k_h·k_w·c_in + 1)·c_out too; its kernel is stored as (k_h, k_w, c_out, c_in).
    BatchNormalization: 2·c + 2·c (γ and β are trained; the moving mean and variance are not).
    Layers without weights (pooling, flatten, global average pooling, add, dropout, …): 0.
    In Keras 3 SeparableConv2D and DepthwiseConv2D are not subclasses of Conv2D.
    """
    bias = 1 if getattr(layer, "use_bias", False) else 0
    if isinstance(layer, layers.SeparableConv2D):
        k_h, k_w = layer.kernel_size
        c_in, m, c_out = input_shape[-1], layer.depth_multiplier, layer.filters
        return (f"{k_h}·{k_w}·{c_in}·{m} + {c_in}·{m}·{c_out} + {bias}·{c_out}",
                k_h * k_w * c_in * m + c_in * m * c_out + bias * c_out)
    if isinstance(layer, layers.DepthwiseConv2D):
        k_h, k_w = layer.kernel_size
        c_in, m = input_shape[-1], layer.depth_multiplier
        return f"({k_h}·{k_w} + {bias})·{c_in}·{m}", (k_h * k_w + bias) * c_in * m
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
        trained = int(layer.scale) + int(layer.center)  # γ and β, each optional
        return f"{trained}·{channels} + 2·{channels}", (trained + 2) * channels
    return "0", 0  # e.g. pooling, Flatten, GlobalAveragePooling2D, Add, Activation, Dropout


def frozen_formula_count(layer, input_shape) -> int:
    """The non-trainable part of ``formula_count``: BatchNormalization's 2·c moving statistics."""
    return 2 * input_shape[-1] if isinstance(layer, layers.BatchNormalization) else 0


def input_shape_of(layer):
    """The shape a layer receives; for a layer with several inputs (Add), the first one's."""
    if not hasattr(layer, "input"):
        return None
    inputs = layer.input
    return inputs[0].shape if isinstance(inputs, (list, tuple)) else inputs.shape


def layer_macs(layer) -> int:
    """Multiply-accumulates of one image's pass through ``layer``. Introduced in lesson 06.

    Conv2D: out_h·out_w·c_out·k_h·k_w·c_in.  DepthwiseConv2D: out_h·out_w·k_h·k_w·c_in·m.
    SeparableConv2D: its depthwise part plus out_h·out_w·c_in·m·c_out for the pointwise part.
    Dense: n_in·n_out. Biases, batch norm, activations, pooling and additions are left out.
    """
    if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
        _, out_h, out_w, c_out = layer.output.shape
        k_h, k_w = layer.kernel_size
        c_in = input_shape_of(layer)[-1]
        if isinstance(layer, layers.Conv2D):
            return out_h * out_w * c_out * k_h * k_w * c_in
        depthwise = out_h * out_w * k_h * k_w * c_in * layer.depth_multiplier
        if isinstance(layer, layers.DepthwiseConv2D):
            return depthwise
        return depthwise + out_h * out_w * c_in * layer.depth_multiplier * c_out
    if isinstance(layer, layers.Dense):
        return input_shape_of(layer)[-1] * layer.units
    return 0


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one image's forward pass, summed over the layers. Introduced in lesson 06."""
    return sum(layer_macs(layer) for layer in model.layers)


def layer_counts(model: keras.Model) -> list[LayerCount]:
    """Every layer's count by formula next to Keras's own count. Introduced in lesson 02."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):  # a functional model lists its input
            continue
        shape = input_shape_of(layer)
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
    # Columns as wide as lesson 02's, wider where a name or formula needs it.
    w_name = max([14] + [len(row.name) + 1 for row in rows])
    w_kind = max([20] + [len(row.kind) + 1 for row in rows])
    w_formula = max([22] + [len(row.formula) + 1 for row in rows])
    frozen_header = f"{'non-trainable':>14}" if split else ""
    lines = [f"{'layer':<{w_name}}{'type':<{w_kind}}{'formula':<{w_formula}}{'by formula':>11}"
             f"{frozen_header}{'Keras':>10}"]
    lines.append("-" * len(lines[0]))
    for row in rows:
        frozen = f"{row.frozen_by_formula:>14,}" if split else ""
        lines.append(f"{row.name:<{w_name}}{row.kind:<{w_kind}}{row.formula:<{w_formula}}{row.by_formula:>11,}"
                     f"{frozen}{row.by_keras:>10,}{'' if row.agrees else '  MISMATCH'}")
    lines.append("-" * len(lines[0]))
    total_frozen = f"{sum(r.frozen_by_formula for r in rows):>14,}" if split else ""
    lines.append(f"{'total':<{w_name + w_kind + w_formula}}{sum(r.by_formula for r in rows):>11,}"
                 f"{total_frozen}{model.count_params():>10,}")
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
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def separable_block(x, filters: int, stride: int = 1, name: str = "block"):
    """``residual_block`` with depthwise-separable 3×3 convolutions. Introduced in lesson 06."""
    y = layers.SeparableConv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_sepconv1")(x)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv2")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def small_resnet(input_shape, num_classes: int, widths=(32, 64, 128), name: str = "small_resnet",
                 block=residual_block, stem_stride: int = 1) -> keras.Model:
    """A stem, one residual block per width (each after the first halves the map), global average
    pooling and a softmax layer. Introduced in lesson 06.

    ``stem_stride=2`` halves the map in the stem already: every block then does a quarter of the
    multiply-adds.

    The layer ``gap`` ends the backbone: ``keras.Model(model.inputs, model.get_layer("gap").output)``.
    ``block=separable_block`` gives the depthwise-separable variant.
    """
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(widths[0], 3, strides=stem_stride, padding="same", use_bias=False,
                      name="stem_conv")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for index, filters in enumerate(widths):
        x = block(x, filters, stride=1 if index == 0 else 2, name=f"block{index + 1}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def vgg_style(input_shape, num_classes: int, widths=(16, 32), name: str = "vgg_style") -> keras.Model:
    """Per width two 3×3 conv–BN–ReLU layers and a 2×2 max pooling, then global average pooling
    and a softmax layer. Introduced in lesson 06."""
    stack = [keras.Input(shape=input_shape)]
    for stage, filters in enumerate(widths, start=1):
        for conv in (1, 2):
            stack += [layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage}_{conv}"),
                      layers.BatchNormalization(momentum=0.9, name=f"bn{stage}_{conv}"),
                      layers.Activation("relu", name=f"relu{stage}_{conv}")]
        stack.append(layers.MaxPooling2D(2, name=f"pool{stage}"))
    stack += [layers.GlobalAveragePooling2D(name="gap"),
              layers.Dense(num_classes, activation="softmax", name="probabilities")]
    return keras.Sequential(stack, name=name)
