"""Convert public image-text layouts into vlbert shards.

Each source has a reader that turns its annotation files into :class:`ImageEntry` s (image path plus
captions/questions); :func:`write_entries` does the rest for all of them: reads the image bytes
(kept as they are for JPEG and PNG), optionally attaches per-image region features from a feature
store (a folder of ``{image_id}.npz``, the original project's LMDB or ``.npy`` dicts, a
bottom-up-attention / LXMERT TSV: ``vlbert.data.sources.features``), and writes shards and a
manifest. With features, the images are optional: samples then carry the features alone. Missing
or unreadable files are skipped and counted, or raise a
:class:`~vlbert.data.shards.schema.DataError` naming the file; a corrupt feature record always stops
the run, naming the image. An interrupted run resumes (``WriteOptions.resume``): the shards it
finished are kept, and the result is the same as an uninterrupted run's.

Sources: an image folder with JSONL/CSV captions (:func:`convert_folder`), COCO and Flickr30k in
the Karpathy-split JSON (:func:`convert_karpathy`), and VQAv2 (:func:`convert_vqav2` in
``vlbert.data.sources.vqav2``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image, UnidentifiedImageError

from vlbert.data.shards.schema import DataError, SampleQuestion, SampleRecord, ShardSample
from vlbert.data.shards.writer import (
    MANIFEST,
    ShardInfo,
    ShardSetWriter,
    WriteSummary,
    finished_shards,
    prepare_output_dir,
    write_manifest,
)
from vlbert.data.sources.errors import SkipSample
from vlbert.data.sources.features.original import CorruptRecord
from vlbert.data.sources.features.stores import FeatureStore, open_feature_store
from vlbert.data.sources.progress import progress_bar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")  # image files, by name
_KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png"}


@dataclass
class ImageEntry:
    """One image to convert, as an annotation file describes it (``path`` None: no image file,
    region features only)."""

    path: Path | None
    key: str
    image_id: str
    split: str
    captions: list[str] = field(default_factory=list)
    questions: list[SampleQuestion] = field(default_factory=list)


@dataclass
class WriteOptions:
    """How to write shards; shared by every converter."""

    shard_size: int = 1000
    on_error: str = "skip"  # "skip": count and go on; "raise": stop with an error naming the file
    # per-image region features: a folder of {image_id}.npz, an LMDB, a folder of .npy dicts or a TSV
    features_dir: str | os.PathLike[str] | None = None
    features_format: str = "auto"  # "auto" (by what the path holds), "npz", "npy", "lmdb" or "tsv"
    overwrite: bool = False
    prefix: str | None = None  # shard-name prefix; default: the source name
    append: bool = False  # add new splits to the shards already in the output directory
    resume: bool = False  # keep the shards an interrupted run finished, write the rest
    progress: bool = False  # a progress bar on stderr

    def __post_init__(self) -> None:
        if self.on_error not in ("skip", "raise"):
            raise DataError(f"on_error must be 'skip' or 'raise', got {self.on_error!r}")
        if self.append and self.overwrite:
            raise DataError("--append and --overwrite exclude each other")
        if self.resume and self.overwrite:
            raise DataError("--resume and --overwrite exclude each other")


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, or a DataError saying which input is missing."""
    if not Path(path).is_file():
        raise DataError(f"{what} not found: {path}")
    return Path(path)


def require_dir(path: str | os.PathLike[str], what: str) -> Path:
    if not Path(path).is_dir():
        raise DataError(f"{what} is not a directory: {path}")
    return Path(path)


def read_image(path: Path) -> tuple[bytes, str, int, int]:
    """Encoded bytes, format ("jpg"/"png"), width and height. Other formats are converted to PNG."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SkipSample("missing image", path) from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.format in _KEPT_FORMATS:
                return data, _KEPT_FORMATS[image.format], width, height
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
            return buffer.getvalue(), "png", width, height
    except (UnidentifiedImageError, OSError):
        raise SkipSample("unreadable image", path) from None


def build_sample(entry: ImageEntry, source: str, store: FeatureStore | None) -> ShardSample:
    """The entry's sample: its image and, from ``store``, its region features (either may be
    missing, not both). Without an image, the record's size is the features' ``image_size``."""
    data, image_format, width, height = read_image(entry.path) if entry.path is not None else (None, None, 0, 0)
    features = store.read(entry.image_id) if store is not None else None
    if data is None:
        if features is None or features.image_size is None:
            raise SkipSample("no image, and features without their image size", entry.image_id)
        width, height = features.image_size
    record = SampleRecord(
        id=entry.key,
        image_id=entry.image_id,
        width=width,
        height=height,
        source=source,
        split=entry.split,
        captions=entry.captions,
        questions=entry.questions,
    )
    return ShardSample(entry.key, data, image_format, record, features)


@dataclass
class _Existing:
    """What an output directory already holds, kept by ``append``."""

    shards: list[ShardInfo] = field(default_factory=list)
    source: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)


def _existing_shards(out_dir: Path, new_splits: set[str | None]) -> _Existing:
    """The shards listed in ``out_dir``'s manifest; an error if a new split is already there."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return _Existing()
    data = json.loads(manifest.read_text())
    shards = [ShardInfo(s["name"], int(s["count"]), s.get("split")) for s in data["shards"]]
    clash = sorted(split or "(no split)" for split in new_splits & {s.split for s in shards})
    if clash:
        raise DataError(f"{out_dir} already holds split {', '.join(clash)}; --append adds new splits only")
    return _Existing(shards, data.get("source"), dict(data.get("meta", {}).get("skipped", {})))


def _output_dir(out_dir: Path, options: WriteOptions, existing: _Existing) -> Path:
    if options.resume and (out_dir / MANIFEST).is_file() and not options.append:
        raise DataError(f"{out_dir} is already complete ({MANIFEST} exists); nothing to resume")
    if existing.shards or options.resume:
        out_dir.mkdir(parents=True, exist_ok=True)
        return out_dir
    return prepare_output_dir(out_dir, options.overwrite)


def _write_all(
    entries: list[ImageEntry], writer: ShardSetWriter, summary: WriteSummary, store: FeatureStore | None,
    options: WriteOptions,
) -> None:
    """Every entry not already in a finished shard, with a progress bar; skips counted."""
    done = writer.keys_written()  # from the finished shards of an interrupted run
    for entry in progress_bar(entries, options.progress, unit="image", desc=summary.source):
        if entry.key in done:
            continue
        try:
            writer.write(build_sample(entry, summary.source, store))
        except SkipSample as skipped:
            if options.on_error == "raise":
                raise
            summary.skip(skipped.reason, skipped.path)


def write_entries(
    entries: Iterable[ImageEntry], out_dir: str | os.PathLike[str], source: str, options: WriteOptions
) -> WriteSummary:
    """Write every convertible entry to shards in ``out_dir``; skip or raise on the others.
    With ``options.append`` the directory's shards stay and the manifest lists old and new; with
    ``options.resume`` the shards an interrupted run finished stay, and the run goes on from them."""
    began = time.perf_counter()
    entries = list(entries)  # metadata only: the images and features are read while writing
    splits = {entry.split or None for entry in entries}  # as the writer names them
    existing = _existing_shards(Path(out_dir), splits) if options.append else _Existing()
    path = _output_dir(Path(out_dir), options, existing)
    prefix = options.prefix or source
    store = open_feature_store(options.features_dir, options.features_format) if options.features_dir else None
    summary = WriteSummary(str(path), source)
    try:
        with ShardSetWriter(path, prefix, options.shard_size) as writer:
            if options.resume:
                writer.keep(*finished_shards(path, prefix, splits, {s.name for s in existing.shards}))
            _write_all(entries, writer, summary, store, options)
    except CorruptRecord as error:
        kept = len(writer.shards)
        raise DataError(f"{error}; the {kept} finished shard{'' if kept == 1 else 's'} in {path} stay: mend or "
                        "drop the record, then rerun with --resume to go on from them") from error
    finally:
        if store is not None:
            store.close()
    summary.shards = writer.shards
    skipped = dict(existing.skipped)
    for reason, count in summary.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + count
    sources = source if existing.source in (None, source) else f"{existing.source}+{source}"
    write_manifest(path, sources, existing.shards + summary.shards, {"skipped": skipped})
    summary.seconds = time.perf_counter() - began
    return summary


# --- an image folder with captions in JSONL or CSV -------------------------------------------------


def _row_questions(row: dict, image: str) -> list[SampleQuestion]:
    """The optional "questions" of a JSONL row: [{"question": ..., "answers": [...], "type": ...,
    "subtype": ...}] (type, subtype and id optional)."""
    stem = Path(image).with_suffix("").as_posix()
    return [
        SampleQuestion(str(q.get("id", f"{stem}-{n}")), str(q["question"]), [str(a) for a in q.get("answers", [])],
                       str(q.get("type", "other")), None if q.get("subtype") is None else str(q["subtype"]))
        for n, q in enumerate(row.get("questions", []))
    ]  # fmt: skip


def _read_caption_rows(captions_file: Path) -> Iterator[tuple[str, list[str], list[SampleQuestion]]]:
    """(relative image path, captions, questions) per row of a ``.jsonl`` or ``.csv`` file."""
    if captions_file.suffix.lower() == ".csv":
        with captions_file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"image", "caption"} <= set(reader.fieldnames):
                raise DataError(f"{captions_file}: a CSV captions file needs the header 'image,caption'")
            for row in reader:
                yield row["image"], [row["caption"]], []
        return
    with captions_file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                captions = row["captions"] if "captions" in row else [row["caption"]] if "caption" in row else []
                questions = _row_questions(row, row["image"])
                if not captions and not questions:
                    raise KeyError("caption")
                yield row["image"], [str(c) for c in captions], questions
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise DataError(f"{captions_file}:{number}: expected {{\"image\": ..., \"caption(s)\": ... and/or "
                                f"\"questions\": [{{\"question\": ..., \"answers\": [...]}}]}}") from None


def _folder_images(images_dir: Path) -> Iterator[tuple[str, list[str], list[SampleQuestion]]]:
    for path in sorted(images_dir.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path.relative_to(images_dir).as_posix(), [], []


def read_folder_entries(
    images_dir: str | os.PathLike[str] | None,
    captions_file: str | os.PathLike[str] | None = None,
    split: str = "train",
    source: str = "folder",
) -> list[ImageEntry]:
    """One entry per image; captions of repeated rows are merged in file order. No captions file:
    every image under ``images_dir``, without captions (e.g. to run a model on your own images).
    No ``images_dir``: the captions file's ``image`` names image ids (features without images)."""
    root = require_dir(images_dir, "images directory") if images_dir is not None else None
    if captions_file is None:
        if root is None:
            raise DataError("give an images directory, a captions file, or both")
        rows = _folder_images(root)
    else:
        rows = _read_caption_rows(require_file(captions_file, "captions file"))
    captions: dict[str, list[str]] = {}
    questions: dict[str, list[SampleQuestion]] = {}
    for image, texts, asked in rows:
        captions.setdefault(image, []).extend(t.strip() for t in texts)
        questions.setdefault(image, []).extend(asked)
    entries = []
    for index, (image, texts) in enumerate(captions.items()):
        image_id = Path(image).with_suffix("").as_posix()
        path = root / image if root is not None else None
        entries.append(ImageEntry(path, f"{source}_{index:08d}", image_id, split, texts, questions[image]))
    return entries


def convert_folder(
    images_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    captions_file: str | os.PathLike[str] | None = None,
    split: str = "train",
    options: WriteOptions | None = None,
) -> WriteSummary:
    entries = read_folder_entries(images_dir, captions_file, split)
    return write_entries(entries, out_dir, "folder", options or WriteOptions())


# --- COCO and Flickr30k captions in Karpathy's split JSON --------------------------------------


def _karpathy_entry(image: dict, root: Path | None, dataset: str, merge_restval: bool) -> ImageEntry:
    split = "train" if merge_restval and image["split"] == "restval" else image["split"]
    path = None if root is None else root / image.get("filepath", "") / image["filename"]
    image_id = str(image["cocoid"]) if "cocoid" in image else Path(image["filename"]).stem
    captions = [(s.get("raw") or " ".join(s.get("tokens", []))).strip() for s in image.get("sentences", [])]
    return ImageEntry(path, f"{dataset}_{image.get('imgid', image_id)}", image_id, split, captions)


def read_karpathy_entries(
    annotations: str | os.PathLike[str],
    images_root: str | os.PathLike[str] | None,
    dataset: str,
    splits: Iterable[str] | None = None,
    merge_restval: bool = True,
) -> list[ImageEntry]:
    """Entries of ``dataset_coco.json``/``dataset_flickr30k.json``; ``splits`` filters (None: all).

    ``merge_restval`` relabels COCO's "restval" as "train" (the usual 113k-image training set)
    before filtering, so ``splits=["train"]`` then includes it.
    """
    path = require_file(annotations, "Karpathy split file")
    root = require_dir(images_root, "images root") if images_root is not None else None
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
        entries = [_karpathy_entry(image, root, dataset, merge_restval) for image in images]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a Karpathy split file ({error!r})") from None
    wanted = set(splits) if splits is not None else None
    return [e for e in entries if wanted is None or e.split in wanted]


def convert_karpathy(
    annotations: str | os.PathLike[str],
    images_root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    dataset: str = "coco",
    splits: Iterable[str] | None = None,
    merge_restval: bool = True,
    options: WriteOptions | None = None,
) -> WriteSummary:
    """COCO (``dataset="coco"``, images at ``root/filepath/filename``) or Flickr30k (``root/filename``)."""
    entries = read_karpathy_entries(annotations, images_root, dataset, splits, merge_restval)
    return write_entries(entries, out_dir, f"{dataset}-karpathy", options or WriteOptions())
