"""Draw where the model looked: a heat map of per-region weights over the picture.

Each region spreads its weight over its box; overlapping boxes add up. Region models get their
boxes outlined and labelled with their share (the stronger, the thicker the line); patch and
grid models (ViT, CNN), whose boxes tile the image, get the grid drawn in thin lines.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw
from torch import Tensor

Layout = Literal["regions", "patches"]
DISPLAY_SIZE = 300  # the drawing's longer side in pixels (Sort-of-CLEVR scenes are 75 px)
HEAT_ALPHA = 0.55  # how much of the heat colour covers the picture where the weight is highest


@dataclass
class RegionWeight:
    box: list[float]  # normalised x1, y1, x2, y2
    weight: float  # share of the attention, all regions summing to 1


def region_weights(boxes: Tensor, weights: Tensor) -> list[RegionWeight]:
    """boxes [N, 4] normalised, weights [N] -> one entry per region, in the model's order."""
    return [RegionWeight([round(v, 4) for v in box], round(w, 5)) for box, w in zip(boxes.tolist(), weights.tolist())]


def heat_array(regions: list[RegionWeight], width: int, height: int) -> np.ndarray:
    """[height, width] float: each region's weight added over its box, scaled to a maximum of 1."""
    heat = np.zeros((height, width), dtype=np.float64)
    for region in regions:
        x1, y1, x2, y2 = region.box
        cols = slice(int(np.floor(x1 * width)), max(int(np.ceil(x2 * width)), int(np.floor(x1 * width)) + 1))
        rows = slice(int(np.floor(y1 * height)), max(int(np.ceil(y2 * height)), int(np.floor(y1 * height)) + 1))
        heat[rows, cols] += region.weight
    peak = heat.max()
    return heat / peak if peak > 0 else heat


def render_heatmap(image: Image.Image, regions: list[RegionWeight], layout: Layout) -> Image.Image:
    """The picture, enlarged to DISPLAY_SIZE, under the heat map and the region outlines."""
    scale = DISPLAY_SIZE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    base = image.convert("RGB").resize(size, Image.NEAREST)
    heat = heat_array(regions, *size)  # [H, W] in [0, 1]
    colours = colormaps["inferno"](heat)[..., :3]  # [H, W, 3] in [0, 1]
    alpha = (HEAT_ALPHA * heat)[..., None]  # [H, W, 1]
    mixed = np.asarray(base, dtype=np.float64) / 255.0 * (1 - alpha) + colours * alpha
    out = Image.fromarray(np.clip(mixed * 255.0 + 0.5, 0, 255).astype(np.uint8))
    _outline(out, regions, layout)
    return out


def _outline(image: Image.Image, regions: list[RegionWeight], layout: Layout) -> None:
    draw = ImageDraw.Draw(image)
    width, height = image.size
    strongest = max((r.weight for r in regions), default=0.0) or 1.0
    for region in regions:
        x1, y1, x2, y2 = region.box
        corners = [x1 * width, y1 * height, max(x1 * width, x2 * width - 1), max(y1 * height, y2 * height - 1)]
        if layout == "patches":
            draw.rectangle(corners, outline=(255, 255, 255), width=1)
        else:
            line = 1 + round(3 * region.weight / strongest)
            draw.rectangle(corners, outline=(0, 200, 255), width=line)
            label = f"{100 * region.weight:.0f}%"
            draw.text((corners[0], max(0, corners[1] - 12)), label, fill=(0, 0, 0), stroke_width=2,
                      stroke_fill=(255, 255, 255))


def png_data_url(image: Image.Image) -> str:
    """The image as a `data:image/png;base64,...` URL for an <img> element."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
