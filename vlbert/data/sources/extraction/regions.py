"""Images -> region features with a torchvision detector, as bottom-up-attention features are made:
the detector's boxes after class-agnostic NMS (at least ``min_boxes``, at most ``max_boxes``, those
above ``score_threshold`` in between), a feature per box pooled with RoIAlign from the detector's
backbone, and the class distribution per box.

Features: ``"box-head"`` (R-CNN models: the box head's representation of each box, e.g. 1024-d,
the analogue of bottom-up-attention's pooled res5 feature) or ``"roi-pool"`` (any model: the
RoIAligned backbone map averaged over its 7 x 7 cells). The class distribution is the box
predictor's softmax, background first (R-CNN models only; others give none).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from vlbert.data.shards.schema import DataError, RegionFeatures

FeatureKind = Literal["box-head", "roi-pool"]
FEATURE_KINDS = ("box-head", "roi-pool")


@dataclass
class BoxSelection:
    """Which detections become regions."""

    max_boxes: int = 36
    min_boxes: int = 10
    score_threshold: float = 0.2
    nms_iou: float = 0.5  # class-agnostic: one region per object, whatever classes it scored

    def __post_init__(self) -> None:
        if not 1 <= self.min_boxes <= self.max_boxes:
            raise DataError(f"need 1 <= min_boxes <= max_boxes, got {self.min_boxes} and {self.max_boxes}")


@dataclass
class _Captured:
    """What the detector's forward pass computed on the way: its resized batch and backbone maps."""

    image_sizes: list[tuple[int, int]] | None = None  # (H, W) after the model's resize
    features: OrderedDict[str, Tensor] | None = None  # name -> [B, C, h, w]


def select_boxes(boxes: Tensor, scores: Tensor, selection: BoxSelection) -> Tensor:
    """Indices of the kept detections, best first. boxes [K, 4], scores [K]."""
    from torchvision.ops import nms

    kept = nms(boxes, scores, selection.nms_iou)  # [K'] sorted by score
    confident = int((scores[kept] >= selection.score_threshold).sum())
    count = min(max(confident, selection.min_boxes), selection.max_boxes, len(kept))
    return kept[:count]


class RegionExtractor:
    """``extractor(images)`` -> one `RegionFeatures` per PIL image (boxes in its pixels)."""

    def __init__(self, model: nn.Module, selection: BoxSelection | None = None, feature: FeatureKind = "box-head",
                 device: str = "cpu") -> None:  # fmt: skip
        from torchvision.ops import MultiScaleRoIAlign

        if feature not in FEATURE_KINDS:
            raise DataError(f"feature must be one of {FEATURE_KINDS}, got {feature!r}")
        self.heads = getattr(model, "roi_heads", None)  # the R-CNN family's box head and predictor
        if feature == "box-head" and self.heads is None:
            raise DataError(f"{type(model).__name__} has no box head: use feature 'roi-pool'")
        self.model, self.feature, self.device = model.eval().to(device), feature, device
        self.selection = selection or BoxSelection()
        self.pool = self.heads.box_roi_pool if self.heads is not None else MultiScaleRoIAlign(["0"], 7, 2)
        self.captured = _Captured()
        model.transform.register_forward_hook(self._keep_sizes)
        model.backbone.register_forward_hook(self._keep_features)

    def _keep_sizes(self, module: nn.Module, args: Any, output: Any) -> None:
        self.captured.image_sizes = list(output[0].image_sizes)

    def _keep_features(self, module: nn.Module, args: Any, output: Any) -> None:
        self.captured.features = output if isinstance(output, OrderedDict) else OrderedDict([("0", output)])

    @torch.inference_mode()
    def __call__(self, images: list[Image.Image]) -> list[RegionFeatures]:
        from torchvision.models.detection.transform import resize_boxes
        from torchvision.transforms.functional import pil_to_tensor

        pixels = [pil_to_tensor(image.convert("RGB")).float().div(255).to(self.device) for image in images]  # [3, H, W]
        detections = self.model(pixels)  # boxes in each image's pixels
        sizes, maps = self.captured.image_sizes, self.captured.features
        assert sizes is not None and maps is not None
        kept, resized = [], []
        for image, found, size in zip(images, detections, sizes):
            boxes = self._choose(found, image.size)  # [N, 4] original pixels
            kept.append(boxes)
            resized.append(resize_boxes(boxes, (image.height, image.width), size))  # the model's pixels
        features, probs = self._describe(maps, resized, sizes)
        out, start = [], 0
        for image, boxes in zip(images, kept):
            rows = slice(start, start + len(boxes))
            start += len(boxes)
            out.append(RegionFeatures(features[rows].cpu().numpy().astype(np.float32), boxes.cpu().numpy().astype(np.float32),
                                      None if probs is None else probs[rows].cpu().numpy(), (image.width, image.height)))  # fmt: skip
        return out

    def _choose(self, found: dict[str, Tensor], size: tuple[int, int]) -> Tensor:
        """The kept boxes of one image [N, 4]; none found: the whole image, one region."""
        boxes, scores = found["boxes"], found["scores"]
        if len(boxes) == 0:
            width, height = size
            return torch.tensor([[0.0, 0.0, float(width), float(height)]], device=boxes.device)
        return boxes[select_boxes(boxes, scores, self.selection)]

    def _describe(self, maps: OrderedDict[str, Tensor], boxes: list[Tensor],
                  sizes: list[tuple[int, int]]) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """Features [sum N, D] and class distributions [sum N, C] (or None) of every image's boxes."""
        pooled = self.pool(maps, boxes, sizes)  # [sum N, C, 7, 7]
        if self.feature == "roi-pool":
            features = pooled.mean((2, 3))  # [sum N, C]
        else:
            features = self.heads.box_head(pooled)  # [sum N, D]
        if self.heads is None:
            return features, None
        representation = features if self.feature == "box-head" else self.heads.box_head(pooled)
        logits, _ = self.heads.box_predictor(representation)  # [sum N, classes]
        return features, logits.softmax(-1)
