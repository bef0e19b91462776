"""Test helper: region features written in the original projects' own layouts (synthetic values,
real layout), and the original vilbert-multi-task reader's arithmetic, restated, to compare with."""

from __future__ import annotations

import base64
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class OriginalImage:
    """One image's detector output as the original scripts hold it."""

    image_id: int
    width: int
    height: int
    boxes: np.ndarray  # [N, 4] float32 pixels
    features: np.ndarray  # [N, D] float32
    cls_prob: np.ndarray | None  # [N, C] float32 (None: made with classes=0)


def make_images(count: int = 5, boxes: int = 36, dim: int = 2048, classes: int = 1601, seed: int = 0) -> list[OriginalImage]:
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        width, height = int(rng.integers(300, 640)), int(rng.integers(200, 480))
        n = boxes - index % 3  # not every image has as many boxes
        corners = np.sort(rng.uniform(0, 1, (n, 2, 2)), axis=1) * np.array([width - 1, height - 1])  # [N, 2, 2]
        xyxy = np.concatenate([corners[:, 0], corners[:, 1]], axis=1).astype(np.float32)  # [N, 4]
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32) if classes else None
        features = rng.gamma(1.0, 1.0, (n, dim)).astype(np.float32)  # post-ReLU-like, non-negative
        images.append(OriginalImage(1000 + 37 * index, width, height, xyxy, features, probs))
    return images


def _b64(array: np.ndarray) -> bytes:
    return base64.b64encode(np.ascontiguousarray(array).tobytes())


def lmdb_record(image: OriginalImage, encoded: bool) -> dict:
    """A ``convert_to_lmdb.py`` record: arrays as they are (``encoded`` False) or base64, as the
    published files hold them for ``_image_features_reader.py``."""
    pack = _b64 if encoded else (lambda a: a)
    record = {"image_id": image.image_id, "image_h": image.height, "image_w": image.width,
              "num_boxes": len(image.boxes), "boxes": pack(image.boxes), "features": pack(image.features)}  # fmt: skip
    if image.cls_prob is not None:
        record["cls_prob"] = pack(image.cls_prob)
    return record


def write_lmdb(path: Path, images: list[OriginalImage], encoded: bool = True, raw: dict[int, bytes] | None = None) -> Path:
    """An LMDB as ``convert_to_lmdb.py`` writes it; ``raw`` replaces some images' stored bytes."""
    import lmdb

    size = sum(image.features.nbytes + image.boxes.nbytes for image in images)
    env = lmdb.open(str(path), map_size=max(1 << 30, 8 * size))  # room for base64, pickling and page slack
    with env.begin(write=True) as txn:
        for image in images:
            data = (raw or {}).get(image.image_id) or pickle.dumps(lmdb_record(image, encoded))
            txn.put(str(image.image_id).encode(), data)
        txn.put(b"keys", pickle.dumps([str(image.image_id).encode() for image in images]))
    env.close()
    return path


def write_npy_dicts(folder: Path, images: list[OriginalImage]) -> Path:
    """``extract_features.py``'s output: one ``.npy`` dict per image, named after the image file."""
    folder.mkdir(parents=True, exist_ok=True)
    for image in images:
        item = {"bbox": image.boxes, "num_boxes": len(image.boxes), "image_height": image.height,
                "image_width": image.width, "features": image.features, "cls_prob": image.cls_prob,
                "objects": image.cls_prob.argmax(1), "image_id": image.image_id}  # fmt: skip
        np.save(folder / f"COCO_val2014_{image.image_id:012d}.npy", item)
    return folder


def write_tsv(path: Path, images: list[OriginalImage], layout: str = "lxmert") -> Path:
    """LXMERT's 10 columns (ids as COCO file stems) or bottom-up-attention's 6 (numeric ids)."""
    lines = []
    for image in images:
        n = len(image.boxes)
        if layout == "lxmert":
            objects = image.cls_prob.argmax(1).astype(np.int64)
            fields = [f"COCO_val2014_{image.image_id:012d}", image.height, image.width, _b64(objects).decode(),
                      _b64(image.cls_prob.max(1)).decode(), _b64(objects % 400).decode(),
                      _b64(image.cls_prob.min(1)).decode(), n, _b64(image.boxes).decode(), _b64(image.features).decode()]
        else:
            fields = [image.image_id, image.width, image.height, n, _b64(image.boxes).decode(),
                      _b64(image.features).decode()]
        lines.append("\t".join(str(f) for f in fields))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_vqa_questions(path: Path, images: list[OriginalImage], subtype: str = "val2014") -> Path:
    """A VQAv2 questions file: one question per image (answers not needed)."""
    questions = [{"image_id": image.image_id, "question_id": image.image_id * 10, "question": "what is this?"}
                 for image in images]  # fmt: skip
    path.write_text(json.dumps({"data_subtype": subtype, "questions": questions}))
    return path


def original_reader(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """vilbert-multi-task's ``ImageFeaturesH5Reader.__getitem__``, restated: (features [N + 1, D]
    with the mean region first, locations [N + 1, 5] with (0, 0, 1, 1, 1) first)."""
    n, width, height = int(record["num_boxes"]), float(record["image_w"]), float(record["image_h"])
    features = np.frombuffer(base64.b64decode(record["features"]), dtype=np.float32).reshape(n, -1)
    boxes = np.frombuffer(base64.b64decode(record["boxes"]), dtype=np.float32).reshape(n, 4)
    mean = np.sum(features, axis=0) / n
    location = np.zeros((n, 5), dtype=np.float32)
    location[:, :4] = boxes
    location[:, 4] = (location[:, 3] - location[:, 1]) * (location[:, 2] - location[:, 0]) / (width * height)
    location[:, 0] /= width
    location[:, 1] /= height
    location[:, 2] /= width
    location[:, 3] /= height
    whole = np.array([0, 0, 1, 1, 1], dtype=np.float32)
    return np.concatenate([mean[None], features]), np.concatenate([whole[None], location])
