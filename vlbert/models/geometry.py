"""Box-geometry attention bias for the visual stream (`config.v_geometry_bias`, off in ViLBERT).

Self-attention over regions compares contents; which region is *closest to* or *furthest from*
another is a function of the two boxes alone. With this option a small MLP maps every (query,
key) pair of boxes to one additive bias per head, shared by every visual self-attention layer, so
that a head can attend by distance (as the geometric attention weights of Hu et al., "Relation
Networks for Object Detection", 2018, and the object relation transformer for captioning).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig

PAIR_FEATURES = 7  # dx, dy, |dx|, |dy|, distance, log width ratio, log height ratio


def pairwise_box_geometry(locations: Tensor, eps: float = 1e-3) -> Tensor:
    """locations [B, R, 5] (x1, y1, x2, y2, area; normalised) -> [B, R, R, 7]: for query i and
    key j, the offset of j's centre from i's, its absolute value, the centre distance, and the
    log ratios of j's width and height to i's."""
    centre = (locations[..., :2] + locations[..., 2:4]) / 2  # [B, R, 2]
    size = (locations[..., 2:4] - locations[..., :2]).clamp_min(0) + eps  # [B, R, 2]
    offset = centre[:, None, :, :] - centre[:, :, None, :]  # [B, R, R, 2]  (j - i)
    distance = offset.square().sum(-1, keepdim=True).add(eps * eps).sqrt()  # [B, R, R, 1]
    ratio = (size[:, None, :, :] / size[:, :, None, :]).log()  # [B, R, R, 2]
    return torch.cat([offset, offset.abs(), distance, ratio], dim=-1)


class GeometryBias(nn.Module):
    """Boxes and key mask -> the visual self-attention's additive mask, one bias per head."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(PAIR_FEATURES, config.v_geometry_bias),
            nn.ReLU(),
            nn.Linear(config.v_geometry_bias, config.v_num_attention_heads),
        )

    def forward(self, locations: Tensor, key_mask: Tensor, dtype: torch.dtype) -> Tensor:
        """locations [B, R, 5], key_mask [B, R] bool -> [B, H, R, R] additive mask in `dtype`:
        the learned bias where the key is a real region, the dtype's minimum where it is padding."""
        bias = self.mlp(pairwise_box_geometry(locations.float())).permute(0, 3, 1, 2).to(dtype)  # [B, H, R, R]
        return bias.masked_fill(~key_mask[:, None, None, :], torch.finfo(dtype).min)
