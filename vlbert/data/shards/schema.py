"""The on-disk sample format of vlbert shards (``vlbert-shards/1``).

A shard is a webdataset tar; each sample has the members

- ``__key__``: a unique key without dots, e.g. ``sortofclevr_train_00000042``;
- ``png`` or ``jpg``: the encoded image, byte-for-byte as the source had it (may be absent when
  ``npz`` is there: region features imported without their images);
- ``json``: a :class:`SampleRecord` (captions, questions, ground-truth boxes);
- ``npz`` (optional): :class:`RegionFeatures` (precomputed detector features).

The dataclasses here are the single definition of that format: writers build them and call
``to_json``/``to_npz_bytes``; readers may call ``from_json``/``from_npz_bytes``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "vlbert-shards/1"
IMAGE_EXTENSIONS = ("png", "jpg")


class DataError(ValueError):
    """Bad input data or arguments (a missing file, a malformed annotation); safe to show a user."""


@dataclass
class SampleQuestion:
    """One question about the image with its raw annotator answers (not yet scored)."""

    question_id: str
    question: str
    answers: list[str]  # 10 raw answers for VQAv2, 1 for Sort-of-CLEVR, [] for test splits
    type: str  # "relational"/"nonrelational", or the VQA answer type ("yes/no", "number", "other")
    subtype: str | None = None  # "shape", "closest", ... or the VQA question type

    def to_json(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "question": self.question,
            "answers": list(self.answers),
            "type": self.type,
            "subtype": self.subtype,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleQuestion:
        return cls(data["question_id"], data["question"], list(data["answers"]), data["type"], data.get("subtype"))


@dataclass
class SampleRecord:
    """The ``json`` member of a sample: everything known about one image."""

    id: str
    image_id: str
    width: int
    height: int
    source: str
    split: str
    captions: list[str] = field(default_factory=list)
    questions: list[SampleQuestion] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)  # ground-truth objects, pixels x1, y1, x2, y2
    labels: list[str] = field(default_factory=list)  # one per box

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image_id": self.image_id,
            "width": self.width,
            "height": self.height,
            "captions": list(self.captions),
            "questions": [q.to_json() for q in self.questions],
            "boxes": [list(b) for b in self.boxes],
            "labels": list(self.labels),
            "source": self.source,
            "split": self.split,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleRecord:
        return cls(
            id=data["id"],
            image_id=data["image_id"],
            width=int(data["width"]),
            height=int(data["height"]),
            source=data["source"],
            split=data["split"],
            captions=list(data["captions"]),
            questions=[SampleQuestion.from_json(q) for q in data["questions"]],
            boxes=[list(b) for b in data["boxes"]],
            labels=list(data["labels"]),
        )


@dataclass
class RegionFeatures:
    """Precomputed region features of one image (bottom-up-attention style)."""

    features: np.ndarray  # [N, D] float32 or float16
    boxes: np.ndarray  # [N, 4] float32, pixels x1, y1, x2, y2
    class_probs: np.ndarray | None = None  # [N, C] float32 detector class distribution
    # (width, height) of the image the boxes are in pixels of, as the detector saw it; None: the
    # sample's image. Readers divide the boxes by it (the original project's reader does the same).
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.boxes.shape != (self.features.shape[0], 4):
            shapes = f"{self.features.shape} and {self.boxes.shape}"
            raise DataError(f"region features need features [N, D] and boxes [N, 4], got {shapes}")
        if self.class_probs is not None and self.class_probs.shape[0] != self.features.shape[0]:
            raise DataError(f"class_probs has {self.class_probs.shape[0]} rows, features {self.features.shape[0]}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) <= 0):
            raise DataError(f"image_size must be a positive (width, height), got {self.image_size}")

    def to_npz_bytes(self) -> bytes:
        arrays = {"features": self.features, "boxes": self.boxes.astype(np.float32)}
        if self.class_probs is not None:
            arrays["class_probs"] = self.class_probs.astype(np.float32)
        if self.image_size is not None:
            arrays["image_size"] = np.asarray(self.image_size, dtype=np.int64)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> RegionFeatures:
        with np.load(io.BytesIO(data)) as npz:
            return cls.from_arrays(npz)

    @classmethod
    def from_arrays(cls, arrays: Any) -> RegionFeatures:
        """From a mapping with ``features``, ``boxes`` and optional ``class_probs`` (an open npz file)."""
        for name in ("features", "boxes"):
            if name not in arrays:
                raise DataError(f"region features lack the array {name!r}")
        features = np.asarray(arrays["features"])
        if features.dtype not in (np.float16, np.float32):
            features = features.astype(np.float32)
        probs = np.asarray(arrays["class_probs"], dtype=np.float32) if "class_probs" in arrays else None
        size = tuple(int(v) for v in np.asarray(arrays["image_size"]).reshape(-1)) if "image_size" in arrays else None
        return cls(features, np.asarray(arrays["boxes"], dtype=np.float32), probs, size)  # type: ignore[arg-type]


@dataclass
class ShardSample:
    """One sample ready to be written: key, encoded image, record and optional features.
    ``image`` and ``image_format`` are None for region features imported without their image."""

    key: str
    image: bytes | None
    image_format: str | None  # "png" or "jpg"
    record: SampleRecord
    features: RegionFeatures | None = None

    def __post_init__(self) -> None:
        if "." in self.key or "/" in self.key or not self.key:
            raise DataError(f"sample keys must be non-empty without dots or slashes: {self.key!r}")
        if self.image is None and self.features is None:
            raise DataError(f"sample {self.key!r} has neither an image nor region features")
        if self.image is not None and self.image_format not in IMAGE_EXTENSIONS:
            raise DataError(f"image format must be one of {IMAGE_EXTENSIONS}, got {self.image_format!r}")

    def members(self) -> dict[str, bytes | str]:
        """The tar members as webdataset's ``TarWriter`` takes them (already encoded)."""
        members: dict[str, bytes | str] = {"__key__": self.key}
        if self.image is not None:
            members[str(self.image_format)] = self.image
        members["json"] = json.dumps(self.record.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if self.features is not None:
            members["npz"] = self.features.to_npz_bytes()
        return members
