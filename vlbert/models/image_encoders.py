"""Image encoders: what turns an image into the visual stream's regions.

- `RegionInputs`: precomputed region features and boxes (bottom-up-attention style), no weights.
- `TimmViTEncoder`: a timm ViT's patch tokens, each located at its patch box.
- `TimmCNNEncoder`: a timm CNN's last feature-map grid, each cell a region.

Each returns `EncodedImage`: features [B, N, Df], normalised (x1, y1, x2, y2) boxes [B, N, 4] and a
validity mask [B, N]. Pretrained weights come from a local file (`.safetensors`, `.pth`, `.bin`)
or a timm/hub name; nothing touches the network unless a hub name is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import timm
import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig
from vlbert.models.regions import grid_boxes


@dataclass
class EncodedImage:
    features: Tensor  # [B, N, Df]
    boxes: Tensor  # [B, N, 4] normalised x1, y1, x2, y2
    mask: Tensor  # [B, N] bool, True = real region


class RegionInputs(nn.Module):
    """Precomputed regions pass through; checks shapes so a wrong file fails early and clearly."""

    def __init__(self, feature_size: int) -> None:
        super().__init__()
        self.out_dim = feature_size

    def forward(self, features: Tensor, boxes: Tensor, mask: Tensor | None = None) -> EncodedImage:
        if features.dim() != 3 or features.shape[-1] != self.out_dim:
            raise ValueError(f"region_features must be [batch, regions, {self.out_dim}], got {tuple(features.shape)}")
        if boxes.shape != (*features.shape[:2], 4):
            raise ValueError(f"region_boxes must be [batch, regions, 4], got {tuple(boxes.shape)}")
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        return EncodedImage(features, boxes.to(features.dtype), mask.bool())


def create_timm_model(name: str, pretrained: str | None, **kwargs: Any) -> nn.Module:
    """timm model with weights from a local file, a hub/timm name, or none (`pretrained=None`)."""
    if pretrained is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    if os.path.isfile(pretrained):
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": pretrained}, **kwargs)
    if os.path.isdir(pretrained):
        raise ValueError(f"image_pretrained {pretrained!r} is a directory; give the weight file inside it")
    # A timm tag ("augreg_in21k") or a hub id ("hf-hub:org/name"): may need the network.
    full = pretrained if pretrained.startswith("hf-hub:") else f"{name}.{pretrained}"
    return timm.create_model(full, pretrained=True, **kwargs)


class _TimmEncoder(nn.Module):
    """Shared freezing behaviour: a frozen backbone stays in eval mode and gets no gradient."""

    def __init__(self, model: nn.Module, frozen: bool) -> None:
        super().__init__()
        self.model = model
        self.frozen = frozen
        if frozen:
            self.model.requires_grad_(False)

    def train(self, mode: bool = True) -> "_TimmEncoder":
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def data_config(self) -> dict[str, Any]:
        """timm's preprocessing for this model (input size, mean, std, interpolation)."""
        return timm.data.resolve_data_config({}, model=self.model)


class TimmViTEncoder(_TimmEncoder):
    def __init__(self, name: str, pretrained: str | None, image_size: int, frozen: bool, **kwargs: Any) -> None:
        model = create_timm_model(name, pretrained, num_classes=0, img_size=image_size, **kwargs)
        super().__init__(model, frozen)
        self.out_dim = model.num_features
        self.num_prefix = getattr(model, "num_prefix_tokens", 1)
        self.grid = tuple(model.patch_embed.grid_size)  # (rows, cols)

    def forward(self, pixel_values: Tensor) -> EncodedImage:
        tokens = self.model.forward_features(pixel_values)  # [B, prefix + N, D]
        patches = tokens[:, self.num_prefix :]  # [B, N, D]
        batch, count, _ = patches.shape
        boxes = grid_boxes(*self.grid, patches.device).to(patches.dtype).expand(batch, count, 4)
        mask = torch.ones(batch, count, dtype=torch.bool, device=patches.device)
        return EncodedImage(patches, boxes, mask)


class TimmCNNEncoder(_TimmEncoder):
    def __init__(self, name: str, pretrained: str | None, frozen: bool, **kwargs: Any) -> None:
        model = create_timm_model(name, pretrained, features_only=True, out_indices=(-1,), **kwargs)
        super().__init__(model, frozen)
        self.out_dim = model.feature_info.channels()[-1]

    def forward(self, pixel_values: Tensor) -> EncodedImage:
        grid = self.model(pixel_values)[-1]  # [B, C, h, w]
        batch, _, rows, cols = grid.shape
        cells = grid.flatten(2).transpose(1, 2)  # [B, h * w, C]
        boxes = grid_boxes(rows, cols, grid.device).to(cells.dtype).expand(batch, rows * cols, 4)
        mask = torch.ones(batch, rows * cols, dtype=torch.bool, device=grid.device)
        return EncodedImage(cells, boxes, mask)


def build_image_encoder(config: VLBertConfig) -> nn.Module:
    """The encoder the config names. For pixel encoders, `config.v_feature_size` is set to its width."""
    kwargs = dict(config.image_model_kwargs or {})
    if config.image_encoder == "regions":
        return RegionInputs(config.v_feature_size)
    if config.image_encoder == "vit":
        encoder: nn.Module = TimmViTEncoder(
            config.image_model, config.image_pretrained, config.image_size, config.freeze_image_encoder, **kwargs
        )
    else:
        encoder = TimmCNNEncoder(config.image_model, config.image_pretrained, config.freeze_image_encoder, **kwargs)
    config.v_feature_size = encoder.out_dim
    return encoder
