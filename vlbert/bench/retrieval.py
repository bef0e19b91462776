"""Retrieval over the built-in images: all-pairs ITM against ITC top-k then ITM re-rank.

Both modes share the unimodal encoding of every caption and image (done once, timed apart); the
time of a mode is its scoring. All-pairs runs the co-attention layers T x I times, two-stage
k (T + I) times. Above `max_all_pairs` pairs (and `full_up_to` images), all-pairs time is
extrapolated: every caption of a random subset of the images is scored against all images and the
time scaled by the caption count (its Recall@1 is then not computed); the result marks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from vlbert.bench.timing import timed
from vlbert.data.pipeline.loader import DataConfig, make_dataset, make_loader
from vlbert.eval.gallery import Gallery, gather_gallery
from vlbert.eval.metrics import recall_at_k
from vlbert.eval.retrieval import (
    EncodedSet,
    all_pairs_scores,
    encode_images,
    encode_texts,
    two_stage_scores,
)
from vlbert.eval.saved import RunParts


@dataclass
class ModeTimes:
    images: int
    texts: int
    two_stage_s: float
    all_pairs_s: float
    all_pairs_extrapolated: bool
    two_stage_r1: float | None = None
    all_pairs_r1: float | None = None
    # the same, over each image's first caption only (the built-in data's full scene description,
    # true of one image; the other four captions are short and true of many)
    two_stage_r1_first: float | None = None
    all_pairs_r1_first: float | None = None
    itc_index_mb: float = 0.0  # the ITC embeddings of every caption and image: all ITC ranking needs
    rerank_cache_mb: float = 0.0  # the unimodal states kept so that ITM re-ranking does not re-encode


def index_megabytes(encoded: EncodedSet) -> tuple[float, float]:
    """(the ITC embeddings, the unimodal states kept for ITM re-ranking) of an encoded set, in MB."""
    states = [t for t in vars(encoded.states).values() if isinstance(t, torch.Tensor)]
    size = lambda t: t.numel() * t.element_size() / 2**20  # noqa: E731
    return size(encoded.embeds), sum(size(t) for t in states)


@dataclass
class RetrievalResult:
    k: int
    model: str
    trained: bool  # False: an untrained model, so the timings hold but Recall@1 means nothing
    encode_s: float  # unimodal encoding of the whole gallery, shared by both modes
    scaling: list[ModeTimes] = field(default_factory=list)


def load_gallery(parts: RunParts, root: Path, split: str, images: int) -> Gallery:
    cfg = DataConfig(inputs="regions", split=split, max_length=96, caption_mode="each", shuffle_buffer=0)
    dataset = make_dataset(root, "captions", parts.tokenizer, cfg)
    return gather_gallery(make_loader(dataset, parts.tokenizer, 250, report=None), images)


def first_rows(owner: torch.Tensor, images: int) -> torch.Tensor:
    """The row of each image's first caption: owner [T] (image of each caption) -> [images]."""
    rows = torch.arange(len(owner))
    return torch.full((images,), len(owner)).scatter_reduce(0, owner, rows, "amin")


def _subset(encoded: EncodedSet, rows: torch.Tensor) -> EncodedSet:
    return EncodedSet(encoded.states.select(rows), encoded.embeds[rows])


def measure_scaling(parts: RunParts, gallery: Gallery, sizes: list[int], k: int, max_all_pairs: int,
                    full_up_to: int = 0) -> tuple[float, list[ModeTimes]]:
    """Both modes at each gallery size; all-pairs in full up to `max_all_pairs` pairs or
    `full_up_to` images, extrapolated above."""
    model = parts.model.eval()
    device = torch.device("cpu")
    encoded: dict[str, EncodedSet] = {}
    encode_s = timed(lambda: encoded.update(texts=encode_texts(model, iter(gallery.texts)),
                                            images=encode_images(model, iter(gallery.images))), device)
    results = []
    for size in sizes:
        text_rows = (gallery.owner < size).nonzero().squeeze(1)  # [T_n] the captions of the first `size` images
        texts, images = _subset(encoded["texts"], text_rows), _subset(encoded["images"], torch.arange(size))
        owner = gallery.owner[text_rows]
        scores: dict[str, torch.Tensor] = {}
        two_s = timed(lambda: scores.update(two=two_stage_scores(model, texts, images, k=k)), device)
        pairs = len(text_rows) * size
        if pairs <= max_all_pairs or size <= full_up_to:
            all_s = timed(lambda: scores.update(all=all_pairs_scores(model, texts, images)), device)
            extrapolated = False
        else:  # all pairs of every caption of a random subset of the images, scaled by the caption count
            g = torch.Generator().manual_seed(size)
            per_image = max(1, len(text_rows) // size)
            chosen = torch.randperm(size, generator=g)[: max(1, max_all_pairs // (size * per_image))]
            some = torch.isin(owner, chosen).nonzero().squeeze(1)
            all_s = timed(lambda: all_pairs_scores(model, _subset(texts, some), images), device) * len(text_rows) / len(some)
            extrapolated = True
        (text_itc, text_cache), (image_itc, image_cache) = index_megabytes(texts), index_megabytes(images)
        first = first_rows(owner, size)  # [size] each image's first caption
        r1_first = {mode: recall_at_k(scores[mode][first], owner[first]).t2i_r1 for mode in scores}
        results.append(ModeTimes(
            images=size, texts=len(text_rows), two_stage_s=two_s, all_pairs_s=all_s, all_pairs_extrapolated=extrapolated,
            two_stage_r1=recall_at_k(scores["two"], owner).t2i_r1,
            all_pairs_r1=recall_at_k(scores["all"], owner).t2i_r1 if "all" in scores else None,
            two_stage_r1_first=r1_first["two"], all_pairs_r1_first=r1_first.get("all"),
            itc_index_mb=text_itc + image_itc, rerank_cache_mb=text_cache + image_cache,
        ))  # fmt: skip
    return encode_s, results
