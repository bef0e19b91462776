"""Box-geometry attention bias for the visual stream (`config.v_geometry_bias`, off in ViLBERT).

Self-attention over regions compares contents; which region is *closest to* or *furthest from*
another is a function of the two boxes alone. With this option a small MLP maps every (query,
key) pair of boxes to one additive bias per head, shared by every visual self-attention layer, so
that a head can attend by distance (as the geometric attention weights of Hu et al., "Relation
Networks for Object Detection", 2018, and the object relation transformer for captioning).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig

PAIR_FEATURES = 7  # dx, dy, |dx|, |dy|, distance, log width ratio, log height ratio
DISTANCE = 4  # the distance's index among the pair features
SELF_RADIUS = 0.05  # centres closer than this (normalised units) count as the region itself


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
        if config.v_geometry_prior:  # set when the model initialises its weights (children first)
            self.mlp[2]._vlbert_after_init = partial(self.init_distance_prior, config.v_geometry_prior)

    @torch.no_grad()
    def init_distance_prior(self, strength: float) -> None:
        """Start head 0 at -strength x (distance, or 2 for the region itself): attention to the
        nearest *other* region; head 1 at +strength x distance: to the furthest. Hidden unit 0
        is the distance, unit 1 is 1 at the region itself and 0 beyond `SELF_RADIUS`; the other
        units and heads keep their random start, and their weights from units 0 and 1 are zeroed."""
        first, last = self.mlp[0], self.mlp[2]
        first.weight[:2].zero_()
        first.bias[:2].zero_()
        first.weight[0, DISTANCE] = 1.0  # ReLU(distance) = distance
        first.weight[1, DISTANCE] = -1.0 / SELF_RADIUS  # ReLU(1 - distance / radius)
        first.bias[1] = 1.0
        last.weight[:, :2].zero_()
        last.weight[:2].zero_()
        last.bias[:2].zero_()
        last.weight[0, 0], last.weight[0, 1] = -strength, -2.0 * strength  # itself: further than any other
        last.weight[1, 0] = strength

    def forward(self, locations: Tensor, key_mask: Tensor, dtype: torch.dtype) -> Tensor:
        """locations [B, R, 5], key_mask [B, R] bool -> [B, H, R, R] additive mask in `dtype`:
        the learned bias where the key is a real region, the dtype's minimum where it is padding."""
        bias = self.mlp(pairwise_box_geometry(locations.float())).permute(0, 3, 1, 2).to(dtype)  # [B, H, R, R]
        return bias.masked_fill(~key_mask[:, None, None, :], torch.finfo(dtype).min)
