"""Where the model looked: the co-attention probabilities of a forward pass, recorded without
changing the model.

`record_coattention(model)` hooks every co-attention block for the duration of a `with` block;
each block's inputs are re-projected once more to write out the probabilities its fused
attention used (`CoAttention.attention_probs`). Outside the block the model runs exactly as
before, with no hooks and no extra work. `text_to_region_weights` reduces a recording to one
weight per region: how much the text attended to each region, averaged over the text's tokens,
the heads and the blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from vlbert.models.coattention import CoAttention


@dataclass
class CoAttentionMaps:
    """Per co-attention block, in order of computation."""

    visual_to_text: list[Tensor] = field(default_factory=list)  # each [B, H, R, L]
    text_to_visual: list[Tensor] = field(default_factory=list)  # each [B, H, L, R]


@contextmanager
def record_coattention(model: nn.Module) -> Iterator[CoAttentionMaps]:
    """Record the co-attention probabilities of every forward pass run inside the block."""
    maps = CoAttentionMaps()

    def hook(module: CoAttention, args: tuple[Any, ...], _output: Any) -> None:
        with torch.no_grad():
            image_over_text, text_over_image = module.attention_probs(*args)
        maps.visual_to_text.append(image_over_text.detach())
        maps.text_to_visual.append(text_over_image.detach())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, CoAttention)]
    if not handles:
        raise ValueError(f"{type(model).__name__} has no co-attention block to record")
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def text_to_region_weights(maps: CoAttentionMaps, text_mask: Tensor, skip_global: bool) -> Tensor:
    """One weight per region and image, summing to 1: the text-over-image probabilities averaged
    over the blocks, the heads and the real text tokens. text_mask [B, L] bool; `skip_global`
    drops the IMG token (the first visual position) and renormalises over the regions.
    Returns [B, N] (N regions, without the IMG token when skipped)."""
    if not maps.text_to_visual:
        raise ValueError("no co-attention was recorded: run the model inside record_coattention")
    probs = torch.stack(maps.text_to_visual).mean(dim=(0, 2))  # [B, L, R]
    tokens = text_mask.to(probs.dtype)[:, :, None]  # [B, L, 1]
    weights = (probs * tokens).sum(1) / tokens.sum(1).clamp_min(1)  # [B, R]
    if skip_global:
        weights = weights[:, 1:]  # [B, N]
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
