"""The bottom-up-attention / LXMERT TSV: one image per line, tab-separated, arrays base64-encoded.

LXMERT's columns: ``img_id, img_h, img_w, objects_id, objects_conf, attrs_id, attrs_conf,
num_boxes, boxes, features`` (boxes and features float32); bottom-up-attention's
``generate_tsv.py`` writes ``image_id, image_w, image_h, num_boxes, boxes, features``. The file is
scanned once for where each line starts (the ids only, nothing decoded); images are then read
one line at a time.
"""

from __future__ import annotations

from pathlib import Path

from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.features.original import CorruptRecord, regions_from_fields, tsv_fields
from vlbert.data.sources.features.stores import FeatureStore, IdIndex


def line_offsets(path: Path) -> dict[str, int]:
    """Image id -> byte offset of its line (the first field of each line)."""
    offsets: dict[str, int] = {}
    with path.open("rb") as handle:
        position = 0
        for line in handle:
            image_id = line.split(b"\t", 1)[0].decode("utf-8", "replace").strip()
            if image_id:
                offsets[image_id] = position
            position += len(line)
    return offsets


class TsvStore(FeatureStore):
    format = "tsv"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.offsets = line_offsets(path)
        except OSError as error:
            raise DataError(f"{path}: cannot read the TSV ({error})") from None
        self.index = IdIndex(self.offsets)
        self.handle = path.open("rb")

    def read(self, image_id: str) -> RegionFeatures:
        key = self.index.find(image_id)
        if key is None:
            raise self.missing(image_id)
        self.handle.seek(self.offsets[key])
        try:
            _, fields = tsv_fields(self.handle.readline().decode("ascii"))
        except (UnicodeDecodeError, ValueError) as error:
            raise CorruptRecord(image_id, str(self.path), f"{type(error).__name__}: {error}") from None
        return regions_from_fields(image_id, str(self.path), fields)

    def close(self) -> None:
        self.handle.close()
