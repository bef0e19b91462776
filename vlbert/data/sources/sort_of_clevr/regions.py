"""Region features for Sort-of-CLEVR from an oracle detector: the ground-truth boxes.

ViLBERT reads detector regions: pooled features, boxes, and the detector's class distribution
(the target of masked region modelling). For the built-in data the "detector" is exact: one region
per object, its feature the object's pixels (the 11 x 11 RGB crop, scaled to [0, 1]), and a class
distribution over the 12 colour-shape classes with 0.9 on the true class.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from vlbert.data.shards.schema import RegionFeatures
from vlbert.data.sources.sort_of_clevr.scenes import COLORS, SHAPES, Scene

CLASSES = tuple(f"{color} {shape}" for color in COLORS for shape in SHAPES)
TRUE_CLASS_PROB = 0.9


def class_distribution(label: str) -> np.ndarray:
    """[C] float32: 0.9 on `label`, the rest spread evenly (a confident but imperfect detector)."""
    probs = np.full(len(CLASSES), (1.0 - TRUE_CLASS_PROB) / (len(CLASSES) - 1), dtype=np.float32)
    probs[CLASSES.index(label)] = TRUE_CLASS_PROB
    return probs


def oracle_regions(scene: Scene, image: Image.Image, rng: random.Random) -> RegionFeatures:
    """One region per object, in a random order (detectors give no meaningful order)."""
    pixels = np.asarray(image, dtype=np.float32) / 255.0  # [H, W, 3]
    objects = list(scene.objects)
    rng.shuffle(objects)
    crops, boxes, probs = [], [], []
    for obj in objects:
        x1, y1, x2, y2 = obj.box  # exclusive x2, y2
        crops.append(pixels[y1:y2, x1:x2].reshape(-1))  # [h * w * 3]
        boxes.append(obj.box)
        probs.append(class_distribution(obj.label))
    return RegionFeatures(
        features=np.stack(crops).astype(np.float16),
        boxes=np.asarray(boxes, dtype=np.float32),
        class_probs=np.stack(probs),
    )
