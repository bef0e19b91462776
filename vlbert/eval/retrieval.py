"""Image-text retrieval scores in two modes.

- all-pairs: the ITM cross-encoder scores every (caption, image) pair, as ViLBERT does:
  O(T x I) co-attention passes.
- two-stage: ITC similarities rank all pairs from unimodal states, then ITM re-scores the top k
  both ways (ALBEF's recipe): O(T + I) unimodal passes and O(k (T + I)) co-attention passes.

Unimodal states are computed once per caption and once per image and re-paired by indexing, so
the co-attention part is the only per-pair cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from vlbert.models.outputs import ImageStates, TextStates
from vlbert.models.tasks import VLBertForRetrieval


@dataclass
class EncodedSet:
    """Unimodal states of a whole set, padded to one length."""

    states: TextStates | ImageStates
    embeds: Tensor  # [n, itc_dim] unit norm


def _pad_cat(tensors: list[Tensor], fill: float | bool) -> Tensor:
    """Concatenate [b, n_i, ...] tensors along dim 0, padding dim 1 to the longest."""
    longest = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        pad = t.new_full((t.shape[0], longest - t.shape[1], *t.shape[2:]), fill)
        padded.append(torch.cat([t, pad], dim=1))
    return torch.cat(padded)


@torch.inference_mode()
def encode_texts(model: VLBertForRetrieval, batches: Iterable[tuple[Tensor, Tensor]]) -> EncodedSet:
    """(input_ids [b, L], attention_mask [b, L]) batches -> all captions' unimodal states."""
    hidden, masks = [], []
    for ids, mask in batches:
        text = model.vlbert.encode_text(ids, mask)
        hidden.append(text.hidden)
        masks.append(text.mask)
    states = TextStates(_pad_cat(hidden, 0.0), _pad_cat(masks, False))
    embeds = model.itc_head.embed_text(states.hidden[:, 0])
    return EncodedSet(states, embeds)


@torch.inference_mode()
def encode_images(model: VLBertForRetrieval, batches: Iterable[dict[str, Tensor]]) -> EncodedSet:
    """Batches of image inputs (keyword arguments of `encode_image`) -> all images' unimodal states."""
    hidden, masks, feats, boxes = [], [], [], []
    for inputs in batches:
        image = model.vlbert.encode_image(**inputs)
        hidden.append(image.hidden)
        masks.append(image.mask)
        feats.append(image.features)
        boxes.append(image.locations)
    locations = None if boxes[0] is None else _pad_cat(boxes, 0.0)
    states = ImageStates(_pad_cat(hidden, 0.0), _pad_cat(masks, False), _pad_cat(feats, 0.0), locations)
    embeds = model.itc_head.embed_image(states.hidden[:, 0])
    return EncodedSet(states, embeds)


@torch.inference_mode()
def itm_scores(model: VLBertForRetrieval, texts: EncodedSet, images: EncodedSet,
               text_idx: Tensor, image_idx: Tensor, batch_size: int = 256) -> Tensor:
    """Match log-odds (logit 1 - logit 0) of the pairs (text_idx[p], image_idx[p]): [P].

    Pairs are scored in order of caption length, so each batch is trimmed to its own longest
    caption instead of the longest of the whole set."""
    lengths = texts.states.mask.sum(1)[text_idx]  # [P]
    order = torch.argsort(lengths, stable=True)
    out = torch.empty(len(text_idx), device=texts.embeds.device)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        ti, vi = text_idx[rows], image_idx[rows]
        logits = model.match_logits(texts.states.select(ti).trimmed(), images.states.select(vi))  # [p, 2]
        out[rows] = (logits[:, 1] - logits[:, 0]).float()
    return out


def all_pairs_scores(model: VLBertForRetrieval, texts: EncodedSet, images: EncodedSet, batch_size: int = 256) -> Tensor:
    """ITM score of every (caption, image) pair: [T, I]."""
    num_t, num_i = texts.embeds.shape[0], images.embeds.shape[0]
    text_idx = torch.arange(num_t).repeat_interleave(num_i)
    image_idx = torch.arange(num_i).repeat(num_t)
    return itm_scores(model, texts, images, text_idx, image_idx, batch_size).view(num_t, num_i)


def two_stage_scores(model: VLBertForRetrieval, texts: EncodedSet, images: EncodedSet,
                     k: int = 16, batch_size: int = 256) -> Tensor:
    """ITC top-k both ways, ITM re-rank. Returns [T, I]: pairs outside every top-k keep their ITC
    similarity minus a margin that puts them below every re-ranked pair."""
    sims = texts.embeds @ images.embeds.t()  # [T, I]
    num_t, num_i = sims.shape
    chosen = torch.zeros_like(sims, dtype=torch.bool)
    chosen.scatter_(1, sims.topk(min(k, num_i), dim=1).indices, True)  # each caption's top images
    chosen.scatter_(0, sims.topk(min(k, num_t), dim=0).indices, True)  # each image's top captions
    text_idx, image_idx = chosen.nonzero(as_tuple=True)
    rescored = itm_scores(model, texts, images, text_idx, image_idx, batch_size)
    floor = rescored.min() if rescored.numel() else sims.new_tensor(0.0)
    scores = sims - sims.max() + floor - 1.0  # every unchosen pair below every chosen one
    scores[text_idx, image_idx] = rescored
    return scores
