"""The visual stream's input embedding, as in ViLBERT: feature and location, summed, normalised."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig

BOX_COORDINATES = 5  # x1/W, y1/H, x2/W, y2/H, area/(W·H)


def box_fourier_features(locations: Tensor, bands: int) -> Tensor:
    """sin and cos of each coordinate at frequencies 2^k·π, k < `bands`.
    locations [..., C] in [0, 1] (C = 5 for a region box) -> [..., C · 2 · bands]"""
    frequencies = math.pi * 2.0 ** torch.arange(bands, device=locations.device, dtype=locations.dtype)  # [K]
    angles = locations[..., None] * frequencies  # [..., C, K]
    return torch.cat([angles.sin(), angles.cos()], -1).flatten(-2)  # [..., C * 2K]


class RegionEmbeddings(nn.Module):
    """`LayerNorm(Linear(feature) + Linear(location))`, then dropout; no position or type embedding.

    With `config.v_location_norm` (not in the original) the two terms are normalised apart and
    averaged, `(LN(Linear(feature)) + LN_loc(Linear(location))) / 2` as in LXMERT, so that the box
    weighs as much as the feature whatever their input scales. Parameter names follow the original
    `BertImageEmbeddings`; the option adds `location_LayerNorm`. With `config.v_location_bands` = K
    the box enters the location Linear as Fourier features (`box_fourier_features`, 10·K inputs)
    instead of its 5 raw coordinates.
    """

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.feature_LayerNorm = (
            nn.LayerNorm(config.v_feature_size, eps=config.layer_norm_eps) if config.v_feature_norm else None
        )
        self.image_embeddings = nn.Linear(config.v_feature_size, config.v_hidden_size)
        self.location_bands = config.v_location_bands
        location_inputs = BOX_COORDINATES * 2 * self.location_bands if self.location_bands else BOX_COORDINATES
        self.image_location_embeddings = nn.Linear(location_inputs, config.v_hidden_size)
        self.LayerNorm = nn.LayerNorm(config.v_hidden_size, eps=config.layer_norm_eps)
        self.location_LayerNorm = (
            nn.LayerNorm(config.v_hidden_size, eps=config.layer_norm_eps) if config.v_location_norm else None
        )
        # The original uses the text stream's hidden dropout here.
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, features: Tensor, locations: Tensor) -> Tensor:
        # features [B, R, Df], locations [B, R, 5] -> [B, R, Dv]
        if self.feature_LayerNorm is not None:
            features = self.feature_LayerNorm(features)  # each region's input standardised
        if self.location_bands:
            locations = box_fourier_features(locations, self.location_bands)  # [B, R, 10K]
        feature, location = self.image_embeddings(features), self.image_location_embeddings(locations)
        if self.location_LayerNorm is None:
            return self.dropout(self.LayerNorm(feature + location))
        return self.dropout((self.LayerNorm(feature) + self.location_LayerNorm(location)) / 2)
