"""The original project's per-image records (vilbert-multi-task, bottom-up-attention, LXMERT) ->
:class:`~vlbert.data.shards.schema.RegionFeatures`, values kept exactly.

Arrays come as numpy arrays (``script/extract_features.py``'s ``.npy`` dicts and
``script/convert_to_lmdb.py``'s LMDB records) or base64-encoded float32 buffers (the published
LMDB files, read by the original's ``_image_features_reader.py``, and every TSV). Features stay
float32, bit for bit; boxes stay in the pixels of the ``image_w`` x ``image_h`` image, which is
kept as ``RegionFeatures.image_size`` so that readers divide by the same numbers as the original.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from vlbert.data.shards.schema import DataError, RegionFeatures


class CorruptRecord(DataError):
    """A feature record that cannot be decoded; the message names the image id and the file."""

    def __init__(self, image_id: str, where: str, why: str) -> None:
        super().__init__(f"image {image_id}: corrupt feature record in {where} ({why})")
        self.image_id = image_id


def decode_array(value: Any, dtype: type, columns: int | None, rows: int) -> np.ndarray:
    """An array field: a numpy array (kept), or base64 of a ``dtype`` buffer, as [rows, columns]
    (``columns`` None: one value per row). Raises ValueError when the sizes disagree."""
    if isinstance(value, (bytes, str)):
        array = np.frombuffer(base64.b64decode(value, validate=False), dtype=dtype)
    else:
        array = np.asarray(value)
    shape = (rows,) if columns is None else (rows, columns if columns > 0 else -1)
    return array.reshape(shape)


def _float32(array: np.ndarray) -> np.ndarray:
    return array if array.dtype in (np.float32, np.float16) else array.astype(np.float32)


def regions_from_fields(image_id: str, where: str, fields: dict[str, Any]) -> RegionFeatures:
    """One image's regions from the fields every layout has, under the LMDB record's names:
    ``image_w``, ``image_h``, ``num_boxes``, ``boxes`` [N, 4], ``features`` [N, D] and optional
    ``cls_prob`` [N, C]."""
    try:
        rows = int(np.asarray(fields["num_boxes"]).reshape(-1)[0])
        width, height = int(fields["image_w"]), int(fields["image_h"])
        boxes = decode_array(fields["boxes"], np.float32, 4, rows)
        features = decode_array(fields["features"], np.float32, -1, rows)
        probs = fields.get("cls_prob")
        probs = None if probs is None else decode_array(probs, np.float32, -1, rows).astype(np.float32)
        if rows < 1:
            raise ValueError("no boxes")
        return RegionFeatures(_float32(features), boxes.astype(np.float32), probs, (width, height))
    except KeyError as error:
        raise CorruptRecord(image_id, where, f"no field {error.args[0]!r}") from None
    except (ValueError, TypeError, IndexError, binascii.Error, DataError) as error:
        raise CorruptRecord(image_id, where, f"{type(error).__name__}: {error}") from None


def lmdb_fields(item: dict[str, Any]) -> dict[str, Any]:
    """A ``convert_to_lmdb.py`` record keeps its names."""
    return item


def npy_fields(item: dict[str, Any]) -> dict[str, Any]:
    """An ``extract_features.py`` dict: ``bbox``, ``image_width``, ``image_height`` renamed."""
    renamed = {"bbox": "boxes", "image_width": "image_w", "image_height": "image_h"}
    return {renamed.get(name, name): value for name, value in item.items()}


# bottom-up-attention / LXMERT TSV columns, told apart by their number
TSV_COLUMNS = {
    10: ("img_id", "img_h", "img_w", "objects_id", "objects_conf", "attrs_id", "attrs_conf", "num_boxes", "boxes",
         "features"),  # LXMERT
    6: ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features"),  # bottom-up-attention's generate_tsv.py
}  # fmt: skip


def tsv_fields(line: str) -> tuple[str, dict[str, Any]]:
    """(image id, fields) of one TSV row; a row of another width raises ValueError."""
    values = line.rstrip("\r\n").split("\t")
    names = TSV_COLUMNS.get(len(values))
    if names is None:
        raise ValueError(f"{len(values)} tab-separated columns, expected 10 (LXMERT) or 6 (bottom-up-attention)")
    row = dict(zip(names, values))
    image_id = row.pop("img_id", None) or row.pop("image_id")
    row.setdefault("image_w", row.pop("img_w", None))
    row.setdefault("image_h", row.pop("img_h", None))
    return image_id, row
