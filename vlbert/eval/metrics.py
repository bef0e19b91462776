"""Metric functions with the community's definitions.

VQA accuracy follows the VQA evaluation script (`PythonEvaluationTools/vqaEvaluation/vqaEval.py` in
GT-Vision-Lab/VQA; its answer normalisation is `vlbert.data.pipeline.answers.normalize_answer`):
newlines/tabs become spaces and the ends are stripped; when the ground-truth answers are not all
identical, the prediction and every answer are normalised (when they are all identical, nothing is
normalised); then the accuracy is the average over annotators ``i`` of
``min(1, #{j != i : answer_j == prediction} / 3)`` (the 10-choose-9 subset average).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vlbert._extras import require
from vlbert.data.pipeline.answers import clean_answer, normalize_answer
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


def vqa_accuracy(predicted: str, gt_answers: Sequence[str]) -> float:
    """The official accuracy of one prediction against the annotators' answers (see the module
    doc): 3 of 10 matching answers give 0.9, 4 or more give 1.0. With a single ground-truth answer
    this is always 0, as in the script; use `answer_accuracy` for single-answer datasets."""
    if not gt_answers:
        raise ValueError("vqa_accuracy needs at least one ground-truth answer")
    prediction, answers = clean_answer(predicted), [clean_answer(a) for a in gt_answers]
    if len(set(answers)) > 1:
        prediction, answers = normalize_answer(prediction), [normalize_answer(a) for a in answers]
    total = 0.0
    for i in range(len(answers)):
        matches = sum(1 for j, answer in enumerate(answers) if j != i and answer == prediction)
        total += min(1.0, matches / 3)
    return total / len(answers)


def answer_accuracy(predicted: str, gt_answers: Sequence[str]) -> float:
    """`vqa_accuracy` for multi-annotator data; exact match after normalisation when there is a
    single ground-truth answer (e.g. Sort-of-CLEVR)."""
    if len(gt_answers) == 1:
        return float(normalize_answer(predicted) == normalize_answer(gt_answers[0]))
    return vqa_accuracy(predicted, gt_answers)


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
