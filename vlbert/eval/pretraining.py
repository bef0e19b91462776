"""Pre-training evaluation: MLM accuracy, and ITM accuracy over the positives and re-paired
negatives (random negatives, the pre-training objective's `negative_pairs`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from vlbert.data.pipeline.batch import Batch
from vlbert.engine.objectives import negative_pairs
from vlbert.eval.device import model_device
from vlbert.eval.metrics import accuracy


@torch.inference_mode()
def evaluate_pretraining(model: nn.Module, batches: Iterable[Batch], limit: int | None = None) -> dict[str, float]:
    mlm, itm, seen = [], [], 0
    generator = torch.Generator().manual_seed(0)
    for batch in batches:
        batch = batch.to(model_device(model))
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
