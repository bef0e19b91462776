"""Small webdataset shards for the data tests, written here with `webdataset.TarWriter` and Pillow
(independent of the package's own shard writers)."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds
from PIL import Image

FEATURE_DIM = 48  # the "tiny" preset's v_feature_size
NUM_CLASSES = 10  # the "tiny" preset's v_target_size
WIDTH, HEIGHT = 40, 30


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def rgb_png(index: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> bytes:
    return image_bytes(Image.new("RGB", size, (index * 20 % 256, 100, 200)))


@dataclass
class Regions:
    features: np.ndarray  # [N, D]
    boxes: np.ndarray  # [N, 4] pixels
    class_probs: np.ndarray  # [N, C]

    def npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, features=self.features, boxes=self.boxes, class_probs=self.class_probs)
        return buffer.getvalue()


def make_regions(count: int, seed: int) -> Regions:
    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, WIDTH // 2, count)
    y1 = rng.integers(0, HEIGHT // 2, count)
    boxes = np.stack([x1, y1, x1 + WIDTH // 2, y1 + HEIGHT // 2], axis=1).astype(np.float32)
    probs = rng.random((count, NUM_CLASSES)).astype(np.float32)
    features = rng.standard_normal((count, FEATURE_DIM)).astype(np.float32)
    return Regions(features, boxes, probs / probs.sum(1, keepdims=True))


def make_meta(key: str, captions: list[str], questions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": key, "image_id": f"img-{key}", "width": WIDTH, "height": HEIGHT,
        "captions": captions, "questions": questions or [], "boxes": [], "labels": [],
        "source": "test", "split": "train",
    }  # fmt: skip


def make_question(key: str, j: int, answers: list[str]) -> dict[str, Any]:
    return {"question_id": f"{key}-q{j}", "question": f"question {j} about {key}?", "answers": answers,
            "type": "relational" if j % 2 else "nonrelational", "subtype": "count" if j % 2 else None}  # fmt: skip


@dataclass
class Sample:
    """One sample's members; `members()` gives what TarWriter takes."""

    key: str
    meta: dict[str, Any] | None
    image: bytes | None = None
    image_ext: str = "png"
    regions: Regions | None = None
    raw_json: bytes | None = None  # overrides meta

    def members(self) -> dict[str, Any]:
        out: dict[str, Any] = {"__key__": self.key}
        if self.image is not None:
            out[self.image_ext] = self.image
        if self.raw_json is not None:
            out["json"] = self.raw_json
        elif self.meta is not None:
            out["json"] = json.dumps(self.meta).encode()
        if self.regions is not None:
            out["npz"] = self.regions.npz()
        return out


def good_sample(index: int, num_regions: int | None = None, questions: int = 2) -> Sample:
    key = f"s{index:04d}"
    qs = [make_question(key, j, [f"answer{(index + j) % 4}"] * 3 + ["other"] * 7) for j in range(questions)]
    meta = make_meta(key, [f"a red circle number {index}", f"the blue square {index} is left"], qs)
    count = num_regions if num_regions is not None else 2 + index % 4
    return Sample(key, meta, rgb_png(index), regions=make_regions(count, seed=index))


@dataclass
class ShardSet:
    directory: Path
    urls: list[str] = field(default_factory=list)
    samples: dict[str, Sample] = field(default_factory=dict)


def write_shards(directory: Path, shards: list[list[Sample]], manifest: bool = True) -> ShardSet:
    directory.mkdir(parents=True, exist_ok=True)
    out = ShardSet(directory)
    entries = []
    for index, samples in enumerate(shards):
        name = f"test-{index:06d}.tar"
        with wds.TarWriter(str(directory / name)) as writer:
            for sample in samples:
                writer.write(sample.members())
                out.samples[sample.key] = sample
        out.urls.append(str(directory / name))
        entries.append({"name": name, "count": len(samples), "split": "train"})
    if manifest:
        total = sum(e["count"] for e in entries)
        (directory / "manifest.json").write_text(json.dumps({"shards": entries, "total": total}))
    return out


def good_shards(directory: Path, num_shards: int = 2, per_shard: int = 5, **kwargs: Any) -> ShardSet:
    shards = [[good_sample(s * per_shard + i, **kwargs) for i in range(per_shard)] for s in range(num_shards)]
    return write_shards(directory, shards)


def truncate_file(path: str | os.PathLike[str], size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
