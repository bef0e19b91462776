"""One training objective per task: a batch in, a `LossOutput` out.

ITM negatives are made by re-pairing the batch's cached unimodal states (no second encoding):
"random" pairs each image with another image's caption and each caption with another caption's
image; "hard" samples them in proportion to the ITC similarity (ALBEF), so the negatives are the
pairs the contrastive head confuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from vlbert.losses import (
    LossOutput,
    PreTrainingTargets,
    caption_loss,
    itc_loss,
    itm_loss,
    pretraining_loss,
    vqa_loss,
)
from vlbert.models.outputs import ImageStates, TextStates


@dataclass
class ObjectiveConfig:
    weights: dict[str, float] = field(default_factory=lambda: dict(mlm=1.0, mrm=1.0, itm=1.0, itc=1.0))
    negatives: str = "hard"  # "hard" | "random"


def negative_partners(sims: Tensor, mode: str, generator: torch.Generator | None = None) -> Tensor:
    """For each row i of a [B, B] similarity matrix, a column j != i (B >= 2)."""
    size = sims.shape[0]
    if size < 2:
        raise ValueError("ITM negatives need a batch of at least 2 pairs")
    if mode == "random":
        offset = torch.randint(1, size, (size,), generator=generator, device=sims.device)
        return (torch.arange(size, device=sims.device) + offset) % size
    if mode != "hard":
        raise ValueError(f"negatives must be 'hard' or 'random', got {mode!r}")
    weights = sims.detach().float().softmax(dim=1).clone()
    weights.fill_diagonal_(0.0)
    weights = weights + (1 - torch.eye(size, device=sims.device)) * 1e-6  # never all zero
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def itm_with_negatives(model: Any, text: TextStates, image: ImageStates, pos_logits: Tensor,
                       sims: Tensor, mode: str, generator: torch.Generator | None = None) -> Tensor:
    """ITM loss over B positives and 2B re-paired negatives (a caption for each image, an image
    for each caption). sims [B, B] = text x image ITC similarities."""
    size = sims.shape[0]
    caption_for_image = negative_partners(sims.t(), mode, generator)  # [B] text index per image
    image_for_caption = negative_partners(sims, mode, generator)  # [B] image index per text
    rows = torch.arange(size, device=sims.device)
    neg_text = torch.cat([caption_for_image, rows])
    neg_image = torch.cat([rows, image_for_caption])
    neg_logits = model.match_logits(text.select(neg_text), image.select(neg_image))  # [2B, 2]
    logits = torch.cat([pos_logits, neg_logits])
    labels = torch.cat([torch.ones(size), torch.zeros(2 * size)]).long().to(logits.device)
    return itm_loss(logits, labels)


def pretrain_objective(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None = None) -> LossOutput:
    """MLM + masked region modelling + ITC on the batch's aligned pairs, ITM with negatives."""
    text, image = model.vlbert.encode_pair(**batch.model_inputs())
    out = model.forward_states(text, image)
    targets = PreTrainingTargets(
        mlm_labels=batch.mlm_labels, region_labels=batch.mrm_labels, region_targets=batch.region_class_probs,
    )
    weights = {k: v for k, v in cfg.weights.items() if k != "itm"}
    result = pretraining_loss(out, targets, weights, model.config.resolved_region_objective)
    if cfg.weights.get("itm"):
        sims = out.text_embed @ out.image_embed.t()
        result.parts["itm"] = itm_with_negatives(model, text, image, out.itm_logits, sims, cfg.negatives, generator)
        result.total = result.total + cfg.weights["itm"] * result.parts["itm"]
    return result


def retrieval_objective(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None = None) -> LossOutput:
    """ITC + ITM with (hard) negatives."""
    text, image = model.vlbert.encode_pair(**batch.model_inputs())
    out = model.forward_states(text, image)
    parts = {"itc": itc_loss(out.text_embed, out.image_embed, out.logit_scale)}
    sims = out.text_embed @ out.image_embed.t()
    parts["itm"] = itm_with_negatives(model, text, image, out.itm_logits, sims, cfg.negatives, generator)
    total = sum(cfg.weights.get(k, 1.0) * v for k, v in parts.items())
    return LossOutput(total=total, parts=parts)  # type: ignore[arg-type]


def vqa_objective(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None = None) -> LossOutput:
    out = model(**batch.model_inputs())
    loss = vqa_loss(out.logits, batch.answer_scores)
    return LossOutput(total=loss, parts={"vqa": loss})


def caption_objective(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None = None) -> LossOutput:
    inputs = batch.model_inputs()
    out = model(**inputs)
    loss = caption_loss(out.logits, inputs["input_ids"], inputs["attention_mask"])
    return LossOutput(total=loss, parts={"caption": loss})


OBJECTIVES: dict[str, Callable[..., LossOutput]] = {
    "pretraining": pretrain_objective,
    "retrieval": retrieval_objective,
    "vqa": vqa_objective,
    "captioning": caption_objective,
}
