"""Loss functions, apart from the modules that produce the logits.

Label conventions: MLM labels use -100 for positions that are not predicted; ITM labels are
1 = the pair matches, 0 = it does not; region masks are [B, N] over the encoder's regions (the IMG
token, when the model prepends one, is never a target).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from vlbert.data.pipeline.masking import IGNORE_INDEX
from vlbert.models.outputs import PreTrainingOutput


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy over masked positions. logits [B, L, V], labels [B, L] (-100 = ignore); or
    logits [M, V] scored at the M positions where labels != -100 only (row-major order)."""
    if logits.dim() == 2:
        labels = labels[labels != IGNORE_INDEX]  # [M]
        if logits.shape[0] != labels.shape[0]:
            raise ValueError(f"{logits.shape[0]} MLM scores for {labels.shape[0]} masked positions")
        return F.cross_entropy(logits.float(), labels)
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


def _drop_global_token(region_logits: Tensor, num_regions: int) -> Tensor:
    # [B, R, T] -> [B, N, T]: the model prepends the IMG token, targets cover the N regions only.
    return region_logits[:, region_logits.shape[1] - num_regions :]


def region_kl_loss(region_logits: Tensor, target_probs: Tensor, masked: Tensor) -> Tensor:
    """KL(target || softmax(logits)) summed over classes, averaged over masked regions.

    region_logits [B, R, C] (R = N or N + 1), target_probs [B, N, C], masked [B, N] bool.
    """
    logits = _drop_global_token(region_logits, target_probs.shape[1]).float()
    kl = F.kl_div(F.log_softmax(logits, dim=-1), target_probs.float(), reduction="none").sum(-1)  # [B, N]
    return (kl * masked).sum() / masked.sum().clamp(min=1)


def region_regression_loss(region_logits: Tensor, target_features: Tensor, masked: Tensor) -> Tensor:
    """Mean squared error to the masked regions' original features, averaged over them.

    region_logits [B, R, Df], target_features [B, N, Df], masked [B, N] bool.
    """
    pred = _drop_global_token(region_logits, target_features.shape[1]).float()
    err = (pred - target_features.float().detach()).pow(2).mean(-1)  # [B, N]
    return (err * masked).sum() / masked.sum().clamp(min=1)


def itm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the match classifier. logits [B, 2], labels [B] (1 = match)."""
    return F.cross_entropy(logits.float(), labels.long())


def itc_loss(text_embed: Tensor, image_embed: Tensor, logit_scale: Tensor,
             extra_image_embed: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE over the batch: caption i matches image i. Embeddings [B, E], unit norm.
    `extra_image_embed` [P, E]: more images that match no caption, as extra text->image negatives."""
    logits = logit_scale * text_embed.float() @ image_embed.float().t()  # [B, B]
    target = torch.arange(logits.shape[0], device=logits.device)
    t2i = logits
    if extra_image_embed is not None:
        t2i = torch.cat([logits, logit_scale * text_embed.float() @ extra_image_embed.float().t()], 1)  # [B, B + P]
    return 0.5 * (F.cross_entropy(t2i, target) + F.cross_entropy(logits.t(), target))


def vqa_loss(logits: Tensor, soft_scores: Tensor) -> Tensor:
    """BCE-with-logits on VQA soft scores, summed over answers and averaged over questions
    (the original's `mean() * num_answers`). logits, soft_scores [B, A]."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), soft_scores.float(), reduction="none")
    return bce.sum(-1).mean()


def caption_loss(logits: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Next-token cross-entropy: logits at i predict token i + 1. logits [B, L, V], ids/mask [B, L]."""
    targets = input_ids[:, 1:].masked_fill(~attention_mask[:, 1:].bool(), IGNORE_INDEX)
    return mlm_loss(logits[:, :-1], targets)


@dataclass
class PreTrainingTargets:
    mlm_labels: Tensor | None = None  # [B, L], -100 where not masked
    region_labels: Tensor | None = None  # [B, N] bool: regions to predict (masked or kept, 15 %)
    region_targets: Tensor | None = None  # [B, N, C] class probabilities (KL objective)
    itm_labels: Tensor | None = None  # [B], 1 = match
    itc_pairs_aligned: bool = True  # the batch holds aligned pairs (needed for ITC)


@dataclass
class LossOutput:
    total: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


def pretraining_loss(
    out: PreTrainingOutput,
    targets: PreTrainingTargets,
    weights: dict[str, float],
    region_objective: str,
    extra_image_embed: Tensor | None = None,
) -> LossOutput:
    """Weighted sum of the objectives in `weights` ({"mlm", "mrm", "itm", "itc"} -> weight);
    `extra_image_embed` [P, E]: extra ITC negatives (see `itc_loss`)."""
    parts: dict[str, Tensor] = {}
    if weights.get("mlm") and targets.mlm_labels is not None:
        parts["mlm"] = mlm_loss(out.mlm_logits, targets.mlm_labels)
    if weights.get("mrm") and targets.region_labels is not None:
        if region_objective == "kl":
            if targets.region_targets is None:
                raise ValueError("the KL region objective needs region_targets (class distributions)")
            parts["mrm"] = region_kl_loss(out.region_logits, targets.region_targets, targets.region_labels)
        else:
            feats = out.backbone.visual_features
            parts["mrm"] = region_regression_loss(
                out.region_logits, _drop_global_token(feats, targets.region_labels.shape[1]), targets.region_labels
            )
    if weights.get("itm") and targets.itm_labels is not None:
        parts["itm"] = itm_loss(out.itm_logits, targets.itm_labels)
    if weights.get("itc") and targets.itc_pairs_aligned:
        parts["itc"] = itc_loss(out.text_embed, out.image_embed, out.logit_scale, extra_image_embed)
    if not parts:
        raise ValueError(f"no objective to compute: weights {weights} and the targets given share none")
    total = sum(weights[name] * value for name, value in parts.items())
    return LossOutput(total=total, parts=parts)  # type: ignore[arg-type]
