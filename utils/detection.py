"""Lesson 08's measures and drawings for localisation, detection and segmentation.

Boxes are ``(x_min, y_min, x_max, y_max)`` in pixels with exclusive maxima (see utils.scenes).
``box_iou``, ``non_max_suppression``, ``average_precision`` and ``class_ious`` are copies of the
lesson's own code; a test of the course checks that they are the same.
"""

from __future__ import annotations

import numpy as np


def box_iou(a, b):
    """Intersection over union of boxes ``a`` and ``b``, broadcast over leading axes.
    Introduced in lesson 08."""
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return intersection / (area_a + area_b - intersection)


def non_max_suppression(boxes, scores, iou_threshold=0.5):
    """Indices of the boxes kept, best score first: each drops the rest that overlap it by more than
    ``iou_threshold``. Introduced in lesson 08."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(int(best))
        order = order[box_iou(boxes[best], boxes[order]) <= iou_threshold]
    return np.array(keep, dtype=int)


def average_precision(detections, truths, class_id, iou_threshold=0.5):
    """Pascal VOC's all-point AP of one class, nan for a class with no true box. Introduced in lesson 08.

    ``detections``: per scene (boxes, classes, scores); ``truths``: per scene (boxes, classes).
    Detections are taken best score first, over all scenes. Each is matched, as VOC does, to the
    true box of its class it overlaps most: a hit if that IoU is at least ``iou_threshold`` and
    the box is not yet claimed, a false alarm otherwise.
    """
    found = sorted(((score, scene, box) for scene, (boxes, classes, scores) in enumerate(detections)
                    for box, label, score in zip(boxes, classes, scores, strict=True) if label == class_id),
                   key=lambda d: -d[0])
    targets = [boxes[classes == class_id] for boxes, classes in truths]
    total = sum(len(t) for t in targets)
    if not total:
        return np.nan  # no true box to find: VOC and COCO leave the class out of the mean
    matched = [np.zeros(len(t), dtype=bool) for t in targets]
    hits = []
    for _, scene, box in found:
        ious = box_iou(box, targets[scene])
        best = int(np.argmax(ious)) if len(ious) else -1
        hit = best >= 0 and ious[best] >= iou_threshold and not matched[scene][best]
        if hit:
            matched[scene][best] = True
        hits.append(hit)
    hits = np.array(hits, dtype=float)
    recall = np.cumsum(hits) / total
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the best precision at this recall or more
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def class_ious(true_masks, predicted_masks, num_classes):
    """Each class's IoU over all pixels of the masks, from the confusion matrix (nan for a class in
    neither). Introduced in lesson 08."""
    pairs = true_masks.ravel() * num_classes + predicted_masks.ravel()
    confusion = np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)
    intersection = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)


def _colors(count: int):
    import matplotlib.pyplot as plt

    return [plt.get_cmap("tab10")(i % 10) for i in range(count)]


def show_boxes(images, truths, predictions, class_names, columns=6, title=None):
    """Scenes with their true boxes (dashed white) and predicted ones (coloured, class and score).
    Introduced in lesson 08.

    ``truths``: per scene (boxes, classes); ``predictions``: per scene (boxes, classes, scores),
    scores may be None.
    """
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    colors = _colors(len(class_names))
    for ax, image, (true_boxes, _), (boxes, classes, scores) in zip(
            axes.flat, images, truths, predictions, strict=False):
        ax.imshow(image.squeeze(), cmap="gray", vmin=0, vmax=1)
        for x0, y0, x1, y1 in true_boxes:
            ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                           edgecolor="white", linestyle="--", linewidth=1))
        for k, ((x0, y0, x1, y1), label) in enumerate(zip(boxes, classes, strict=True)):
            color = colors[int(label)]
            ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                           edgecolor=color, linewidth=1.5))
            text = class_names[int(label)] + ("" if scores is None else f" {scores[k]:.2f}")
            # clipped to the axes, so that the figure keeps its size whatever the boxes
            ax.text(x0, y0 - 1, text, color="black", fontsize=6, va="bottom", clip_on=True,
                    bbox={"facecolor": color, "pad": 0.5, "linewidth": 0})
    for ax in axes.flat:
        ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    plt.show()


def show_masks(images, true_masks, predicted_masks, class_names, title=None):
    """Each scene, its true mask and the predicted one side by side, one colour per class.
    Introduced in lesson 08."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colormap = ListedColormap([(0, 0, 0, 1), *_colors(len(class_names))])
    figure, axes = plt.subplots(3, len(images), figsize=(1.6 * len(images), 5.2), squeeze=False)
    for column, (image, truth, predicted) in enumerate(zip(images, true_masks, predicted_masks, strict=True)):
        axes[0, column].imshow(image.squeeze(), cmap="gray", vmin=0, vmax=1)
        for row, mask in ((1, truth), (2, predicted)):
            axes[row, column].imshow(mask, cmap=colormap, vmin=0, vmax=len(class_names),
                                     interpolation="nearest")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for row, label in enumerate(("scene", "true mask", "predicted")):
        axes[row, 0].set_ylabel(label)
    figure.legend(handles=[Patch(color=colormap(i + 1), label=name) for i, name in enumerate(class_names)],
                  loc="lower center", ncol=min(len(class_names), 5), fontsize=8, frameon=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    plt.show()
