"""Write :class:`~vlbert.data.shards.schema.ShardSample` s into webdataset shards plus a ``manifest.json``.

Shards are named ``{prefix}-{index:06d}.tar``; samples of different splits go to different shard
series (prefix ``{prefix}-{split}``) so that a loader can pick a split from the manifest alone.
Tar headers carry a fixed mtime, so the same samples always give byte-identical shards.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import webdataset as wds

from vlbert.data.shards.schema import FORMAT, DataError, ShardSample

MANIFEST = "manifest.json"
_NAME_PART = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class ShardInfo:
    """One written shard file."""

    name: str  # file name inside the output directory
    count: int  # samples in it
    split: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "split": self.split}


@dataclass
class WriteSummary:
    """What a shard-writing run did: shards written, samples skipped and why, speed."""

    out_dir: str
    source: str
    shards: list[ShardInfo] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: list[str] = field(default_factory=list)  # the first few, "reason: path"
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(s.count for s in self.shards)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def splits(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for shard in self.shards:
            if shard.split is not None:
                counts[shard.split] = counts.get(shard.split, 0) + shard.count
        return counts

    @property
    def images_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else float("inf")

    def skip(self, reason: str, what: str, max_examples: int = 10) -> None:
        """Count one skipped item; keep the first few for the report."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_examples) < max_examples:
            self.skipped_examples.append(f"{reason}: {what}")

    def format(self) -> str:
        """A short human-readable report."""
        splits = ", ".join(f"{k}: {v}" for k, v in self.splits.items())
        lines = [f"wrote {self.total} samples ({splits}) in {len(self.shards)} shards to {self.out_dir}"]
        lines.append(f"skipped {self.num_skipped}" + "".join(f"; {r}: {n}" for r, n in self.skipped.items()))
        lines += [f"  {example}" for example in self.skipped_examples]
        lines.append(f"{self.seconds:.2f} s, {self.images_per_second:.0f} images/s")
        return "\n".join(lines)


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}.tar"


def series_prefix(prefix: str, split: str | None) -> str:
    """The shard-name prefix of one split's series, checked to be a plain file-name part."""
    name = f"{prefix}-{split}" if split else prefix
    if not _NAME_PART.match(name):
        raise DataError(f"shard prefix and split may only use letters, digits, '_' and '-': {name!r}")
    return name


def open_tar(path: str | os.PathLike[str]) -> wds.TarWriter:
    """A tar writer that takes pre-encoded members and stamps a fixed mtime (reproducible bytes)."""
    return wds.TarWriter(os.fspath(path), encoder=False, mtime=0.0)


def _partial(path: str | os.PathLike[str]) -> str:
    """Shards are written under this name and renamed when complete, so a crash leaves no half shard."""
    return os.fspath(path) + ".partial"


def write_shard(path: str | os.PathLike[str], samples: Iterable[ShardSample]) -> int:
    """Write all ``samples`` into one tar file; return how many. Used for parallel generation."""
    count = 0
    with open_tar(_partial(path)) as tar:
        for sample in samples:
            tar.write(sample.members())
            count += 1
    os.replace(_partial(path), path)
    return count


@dataclass
class _Series:
    prefix: str
    split: str | None
    index: int = 0
    count: int = 0
    tar: wds.TarWriter | None = None


class ShardSetWriter:
    """Writes samples into shards of at most ``shard_size``, one numbered series per split."""

    def __init__(self, out_dir: str | os.PathLike[str], prefix: str, shard_size: int = 1000) -> None:
        if shard_size < 1:
            raise DataError(f"shard size must be at least 1, got {shard_size}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.shard_size = shard_size
        self.shards: list[ShardInfo] = []
        self._series: dict[str | None, _Series] = {}
        self._keys: set[str] = set()

    def keep(self, shards: list[ShardInfo], keys: set[str]) -> None:
        """Carry on after the finished ``shards`` of an interrupted run (holding ``keys``): their
        series go on at the next index, and they are listed with the shards written now."""
        for shard in shards:
            series = self._series.get(shard.split)
            if series is None:
                series = self._series[shard.split] = _Series(series_prefix(self.prefix, shard.split), shard.split)
            series.index += 1
            self.shards.append(shard)
        self._keys |= keys

    def keys_written(self) -> set[str]:
        """The keys of every sample written so far (kept shards included)."""
        return set(self._keys)

    def write(self, sample: ShardSample) -> None:
        if sample.key in self._keys:
            raise DataError(f"duplicate sample key {sample.key!r}")
        self._keys.add(sample.key)
        split = sample.record.split or None
        series = self._series.get(split)
        if series is None:
            series = self._series[split] = _Series(series_prefix(self.prefix, split), split)
        if series.tar is None:
            series.tar = open_tar(_partial(self.out_dir / shard_name(series.prefix, series.index)))
        series.tar.write(sample.members())
        series.count += 1
        if series.count >= self.shard_size:  # finished at once: a run stopped later keeps it
            self._finish(series)

    def _finish(self, series: _Series) -> None:
        assert series.tar is not None
        series.tar.close()
        name = shard_name(series.prefix, series.index)
        os.replace(_partial(self.out_dir / name), self.out_dir / name)
        self.shards.append(ShardInfo(name, series.count, series.split))
        series.tar, series.count, series.index = None, 0, series.index + 1

    def close(self) -> list[ShardInfo]:
        """Close the open shards; return every shard written, in series order."""
        for series in self._series.values():
            if series.tar is not None:
                self._finish(series)
        order = {split: i for i, split in enumerate(self._series)}
        self.shards.sort(key=lambda s: (order[s.split], s.name))
        return self.shards

    def abort(self) -> None:
        """Stop after an error: drop the unfinished shards, keep the finished ones."""
        for series in self._series.values():
            if series.tar is not None:
                series.tar.close()
                os.remove(_partial(self.out_dir / shard_name(series.prefix, series.index)))
                series.tar = None

    def __enter__(self) -> ShardSetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def shard_keys(path: str | os.PathLike[str]) -> list[str]:
    """The sample keys of a shard, in order, from its tar headers alone (no member is read)."""
    keys: list[str] = []
    with tarfile.open(path) as tar:
        for name in tar.getnames():
            key = name.split(".", 1)[0]
            if not keys or keys[-1] != key:
                keys.append(key)
    return keys


def finished_shards(
    out_dir: str | os.PathLike[str], prefix: str, splits: set[str | None], listed: set[str] = frozenset()
) -> tuple[list[ShardInfo], set[str]]:
    """The shards an interrupted run finished in ``out_dir`` for ``splits`` (complete files
    ``{prefix}[-{split}]-000000.tar``, ``-000001``, ... without a gap; those in ``listed``, a
    manifest's, are not counted) and the keys they hold. Unfinished ``.partial`` files are ignored."""
    shards: list[ShardInfo] = []
    keys: set[str] = set()
    for split in sorted(splits, key=lambda s: s or ""):
        name_prefix = series_prefix(prefix, split)
        index = 0
        while (Path(out_dir) / shard_name(name_prefix, index)).is_file():
            name = shard_name(name_prefix, index)
            if name not in listed:
                held = shard_keys(Path(out_dir) / name)
                shards.append(ShardInfo(name, len(held), split))
                keys.update(held)
            index += 1
    return shards, keys


def write_manifest(
    out_dir: str | os.PathLike[str], source: str, shards: list[ShardInfo], meta: dict[str, Any] | None = None
) -> Path:
    """Write ``manifest.json``: format, source, shards with counts, total and per-split counts."""
    splits: dict[str, int] = {}
    for shard in shards:
        if shard.split is not None:
            splits[shard.split] = splits.get(shard.split, 0) + shard.count
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "source": source,
        "shards": [s.to_json() for s in shards],
        "total": sum(s.count for s in shards),
        "splits": splits,
    }
    if meta:
        manifest["meta"] = meta
    path = Path(out_dir) / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def prepare_output_dir(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Create ``out_dir``; refuse one that holds a manifest unless ``overwrite`` (then drop its shards)."""
    path = Path(out_dir)
    manifest = path / MANIFEST
    if manifest.exists():
        if not overwrite:
            raise DataError(f"{path} already holds shards ({MANIFEST}); --overwrite replaces them (converters: --append adds new splits)")
        for shard in json.loads(manifest.read_text()).get("shards", []):
            if _NAME_PART.match(shard["name"].removesuffix(".tar")):  # never leave the directory
                (path / shard["name"]).unlink(missing_ok=True)
        manifest.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path
