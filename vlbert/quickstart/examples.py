"""Examples for the quickstart's figures: VQA predictions and image-to-text retrievals on
held-out images, with the images read back from the shards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from vlbert.data.shards.records import read_records
from vlbert.eval.device import model_device
from vlbert.eval.gallery import gallery_scores, gather_gallery
from vlbert.eval.saved import RunParts
from vlbert.eval.split import eval_batches
from vlbert.quickstart.results import RetrievalExample, VQAExample
from vlbert.runconfig import RunConfig


def _images(root: Path, keys: set[str]) -> dict[str, bytes]:
    found = {}
    for record in read_records(root, "test"):
        if record.key in keys and record.image is not None:
            found[record.key] = record.image
        if len(found) == len(keys):
            break
    return found


@torch.inference_mode()
def vqa_examples(parts: RunParts, cfg: RunConfig, root: Path, count: int = 8) -> list[VQAExample]:
    """The first question of each of the first `count` test images, with the model's answer."""
    model = parts.model.eval()
    device = model_device(model)
    chosen: dict[str, tuple[str, str, str, str]] = {}
    for batch in eval_batches(cfg, parts, "test"):
        preds = model(**batch.to(device).model_inputs()).logits.argmax(-1).tolist()
        for i, image_id in enumerate(batch.image_ids):
            if image_id not in chosen and len(chosen) < count:
                chosen[image_id] = (batch.texts[i], parts.answers.answers[preds[i]], batch.answers[i][0],
                                    batch.question_types[i] or "")
        if len(chosen) >= count:
            break
    images = _images(root, set(chosen))
    return [VQAExample(images[k], q, p, a, t) for k, (q, p, a, t) in chosen.items() if k in images]


@torch.inference_mode()
def retrieval_examples(parts: RunParts, cfg: RunConfig, root: Path, count: int = 4, pool: int = 100) -> list[RetrievalExample]:
    """Image -> text over the first `pool` test images: each image's top-3 captions by ITM."""
    cfg = replace(cfg, eval=replace(cfg.eval, caption_mode="first"))
    gallery = gather_gallery(eval_batches(cfg, parts, "test"), pool)
    scores = gallery_scores(parts.model.eval(), gallery, cfg.eval.retrieval_mode, cfg.eval.k)  # [T, I]
    captions = [refs[0] for refs in gallery.references]  # caption t belongs to image owner[t]
    keys = gallery.image_ids[:count]
    pngs = _images(root, set(keys))
    out = []
    for image, key in enumerate(keys):
        top = scores[:, image].topk(3).indices.tolist()
        ranked = [(captions[gallery.owner[t]], int(gallery.owner[t]) == image) for t in top]
        out.append(RetrievalExample(pngs[key], captions[image], ranked))
    return out
