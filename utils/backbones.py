"""The backbones of lesson 07's transfer learning: names and facts, no Keras.

A course-wide helper: ``utils.course`` checks a ``backbone`` parameter with it, and
``utils.transfer`` (which re-exports it) builds the backbones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    """A ``keras.applications`` backbone: its builder, input size, preprocessing and top block."""

    title: str
    application: str  # the name in keras.applications
    module: str  # the keras.applications module that holds its preprocess_input
    weights_file: str  # what Keras caches in ~/.keras/models for include_top=False
    image_size: int  # images are resized to this (at least the model's minimum, 32)
    top_block: str  # the first layer of its top block, where fine-tuning starts


COURSE_BACKBONE = "course"
BACKBONES: dict[str, Backbone] = {
    "mobilenetv3small": Backbone("MobileNetV3Small", "MobileNetV3Small", "mobilenet_v3",
                                 "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", 96,
                                 "expanded_conv_10_expand"),
    "efficientnetb0": Backbone("EfficientNetB0", "EfficientNetB0", "efficientnet",
                               "efficientnetb0_notop.h5", 96, "block7a_expand_conv"),
}


def backbone_names() -> list[str]:
    """The valid values of a lesson's ``backbone`` parameter."""
    return [COURSE_BACKBONE, *sorted(BACKBONES)]


def check_backbone(name) -> None:
    """Raise ValueError naming a backbone that does not exist, and the valid choices."""
    if name not in backbone_names():
        raise ValueError(f"unknown backbone {name!r}; valid choices: {', '.join(backbone_names())}")
