"""A torchvision detection model by name, weights from a local file (nothing is downloaded).

The file is either a plain state dict (torchvision's published ``.pth`` files) or what
``tools/train_detector.py`` saves: ``{"format": "vlbert-detector/1", "name", "kwargs", "classes",
"state_dict"}``, whose ``kwargs`` (number of classes, input size, ...) build the model it holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vlbert._extras import require
from vlbert.data.shards.schema import DataError

PREFIX = "torchvision:"
SAVED_FORMAT = "vlbert-detector/1"
COCO_CLASSES = 91  # torchvision's published detectors: 90 COCO ids + background


@dataclass
class DetectorFile:
    """What a weights file holds: the weights and the constructor arguments it was saved with."""

    state_dict: dict[str, torch.Tensor]
    name: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)  # class names, background first, if saved


def read_detector_file(path: str | os.PathLike[str]) -> DetectorFile:
    if not os.path.isfile(path):
        raise DataError(f"detector weights not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, runtime and zip errors alike
        raise DataError(f"{path}: not a torch weights file ({type(error).__name__}: {error})") from None
    if isinstance(data, dict) and data.get("format") == SAVED_FORMAT:
        return DetectorFile(data["state_dict"], data.get("name"), dict(data.get("kwargs", {})), list(data.get("classes", [])))
    if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
        return DetectorFile(data)
    raise DataError(f"{path}: neither a state dict nor a {SAVED_FORMAT} file")


def detector_name(spec: str) -> str:
    """``torchvision:NAME`` -> NAME, checked against torchvision's detection models."""
    models = require("torchvision.models", "vlbert extract-features")
    if not spec.startswith(PREFIX):
        raise DataError(f"--detector must be torchvision:NAME, got {spec!r}")
    name = spec[len(PREFIX):]
    known = models.list_models(module=models.detection)
    if name not in known:
        raise DataError(f"{name!r} is not a torchvision detection model; one of: {', '.join(sorted(known))}")
    return name


def _num_classes(saved: DetectorFile, override: int | None) -> int:
    if override is not None:
        return override
    if "num_classes" in saved.kwargs:
        return int(saved.kwargs["num_classes"])
    scores = saved.state_dict.get("roi_heads.box_predictor.cls_score.weight")  # the R-CNN family
    return int(scores.shape[0]) if scores is not None else COCO_CLASSES


def load_detector(spec: str, weights: str | os.PathLike[str], num_classes: int | None = None,
                  **overrides: Any) -> tuple[nn.Module, DetectorFile]:
    """The model ``spec`` names (``torchvision:NAME``) with the file's weights, in eval mode.
    ``overrides`` are constructor arguments (``min_size``, ``box_score_thresh``, ...) over the file's."""
    models = require("torchvision.models", "vlbert extract-features")
    name = detector_name(spec)
    saved = read_detector_file(weights)
    if saved.name is not None and saved.name != name:
        raise DataError(f"{weights} holds a {saved.name}, not a {name}")
    kwargs = {**saved.kwargs, **overrides, "num_classes": _num_classes(saved, num_classes)}
    model = models.get_model(name, weights=None, weights_backbone=None, **kwargs)
    try:
        model.load_state_dict(saved.state_dict)
    except RuntimeError as error:
        raise DataError(f"{weights} does not fit {name} with {kwargs['num_classes']} classes: "
                        f"{str(error).splitlines()[0]}") from None  # fmt: skip
    return model.eval(), saved
