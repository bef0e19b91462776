"""Collation: `Example` s -> `Batch`, with padding, the masks and MLM / region masking drawn from a
generator seeded by (seed, epoch, the batch's keys and stream position). ITM negatives are made
by the objectives, from the batch's own pairs (`vlbert.engine.objectives`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from vlbert.data.pipeline.batch import Batch, Example
from vlbert.data.pipeline.masking import derive_seed, mask_regions, mask_tokens
from vlbert.data.pipeline.tokenize import TextSpec
from vlbert.data.shards.stats import DataStats


@dataclass
class CollateConfig:
    """What collation adds on top of padding. All off by default (evaluation batches)."""

    mlm_prob: float = 0.0  # BERT: 0.15
    mlm_focus_words: tuple[str, ...] = ()  # words whose tokens MLM selects with mlm_focus_prob instead
    mlm_focus_prob: float = 0.0
    mrm_prob: float = 0.0  # ViLBERT: 0.15
    mrm_zero_prob: float = 0.9  # of the masked regions, the fraction whose features are zeroed
    pixel_regions: int | None = None  # region count of a pixel encoder (region masking on pixels)
    seed: int = 0
    epoch: int = 0

    @classmethod
    def pretraining(cls, **overrides: object) -> CollateConfig:
        """ViLBERT's pre-training masking: MLM 15 %, region masking 15 % (90 % zeroed)."""
        recipe = {"mlm_prob": 0.15, "mrm_prob": 0.15}
        return cls(**{**recipe, **overrides})  # type: ignore[arg-type]


def pad_texts(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token id lists -> (ids [B, L], attention_mask [B, L] bool), L = the longest."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)  # [B, L]
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)  # [B, L]
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = True
    return ids, mask


def pad_rows(tensors: Sequence[Tensor], count: int) -> Tensor:
    """[N_i, ...] tensors -> [B, count, ...] zero-padded."""
    out = tensors[0].new_zeros((len(tensors), count, *tensors[0].shape[1:]))  # [B, N, ...]
    for row, t in enumerate(tensors):
        out[row, : t.shape[0]] = t
    return out


@dataclass
class RegionTensors:
    features: Tensor  # [B, N, D]
    boxes: Tensor  # [B, N, 4]
    mask: Tensor  # [B, N] bool
    class_probs: Tensor | None  # [B, N, C]


def collate_regions(examples: Sequence[Example]) -> RegionTensors:
    """Region features padded to the largest N in the batch."""
    features = [e.region_features for e in examples]
    if any(f is None for f in features):
        raise ValueError("some examples have region features and some do not")
    count = max(f.shape[0] for f in features)  # type: ignore[union-attr]
    mask = pad_rows([torch.ones(f.shape[0], dtype=torch.bool) for f in features], count)  # type: ignore[union-attr]
    probs = [e.region_class_probs for e in examples]
    return RegionTensors(
        features=pad_rows(features, count),  # type: ignore[arg-type]
        boxes=pad_rows([e.region_boxes for e in examples], count),  # type: ignore[misc]
        mask=mask,
        class_probs=None if any(p is None for p in probs) else pad_rows(probs, count),  # type: ignore[arg-type]
    )


def _stack_optional(values: Sequence[Tensor | None], what: str) -> Tensor | None:
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f"some examples have {what} and some do not")
    return torch.stack(values)  # type: ignore[arg-type]


class Collator:
    """``DataLoader`` ``collate_fn``: examples of one worker -> `Batch`."""

    def __init__(self, text: TextSpec, config: CollateConfig | None = None) -> None:
        self.text = text
        self.config = config or CollateConfig()

    def generator(self, examples: Sequence[Example]) -> torch.Generator:
        keys = [(e.key, e.question_id, e.position) for e in examples]
        return torch.Generator().manual_seed(derive_seed(self.config.seed, self.config.epoch, examples[0].worker, keys))

    def __call__(self, examples: Sequence[Example]) -> Batch:
        gen = self.generator(examples)
        input_ids, attention_mask = pad_texts([e.input_ids for e in examples], self.text.pad_id)
        batch = Batch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
            pixel_values=_stack_optional([e.pixel_values for e in examples], "pixel values"),
            answer_scores=_stack_optional([e.answer_scores for e in examples], "answer scores"),
            keys=[e.key for e in examples],
            image_ids=[e.image_id for e in examples],
            texts=[e.text for e in examples],
            captions=[e.captions for e in examples],
            question_ids=[e.question_id for e in examples],
            question_types=[e.question_type for e in examples],
            question_subtypes=[e.question_subtype for e in examples],
            answers=[e.answers for e in examples],
            stats=sum_stats(examples),
            worker=examples[0].worker,
            positions=[e.position for e in examples],
        )
        if examples[0].region_features is not None:
            regions = collate_regions(examples)
            batch.region_features, batch.region_boxes = regions.features, regions.boxes
            batch.region_mask, batch.region_class_probs = regions.mask, regions.class_probs
        self._mask(batch, gen)
        return batch

    def _mask(self, batch: Batch, gen: torch.Generator) -> None:
        """MLM and region masking in place."""
        cfg = self.config
        if cfg.mlm_prob > 0 or (cfg.mlm_focus_words and cfg.mlm_focus_prob > 0):
            special = torch.isin(batch.input_ids, torch.tensor(self.text.special_ids))  # [B, L]
            focus = torch.isin(batch.input_ids, torch.tensor(self.text.focus_ids, dtype=torch.long))  # [B, L]
            batch.input_ids, batch.mlm_labels = mask_tokens(
                batch.input_ids, batch.attention_mask, special,
                self.text.vocab_size, self.text.mask_id, cfg.mlm_prob, gen, focus, cfg.mlm_focus_prob,
            )  # fmt: skip
        if cfg.mrm_prob > 0:
            region_mask = batch.region_mask
            if region_mask is None:
                if cfg.pixel_regions is None:
                    raise ValueError("region masking on pixel inputs needs CollateConfig.pixel_regions")
                region_mask = torch.ones(len(batch), cfg.pixel_regions, dtype=torch.bool)  # [B, N]
            batch.masked_regions, batch.mrm_labels = mask_regions(
                region_mask, cfg.mrm_prob, cfg.mrm_zero_prob, gen
            )


def sum_stats(examples: Sequence[Example]) -> DataStats:
    total = DataStats()
    for example in examples:
        total.add(example.stats)
    return total
