"""A detector for Sort-of-CLEVR-style images (solid objects of the six colours on white): the
regions a model trained on `--region-features` shards reads, from any such PNG or JPEG.

Each colour's pixels (within a tolerance, so JPEG and resizing survive) give one object's box; its
feature is the box's crop resized to the object size used in training (11 x 11 RGB in [0, 1]).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.sort_of_clevr.regions import class_distribution
from vlbert.data.sources.sort_of_clevr.scenes import COLORS

OBJECT_PIXELS = 11  # side of an object in a 75 x 75 scene
TOLERANCE = 60  # max per-channel distance to a palette colour


def detect_objects(image: Image.Image) -> RegionFeatures:
    """Regions of the coloured objects found in `image` (boxes in pixels, exclusive x2/y2)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)  # [H, W, 3]
    crops, boxes, probs = [], [], []
    for color, value in COLORS.items():
        mask = (np.abs(rgb - np.asarray(value, dtype=np.int16)) <= TOLERANCE).all(-1)  # [H, W]
        if mask.sum() < 4:
            continue
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        crop = image.convert("RGB").crop((x1, y1, x2, y2)).resize((OBJECT_PIXELS, OBJECT_PIXELS), Image.NEAREST)
        crops.append(np.asarray(crop, dtype=np.float32).reshape(-1) / 255.0)
        boxes.append([x1, y1, x2, y2])
        fill = mask[y1:y2, x1:x2].mean()  # a square fills its box, a circle about 0.7 of it
        probs.append(class_distribution(f"{color} {'square' if fill > 0.9 else 'circle'}"))
    if not crops:
        raise DataError("no Sort-of-CLEVR object (red, green, blue, orange, gray, yellow) found in the image")
    return RegionFeatures(np.stack(crops), np.asarray(boxes, dtype=np.float32), np.stack(probs))
