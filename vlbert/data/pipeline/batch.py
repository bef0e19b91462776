"""The typed containers that cross module boundaries: one decoded `Example`, a collated `Batch`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

from vlbert.data.shards.stats import DataStats

# `VLBertModel.forward` keyword arguments that a batch provides.
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "region_features",
    "region_boxes",
    "region_mask",
    "pixel_values",
    "masked_regions",
)
IMAGE_INPUTS = ("region_features", "region_boxes", "region_mask", "pixel_values")  # `encode_image`


@dataclass
class Example:
    """One decoded example (an image with one text), as the loading pipeline hands it to collation."""

    key: str  # the tar sample key
    image_id: str
    input_ids: list[int]  # [L_i] with [CLS] ... [SEP]
    text: str  # the raw text behind input_ids (a caption, or a question for VQA)
    captions: list[str] = field(default_factory=list)  # every reference caption of the image
    pixel_values: Tensor | None = None  # [3, H, W]
    region_features: Tensor | None = None  # [N, D]
    region_boxes: Tensor | None = None  # [N, 4] normalised x1, y1, x2, y2
    region_class_probs: Tensor | None = None  # [N, C]
    answer_scores: Tensor | None = None  # [A] VQA soft scores
    answers: list[str] = field(default_factory=list)  # raw annotator answers
    question_id: str | None = None
    question_type: str | None = None
    question_subtype: str | None = None  # e.g. "shape", or VQAv2's "what color is the"
    worker: int = 0  # the DataLoader worker whose stream this came from
    position: int = 0  # index in that worker's stream for this epoch (see `StreamPosition`)
    stats: DataStats | None = None  # counts since the previous example of the same worker


def _move(value: Any, fn: Any) -> Any:
    return fn(value) if isinstance(value, Tensor) else value


@dataclass
class Batch:
    """A collated batch. Tensors are None when the task or the image input does not use them."""

    input_ids: Tensor  # [B, L] long
    attention_mask: Tensor  # [B, L] bool
    token_type_ids: Tensor | None = None  # [B, L] long (zeros)
    pixel_values: Tensor | None = None  # [B, 3, H, W] (pixel inputs)
    region_features: Tensor | None = None  # [B, N, D] (region inputs)
    region_boxes: Tensor | None = None  # [B, N, 4] normalised x1, y1, x2, y2 in [0, 1]
    region_mask: Tensor | None = None  # [B, N] bool, False = padding
    region_class_probs: Tensor | None = None  # [B, N, C] detector class distributions
    mlm_labels: Tensor | None = None  # [B, L] long, -100 = not predicted
    masked_regions: Tensor | None = None  # [B, N] bool: features the model zeroes (subset of mrm_labels)
    mrm_labels: Tensor | None = None  # [B, N] bool: regions whose targets are predicted
    answer_scores: Tensor | None = None  # [B, A] float VQA soft scores
    keys: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # raw text of each row
    captions: list[list[str]] = field(default_factory=list)  # reference captions of each row's image
    question_ids: list[str | None] = field(default_factory=list)
    question_types: list[str | None] = field(default_factory=list)
    question_subtypes: list[str | None] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)  # raw annotator answers
    stats: DataStats = field(default_factory=DataStats)  # the workers' counts carried by these rows
    worker: int = 0  # every row of a DataLoader batch comes from one worker
    positions: list[int] = field(default_factory=list)  # each row's stream position (orders sharded evaluation)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        return self.apply(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by `DataLoader(pin_memory=True)`."""
        return self.apply(lambda t: t.pin_memory())

    def apply(self, fn: Any) -> Batch:
        """A copy with ``fn`` applied to every tensor field."""
        return replace(self, **{f.name: _move(getattr(self, f.name), fn) for f in fields(self)})

    def model_inputs(self) -> dict[str, Tensor | None]:
        """Exactly the keyword arguments of `VLBertModel.forward` (None where absent)."""
        return {name: getattr(self, name) for name in MODEL_INPUTS}

    def image_inputs(self) -> dict[str, Tensor | None]:
        """The image half, for `VLBertModel.encode_image` (e.g. encoding a retrieval gallery)."""
        return {name: getattr(self, name) for name in IMAGE_INPUTS}
