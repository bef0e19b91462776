"""The gallery of an evaluation split (its captions and the distinct images they describe) and
retrieval over it: Recall@1/5/10 both ways, all-pairs ITM or ITC top-k then ITM re-rank
(`vlbert.eval.retrieval`), shared out over processes under torchrun (`vlbert.eval.sharded`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vlbert.data.pipeline.batch import Batch
from vlbert.eval.device import model_device, to_device
from vlbert.eval.retrieval import EncodedSet, all_pairs_scores, encode_images, encode_texts, two_stage_scores
from vlbert.eval.sharded import ShardedGallery, gather_images, global_index, sharded_recall


@dataclass
class Gallery:
    """Captions and the distinct images they describe, gathered from evaluation batches."""

    texts: list[tuple[Tensor, Tensor]]  # (ids [b, L], mask [b, L]) per batch
    images: list[dict[str, Tensor]]  # encode_image inputs for the new images of each batch
    owner: Tensor  # [T] image index of each caption
    references: list[list[str]]  # per image, all its captions
    image_ids: list[str]
    text_positions: list[int]  # [T] stream position of each caption (orders a sharded gallery)
    image_positions: list[int]  # [I] stream position of each image's first caption


def gather_gallery(batches: Iterable[Batch], limit: int | None) -> Gallery:
    texts, images, owner, refs, order, text_pos, image_pos = [], [], [], [], {}, [], []
    for batch in batches:
        positions = batch.positions or list(range(len(text_pos), len(text_pos) + len(batch)))
        firsts = {image_id: i for i, image_id in reversed(list(enumerate(batch.image_ids)))}  # first row of each
        fresh = sorted(i for image_id, i in firsts.items() if image_id not in order)
        if limit is not None:
            fresh = fresh[: max(0, limit - len(order))]
        for i in fresh:
            order[batch.image_ids[i]] = len(order)
            refs.append(batch.captions[i])
            image_pos.append(positions[i])
        keep = [i for i, image_id in enumerate(batch.image_ids) if image_id in order]
        if not keep:
            break
        rows = torch.tensor(keep)
        texts.append((batch.input_ids[rows], batch.attention_mask[rows]))
        owner.extend(order[batch.image_ids[i]] for i in keep)
        text_pos.extend(positions[i] for i in keep)
        if fresh:
            idx = torch.tensor(fresh)
            images.append({k: v[idx] for k, v in batch.image_inputs().items() if v is not None})
    return Gallery(texts, images, torch.tensor(owner, dtype=torch.long), refs, list(order), text_pos, image_pos)


@torch.inference_mode()
def gallery_scores(model: nn.Module, gallery: Gallery, mode: str = "two-stage", k: int = 16) -> Tensor:
    """Match scores [T, I] of every caption against every image of the gallery."""
    device = model_device(model)
    texts = encode_texts(model, ((ids.to(device), mask.to(device)) for ids, mask in gallery.texts))
    images = encode_images(model, (to_device(inputs, device) for inputs in gallery.images))
    if mode == "all-pairs":
        return all_pairs_scores(model, texts, images).cpu()
    if mode == "two-stage":
        return two_stage_scores(model, texts, images, k=k).cpu()
    if mode == "itc":
        return (texts.embeds @ images.embeds.t()).cpu()
    raise ValueError(f"retrieval mode must be 'two-stage', 'all-pairs' or 'itc', got {mode!r}")


def _rows(encoded: EncodedSet, rows: list[int]) -> EncodedSet:
    index = torch.tensor(rows, dtype=torch.long, device=encoded.embeds.device)
    return EncodedSet(encoded.states.select(index), encoded.embeds[index])


@torch.inference_mode()
def shard_gallery(model: nn.Module, gallery: Gallery, limit: int | None) -> tuple[ShardedGallery, Tensor]:
    """This process's captions encoded, every image's states gathered, in the order of one process
    over the first `limit` images of the split; and the global indices of this process's images."""
    device = model_device(model)
    image_at = global_index(gallery.image_positions, limit)  # position -> global image index
    mine = [i for i, position in enumerate(gallery.image_positions) if position in image_at]
    texts = [t for t, o in enumerate(gallery.owner.tolist()) if gallery.image_positions[o] in image_at]
    text_at = global_index([gallery.text_positions[t] for t in texts])
    long = {"dtype": torch.long, "device": device}
    image_index = torch.tensor([image_at[gallery.image_positions[i]] for i in mine], **long)
    text_index = torch.tensor([text_at[gallery.text_positions[t]] for t in texts], **long)
    owner = torch.tensor([image_at[gallery.image_positions[int(gallery.owner[t])]] for t in texts], **long)
    encoded_texts = encode_texts(model, ((ids.to(device), mask.to(device)) for ids, mask in gallery.texts))
    encoded_images = encode_images(model, (to_device(inputs, device) for inputs in gallery.images))
    whole = gather_images(_rows(encoded_images, mine), image_index)
    return ShardedGallery(_rows(encoded_texts, texts), text_index, owner, whole, len(text_at)), image_index


def evaluate_retrieval(model: nn.Module, batches: Iterable[Batch], mode: str = "two-stage", k: int = 16,
                       limit: int | None = None) -> dict[str, float]:
    """Recall@1/5/10 both ways over the first `limit` images of the split (all without)."""
    gallery, image_index = shard_gallery(model, gather_gallery(batches, limit), limit)
    metrics = sharded_recall(model, gallery, mode, k, image_index).as_dict()
    num_images = gallery.images.embeds.shape[0]
    return {**metrics, "num_images": float(num_images), "num_texts": float(gallery.num_texts)}
