"""Metric functions with the community's definitions."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from vlbert._extras import require
from vlbert.data.pipeline.masking import IGNORE_INDEX


@dataclass
class RetrievalMetrics:
    t2i_r1: float
    t2i_r5: float
    t2i_r10: float
    i2t_r1: float
    i2t_r5: float
    i2t_r10: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def recall_at_k(scores: Tensor, text_to_image: Tensor) -> RetrievalMetrics:
    """Recall@K both ways from a score matrix [T, I] (higher = better match).

    text->image: a caption counts if its own image is among its top K images.
    image->text: an image counts if any of its captions is among its top K captions.
    `text_to_image` [T] gives each caption's image index.
    """
    num_images = scores.shape[1]
    own = scores.gather(1, text_to_image[:, None])  # [T, 1]
    t2i_rank = (scores > own).sum(1)  # [T] images scored strictly above the right one
    # image->text: the best rank among the image's captions
    rank_of_text = (scores.t()[text_to_image] > own).sum(1)  # [T]: texts above caption t for its image
    return recall_from_ranks(t2i_rank, image_ranks(rank_of_text, text_to_image, num_images))


def image_ranks(rank_of_text: Tensor, text_to_image: Tensor, num_images: int) -> Tensor:
    """[I] each image's best rank among its captions, from each caption's rank [T] for its image
    (an image without captions gets T, never a hit)."""
    i2t_rank = torch.full((num_images,), len(rank_of_text), dtype=torch.long, device=rank_of_text.device)
    return i2t_rank.scatter_reduce(0, text_to_image, rank_of_text, reduce="amin")


def recall_from_ranks(t2i_rank: Tensor, i2t_rank: Tensor) -> RetrievalMetrics:
    """Recall@1/5/10 from 0-based ranks: t2i_rank [T] of each caption's image, i2t_rank [I]."""
    values = {}
    for k in (1, 5, 10):
        values[f"t2i_r{k}"] = (t2i_rank < k).float().mean().item()
        values[f"i2t_r{k}"] = (i2t_rank < k).float().mean().item()
    return RetrievalMetrics(**values)


def accuracy(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> float:
    """Top-1 accuracy over positions whose label is not `ignore_index` (MLM, ITM)."""
    keep = labels != ignore_index
    if not keep.any():
        return float("nan")
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean().item()


def _caption_tokens(text: str) -> str:
    """Lower-case, strip punctuation, single spaces: the tokenisation captions are scored on."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def caption_scores(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """BLEU-4 and CIDEr (pycocoevalcap's scorers, the `eval` extra) of predicted captions against
    references, by id."""
    Bleu = require("pycocoevalcap.bleu.bleu", "caption scores (BLEU-4, CIDEr)").Bleu
    Cider = require("pycocoevalcap.cider.cider", "caption scores (BLEU-4, CIDEr)").Cider

    missing = set(predictions) ^ set(references)
    if missing:
        raise ValueError(f"predictions and references differ in ids: {sorted(missing)[:5]}")
    res = {k: [_caption_tokens(v)] for k, v in predictions.items()}
    gts = {k: [_caption_tokens(r) for r in refs] for k, refs in references.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": float(bleu[3]), "cider": float(cider)}
