"""Where a VQA answer came from, drawn as one weight per region: the map the demo shows and the
grounding score (`vlbert.run.grounding`) measures.

Three methods:
- "removal" (the default): each region left out of the scene in turn, the weight how far the
  answer's score falls (`vlbert.models.occlusion`): what the answer needed. Region inputs only.
- "occlusion": the same with each region's features zeroed instead, as masked region modelling
  hides it; the default for models that read pixels (`PIXEL_MAP_METHOD`).
- "attention": the co-attention probabilities from the text to the regions, averaged over the
  text's tokens, the heads and the blocks (`vlbert.models.attention_maps`): where the model
  looked, which is not always what it used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vlbert.models.attention_maps import record_coattention, text_to_region_weights
from vlbert.models.occlusion import occlusion_map
from vlbert.run.map_methods import DEFAULT_MAP_METHOD, MAP_METHODS
from vlbert.run.predict import Predictor


@dataclass
class AnswerMap:
    probs: Tensor  # [A] the answers' probabilities (sigmoid)
    weights: Tensor  # [N] each region's share, summing to 1
    boxes: Tensor  # [N, 4] the regions' normalised boxes
    method: str  # a key of MAP_METHODS


def check_map_method(method: str) -> str:
    if method not in MAP_METHODS:
        raise ValueError(f"map method must be one of {', '.join(MAP_METHODS)}, got {method!r}")
    return method


def answer_map(predictor: Predictor, inputs: dict[str, Tensor], question: str,
               method: str = DEFAULT_MAP_METHOD) -> AnswerMap:
    """The VQA model's answers to `question` about one image's inputs (`Predictor.image_inputs`)
    and the map of its top answer by `method`."""
    check_map_method(method)
    model = predictor.model
    if method in ("occlusion", "removal"):
        ids, mask = predictor.text_inputs(question)
        occluded = occlusion_map(model, ids, mask, inputs, hide="zero" if method == "occlusion" else "remove")
        return AnswerMap(occluded.logits.sigmoid(), occluded.weights, occluded.boxes, method)
    with record_coattention(model) as maps:
        out = predictor.vqa_output(inputs, question)
    with torch.inference_mode():
        boxes = model.vlbert.encode_regions(**inputs).boxes[0]  # [N, 4]
    weights = text_to_region_weights(maps, out.backbone.text_mask, model.config.add_global_image_token)[0]  # [N]
    return AnswerMap(out.logits[0].sigmoid().float().cpu(), weights.float().cpu(), boxes.float().cpu(), method)
