"""Attention masks for the two streams and the co-attention between them.

All masks are boolean, True = the query may attend to that key, shaped to broadcast against
`[batch, heads, queries, keys]` as `scaled_dot_product_attention` expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class StreamMasks:
    text: Tensor  # [B, 1, 1 or L, L]   text queries over text keys
    visual: Tensor  # [B, 1, 1, R]       image queries over image keys
    text_to_visual: Tensor  # [B, 1, 1, R]  text queries over image keys
    visual_to_text: Tensor  # [B, 1, 1, L]  image queries over text keys


def text_self_mask(text_mask: Tensor, causal: bool) -> Tensor:
    """[B, L] bool -> [B, 1, 1, L], or [B, 1, L, L] lower-triangular for sequence-to-sequence."""
    keys = text_mask[:, None, None, :]  # [B, 1, 1, L]
    if not causal:
        return keys
    length = text_mask.shape[1]
    tri = torch.ones(length, length, dtype=torch.bool, device=text_mask.device).tril()
    return keys & tri  # [B, 1, L, L]


def build_stream_masks(text_mask: Tensor, visual_mask: Tensor, causal: bool = False) -> StreamMasks:
    """Masks for a batch of texts ([B, L] bool) and images ([B, R] bool).

    With `causal=True` (captioning) each text token sees earlier tokens and the image, and the
    image sees only the first text token ([CLS]), so no caption token leaks into the image stream
    and back to an earlier position.
    """
    visual_keys = visual_mask[:, None, None, :]  # [B, 1, 1, R]
    text_keys = text_mask[:, None, None, :]  # [B, 1, 1, L]
    if causal:
        first_only = torch.zeros_like(text_mask)
        first_only[:, 0] = True
        text_keys = first_only[:, None, None, :]
    return StreamMasks(
        text=text_self_mask(text_mask, causal),
        visual=visual_keys,
        text_to_visual=visual_keys,
        visual_to_text=text_keys,
    )
