"""Task expansion: one `Record` (an image with its captions and questions) -> the `Item` s a task
trains on: one per caption, or one per question (VQA). Which of the two a task reads is the task
model's `text_kind` (`vlbert.models.tasks.task_text`); this layer knows no task names. Items share
their record (no image bytes are copied) and are decoded later."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

from vlbert.data.pipeline.masking import derive_seed
from vlbert.data.shards.records import Record
from vlbert.data.shards.schema import DataError, SampleQuestion
from vlbert.data.shards.stats import ErrorPolicy

TEXT_KINDS = ("captions", "questions")
CAPTION_MODES = ("each", "random", "first", "first+one")


def check_text(text: str, caption_mode: str = "each") -> None:
    if text not in TEXT_KINDS:
        raise DataError(f"text must be one of {TEXT_KINDS}, got {text!r}")
    if caption_mode not in CAPTION_MODES:
        raise DataError(f"caption_mode must be one of {CAPTION_MODES}, got {caption_mode!r}")


@dataclass
class Item:
    """One (image, text) pair of a task, not yet decoded."""

    record: Record
    text: str  # the caption, or the question
    question: SampleQuestion | None = None


def _captions(record: Record, policy: ErrorPolicy) -> list[str]:
    """The non-empty captions; empty ones are counted (``empty_text``) and dropped."""
    captions = [c for c in record.meta.captions if c.strip()]
    if len(captions) < len(record.meta.captions):
        policy.bad("empty_text", record.url, record.key, "empty caption", n=len(record.meta.captions) - len(captions))
    return captions


def caption_items(record: Record, policy: ErrorPolicy, mode: str, rng: random.Random) -> list[Item]:
    """Captioned tasks: one item per caption (``each``), or one per image with a random or the
    first caption, or the first followed by one of the others at random (``first+one``: a detailed
    description with one more fact, e.g. a relation between two objects, drawn anew each epoch)."""
    captions = _captions(record, policy)
    if not captions:
        policy.bad("no_text", record.url, record.key, "no non-empty caption")
        return []
    if mode == "random":
        captions = [rng.choice(captions)]
    elif mode == "first":
        captions = captions[:1]
    elif mode == "first+one":
        captions = [f"{captions[0]} {rng.choice(captions[1:])}"] if len(captions) > 1 else captions[:1]
    return [Item(record, caption) for caption in captions]


def keeps_label(question_id: str, fraction: float) -> bool:
    """Whether a question is in the fixed `fraction` of labels (by a stable hash of its id)."""
    return fraction >= 1.0 or derive_seed("label-fraction", question_id) % 1_000_000 < fraction * 1_000_000


def question_items(record: Record, policy: ErrorPolicy, label_fraction: float = 1.0,
                   subtypes: tuple[str, ...] = ()) -> list[Item]:
    """VQA: one item per question with non-empty text (of the fixed `label_fraction` of them, and
    of those whose subtype is in `subtypes`, when given)."""
    kept = [q for q in record.meta.questions if keeps_label(q.question_id, label_fraction)
            and (not subtypes or q.subtype in subtypes)]
    questions = [q for q in kept if q.question.strip()]
    if len(questions) < len(kept):
        n = len(kept) - len(questions)
        policy.bad("empty_text", record.url, record.key, "empty question", n=n)
    if not questions and len(kept) == len(record.meta.questions):
        policy.bad("no_text", record.url, record.key, "no non-empty question")
    return [Item(record, q.question, q) for q in questions]


class TaskExpander:
    """Pipeline stage: records -> items of ``text`` ("captions" or "questions"). The random caption choice is seeded by
    (seed, epoch, sample key), so it does not depend on worker count or shard order."""

    def __init__(
        self, text: str, policy: ErrorPolicy, caption_mode: str = "each", seed: int = 0, epoch: int = 0,
        label_fraction: float = 1.0, question_subtypes: tuple[str, ...] = (),
    ) -> None:
        check_text(text, caption_mode)
        if not 0.0 < label_fraction <= 1.0:
            raise DataError(f"label_fraction must be in (0, 1], got {label_fraction}")
        self.text, self.policy, self.caption_mode = text, policy, caption_mode
        self.seed, self.epoch, self.label_fraction = seed, epoch, label_fraction
        self.question_subtypes = tuple(question_subtypes)

    def expand(self, record: Record) -> list[Item]:
        if self.text == "questions":
            return question_items(record, self.policy, self.label_fraction, self.question_subtypes)
        rng = random.Random(derive_seed(self.seed, self.epoch, record.key))
        return caption_items(record, self.policy, self.caption_mode, rng)

    def __call__(self, src: Iterator[Record]) -> Iterator[Item]:
        for record in src:
            yield from self.expand(record)

