"""A folder of images -> a folder of ``{image_id}.npz`` region features, the layout
``vlbert make-shards folder --features`` reads (``image_id``: the image's path under the folder,
without its suffix, so ``a/b.jpg`` gives ``a/b.npz``).

Images go through the detector in fixed batches (batch ``b`` is always images ``b * size ..`` of
the sorted list), so results do not depend on where a run was interrupted. Each file is written
under a temporary name and renamed; a rerun skips the batches whose files all exist. Unreadable
images are listed in ``errors.tsv`` in the output folder and in the summary, and never stop the run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from PIL import Image

from vlbert.data.shards.schema import DataError
from vlbert.data.sources.converters import IMAGE_SUFFIXES, require_dir
from vlbert.data.sources.extraction.regions import RegionExtractor
from vlbert.data.sources.progress import progress_bar

ERRORS = "errors.tsv"


@dataclass
class ExtractionSummary:
    """What an extraction run did."""

    out_dir: str
    images: int = 0  # images found
    written: int = 0  # feature files written by this run
    skipped: int = 0  # images whose files an earlier run wrote
    errors: list[tuple[str, str]] = field(default_factory=list)  # (image path, why), unreadable images
    seconds: float = 0.0  # time spent on batches that ran

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else float("inf")

    def format(self) -> str:
        lines = [f"wrote {self.written} feature files to {self.out_dir} ({self.skipped} already there, "
                 f"{len(self.errors)} unreadable images of {self.images})"]  # fmt: skip
        lines += [f"  {path}: {why}" for path, why in self.errors[:10]]
        if self.errors:
            lines.append(f"  every unreadable image: {Path(self.out_dir) / ERRORS}")
        lines.append(f"{self.seconds:.2f} s, {self.images_per_second:.1f} images/s")
        return "\n".join(lines)


def list_images(images_dir: Path) -> list[Path]:
    return sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def feature_path(out_dir: Path, images_dir: Path, image: Path) -> Path:
    return out_dir / image.relative_to(images_dir).with_suffix(".npz")


def _open_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def _batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start:start + size]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def extract_folder(images_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], extractor: RegionExtractor,
                   batch_size: int = 8, progress: bool = True) -> ExtractionSummary:  # fmt: skip
    """Region features of every image under ``images_dir`` into ``out_dir`` (resumable)."""
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    root, out = require_dir(images_dir, "images directory"), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = list_images(root)
    summary = ExtractionSummary(str(out), images=len(paths))
    bar = progress_bar(_batches(paths, batch_size), progress, total=-(-len(paths) // batch_size), unit="batch",
                       desc="extract-features")  # fmt: skip
    for batch in bar:
        targets = [feature_path(out, root, path) for path in batch]
        if all(target.is_file() for target in targets):
            summary.skipped += len(batch)
            continue
        began = time.perf_counter()
        images, readable = [], []
        for path, target in zip(batch, targets):
            try:
                images.append(_open_image(path))
                readable.append(target)
            except (OSError, ValueError, Image.DecompressionBombError) as error:
                summary.errors.append((str(path), f"{type(error).__name__}: {error}"))
        for target, regions in zip(readable, extractor(images) if images else []):
            _write_atomic(target, regions.to_npz_bytes())
            summary.written += 1
        summary.seconds += time.perf_counter() - began
    (out / ERRORS).write_text("".join(f"{path}\t{why}\n" for path, why in summary.errors))
    return summary
