"""VQA evaluation: accuracy with the official normalisation and 10-annotator averaging (exact match
for single-answer data), overall, per question type and per subtype."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch
from torch import nn

from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.batch import Batch
from vlbert.eval.device import model_device
from vlbert.eval.metrics import answer_accuracy
from vlbert.eval.sharded import gather_in_order


@torch.inference_mode()
def evaluate_vqa(model: nn.Module, batches: Iterable[Batch], answers: AnswerVocab, limit: int | None = None) -> dict[str, float]:
    """Accuracy overall (`vqa_acc`), per question type (`vqa_acc_TYPE`: the answer type in VQAv2)
    and per subtype (`vqa_acc_subtype_SUBTYPE`: VQAv2's question type), as the official script
    reports them, over the first `limit` questions (all without)."""
    rows: list[tuple[int, tuple[float, str | None, str | None]]] = []  # (stream position, result)
    for batch in batches:
        logits = model(**batch.to(model_device(model)).model_inputs()).logits  # [B, A]
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
