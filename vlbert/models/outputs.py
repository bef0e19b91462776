"""Typed outputs of the backbone and the task models."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class TextStates:
    """The text stream up to the first co-attention block."""

    hidden: Tensor  # [B, L, Dt]
    mask: Tensor  # [B, L] bool, True = real token
    causal: bool = False  # sequence-to-sequence (captioning) masking

    def select(self, index: Tensor) -> "TextStates":
        """Rows `index` [P] (repeats allowed): re-pair cached states without re-encoding."""
        return TextStates(self.hidden[index], self.mask[index], self.causal)

    def trimmed(self) -> "TextStates":
        """Without the trailing columns that are padding in every row (texts cached together are
        padded to the longest; a batch of short ones need not carry that padding)."""
        length = int(self.mask.any(0).nonzero().max()) + 1 if self.mask.any() else 1
        return TextStates(self.hidden[:, :length], self.mask[:, :length], self.causal)


@dataclass
class ImageStates:
    """The visual stream up to the first co-attention block."""

    hidden: Tensor  # [B, R, Dv] (R includes the IMG token when the config adds one)
    mask: Tensor  # [B, R] bool, True = real region
    features: Tensor  # [B, R, Df] encoder features before region masking (regression targets)
    locations: Tensor | None = None  # [B, R, 5] boxes, kept when the visual attention reads them

    def select(self, index: Tensor) -> "ImageStates":
        """Rows `index` [P] (repeats allowed)."""
        locations = None if self.locations is None else self.locations[index]
        return ImageStates(self.hidden[index], self.mask[index], self.features[index], locations)


@dataclass
class VLBertOutput:
    """What the backbone returns."""

    text_hidden: Tensor  # [B, L, Dt] last text layer
    visual_hidden: Tensor  # [B, R, Dv] last visual layer
    pooled_text: Tensor  # [B, Dbi] ReLU(Linear(text CLS))
    pooled_visual: Tensor  # [B, Dbi] ReLU(Linear(IMG token))
    text_mask: Tensor  # [B, L] bool
    visual_mask: Tensor  # [B, R] bool
    unimodal_text: Tensor  # [B, Dt] text CLS before the first co-attention block
    unimodal_visual: Tensor  # [B, Dv] IMG token before the first co-attention block
    visual_features: Tensor  # [B, R, Df] encoder features before region masking


@dataclass
class PreTrainingOutput:
    mlm_logits: Tensor  # [B, L, vocab], or [M, vocab] when only the M masked positions are scored
    region_logits: Tensor  # [B, R, target]: detector classes (KL) or features (regression)
    itm_logits: Tensor  # [B, 2], column 1 = "matches"
    text_embed: Tensor  # [B, itc_dim] L2-normalised unimodal text embedding
    image_embed: Tensor  # [B, itc_dim] L2-normalised unimodal image embedding
    logit_scale: Tensor  # [] exp() of the learnt ITC temperature
    backbone: VLBertOutput


@dataclass
class VQAOutput:
    logits: Tensor  # [B, num_answers]
    backbone: VLBertOutput


@dataclass
class RetrievalOutput:
    itm_logits: Tensor  # [B, 2], column 1 = "matches"
    text_embed: Tensor  # [B, itc_dim]
    image_embed: Tensor  # [B, itc_dim]
    logit_scale: Tensor  # []
    backbone: VLBertOutput


@dataclass
class CaptioningOutput:
    logits: Tensor  # [B, L, vocab]; position i predicts token i + 1
    backbone: VLBertOutput
