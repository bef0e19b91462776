"""What a quickstart run measured: the input of `vlbert.quickstart.report`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StageResult:
    name: str  # "pretrain", "vqa", "question-only", "retrieval", "caption", "transfer-vqa-0.1-scratch", ...
    seconds: float
    steps: int
    metrics: dict[str, float]  # the stage's final evaluation metrics
    history: list[dict[str, float]]  # the trainer's metrics.json: training rows ("loss", ...) and "eval_*" rows


@dataclass
class VQAExample:
    image_png: bytes
    question: str
    predicted: str
    answer: str
    question_type: str  # "relational" | "nonrelational"

    @property
    def correct(self) -> bool:
        return self.predicted.strip().lower() == self.answer.strip().lower()


@dataclass
class RetrievalExample:
    image_png: bytes
    query: str  # the image's own caption, the one used as its text query
    top_captions: list[tuple[str, bool]]  # image -> text: the top-3 captions, and whether each is the image's own


@dataclass
class QuickstartResults:
    vqa: dict[str, float]  # relational_acc, nonrelational_acc, question_only_acc (+ question_only_{,non}relational_acc)
    retrieval: dict[str, float]  # t2i_r1, ..., i2t_r10 as ranked (two-stage), t2i_r1_itc, i2t_r1_itc, num_images
    caption: dict[str, float]  # bleu4, cider; exact, objects, orders, truncated (vlbert.eval.scene_captions)
    pretrain: dict[str, float]  # validation mlm_acc, itm_acc; itm_mirror[_vertical]_preferred, _images, _margin
    # --ablation: {"vqa": {"1.0": {"pretrained": acc, "scratch": acc}, ...},
    #              "retrieval": {"pretrained": t2i_r1, "scratch": t2i_r1}, "vqa_steps": n, "retrieval_steps": n}
    transfer: dict[str, Any] | None
    stages: list[StageResult]
    vqa_examples: list[VQAExample]
    retrieval_examples: list[RetrievalExample]
    wall_seconds: float
    machine: str  # e.g. "2 CPU cores (AMD EPYC ...), torch 2.14.1"
    settings: dict[str, object]  # model size, images, steps: shown in the report
