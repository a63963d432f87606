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


def _trained_classifier(widths, shape, num_classes, seed=0) -> keras.Model:
    """A small ResNet classifier, compiled and fitted a few steps, as a learner would receive it."""
    net = _backbone(widths, shape, seed)
    for layer in net.layers:  # moving means below zero: features away from 0 after the ReLUs
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, -0.5, "float32"))
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="old_head")(net.outputs[0])
    model = keras.Model(net.inputs, outputs, name="trained_classifier")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(seed)
    model.fit(rng.random((8, *shape), dtype=np.float32), rng.integers(0, num_classes, 8), epochs=1, verbose=0)
    return model


def _all_layers(model: keras.Model):
    """Every layer of ``model``, inside nested models too, the models themselves left out."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


@exercise("07.1")
def exercise_07_1(retarget, hidden=False):
    """A trained classifier cut at its pooling, frozen, with a new softmax head, compiled."""
    cases = (((4, 8), (12, 12, 1), 3, 7, 1e-3), ((6, 6, 8), (16, 16, 3), 4, 2, 3e-2))
    hidden_cases = (((4, 4, 8), (10, 10, 2), 5, 10, 5e-3),)
    for widths, shape, old_classes, new_classes, rate in cases + (hidden_cases if hidden else ()):
        trained = _trained_classifier(widths, shape, old_classes)
        features = keras.Model(trained.inputs[0], trained.get_layer("gap").output)
        kept = [v.numpy().copy() for v in features.weights]
        model = retarget(trained, new_classes, rate)
        expect(isinstance(model, keras.Model), f"your function returned {type(model).__name__}, expected a "
                                               "keras.Model")
        expect(tuple(model.outputs[0].shape) == (None, new_classes),
               f"your model's output has shape {tuple(model.outputs[0].shape)}, "
               f"expected (None, {new_classes}): "
               "one probability per class of the new task, not of the old one")
        heads = [layer for layer in _all_layers(model) if layer.trainable_weights]
        expect(len(heads) == 1 and isinstance(heads[0], keras.layers.Dense),
               f"your model has {len(model.trainable_weights)} trainable weight tensors in "
               f"{len(heads)} layers ({', '.join(layer.name for layer in heads)}), expected only the new "
               "Dense layer's kernel and bias: freeze every layer up to gap, batch normalization included")
        head = heads[0]
        expect(head.kernel.shape[0] == features.outputs[0].shape[-1],
               f"your new layer reads {head.kernel.shape[0]} features, "
               f"expected the {features.outputs[0].shape[-1]} "
               "of the gap layer: cut the model at gap, below its old softmax layer")
        rng = np.random.default_rng(2)
        head.kernel.assign(rng.normal(0, 0.3, head.kernel.shape).astype("float32"))
        head.bias.assign(np.linspace(-0.5, 0.5, new_classes).astype("float32"))
        images = rng.random((6, *shape), dtype=np.float32)
        pooled = keras.ops.convert_to_numpy(features(images, training=False))
        expect(np.ptp(pooled) > 0.1, "the check's features are flat: report this as a bug in the course")
        logits = pooled @ head.kernel.numpy() + head.bias.numpy()
        expected = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        found = keras.ops.convert_to_numpy(model(images, training=False))
        expect(np.allclose(found, expected, atol=1e-5),
               "your model's probabilities are not softmax(features · kernel + bias) of the new layer: "
               "give the new Dense layer activation='softmax', with no other activation before or after it")
        expect(getattr(model, "optimizer", None) is not None,
               "your model is not compiled: fit needs compile, and the new model has never been compiled")
        found_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        expect(np.isclose(found_rate, rate),
               f"your optimizer's learning rate is {found_rate:g}, expected the {rate:g} asked for")
        labels = rng.integers(0, new_classes, 6)
        before = head.kernel.numpy().copy()
        model.fit(images, labels, epochs=2, batch_size=3, verbose=0)
        moved = [v.path for v, old in zip(features.weights, kept, strict=True)
                 if not np.array_equal(v.numpy(), old)]
        expect(not moved, f"fit changed {moved[:1]}: everything up to gap must stay as trained, the "
                          "moving statistics of batch normalization included (freeze it, so it runs in "
                          "inference mode)")
        expect(not np.array_equal(head.kernel.numpy(), before),
               "fit did not change your new layer's weights: it must be the one layer that trains")


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
