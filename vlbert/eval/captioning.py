"""Captioning evaluation: BLEU-4 and CIDEr of the captions decoded for each gallery image against
all its references; on built-in scenes also whether each caption states the scene right
(`vlbert.eval.scene_captions`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vlbert.data.pipeline.batch import Batch
from vlbert.eval.decoding import ended, generate
from vlbert.eval.device import model_device, to_device
from vlbert.eval.gallery import gather_gallery
from vlbert.eval.metrics import caption_scores
from vlbert.eval.scene_captions import scene_caption_scores
from vlbert.eval.sharded import gather_in_order


@torch.inference_mode()
def evaluate_captioning(model: nn.Module, batches: Iterable[Batch], tokenizer: PreTrainedTokenizerBase,
                        num_beams: int = 1, max_length: int = 24, limit: int | None = None) -> dict[str, float]:
    gallery = gather_gallery(batches, limit)
    device = model_device(model)
    banned = tuple(i for i in (tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id) if i is not None)
    rows: list[tuple[int, tuple[str, str, list[str], bool]]] = []  # (position, (image id, caption, references, ended))
    for inputs in gallery.images:
        ids = generate(model, to_device(inputs, device), tokenizer.cls_token_id, tokenizer.sep_token_id,
                       max_length=max_length, num_beams=num_beams, banned_ids=banned)
        for seq in ids:
            i = len(rows)
            caption = tokenizer.decode(seq, skip_special_tokens=True)
            entry = (gallery.image_ids[i], caption, gallery.references[i], ended(seq, max_length))
            rows.append((gallery.image_positions[i], entry))
    gathered = gather_in_order(rows)[:limit]  # every process's captions, in the order of one
    predictions = {image_id: caption for image_id, caption, _, _ in gathered}
    references = {image_id: refs for image_id, _, refs, _ in gathered}
    finished = {image_id: done for image_id, _, _, done in gathered}
    return {**caption_scores(predictions, references), **scene_caption_scores(predictions, references, finished)}
