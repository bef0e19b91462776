"""Task heads on top of the backbone. Loss functions live in `vlbert.losses`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.activations import ACT2FN

from vlbert.config import VLBertConfig

__all__ = ["RegionHead", "ITMHead", "ITCHead", "VQAHead", "fuse_pooled"]


def fuse_pooled(pooled_text: Tensor, pooled_visual: Tensor, method: str) -> Tensor:
    """ViLBERT's fusion of the two pooled vectors: element-wise product ("mul") or sum."""
    return pooled_text * pooled_visual if method == "mul" else pooled_text + pooled_visual


class RegionHead(nn.Module):
    """Masked region modelling: dense -> act -> LayerNorm -> decoder (classes or features)."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.v_hidden_size, config.v_hidden_size)
        self.act = ACT2FN[config.v_hidden_act]
        self.LayerNorm = nn.LayerNorm(config.v_hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.v_hidden_size, config.region_target_size)

    def forward(self, visual_hidden: Tensor) -> Tensor:
        # [B, R, Dv] -> [B, R, target]
        return self.decoder(self.LayerNorm(self.act(self.dense(visual_hidden))))


class ITMHead(nn.Module):
    """Image-text matching on the fused pooled vector. Column 1 = "matches" (the original used 0)."""

    def __init__(self, config: VLBertConfig, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.bi_hidden_size, 2)

    def forward(self, fused: Tensor) -> Tensor:
        return self.classifier(self.dropout(fused))  # [B, Dbi] -> [B, 2]


class ITCHead(nn.Module):
    """Contrastive projections of the unimodal text and image CLS states (ALBEF-style)."""

    def __init__(self, config: VLBertConfig, init_temperature: float = 0.07) -> None:
        super().__init__()
        self.text_proj = nn.Linear(config.hidden_size, config.itc_dim)
        self.visual_proj = nn.Linear(config.v_hidden_size, config.itc_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def embed_text(self, unimodal_text: Tensor) -> Tensor:
        return F.normalize(self.text_proj(unimodal_text), dim=-1)  # [B, Dt] -> [B, E]

    def embed_image(self, unimodal_visual: Tensor) -> Tensor:
        return F.normalize(self.visual_proj(unimodal_visual), dim=-1)  # [B, Dv] -> [B, E]

    def forward(self, unimodal_text: Tensor, unimodal_visual: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # [B, Dt], [B, Dv] -> [B, E], [B, E] (unit norm), scale []
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        return self.embed_text(unimodal_text), self.embed_image(unimodal_visual), scale


class VQAHead(nn.Module):
    """12-in-1's classifier: Linear(Dbi -> 2 Dbi) -> GELU -> LayerNorm -> Linear(-> answers)."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        hidden = 2 * config.bi_hidden_size
        self.logit_fc = nn.Sequential(
            nn.Linear(config.bi_hidden_size, hidden),
            nn.GELU(),
            nn.LayerNorm(hidden, eps=config.layer_norm_eps),
            nn.Linear(hidden, config.num_answers),
        )

    def forward(self, fused: Tensor) -> Tensor:
        return self.logit_fc(fused)  # [B, Dbi] -> [B, answers]
