"""The original project's LMDB (vilbert-multi-task ``script/convert_to_lmdb.py``; the published
feature files): a ``keys`` entry holding the pickled list of image ids (bytes), and per image id
a pickled dict ``image_id``, ``image_h``, ``image_w``, ``num_boxes``, ``boxes`` [N, 4] in pixels,
``features`` [N, 2048] and optionally ``cls_prob``; arrays as numpy arrays or base64 float32.

Opened read-only without a lock (as the original reader does); records are read one at a time
from the memory map, so a set of any size streams. Needs the ``lmdb`` extra.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from vlbert._extras import require
from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.features.original import CorruptRecord, lmdb_fields, regions_from_fields
from vlbert.data.sources.features.stores import FeatureStore, IdIndex, load_pickle

KEYS = b"keys"


class LmdbStore(FeatureStore):
    format = "lmdb"

    def __init__(self, path: Path) -> None:
        lmdb = require("lmdb", "reading LMDB feature files")
        self.path = path
        try:
            self.env = lmdb.open(str(path), subdir=path.is_dir(), readonly=True, lock=False, readahead=False,
                                 meminit=False, max_readers=1)  # fmt: skip
            self.txn = self.env.begin(write=False, buffers=False)
            raw = self.txn.get(KEYS)
        except lmdb.Error as error:
            raise DataError(f"{path}: not a readable LMDB ({error})") from None
        if raw is None:
            raise DataError(f"{path}: an LMDB without the 'keys' entry (the pickled list of image ids)")
        try:
            keys = [key.decode() if isinstance(key, bytes) else str(key) for key in load_pickle(raw)]
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
            raise DataError(f"{path}: the 'keys' entry is not a pickled list of ids ({error})") from None
        self.keys = keys
        self.index = IdIndex(keys)
        self._errors = (lmdb.Error,)

    def read(self, image_id: str) -> RegionFeatures:
        key = self.index.find(image_id)
        if key is None:
            raise self.missing(image_id)
        try:
            raw = self.txn.get(key.encode())
            if raw is None:
                raise ValueError("listed in 'keys' but not stored")
            item = load_pickle(raw)
            if not isinstance(item, dict):
                raise ValueError("not a pickled dict")
        except (*self._errors, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
            raise CorruptRecord(image_id, str(self.path), f"{type(error).__name__}: {error}") from None
        return regions_from_fields(image_id, str(self.path), lmdb_fields(item))

    def close(self) -> None:
        self.txn.abort()
        self.env.close()
