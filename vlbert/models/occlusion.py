"""Which regions an answer rests on, by occlusion: hide each region in turn and measure how far
the answer's score falls.

A region is hidden the way masked region modelling hides it in pre-training: its features are
zeroed and its box is kept (`masked_regions`), so the occluded input is one the model has seen.
All N occluded copies run as one batch of N rows. Unlike the co-attention probabilities, the
map says what the answer needed: a region the answer does not depend on gets no weight, however
much attention it drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class OcclusionMap:
    logits: Tensor  # [A] the answers' logits with every region in view
    answer: int  # the answer index the map explains
    drops: Tensor  # [N] how far that logit falls with region i hidden (negative: it rises)
    weights: Tensor  # [N] the positive drops as shares summing to 1 (all zero: equal shares)
    boxes: Tensor  # [N, 4] the regions' normalised boxes


def _rows(value: Tensor, count: int) -> Tensor:
    """[1, ...] -> [count, ...] (a view, no copy)."""
    return value.expand(count, *value.shape[1:])


@torch.inference_mode()
def occlusion_map(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, image_inputs: dict[str, Tensor],
                  answer: int | None = None) -> OcclusionMap:
    """A VQA model's answer to one question about one image, explained by occlusion.

    input_ids, attention_mask [1, L]; image_inputs: `encode_image` arguments for one image
    (region_features [1, N, Df] + region_boxes [1, N, 4], or pixel_values [1, 3, H, W]);
    `answer`: the answer index to explain (default: the model's top answer)."""
    if input_ids.shape[0] != 1:
        raise ValueError(f"occlusion_map explains one question at a time, got a batch of {input_ids.shape[0]}")
    full = model(input_ids, attention_mask=attention_mask, **image_inputs).logits[0]  # [A]
    answer = int(full.argmax()) if answer is None else answer
    regions = model.vlbert.encode_regions(**{k: v for k, v in image_inputs.items() if k != "masked_regions"})
    count = regions.features.shape[1]  # N, without the IMG token
    hidden = torch.eye(count, dtype=torch.bool, device=input_ids.device)  # [N, N]: row i hides region i
    real = regions.mask[0]  # [N] False = padding
    batch = {k: _rows(v, count) for k, v in image_inputs.items()}
    occluded = model(_rows(input_ids, count), attention_mask=_rows(attention_mask, count),
                     masked_regions=hidden, **batch).logits[:, answer]  # [N]
    drops = (full[answer] - occluded).masked_fill(~real, 0.0)  # [N]
    support = drops.clamp_min(0.0)
    total = support.sum()
    weights = support / total if total > 0 else real.float() / real.sum().clamp_min(1)
    return OcclusionMap(full.float().cpu(), answer, drops.float().cpu(), weights.float().cpu(), regions.boxes[0].cpu())
