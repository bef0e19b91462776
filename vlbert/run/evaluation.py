"""Evaluation of a task model on a split, with the community's metrics:

- VQA: accuracy (the official normalisation and 10-annotator averaging; exact match for
  single-answer data), overall and per question type;
- retrieval: Recall@1/5/10 both ways, all-pairs ITM or ITC top-k then ITM re-rank;
- captioning: BLEU-4 and CIDEr of decoded captions against every reference;
- pre-training: MLM accuracy and ITM accuracy (positives and re-paired negatives).

Under torchrun VQA, retrieval and captioning are evaluated by every process on its share of the
split's records and the results gathered in stream order (`vlbert.eval.sharded`): the metrics
equal one process's. `limit` counts from the start of the split whatever the number of processes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.batch import Batch
from vlbert.engine.objectives import negative_pairs
from vlbert.eval.decoding import generate
from vlbert.eval.metrics import accuracy, answer_accuracy, caption_scores
from vlbert.eval.retrieval import EncodedSet, all_pairs_scores, encode_images, encode_texts, two_stage_scores
from vlbert.eval.sharded import ShardedGallery, gather_images, gather_in_order, global_index, sharded_recall


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def evaluate_vqa(model: nn.Module, batches: Iterable[Batch], answers: AnswerVocab, limit: int | None = None) -> dict[str, float]:
    """Accuracy overall (`vqa_acc`), per question type (`vqa_acc_TYPE`: the answer type in VQAv2)
    and per subtype (`vqa_acc_subtype_SUBTYPE`: VQAv2's question type), as the official script
    reports them, over the first `limit` questions (all without)."""
    rows: list[tuple[int, tuple[float, str | None, str | None]]] = []  # (stream position, result)
    for batch in batches:
        logits = model(**batch.to(_device(model)).model_inputs()).logits  # [B, A]
        subtypes = batch.question_subtypes or [None] * len(batch.answers)
        positions = batch.positions or range(len(rows), len(rows) + len(batch))
        preds = logits.argmax(-1).tolist()
        for position, pred, gts, qtype, subtype in zip(positions, preds, batch.answers, batch.question_types, subtypes):
            rows.append((position, (answer_accuracy(answers.answers[pred], gts), qtype, subtype)))
        if limit is not None and len(rows) >= limit:
            break
    scores: dict[str, list[float]] = defaultdict(list)
    for value, qtype, subtype in gather_in_order(rows)[:limit]:
        scores["vqa_acc"].append(value)
        if qtype:
            scores[f"vqa_acc_{qtype}"].append(value)
        if subtype:
            scores[f"vqa_acc_subtype_{subtype}"].append(value)
    return {key: sum(values) / len(values) for key, values in scores.items() if values}


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


def _to(inputs: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in inputs.items()}


@torch.inference_mode()
def gallery_scores(model: nn.Module, gallery: Gallery, mode: str = "two-stage", k: int = 16) -> Tensor:
    """Match scores [T, I] of every caption against every image of the gallery."""
    device = _device(model)
    texts = encode_texts(model, ((ids.to(device), mask.to(device)) for ids, mask in gallery.texts))
    images = encode_images(model, (_to(inputs, device) for inputs in gallery.images))
    if mode == "all-pairs":
        return all_pairs_scores(model, texts, images).cpu()
    if mode == "two-stage":
        return two_stage_scores(model, texts, images, k=k).cpu()
    raise ValueError(f"retrieval mode must be 'two-stage' or 'all-pairs', got {mode!r}")


def _rows(encoded: EncodedSet, rows: list[int]) -> EncodedSet:
    index = torch.tensor(rows, dtype=torch.long, device=encoded.embeds.device)
    return EncodedSet(encoded.states.select(index), encoded.embeds[index])


@torch.inference_mode()
def shard_gallery(model: nn.Module, gallery: Gallery, limit: int | None) -> tuple[ShardedGallery, Tensor]:
    """This process's captions encoded, every image's states gathered, in the order of one process
    over the first `limit` images of the split; and the global indices of this process's images."""
    device = _device(model)
    image_at = global_index(gallery.image_positions, limit)  # position -> global image index
    mine = [i for i, position in enumerate(gallery.image_positions) if position in image_at]
    texts = [t for t, o in enumerate(gallery.owner.tolist()) if gallery.image_positions[o] in image_at]
    text_at = global_index([gallery.text_positions[t] for t in texts])
    long = {"dtype": torch.long, "device": device}
    image_index = torch.tensor([image_at[gallery.image_positions[i]] for i in mine], **long)
    text_index = torch.tensor([text_at[gallery.text_positions[t]] for t in texts], **long)
    owner = torch.tensor([image_at[gallery.image_positions[int(gallery.owner[t])]] for t in texts], **long)
    encoded_texts = encode_texts(model, ((ids.to(device), mask.to(device)) for ids, mask in gallery.texts))
    encoded_images = encode_images(model, (_to(inputs, device) for inputs in gallery.images))
    whole = gather_images(_rows(encoded_images, mine), image_index)
    return ShardedGallery(_rows(encoded_texts, texts), text_index, owner, whole, len(text_at)), image_index


def evaluate_retrieval(model: nn.Module, batches: Iterable[Batch], mode: str = "two-stage", k: int = 16,
                       limit: int | None = None) -> dict[str, float]:
    """Recall@1/5/10 both ways over the first `limit` images of the split (all without)."""
    gallery, image_index = shard_gallery(model, gather_gallery(batches, limit), limit)
    metrics = sharded_recall(model, gallery, mode, k, image_index).as_dict()
    num_images = gallery.images.embeds.shape[0]
    return {**metrics, "num_images": float(num_images), "num_texts": float(gallery.num_texts)}


@torch.inference_mode()
def evaluate_captioning(model: nn.Module, batches: Iterable[Batch], tokenizer: PreTrainedTokenizerBase,
                        num_beams: int = 1, max_length: int = 24, limit: int | None = None) -> dict[str, float]:
    gallery = gather_gallery(batches, limit)
    device = _device(model)
    banned = tuple(i for i in (tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id) if i is not None)
    rows: list[tuple[int, tuple[str, str, list[str]]]] = []  # (position, (image id, caption, references))
    for inputs in gallery.images:
        ids = generate(model, _to(inputs, device), tokenizer.cls_token_id, tokenizer.sep_token_id,
                       max_length=max_length, num_beams=num_beams, banned_ids=banned)
        for seq in ids:
            i = len(rows)
            caption = tokenizer.decode(seq, skip_special_tokens=True)
            rows.append((gallery.image_positions[i], (gallery.image_ids[i], caption, gallery.references[i])))
    gathered = gather_in_order(rows)[:limit]  # every process's captions, in the order of one
    predictions = {image_id: caption for image_id, caption, _ in gathered}
    references = {image_id: refs for image_id, _, refs in gathered}
    return caption_scores(predictions, references)


@torch.inference_mode()
def evaluate_pretraining(model: nn.Module, batches: Iterable[Batch], limit: int | None = None) -> dict[str, float]:
    mlm, itm, seen = [], [], 0
    generator = torch.Generator().manual_seed(0)
    for batch in batches:
        batch = batch.to(_device(model))
        text, image = model.vlbert.encode_pair(**batch.model_inputs())
        out = model.forward_states(text, image)
        if batch.mlm_labels is not None:
            mlm.append(accuracy(out.mlm_logits, batch.mlm_labels))
        text_idx, image_idx = negative_pairs(batch, out.text_embed, out.image_embed, "random", generator)
        if len(text_idx):
            neg = model.match_logits(text.select(text_idx), image.select(image_idx))
            labels = torch.cat([torch.ones(len(batch)), torch.zeros(len(text_idx))]).long().to(neg.device)
            itm.append(accuracy(torch.cat([out.itm_logits, neg]), labels))
        seen += len(batch)
        if limit is not None and seen >= limit:
            break
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {"mlm_acc": mean(mlm), "itm_acc": mean(itm)}
