"""Evaluation shared out over processes (under torchrun; one process is the case of one share).

Each process reads the whole split but decodes and scores only its own records
(`DataConfig.record_shard`). What crosses processes is small: per-example results and the
stream position that orders them, the captions' and images' ITC embeddings [n, itc_dim], the
gallery images' unimodal states (every process re-ranks its own captions against all images),
and per-caption ranks. No process holds a captions x images matrix beyond its own captions' rows,
and sorting by stream position puts every gathered value where one process would have computed
it, so the metrics are those of one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vlbert.engine import distributed
from vlbert.eval.metrics import RetrievalMetrics, image_ranks, recall_from_ranks
from vlbert.eval.retrieval import EncodedSet, _pad_cat, itm_scores
from vlbert.models.outputs import ImageStates
from vlbert.models.tasks import VLBertForRetrieval


def gather_in_order(rows: Sequence[tuple[int, Any]]) -> list[Any]:
    """Every process's (position, value) rows, values sorted by position (the one-process order)."""
    merged = [row for part in distributed.all_gather_objects(list(rows)) for row in part]
    return [value for _, value in sorted(merged, key=lambda row: row[0])]


def global_index(positions: Sequence[int], limit: int | None = None) -> dict[int, int]:
    """Position -> index among every process's positions in stream order (the first `limit` only)."""
    ordered = sorted(p for part in distributed.all_gather_objects(list(positions)) for p in part)
    return {position: i for i, position in enumerate(ordered[:limit])}


def _placed(index: Tensor, rows: Tensor) -> Tensor:
    """Every process's `rows` [n, ...] at their global `index` [n] (CPU, then back to the device)."""
    parts = distributed.all_gather_objects((index.cpu(), rows.cpu()))
    out = rows.new_empty((sum(len(i) for i, _ in parts), *rows.shape[1:]), device="cpu")
    for part_index, part_rows in parts:
        out[part_index] = part_rows
    return out.to(rows.device)


def _placed_padded(index: Tensor, rows: Tensor, fill: float | bool) -> Tensor:
    """As `_placed` for [n, R_p, ...] rows padded to each process's own longest R_p."""
    parts = distributed.all_gather_objects((index.cpu(), rows.cpu()))
    padded = _pad_cat([part_rows for _, part_rows in parts], fill)
    order = torch.cat([part_index for part_index, _ in parts])
    out = torch.empty_like(padded)
    out[order] = padded
    return out.to(rows.device)


def gather_images(images: EncodedSet, index: Tensor) -> EncodedSet:
    """The whole gallery's image states and embeddings in global order, on every process."""
    states = images.states
    assert isinstance(states, ImageStates)
    locations = None if states.locations is None else _placed_padded(index, states.locations, 0.0)
    whole = ImageStates(_placed_padded(index, states.hidden, 0.0), _placed_padded(index, states.mask, False),
                        _placed_padded(index, states.features, 0.0), locations)  # fmt: skip
    return EncodedSet(whole, _placed(index, images.embeds))


@dataclass
class ShardedGallery:
    """This process's captions (encoded) against the whole gallery of images."""

    texts: EncodedSet  # [T_p] this process's captions
    text_index: Tensor  # [T_p] their global caption indices
    owner: Tensor  # [T_p] the global image index of each
    images: EncodedSet  # [I] every image, in global order
    num_texts: int  # T over all processes


def _reduce(value: Tensor, how: str) -> Tensor:
    """max / min / sum of a tensor over processes, in the tensor's own dtype (exact)."""
    parts = [part.to(value.device) for part in distributed.all_gather_objects(value.cpu())]
    stacked = torch.stack(parts)
    return {"max": stacked.amax(0), "min": stacked.amin(0), "sum": stacked.sum(0)}[how]


def _column_topk(gallery: ShardedGallery, k: int, image_index: Tensor) -> set[tuple[int, int]]:
    """(caption, image) global pairs: each of this process's images' top-k captions by ITC."""
    all_texts = _placed(gallery.text_index, gallery.texts.embeds)  # [T, d]
    sims = all_texts @ gallery.images.embeds[image_index.to(all_texts.device)].t()  # [T, I_p]
    top = sims.topk(min(k, len(all_texts)), dim=0).indices  # [k, I_p]
    pairs = [(int(t), int(image_index[j])) for j in range(top.shape[1]) for t in top[:, j]]
    return {pair for part in distributed.all_gather_objects(pairs) for pair in part}


def _two_stage_rows(model: VLBertForRetrieval, gallery: ShardedGallery, k: int, image_index: Tensor) -> Tensor:
    """`two_stage_scores` rows [T_p, I] of this process's captions."""
    sims = gallery.texts.embeds @ gallery.images.embeds.t()  # [T_p, I]
    chosen = torch.zeros_like(sims, dtype=torch.bool)
    chosen.scatter_(1, sims.topk(min(k, sims.shape[1]), dim=1).indices, True)
    local_row = {int(t): i for i, t in enumerate(gallery.text_index)}
    for t, image in _column_topk(gallery, k, image_index):
        if t in local_row:
            chosen[local_row[t], image] = True
    text_idx, image_idx = chosen.nonzero(as_tuple=True)
    rescored = itm_scores(model, gallery.texts, gallery.images, text_idx, image_idx)
    floor = _reduce(rescored.min() if rescored.numel() else sims.new_tensor(float("inf")), "min")
    floor = floor if torch.isfinite(floor) else sims.new_tensor(0.0)  # no pair anywhere
    top = _reduce(sims.max() if sims.numel() else sims.new_tensor(float("-inf")), "max")  # (no captions here)
    scores = sims - top + floor - 1.0  # every unchosen pair below every chosen one
    scores[text_idx, image_idx] = rescored
    return scores


def _all_pairs_rows(model: VLBertForRetrieval, gallery: ShardedGallery) -> Tensor:
    num_t, num_i = len(gallery.text_index), gallery.images.embeds.shape[0]
    text_idx = torch.arange(num_t).repeat_interleave(num_i)
    image_idx = torch.arange(num_i).repeat(num_t)
    return itm_scores(model, gallery.texts, gallery.images, text_idx, image_idx).view(num_t, num_i)


def sharded_recall(model: VLBertForRetrieval, gallery: ShardedGallery, mode: str, k: int,
                   image_index: Tensor) -> RetrievalMetrics:
    """`recall_at_k` of the whole gallery's score matrix, each process scoring its captions' rows.
    `image_index` [I_p]: the global indices of this process's own images (its column top-k)."""
    if mode == "two-stage":
        rows = _two_stage_rows(model, gallery, k, image_index)
    elif mode == "all-pairs":
        rows = _all_pairs_rows(model, gallery)
    elif mode == "itc":
        rows = gallery.texts.embeds @ gallery.images.embeds.t()  # [T_p, I]
    else:
        raise ValueError(f"retrieval mode must be 'two-stage', 'all-pairs' or 'itc', got {mode!r}")
    own = rows.gather(1, gallery.owner[:, None].to(rows.device))  # [T_p, 1]
    t2i = _placed(gallery.text_index, (rows > own).sum(1))  # [T]
    own_all = _placed(gallery.text_index, own[:, 0])  # [T] each caption's score for its image
    owner_all = _placed(gallery.text_index, gallery.owner.to(rows.device))  # [T]
    above = torch.zeros(gallery.num_texts, dtype=torch.long, device=rows.device)
    for start in range(0, gallery.num_texts, 1024):  # [T_p, 1024] at a time
        cols = slice(start, start + 1024)
        above[cols] = (rows[:, owner_all[cols]] > own_all[None, cols]).sum(0)
    rank_of_text = _reduce(above, "sum")  # [T] captions above each caption, for its image
    num_images = gallery.images.embeds.shape[0]
    return recall_from_ranks(t2i.cpu(), image_ranks(rank_of_text, owner_all, num_images).cpu())
