"""Region geometry: boxes to the 5-d ViLBERT location, the global IMG token, region masking."""

from __future__ import annotations

import torch
from torch import Tensor

# Location of the global IMG token: the whole image.
GLOBAL_LOCATION = (0.0, 0.0, 1.0, 1.0, 1.0)


def boxes_to_locations(boxes: Tensor) -> Tensor:
    """Normalised (x1, y1, x2, y2) boxes [..., 4] -> (x1, y1, x2, y2, area) [..., 5]."""
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return torch.cat([boxes, area.unsqueeze(-1)], dim=-1)


def grid_boxes(rows: int, cols: int, device: torch.device | None = None) -> Tensor:
    """Normalised boxes of a rows x cols grid in row-major order: [rows * cols, 4]."""
    ys = torch.arange(rows, device=device, dtype=torch.float32)
    xs = torch.arange(cols, device=device, dtype=torch.float32)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    boxes = torch.stack([x / cols, y / rows, (x + 1) / cols, (y + 1) / rows], dim=-1)
    return boxes.reshape(rows * cols, 4)


def prepend_global_token(features: Tensor, locations: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Prepend the IMG token: the mean of the real regions' features, located on the whole image.

    features [B, R, Df], locations [B, R, 5], mask [B, R] bool -> the same with R + 1.
    """
    weights = mask.to(features.dtype).unsqueeze(-1)  # [B, R, 1]
    mean = (features * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1.0)
    glob_loc = locations.new_tensor(GLOBAL_LOCATION).expand(features.shape[0], 1, 5)
    glob_mask = mask.new_ones(mask.shape[0], 1)
    return (
        torch.cat([mean, features], dim=1),
        torch.cat([glob_loc, locations], dim=1),
        torch.cat([glob_mask, mask], dim=1),
    )


def zero_masked_regions(features: Tensor, masked: Tensor | None) -> Tensor:
    """Zero the features of masked regions (masked region modelling). masked: [B, R] bool."""
    if masked is None:
        return features
    return features.masked_fill(masked.unsqueeze(-1), 0.0)
