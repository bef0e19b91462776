"""Detectors that turn an image into region features, by name: what `predict --detector` and the
demo may use for a region model when no feature file is given. Never chosen silently."""

from __future__ import annotations

from typing import Callable

from PIL import Image

from vlbert.data.shards.schema import RegionFeatures
from vlbert.data.sources.sort_of_clevr.detect import detect_objects

Detector = Callable[[Image.Image], RegionFeatures]
DETECTORS: dict[str, Detector] = {
    "sort-of-clevr": detect_objects,  # the six solid colours of Sort-of-CLEVR scenes on white
}
