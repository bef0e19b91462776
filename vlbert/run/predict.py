"""Run a saved model on your own images: answer a question, rank a folder of images for a text,
or caption an image. Images of any size or mode get the training preprocessing: pixel models use
timm's transform for their encoder; region models read an `.npz` of region features (boxes in
pixels), or run a built-in detector named by the caller (`detector="sort-of-clevr"`, for
Sort-of-CLEVR-style images only); with neither, they say what is missing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vlbert.config import VLBertConfig
from vlbert.data.converters import IMAGE_SUFFIXES
from vlbert.data.images import ImageConfig, build_image_transform, to_rgb
from vlbert.data.schema import DataError, RegionFeatures
from vlbert.data.sort_of_clevr_detect import detect_objects
from vlbert.eval.decoding import generate
from vlbert.eval.retrieval import encode_images, encode_texts, two_stage_scores
from vlbert.run.evaluation_run import load_parts, model_directory

TASK_BY_CLASS = {
    "VLBertForVQA": "vqa",
    "VLBertForRetrieval": "retrieval",
    "VLBertForCaptioning": "captioning",
    "VLBertForPreTraining": "pretraining",
}
# built-in detectors a region model may be given by name: image -> regions (boxes in pixels)
DETECTORS: dict[str, Callable[[Image.Image], RegionFeatures]] = {"sort-of-clevr": detect_objects}


@dataclass
class Ranked:
    path: str
    score: float  # ITM match log-odds


def model_task(model_dir: str | Path) -> str:
    config = VLBertConfig.from_pretrained(str(model_dir))
    for name in config.architectures or []:
        if name in TASK_BY_CLASS:
            return TASK_BY_CLASS[name]
    raise DataError(f"{model_dir} does not say which task model it is (config.json 'architectures')")


def read_region_features(path: str | Path) -> RegionFeatures:
    """An `.npz` of region features; NaN or infinite features or boxes are refused."""
    regions = RegionFeatures.from_npz_bytes(Path(path).read_bytes())
    for name, values in (("features", regions.features), ("boxes", regions.boxes)):
        if not np.isfinite(values).all():
            raise DataError(f"{path}: region {name} hold NaN or infinite values")
    return regions


class Predictor:
    def __init__(self, model_dir: str | Path, device: str | None = None, detector: str | None = None) -> None:
        if detector is not None and detector not in DETECTORS:
            raise DataError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        self.detector = DETECTORS[detector] if detector else None
        directory = model_directory(model_dir)
        self.task = model_task(directory)
        self.parts = load_parts(directory, self.task, device)
        self.model, self.tokenizer = self.parts.model.eval(), self.parts.tokenizer
        self.device = next(self.model.parameters()).device
        config = self.model.config
        self.transform = None
        if config.image_encoder != "regions":
            encoder = self.model.vlbert.image_encoder.model
            self.transform = build_image_transform(ImageConfig.from_model(encoder, size=config.image_size))

    def image_inputs(self, path: str | Path, features: str | Path | None = None) -> dict[str, Tensor]:
        """`encode_image` arguments for one image file (and its region features, if any)."""
        with Image.open(path) as raw:
            raw.load()  # read now: the file closes when the block ends
            image = to_rgb(raw)
        if self.transform is not None:
            return {"pixel_values": self.transform(image)[None].to(self.device)}
        regions = self._regions(path, image, features)
        scale = torch.tensor([image.width, image.height, image.width, image.height], dtype=torch.float32)
        boxes = (torch.from_numpy(regions.boxes) / scale).clamp(0, 1)
        return {"region_features": torch.from_numpy(regions.features).float()[None].to(self.device),
                "region_boxes": boxes[None].to(self.device)}  # fmt: skip

    def _regions(self, path: str | Path, image: Image.Image, features: str | Path | None) -> RegionFeatures:
        if features:
            return read_region_features(features)
        if self.detector is not None:
            return self.detector(image)
        detectors = " | ".join(DETECTORS)
        raise DataError(f"{path}: this model reads detector regions; give their features (an .npz, --features) or "
                        f"name a built-in detector (--detector {detectors}, for Sort-of-CLEVR-style images)")

    def _text(self, text: str) -> tuple[Tensor, Tensor]:
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.model.config.max_position_embeddings)
        return enc["input_ids"].to(self.device), enc["attention_mask"].bool().to(self.device)

    @torch.inference_mode()
    def answer(self, image: str | Path, question: str, top: int = 5, features: str | None = None) -> list[tuple[str, float]]:
        self._require("vqa")
        ids, mask = self._text(question)
        probs = self.model(ids, attention_mask=mask, **self.image_inputs(image, features)).logits.sigmoid()[0]
        values, index = probs.topk(min(top, probs.numel()))
        return [(self.parts.answers.answers[i], float(v)) for v, i in zip(values.tolist(), index.tolist())]

    @torch.inference_mode()
    def caption(self, image: str | Path, num_beams: int = 3, max_length: int = 40, features: str | None = None) -> str:
        self._require("captioning")
        tok = self.tokenizer
        banned = tuple(i for i in (tok.pad_token_id, tok.mask_token_id, tok.unk_token_id) if i is not None)
        ids = generate(self.model, self.image_inputs(image, features), tok.cls_token_id, tok.sep_token_id,
                       max_length=max_length, num_beams=num_beams, banned_ids=banned)[0]
        return tok.decode(ids, skip_special_tokens=True)

    @torch.inference_mode()
    def rank(self, folder: str | Path, query: str, top: int = 5, k: int = 16) -> list[Ranked]:
        """The folder's images ranked for `query`: ITC top-k, then ITM re-rank."""
        self._require("retrieval")
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise DataError(f"no images in {folder}")
        images = encode_images(self.model, (self.image_inputs(p) for p in paths))
        texts = encode_texts(self.model, [self._text(query)])
        scores = two_stage_scores(self.model, texts, images, k=k)[0]  # [I]
        order = scores.argsort(descending=True)[:top].tolist()
        return [Ranked(str(paths[i]), float(scores[i])) for i in order]

    def _require(self, task: str) -> None:
        if self.task != task:
            raise DataError(f"this is a {self.task} model; that prediction needs a {task} model")
