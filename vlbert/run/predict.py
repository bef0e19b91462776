"""Run a saved model on your own images: answer a question, rank a folder of images for a text,
or caption an image. Images of any size or mode get the training preprocessing: pixel models use
timm's transform for their encoder; region models read an `.npz` of region features (boxes in
pixels), or regions a named detector finds (`DETECTORS`: the Sort-of-CLEVR colour detector, for
Sort-of-CLEVR-style scenes only). A region model given neither is an error, never a silent guess."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vlbert.config import VLBertConfig
from vlbert.data.pipeline.images import ImageConfig, build_image_transform, to_rgb
from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.converters import IMAGE_SUFFIXES
from vlbert.data.sources.detectors import DETECTORS
from vlbert.eval.decoding import generate
from vlbert.eval.device import model_device
from vlbert.eval.retrieval import encode_images, encode_texts, two_stage_scores
from vlbert.eval.saved import load_parts, model_directory
from vlbert.models.outputs import VQAOutput
from vlbert.models.tasks import TASK_BY_CLASS
from vlbert.tasks import TASKS


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


def adapter_task(adapter: str | Path) -> str:
    """The task an adapter directory was trained for (its `vlbert_adapter.json`)."""
    from vlbert.engine.adapters import adapter_info

    task = adapter_info(adapter).get("task")
    if task not in TASKS:
        raise DataError(f"{adapter} does not say which task it was trained for (vlbert_adapter.json 'task')")
    return task


def read_region_features(path: str | Path) -> RegionFeatures:
    """An `.npz` of region features; NaN or infinite features or boxes are refused."""
    regions = RegionFeatures.from_npz_bytes(Path(path).read_bytes())
    for name, values in (("features", regions.features), ("boxes", regions.boxes)):
        if not np.isfinite(values).all():
            raise DataError(f"{path}: region {name} hold NaN or infinite values")
    return regions


def find_regions(image: Image.Image, detector: str | None) -> RegionFeatures:
    """The regions the named detector finds; no detector is an error that says what to give."""
    if detector is None:
        raise DataError("this model reads region features: give a features .npz (--features), or "
                        f"a detector for Sort-of-CLEVR-style scenes (--detector {'/'.join(DETECTORS)})")
    if detector not in DETECTORS:
        raise DataError(f"unknown detector {detector!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[detector](image)


def image_files(folder: str | Path) -> list[Path]:
    """The images of a folder (by suffix), sorted by name; none is an error."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"no images in {folder}")
    return paths


class Predictor:
    def __init__(self, model_dir: str | Path, device: str | None = None, adapter: str | Path | None = None) -> None:
        directory = model_directory(model_dir)
        self.task = adapter_task(adapter) if adapter is not None else model_task(directory)
        self.parts = load_parts(directory, self.task, device, adapter)
        self.model, self.tokenizer = self.parts.model.eval(), self.parts.tokenizer
        self.device = model_device(self.model)
        config = self.model.config
        self.transform = None
        if config.image_encoder != "regions":
            encoder = self.model.vlbert.image_encoder.model
            self.transform = build_image_transform(ImageConfig.from_model(encoder, size=config.image_size))

    def image_inputs(self, image: str | Path | Image.Image, features: str | Path | RegionFeatures | None = None,
                     detector: str | None = None) -> dict[str, Tensor]:
        """`encode_image` arguments for one image (a file or a decoded RGB image). Region models
        read `features` (an `.npz` file or its arrays, boxes in pixels) or the regions `detector`
        finds."""
        if not isinstance(image, Image.Image):
            with Image.open(image) as raw:
                raw.load()  # read now: the file closes when the block ends
                image = to_rgb(raw)
        if self.transform is not None:
            return {"pixel_values": self.transform(image)[None].to(self.device)}
        if isinstance(features, RegionFeatures):
            regions = features
        else:
            regions = read_region_features(features) if features else find_regions(image, detector)
        width, height = regions.image_size or image.size  # the boxes' pixels: the detector's image, if it says
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        boxes = (torch.from_numpy(regions.boxes) / scale).clamp(0, 1)
        return {"region_features": torch.from_numpy(regions.features).float()[None].to(self.device),
                "region_boxes": boxes[None].to(self.device)}  # fmt: skip

    def text_inputs(self, text: str) -> tuple[Tensor, Tensor]:
        """(input_ids [1, L], attention_mask [1, L] bool), cut at the model's longest text."""
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.model.config.max_position_embeddings)
        return enc["input_ids"].to(self.device), enc["attention_mask"].bool().to(self.device)

    @torch.inference_mode()
    def vqa_output(self, inputs: dict[str, Tensor], question: str) -> VQAOutput:
        """The VQA model's output for the question about one image's inputs (`image_inputs`)."""
        self._require("vqa")
        ids, mask = self.text_inputs(question)
        return self.model(ids, attention_mask=mask, **inputs)

    def top_answers(self, probs: Tensor, top: int = 5) -> list[tuple[str, float]]:
        """The `top` answers of probabilities [num_answers], best first."""
        values, index = probs.topk(min(top, probs.numel()))
        return [(self.parts.answers.answers[i], float(v)) for v, i in zip(values.tolist(), index.tolist())]

    def answer(self, image: str | Path | Image.Image, question: str, top: int = 5, features: str | None = None,
               detector: str | None = None) -> list[tuple[str, float]]:
        self._require("vqa")
        probs = self.vqa_output(self.image_inputs(image, features, detector), question).logits.sigmoid()[0]
        return self.top_answers(probs, top)

    @torch.inference_mode()
    def caption(self, image: str | Path | Image.Image, num_beams: int = 3, max_length: int | None = None,
                features: str | None = None, detector: str | None = None) -> str:
        """The caption, decoded to its end token or to `max_length` tokens (default: as long as
        the model reads, so that a long description is never cut short)."""
        self._require("captioning")
        if max_length is None:
            max_length = self.model.config.max_position_embeddings - 2  # [CLS] (the start token) and [SEP]
        tok = self.tokenizer
        banned = tuple(i for i in (tok.pad_token_id, tok.mask_token_id, tok.unk_token_id) if i is not None)
        ids = generate(self.model, self.image_inputs(image, features, detector), tok.cls_token_id, tok.sep_token_id,
                       max_length=max_length, num_beams=num_beams, banned_ids=banned)[0]
        return tok.decode(ids, skip_special_tokens=True)

    @torch.inference_mode()
    def rank(self, folder: str | Path, query: str, top: int = 5, k: int = 16, detector: str | None = None) -> list[Ranked]:
        """The folder's images ranked for `query`: ITC top-k, then ITM re-rank."""
        self._require("retrieval")
        paths = image_files(folder)
        images = encode_images(self.model, (self.image_inputs(p, detector=detector) for p in paths))
        texts = encode_texts(self.model, [self.text_inputs(query)])
        scores = two_stage_scores(self.model, texts, images, k=k)[0]  # [I]
        order = scores.argsort(descending=True)[:top].tolist()
        return [Ranked(str(paths[i]), float(scores[i])) for i in order]

    def supports(self, task: str) -> bool:
        """Whether this model has the heads `task` needs (a pre-training model also ranks: it has
        the ITM and ITC heads)."""
        return task == self.task or (task == "retrieval" and self.task == "pretraining")

    def _require(self, task: str) -> None:
        if not self.supports(task):
            raise DataError(f"this is a {self.task} model; that prediction needs a {task} model")
