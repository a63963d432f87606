"""Checks of lesson 07's exercises: a frozen backbone with a new head, and unfreezing the top blocks."""

from __future__ import annotations

from utils import models
from utils.checks.feedback import exercise, expect

import keras
import numpy as np


def _backbone(widths, shape=(12, 12, 1), seed=0) -> keras.Model:
    """A small ResNet cut at its global average pooling, with moving statistics away from 0 and 1."""
    keras.utils.set_random_seed(seed)
    net = models.small_resnet(shape, 3, widths=widths, name="hidden_resnet")
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.5, "float32"))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, "float32"))
    return keras.Model(net.inputs, net.get_layer("gap").output, name="hidden_backbone")


@exercise("07.1")
def exercise_07_1(new_head_model, hidden=False):
    """A frozen backbone with a new softmax head: only the head trains."""
    cases = (((4, 8), (12, 12, 1), 3), ((6, 6, 8), (16, 16, 3), 7))
    for widths, shape, num_classes in cases + ((((4, 4, 8), (10, 10, 2), 2),) if hidden else ()):
        backbone = _backbone(widths, shape)
        model = new_head_model(backbone, num_classes)
        expect(isinstance(model, keras.Model), f"your function returned {type(model).__name__}, expected a "
                                               "keras.Model")
        expect(tuple(model.output.shape) == (None, num_classes),
               f"your model's output has shape {tuple(model.output.shape)}, expected (None, {num_classes}): "
               "one probability per class of the new task")
        images = np.random.default_rng(1).random((4, *shape), dtype=np.float32)
        probabilities = keras.ops.convert_to_numpy(model(images, training=False))
        expect(np.allclose(probabilities.sum(axis=1), 1, atol=1e-4),
               "your model's outputs do not sum to 1 per image: the new head needs a softmax activation")
        expect(not backbone.trainable, "the backbone is still trainable: set backbone.trainable = False")
        head = len(model.trainable_weights)
        expect(head == 2, f"your model has {head} trainable weight tensors, expected 2: only the new layer's "
                          "kernel and bias")
        statistics = [v.numpy().copy() for v in backbone.non_trainable_weights]
        in_training = keras.ops.convert_to_numpy(model(images, training=True))  # as fit calls it
        moved = any(not np.array_equal(v.numpy(), old)
                    for v, old in zip(backbone.non_trainable_weights, statistics, strict=True))
        expect(not moved and np.allclose(in_training, probabilities, atol=1e-5),
               "in training mode your model's backbone normalises with batch statistics: freeze the "
               "backbone's layers, batch normalization included")


@exercise("07.2")
def exercise_07_2(unfreeze_top_blocks, hidden=False):
    """Only the last ``count`` residual blocks train, their batch normalization stays frozen."""
    cases = (((4, 4, 8, 8), 1), ((4, 4, 8, 8), 2), ((4, 8, 8), 3))
    for widths, count in cases + ((((4,) * 11, 2), ((4, 8), 1)) if hidden else ()):
        backbone = _backbone(widths)
        backbone.trainable = False  # frozen, as after feature extraction
        unfreeze_top_blocks(backbone, count)
        top = {f"block{index}" for index in range(len(widths) - count + 1, len(widths) + 1)}
        for layer in backbone.layers:
            if not layer.weights:
                continue
            is_norm = isinstance(layer, keras.layers.BatchNormalization)
            wanted = layer.name.split("_")[0] in top and not is_norm
            if is_norm and layer.trainable:
                expect(False, f"layer {layer.name} (batch normalization) is trainable; keep batch "
                              "normalization frozen so that it runs in inference mode with the source "
                              "task's statistics")
            expect(layer.trainable == wanted,
                   f"with {len(widths)} blocks and count={count}, layer {layer.name} is "
                   f"{'trainable' if layer.trainable else 'frozen'}; expected it "
                   f"{'trainable' if wanted else 'frozen'}: only "
                   f"{', '.join(sorted(top, key=lambda block: int(block[5:])))} should train"
                   + (" (block10 comes after block9: sort the blocks by number, not as text)"
                      if len(widths) >= 10 else ""))
        expected = sum(len(layer.trainable_weights) for layer in backbone.layers
                       if layer.name.split("_")[0] in top and layer.trainable)
        found = len(backbone.trainable_weights)
        expect(found == expected and found > 0,
               f"the backbone reports {found} trainable weight tensors, expected {expected}: a frozen parent "
               "model hides the weights of its trainable layers; unfreeze the backbone itself first")
