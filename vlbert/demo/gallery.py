"""The demo's retrieval gallery: images from a folder or a shard directory, encoded once at
start-up (the ITC index and the unimodal states the ITM re-rank pairs with a caption)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torch import Tensor

from vlbert.data.pipeline.images import decode_image
from vlbert.data.shards.records import read_records
from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.demo.heatmap import png_data_url
from vlbert.eval.retrieval import EncodedSet, encode_images, encode_texts, two_stage_scores
from vlbert.run.predict import Predictor, image_files

THUMBNAIL = 150  # pixels, the longer side of a result's picture


@dataclass
class GalleryImage:
    name: str
    image: Image.Image  # RGB
    regions: RegionFeatures | None  # the shard's region features, if it has them


@dataclass
class Hit:
    name: str
    score: float  # ITM match log-odds after the re-rank
    thumbnail: str  # PNG data URL


@dataclass
class Gallery:
    names: list[str]
    thumbnails: list[str]
    index: EncodedSet  # every image's unimodal states and ITC embedding


def read_gallery(source: str | Path, limit: int, split: str | None = None) -> list[GalleryImage]:
    """Up to `limit` images of a folder (sorted by name) or of a shard directory (shard order;
    `split` picks one split of its manifest)."""
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"--gallery {source} is not a folder of images or a shard directory")
    if any(source.glob("*.tar")):
        return _from_shards(source, limit, split)
    items = []
    for path in image_files(source)[:limit]:
        items.append(GalleryImage(path.name, decode_image(path.read_bytes()), None))
    return items


def _from_shards(source: Path, limit: int, split: str | None) -> list[GalleryImage]:
    items = []
    for record in read_records(source, split):
        if record.image is None:
            continue
        regions = RegionFeatures.from_npz_bytes(record.npz) if record.npz else None
        items.append(GalleryImage(record.key, decode_image(record.image), regions))
        if len(items) >= limit:
            break
    if not items:
        raise DataError(f"no images in the shards of {source}")
    return items


def _inputs(predictor: Predictor, item: GalleryImage, detector: str | None) -> dict[str, Tensor]:
    if item.regions is not None and predictor.transform is None:  # a region model, the shard's regions
        return predictor.image_inputs(item.image, features=item.regions)
    return predictor.image_inputs(item.image, detector=detector)


def build_gallery(predictor: Predictor, items: list[GalleryImage], detector: str | None) -> Gallery:
    """Encode every image once: the ITC index and the states the re-rank reuses."""
    index = encode_images(predictor.model, (_inputs(predictor, item, detector) for item in items))
    thumbnails = []
    for item in items:
        thumb = item.image.copy()
        scale = THUMBNAIL / max(thumb.size)
        thumb = thumb.resize((max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))), Image.NEAREST)
        thumbnails.append(png_data_url(thumb))
    return Gallery([item.name for item in items], thumbnails, index)


SEARCH_MODES = ("two-stage", "itc")


def search(predictor: Predictor, gallery: Gallery, caption: str, top: int, k: int = 16,
           mode: str = "two-stage") -> list[Hit]:
    """The gallery's best `top` images for `caption`: ITC top-k, then the ITM re-rank ("two-stage"),
    or the ITC similarity alone ("itc", for a model trained without ITM)."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"search mode must be one of {SEARCH_MODES}, got {mode!r}")
    texts = encode_texts(predictor.model, [predictor.text_inputs(caption)])
    if mode == "itc":
        scores = (texts.embeds @ gallery.index.embeds.t())[0]  # [I]
    else:
        scores = two_stage_scores(predictor.model, texts, gallery.index, k=k)[0]  # [I]
    order = scores.argsort(descending=True)[: min(top, k)].tolist()
    return [Hit(gallery.names[i], round(float(scores[i]), 4), gallery.thumbnails[i]) for i in order]

