"""One training objective per task: a batch in, a `LossOutput` out.

ITM negatives are made by re-pairing the batch's cached unimodal states (no second encoding):
"random" pairs each image with another image's caption and each caption with another caption's
image; "hard" samples them in proportion to the ITC similarity (ALBEF), so the negatives are the
pairs the contrastive head confuses. Pairs of the same image, or with an identical caption, are
never used as negatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from vlbert.data.pipeline.masking import IGNORE_INDEX
from vlbert.data.pipeline.negatives import hard_negative_indices, random_negative_indices
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
    weights: dict[str, float] = field(default_factory=lambda: dict(mlm=1.0, mrm=1.0, itm=1.0, itc=1.0))  # loss weights; 0 = off
    negatives: Literal["hard", "random"] = "hard"  # ITM negatives: sampled by ITC similarity (ALBEF) or uniformly
    # the share of those re-paired negatives ITM scores, drawn at random each step: 1.0 = a caption
    # for each image and an image for each caption (ALBEF). Each negative is one more co-attention
    # pass, so with 2B of them they are most of a pre-training step's cost
    itm_negative_fraction: float = 1.0
    # also score each caption against its own image with the boxes rotated among the image's
    # regions (same objects, other places), as an ITM negative and an extra ITC negative: the
    # model must bind each object to its place (not in the original)
    box_negatives: bool = False
    # how the boxes move: "rotate" among the image's regions, or "mirror" the whole layout left <->
    # right or top <-> bottom (one of the two at random per image): a rotation is told apart by
    # one axis alone, a mirror only by the axis it flips, so both axes must be read
    box_negative_kind: Literal["rotate", "mirror"] = "rotate"
    # pre-training: MLM selects these words' tokens with probability mlm_focus_prob instead of 15 %
    # (e.g. a description's colour, shape and position words); empty = BERT's uniform masking
    mlm_focus_words: list[str] = field(default_factory=list)  # words MLM masks more often (pre-training)
    mlm_focus_prob: float = 0.5  # the masking probability of mlm_focus_words' tokens

    def __post_init__(self) -> None:
        if not 0.0 <= self.mlm_focus_prob <= 1.0:
            raise ValueError(f"objective.mlm_focus_prob: expected a probability in [0, 1], got {self.mlm_focus_prob}")
        if not 0.0 < self.itm_negative_fraction <= 1.0:
            raise ValueError(f"objective.itm_negative_fraction: expected a fraction in (0, 1], got "
                             f"{self.itm_negative_fraction}")
        if self.box_negative_kind not in ("rotate", "mirror"):
            raise ValueError(f"objective.box_negative_kind: expected 'rotate' or 'mirror', got {self.box_negative_kind!r}")


def _generator(generator: torch.Generator | None) -> torch.Generator:
    """The given generator, or one seeded from the global RNG (so checkpoints restore it)."""
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))


def negative_pairs(batch: Any, text_embed: Tensor, image_embed: Tensor, mode: str,
                   generator: torch.Generator | None = None, fraction: float = 1.0) -> tuple[Tensor, Tensor]:
    """Re-paired (text row, image row) negatives: a caption for each image and an image for each
    caption, or a random `fraction` of those pairs. Never the same image id nor an identical
    caption (those would be false negatives); rows with no valid partner get none. Returns two
    [P] index vectors."""
    size = len(batch)
    ids = list(batch.image_ids) or [str(i) for i in range(size)]
    texts = list(batch.texts) or None
    gen = _generator(generator)
    if mode == "hard":  # sampled in proportion to softmax(ITC similarity), as ALBEF
        per_image = hard_negative_indices(text_embed, image_embed, ids, texts, sample=True, generator=gen)
        per_text = hard_negative_indices(image_embed, text_embed, ids, texts, sample=True, generator=gen)
    elif mode == "random":
        own = torch.arange(size)
        per_image = random_negative_indices(ids, texts or ids, 1.0, gen)
        per_text = random_negative_indices(ids, texts or ids, 1.0, gen)
        per_image, per_text = per_image.masked_fill(per_image == own, -1), per_text.masked_fill(per_text == own, -1)
    else:
        raise ValueError(f"negatives must be 'hard' or 'random', got {mode!r}")
    rows = torch.arange(size, device=per_image.device)
    text_idx = torch.cat([per_image, rows])
    image_idx = torch.cat([rows, per_text.to(rows.device)])
    keep = (text_idx >= 0) & (image_idx >= 0)
    text_idx, image_idx = text_idx[keep], image_idx[keep]  # [P] each
    if fraction < 1.0:
        chosen = torch.randperm(len(text_idx), generator=gen)[: round(fraction * len(text_idx))].to(text_idx.device)
        text_idx, image_idx = text_idx[chosen], image_idx[chosen]
    return text_idx.to(text_embed.device), image_idx.to(text_embed.device)


def rotate_boxes(boxes: Tensor, mask: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each row's boxes rotated by a random 1..n-1 places among its n real regions (real regions
    first, padding after, as the collate function lays them out). boxes [B, N, 4], mask [B, N] bool
    -> (rotated boxes [B, N, 4], rows with at least 2 regions [B] bool)."""
    count = mask.sum(1)  # [B]
    offset = (torch.rand(len(count), generator=generator).to(count.device) * (count - 1).clamp(min=1)).long() + 1
    index = torch.arange(boxes.shape[1], device=boxes.device)[None]  # [1, N]
    source = torch.where(mask, (index + offset[:, None]) % count.clamp(min=1)[:, None], index)  # [B, N]
    return boxes.gather(1, source[..., None].expand_as(boxes)), count >= 2


def mirror_boxes(boxes: Tensor, mask: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each row's layout mirrored left <-> right or top <-> bottom, the axis drawn at random per
    row. boxes [B, N, 4] normalised (x1, y1, x2, y2), mask [B, N] bool -> (mirrored boxes [B, N, 4],
    rows with at least one region [B] bool). Padding boxes are left as they are."""
    vertical = torch.rand(boxes.shape[0], generator=generator).to(boxes.device) < 0.5  # [B]
    x1, y1, x2, y2 = boxes.unbind(-1)  # [B, N] each
    flipped_x = torch.stack([1 - x2, y1, 1 - x1, y2], dim=-1)  # [B, N, 4]
    flipped_y = torch.stack([x1, 1 - y2, x2, 1 - y1], dim=-1)
    mirrored = torch.where(vertical[:, None, None], flipped_y, flipped_x)
    return torch.where(mask[..., None], mirrored, boxes), mask.any(1)


@dataclass
class BoxNegatives:
    """The batch's images with their boxes rotated among their regions (same objects, other places)."""

    rows: Tensor  # [P] the batch rows they come from (images with at least 2 regions)
    states: ImageStates  # their unimodal states, P rows


def box_negatives(model: Any, batch: Any, generator: torch.Generator, kind: str = "rotate") -> BoxNegatives | None:
    """Each image of the batch encoded again with its boxes rotated among its regions (kind
    "rotate") or its layout mirrored ("mirror"); None without boxes."""
    inputs = batch.image_inputs()
    if inputs.get("region_boxes") is None or inputs.get("region_mask") is None:
        return None
    move = mirror_boxes if kind == "mirror" else rotate_boxes
    boxes, rows = move(inputs["region_boxes"], inputs["region_mask"].bool(), generator)
    if not rows.any():
        return None
    keep = rows.nonzero().flatten()
    moved = model.vlbert.encode_image(**{**inputs, "region_boxes": boxes,
                                         "masked_regions": getattr(batch, "masked_regions", None)})
    return BoxNegatives(keep, moved.select(keep))


def box_negative_embeds(model: Any, moved: BoxNegatives | None) -> Tensor | None:
    """ITC embeddings [P, E] of the moved images (extra text->image negatives), or None."""
    return None if moved is None else model.itc_head.embed_image(moved.states.hidden[:, 0])


def itm_with_negatives(model: Any, batch: Any, text: TextStates, image: ImageStates, out: Any, mode: str,
                       generator: torch.Generator | None = None, moved: BoxNegatives | None = None,
                       fraction: float = 1.0) -> Tensor:
    """ITM loss over the B positives (`out.itm_logits`), up to 2B re-paired negatives (a random
    `fraction` of them) and, with `moved` (box negatives), each caption against its own image
    with its boxes moved."""
    text_idx, image_idx = negative_pairs(batch, out.text_embed.detach(), out.image_embed.detach(), mode, generator,
                                         fraction)
    logits = out.itm_logits
    if len(text_idx):
        logits = torch.cat([logits, model.match_logits(text.select(text_idx), image.select(image_idx))])
    if moved is not None:
        logits = torch.cat([logits, model.match_logits(text.select(moved.rows), moved.states)])
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    labels[: out.itm_logits.shape[0]] = 1
    return itm_loss(logits, labels)


def _moved(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None) -> BoxNegatives | None:
    return box_negatives(model, batch, _generator(generator), cfg.box_negative_kind) if cfg.box_negatives else None


def pretrain_objective(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None = None) -> LossOutput:
    """MLM + masked region modelling + ITC on the batch's aligned pairs, ITM with negatives."""
    text, image = model.vlbert.encode_pair(**batch.model_inputs())
    scored = batch.mlm_labels != IGNORE_INDEX if batch.mlm_labels is not None else None  # [B, L]
    out = model.forward_states(text, image, mlm_positions=scored)  # the vocabulary scored at masked tokens only
    targets = PreTrainingTargets(
        mlm_labels=batch.mlm_labels, region_labels=batch.mrm_labels, region_targets=batch.region_class_probs,
    )
    weights = {k: v for k, v in cfg.weights.items() if k != "itm"}
    moved = _moved(model, batch, cfg, generator)
    result = pretraining_loss(out, targets, weights, model.config.resolved_region_objective,
                              box_negative_embeds(model, moved))
    if cfg.weights.get("itm"):
        result.parts["itm"] = itm_with_negatives(model, batch, text, image, out, cfg.negatives, generator, moved,
                                                   cfg.itm_negative_fraction)
        result.total = result.total + cfg.weights["itm"] * result.parts["itm"]
    return result


def retrieval_objective(model: Any, batch: Any, cfg: ObjectiveConfig, generator: torch.Generator | None = None) -> LossOutput:
    """ITC + ITM with (hard) negatives; with the ITM weight at 0, ITC alone, from the unimodal
    states only (no co-attention pass)."""
    text, image = model.vlbert.encode_pair(**batch.model_inputs())
    moved = _moved(model, batch, cfg, generator)
    extra = box_negative_embeds(model, moved)
    if not cfg.weights.get("itm", 1.0):
        text_embed, image_embed, scale = model.itc_head(text.hidden[:, 0], image.hidden[:, 0])  # [B, E] x2
        itc = itc_loss(text_embed, image_embed, scale, extra)
        return LossOutput(total=cfg.weights.get("itc", 1.0) * itc, parts={"itc": itc})
    out = model.forward_states(text, image)
    parts = {"itc": itc_loss(out.text_embed, out.image_embed, out.logit_scale, extra)}
    parts["itm"] = itm_with_negatives(model, batch, text, image, out, cfg.negatives, generator, moved,
                                      cfg.itm_negative_fraction)
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


OBJECTIVES: dict[str, Callable[..., LossOutput]] = {  # one per task of `vlbert.tasks.TASKS`, in its order
    "pretraining": pretrain_objective,
    "vqa": vqa_objective,
    "retrieval": retrieval_objective,
    "captioning": caption_objective,
}
