"""Feature stores: region features by image id, from a folder of ``{image_id}.npz`` (vlbert's
own), a folder of the original's ``.npy`` dicts, an LMDB or a TSV file (``lmdb_store``,
``tsv_store``). :func:`open_feature_store` picks the reader by what the path holds.

A store reads one image at a time, so a set of any size streams. An image it lacks is a
``SkipSample`` ("missing features": counted, or an error with ``on_error=raise``); a record it
cannot decode is a :class:`~vlbert.data.sources.features.original.CorruptRecord`, which always stops
the conversion, naming the image id.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.errors import SkipSample
from vlbert.data.sources.features.original import CorruptRecord, npy_fields, regions_from_fields

FORMATS = ("auto", "npz", "npy", "lmdb", "tsv")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
# What a record of arrays may unpickle: numpy's array and scalar reconstruction, nothing else.
_NUMPY_GLOBALS = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                  for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}  # fmt: skip


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refused to unpickle {module}.{name} (a record holds arrays only)")
        return super().find_class(module, name)


def load_pickle(data: bytes | io.BufferedIOBase) -> Any:
    """Unpickle a record of numpy arrays, numbers and strings; any other class is refused, so a
    downloaded file cannot run code on loading."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return _NumpyUnpickler(stream, encoding="latin1").load()


def number_alias(name: str) -> str | None:
    """The number an id ends in, without leading zeros: COCO_val2014_000000000042 -> "42"."""
    match = _TRAILING_NUMBER.search(name)
    return str(int(match.group(1))) if match else None


class IdIndex:
    """A store's keys, found by exact id or, failing that, by the number both end in (the original
    scripts name COCO images 42 in one file and COCO_val2014_000000000042 in another)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys: set[str] = set()
        self.numbers: dict[str, str | None] = {}
        for key in keys:
            self.keys.add(key)
            alias = number_alias(key)
            if alias is not None:  # two keys with one number: ambiguous, matched exactly only
                self.numbers[alias] = None if alias in self.numbers else key

    def find(self, image_id: str) -> str | None:
        if image_id in self.keys:
            return image_id
        alias = number_alias(image_id)
        if alias is None:
            return None
        if alias in self.keys:
            return alias
        return self.numbers.get(alias)

    def __len__(self) -> int:
        return len(self.keys)


class FeatureStore:
    """Region features by image id. Subclasses set ``path`` and ``format`` and define ``read``."""

    path: Path
    format: str

    def read(self, image_id: str) -> RegionFeatures:
        raise NotImplementedError

    def missing(self, image_id: str) -> SkipSample:
        return SkipSample("missing features", f"{self.path} [{image_id}]")

    def close(self) -> None:
        pass

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NpzFolder(FeatureStore):
    """vlbert's layout: ``{folder}/{image_id}.npz`` with ``features``, ``boxes`` and optionally
    ``class_probs`` and ``image_size`` (what ``vlbert extract-features`` writes)."""

    format = "npz"

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, image_id: str) -> RegionFeatures:
        file = self.path / f"{image_id}.npz"
        if not file.is_file():
            raise SkipSample("missing features", file)
        try:
            with np.load(file) as npz:
                return RegionFeatures.from_arrays(npz)
        except (DataError, OSError, ValueError) as error:
            raise SkipSample(f"bad features ({error})", file) from None


class NpyFolder(FeatureStore):
    """The original's ``script/extract_features.py`` output: one ``.npy`` per image holding a
    pickled dict (``bbox``, ``num_boxes``, ``image_height``, ``image_width``, ``features``,
    ``cls_prob``, ``objects``), named after the image file (matched by number, see `IdIndex`)."""

    format = "npy"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = {file.relative_to(path).with_suffix("").as_posix(): file for file in path.rglob("*.npy")}
        self.index = IdIndex(self.files)

    def read(self, image_id: str) -> RegionFeatures:
        key = self.index.find(image_id)
        if key is None:
            raise self.missing(image_id)
        file = self.files[key]
        try:
            with file.open("rb") as handle:
                version = np.lib.format.read_magic(handle)
                header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                _, _, dtype = header(handle)
                item = load_pickle(handle) if dtype.hasobject else None
            item = item.item() if isinstance(item, np.ndarray) else item
            if not isinstance(item, dict):
                raise ValueError("not a pickled dict of arrays")
        except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
            raise CorruptRecord(image_id, str(file), f"{type(error).__name__}: {error}") from None
        return regions_from_fields(image_id, str(file), npy_fields(item))


def detect_format(path: Path) -> str:
    """What ``path`` holds: an LMDB (a folder with ``data.mdb``, or a ``.mdb``/``.lmdb`` file), a
    TSV file, a folder of ``.npy`` dicts, or a folder of ``.npz`` files."""
    if path.is_dir():
        if (path / "data.mdb").is_file():
            return "lmdb"
        first = next((name for name in sorted(os.listdir(path)) if name.endswith((".npy", ".npz"))), "")
        return "npy" if first.endswith(".npy") else "npz"
    if path.is_file():
        return "lmdb" if path.suffix in (".mdb", ".lmdb") else "tsv"
    raise DataError(f"features not found: {path}")


def open_feature_store(path: str | os.PathLike[str], format: str = "auto") -> FeatureStore:
    """The store at ``path``; ``format`` one of :data:`FORMATS` ("auto": :func:`detect_format`)."""
    if format not in FORMATS:
        raise DataError(f"features format must be one of {', '.join(FORMATS)}, got {format!r}")
    where = Path(path)
    format = detect_format(where) if format == "auto" else format
    if format == "lmdb":
        from vlbert.data.sources.features.lmdb_store import LmdbStore

        return LmdbStore(where)
    if format == "tsv":
        from vlbert.data.sources.features.tsv_store import TsvStore

        return TsvStore(where)
    if not where.is_dir():
        raise DataError(f"features directory is not a directory: {where}")
    return NpyFolder(where) if format == "npy" else NpzFolder(where)
