"""Which regions an answer rests on, by occlusion: hide each region in turn and measure how far
the answer's score falls.

A region is hidden in one of two ways (`hide`):
- "zero": the way masked region modelling hides it in pre-training, its features zeroed and its
  box kept (`masked_regions`), an input the pre-trained model has seen;
- "remove": left out of the scene, its region mask off, so no other token attends to it (region
  inputs only: a grid cell or patch cannot be left out).
All N occluded copies run as one batch of N rows. Unlike the co-attention probabilities, the
map says what the answer needed: a region the answer does not depend on gets no weight, however
much attention it drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
                  answer: int | None = None, hide: Literal["zero", "remove"] = "zero") -> OcclusionMap:
    """A VQA model's answer to one question about one image, explained by occlusion.

    input_ids, attention_mask [1, L]; image_inputs: `encode_image` arguments for one image
    (region_features [1, N, Df] + region_boxes [1, N, 4], or pixel_values [1, 3, H, W]);
    `answer`: the answer index to explain (default: the model's top answer); `hide`: "zero" or
    "remove" (module docstring)."""
    if input_ids.shape[0] != 1:
        raise ValueError(f"occlusion_map explains one question at a time, got a batch of {input_ids.shape[0]}")
    if hide not in ("zero", "remove"):
        raise ValueError(f"hide must be 'zero' or 'remove', got {hide!r}")
    if hide == "remove" and "region_features" not in image_inputs:
        raise ValueError("removal (hide='remove') leaves regions out of the scene: it needs region inputs, and "
                         "a model that reads pixels has none; use occlusion or attention")
    full = model(input_ids, attention_mask=attention_mask, **image_inputs).logits[0]  # [A]
    answer = int(full.argmax()) if answer is None else answer
    regions = model.vlbert.encode_regions(**{k: v for k, v in image_inputs.items() if k != "masked_regions"})
    count = regions.features.shape[1]  # N, without the IMG token
    hidden = torch.eye(count, dtype=torch.bool, device=input_ids.device)  # [N, N]: row i hides region i
    real = regions.mask[0]  # [N] False = padding
    batch = {k: _rows(v, count) for k, v in image_inputs.items()}
    if hide == "zero":
        batch["masked_regions"] = hidden
    else:  # row i: the image's own region mask with region i off
        batch["region_mask"] = regions.mask.expand(count, -1) & ~hidden  # [N, N]
    occluded = model(_rows(input_ids, count), attention_mask=_rows(attention_mask, count),
                     **batch).logits[:, answer]  # [N]
    drops = (full[answer] - occluded).masked_fill(~real, 0.0)  # [N]
    support = drops.clamp_min(0.0)
    total = support.sum()
    weights = support / total if total > 0 else real.float() / real.sum().clamp_min(1)
    return OcclusionMap(full.float().cpu(), answer, drops.float().cpu(), weights.float().cpu(), regions.boxes[0].cpu())
