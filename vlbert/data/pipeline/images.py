"""Image inputs of one sample: decoding to RGB, the timm pixel transform, region features."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import timm.data
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor, nn

from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.shards.stats import SampleError

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_WITH_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


def _composite_on_white(image: Image.Image) -> Image.Image:
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit grey (0..65535) -> 8-bit by x / 257, rounded: 65535 -> 255, 32896 -> 128."""
    values = np.asarray(image).astype(np.float64)  # [H, W]
    eight = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(eight, mode="L").convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: transparency is composited on white, 16-bit grey is scaled to 8 bits,
    the rest (L, 1, P, CMYK, YCbCr, F, ...) uses Pillow's conversion."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT:
        return _sixteen_bit_to_rgb(image)
    if image.mode in _WITH_ALPHA or (image.mode == "P" and "transparency" in image.info):
        return _composite_on_white(image)
    return image.convert("RGB")


def decode_image(data: bytes) -> Image.Image:
    """Encoded bytes -> a fully decoded RGB image. Raises `SampleError` with reason
    ``decompression_bomb`` (over `Image.MAX_IMAGE_PIXELS`, Pillow's warning included) or
    ``corrupt_image`` (anything Pillow cannot decode, truncated files included)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
            return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise SampleError("decompression_bomb", str(error)) from None
    except Exception as error:  # Pillow raises OSError, SyntaxError, zlib.error, ValueError, ...
        raise SampleError("corrupt_image", f"{type(error).__name__}: {error}") from None


@dataclass
class ImageConfig:
    """Pixel preprocessing, resolved by timm. Defaults keep the whole image and its colours:
    ``crop_mode`` "squash" with ``crop_pct`` 1.0 cuts nothing off at evaluation (objects at the
    borders stay, as captions and answers may refer to them), ``hflip`` 0 (a flip would swap "left"
    and "right") and ``color_jitter`` 0."""

    size: int = 224
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD
    interpolation: str = "bicubic"
    crop_pct: float = 1.0
    crop_mode: str = "squash"  # resize to size x size without cropping ("center": timm's crop)
    augment: bool = False  # timm's training transform (random resized crop)
    hflip: float = 0.0
    color_jitter: float = 0.0  # colours are named in captions and answers
    scale: tuple[float, float] = (0.5, 1.0)  # random resized crop area range when augmenting

    @classmethod
    def from_model(cls, model: nn.Module, **overrides: object) -> ImageConfig:
        """Size, mean, std and interpolation from a timm model's pretrained config."""
        resolved = timm.data.resolve_data_config(model=model)
        base = {"size": resolved["input_size"][-1], "mean": tuple(resolved["mean"]), "std": tuple(resolved["std"]),
                "interpolation": resolved["interpolation"]}  # fmt: skip
        return cls(**{**base, **overrides})  # type: ignore[arg-type]


def build_image_transform(config: ImageConfig) -> Callable[[Image.Image], Tensor]:
    """RGB image -> normalised [3, size, size] tensor, via `timm.data.create_transform`."""
    data_config = timm.data.resolve_data_config(
        {"input_size": (3, config.size, config.size), "mean": config.mean, "std": config.std,
         "interpolation": config.interpolation, "crop_pct": config.crop_pct,
         "crop_mode": config.crop_mode}  # fmt: skip
    )
    extra = {"hflip": config.hflip, "scale": config.scale, "color_jitter": config.color_jitter}
    if not config.augment:
        extra = {}
    return timm.data.create_transform(**data_config, is_training=config.augment, **extra)


@dataclass
class Regions:
    """Region features of one image with boxes normalised by the image size."""

    features: Tensor  # [N, D] float32
    boxes: Tensor  # [N, 4] x1, y1, x2, y2 in [0, 1]
    class_probs: Tensor | None  # [N, C]


def load_regions(npz: bytes, width: int, height: int, max_regions: int | None = None) -> Regions:
    """The ``npz`` member -> `Regions` (the first ``max_regions``), boxes divided by the features'
    ``image_size`` if they carry one, else by the sample's ``width`` and ``height``. Raises `SampleError`
    ``bad_features`` for unreadable arrays, inconsistent shapes, no regions or non-finite values
    (features, boxes or class probabilities)."""
    try:
        arrays = RegionFeatures.from_npz_bytes(npz)
    except (DataError, OSError, ValueError, KeyError) as error:
        raise SampleError("bad_features", f"{type(error).__name__}: {error}") from None
    count = arrays.features.shape[0] if max_regions is None else min(max_regions, arrays.features.shape[0])
    if arrays.image_size is not None:  # the boxes are in pixels of the image the detector saw
        width, height = arrays.image_size
    if count == 0 or width <= 0 or height <= 0:
        raise SampleError("bad_features", f"{arrays.features.shape[0]} regions, image size {width}x{height}")
    features = torch.from_numpy(np.ascontiguousarray(arrays.features[:count])).float()  # [N, D]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    boxes = (torch.from_numpy(arrays.boxes[:count].copy()) / scale).clamp(0.0, 1.0)  # [N, 4]
    probs = None if arrays.class_probs is None else torch.from_numpy(arrays.class_probs[:count].copy())  # [N, C]
    if not (torch.isfinite(features).all() and torch.isfinite(boxes).all()):
        raise SampleError("bad_features", "non-finite features or boxes")
    if probs is not None and not torch.isfinite(probs).all():  # masked region targets
        raise SampleError("bad_features", "non-finite class_probs")
    return Regions(features, boxes, probs)
