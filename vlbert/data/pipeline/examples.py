"""Decoding one `Item` into an `Example`: tokens, pixels or region features, answer scores."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image
from torch import Tensor

from vlbert.data.pipeline.answers import AnswerVocab, soft_scores
from vlbert.data.pipeline.batch import Example
from vlbert.data.pipeline.images import Regions, decode_image, load_regions
from vlbert.data.pipeline.items import Item
from vlbert.data.pipeline.tokenize import TextEncoder
from vlbert.data.shards.schema import DataError
from vlbert.data.shards.stats import DataStats, SampleError

INPUTS = ("regions", "pixels")
LONG_TEXT_POLICIES = ("truncate", "error")
IMAGE_REASONS = frozenset({"corrupt_image", "decompression_bomb", "bad_features"})  # once per sample


def _nbytes(value: Tensor | Regions) -> int:
    if isinstance(value, Tensor):
        return value.nbytes
    return sum(t.nbytes for t in (value.features, value.boxes, value.class_probs) if t is not None)


class RecentImages:
    """Recently decoded images by sample key, up to ``max_bytes``: the items of one image (its
    questions or captions) stay close together through the shuffle buffer, so most are decoded once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: OrderedDict[str, Tensor | Regions] = OrderedDict()

    def get(self, key: str, decode: Callable[[], Tensor | Regions]) -> Tensor | Regions:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = decode()
        if _nbytes(value) <= self.max_bytes:
            self.entries[key] = value
            self.bytes += _nbytes(value)
            while self.bytes > self.max_bytes:
                self.bytes -= _nbytes(self.entries.popitem(last=False)[1])
        return value


@dataclass
class ExampleBuilder:
    """Item -> Example. Raises `SampleError` for an undecodable image or features, and for an
    over-long text when ``on_long_text="error"`` (else the text is cut and counted in ``stats``)."""

    encoder: TextEncoder
    inputs: str  # "regions" or "pixels"
    transform: Callable[[Image.Image], Tensor] | None = None  # pixels only
    max_regions: int | None = None
    answer_vocab: AnswerVocab | None = None
    on_long_text: str = "truncate"
    cache_bytes: int = 0  # decoded images kept for the next items of the same image (no augmentation!)
    cache: RecentImages = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.cache = RecentImages(self.cache_bytes)
        if self.inputs not in INPUTS:
            raise DataError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        if self.on_long_text not in LONG_TEXT_POLICIES:
            raise DataError(f"on_long_text must be one of {LONG_TEXT_POLICIES}, got {self.on_long_text!r}")
        if self.inputs == "pixels" and self.transform is None:
            raise DataError("pixel inputs need an image transform")

    def __call__(self, item: Item, stats: DataStats) -> Example:
        record, meta, question = item.record, item.record.meta, item.question
        encoded = self.encoder(item.text)
        if encoded.truncated:
            if self.on_long_text == "error":
                raise SampleError("long_text", f"text over {self.encoder.max_length} tokens: {item.text[:60]!r}...")
            stats.truncated_texts += 1
        example = Example(
            key=record.key,
            image_id=meta.image_id,
            input_ids=encoded.ids,
            text=item.text,
            captions=list(meta.captions),
            answers=[] if question is None else list(question.answers),
            question_id=None if question is None else question.question_id,
            question_type=None if question is None else question.type,
            question_subtype=None if question is None else question.subtype,
        )
        if question is not None and self.answer_vocab is not None:
            example.answer_scores = soft_scores(question.answers, self.answer_vocab)  # [A]
        self._add_image(example, item)
        return example

    def _add_image(self, example: Example, item: Item) -> None:
        record = item.record
        if self.inputs == "pixels":
            assert self.transform is not None and record.image is not None  # checked when parsed
            transform, image = self.transform, record.image
            example.pixel_values = self.cache.get(record.key, lambda: transform(decode_image(image)))  # [3, H, W]
            return
        assert record.npz is not None  # checked when parsed
        npz, meta = record.npz, record.meta
        regions = self.cache.get(record.key, lambda: load_regions(npz, meta.width, meta.height, self.max_regions))
        assert isinstance(regions, Regions)
        example.region_features, example.region_boxes = regions.features, regions.boxes  # [N, D], [N, 4]
        example.region_class_probs = regions.class_probs  # [N, C] or None
