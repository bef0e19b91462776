"""Reading shards: which tar files, their raw samples (with shard-level checks) and the parsed
`Record` of each sample, before any image is decoded."""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import webdataset as wds
from webdataset.tariterators import tarfile_samples

from vlbert.data.shards.schema import DataError, SampleRecord
from vlbert.data.shards.stats import ErrorPolicy

MANIFEST = "manifest.json"
IMAGE_MEMBERS = ("png", "jpg", "jpeg")
_BLOCK = 512  # tar block size; an archive ends with two zero blocks


@dataclass
class ShardSource:
    """The tar urls to read and, where a manifest gives them, their sample counts."""

    urls: list[str]
    counts: dict[str, int] = field(default_factory=dict)


def _from_manifest(directory: Path, split: str | None) -> ShardSource:
    manifest = json.loads((directory / MANIFEST).read_text())
    shards = [s for s in manifest["shards"] if split is None or s.get("split") == split]
    if not shards:
        raise DataError(f"{directory / MANIFEST} lists no shards" + (f" of split {split!r}" if split else ""))
    urls = [str(directory / s["name"]) for s in shards]
    return ShardSource(urls, {url: int(s["count"]) for url, s in zip(urls, shards)})


def resolve_shards(source: str | os.PathLike[str] | Sequence[str], split: str | None = None) -> ShardSource:
    """A shard directory (its ``manifest.json``, else every ``*.tar``), one tar path or url, a
    brace pattern (``data-{000..009}.tar``) or a list of urls."""
    if isinstance(source, (list, tuple)):
        urls = [str(u) for u in source]
    elif Path(source).is_dir():
        directory = Path(source)
        if (directory / MANIFEST).is_file():
            return _from_manifest(directory, split)
        if split is not None:
            raise DataError(f"{directory} has no {MANIFEST}, so split {split!r} cannot be selected")
        urls = sorted(glob.glob(str(directory / "*.tar")))
    else:
        urls = wds.shardlists.expand_urls(str(source))
    if not urls:
        raise DataError(f"no shards found in {source}")
    return ShardSource(urls)


def _local_path(url: str) -> str | None:
    if url.startswith("file:"):
        return url[len("file:") :]
    return None if "://" in url or url.startswith("pipe:") else url


def tar_problem(url: str) -> str | None:
    """Why a local tar file cannot be complete (None if it looks whole; remote urls are not checked):
    a complete archive is a whole number of 512-byte blocks ending in two zero blocks."""
    path = _local_path(url)
    if path is None or not os.path.isfile(path):
        return None  # a missing file fails on opening, with its own error
    size = os.path.getsize(path)
    if size < 2 * _BLOCK or size % _BLOCK:
        return f"{size} bytes is not a whole tar archive (truncated?)"
    with open(path, "rb") as f:
        f.seek(size - 2 * _BLOCK)
        if any(f.read()):
            return f"no end-of-archive marker in the last {2 * _BLOCK} bytes (truncated?)"
    return None


class ShardReader:
    """Pipeline stage: ``{"url": ...}`` dicts -> webdataset samples, one shard at a time.

    A shard that fails to read or is truncated loses its last sample (it may be cut off) and is
    reported (``truncated_tar`` / ``bad_tar`` plus ``incomplete_sample``); a shard holding fewer
    samples than its manifest count reports the difference as ``missing_samples``.
    """

    def __init__(self, policy: ErrorPolicy, counts: dict[str, int]) -> None:
        self.policy = policy
        self.counts = counts

    def __call__(self, src: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for shard in src:
            yield from self.read(shard["url"])

    def read(self, url: str) -> Iterator[dict[str, Any]]:
        errors: list[Exception] = []

        def stop_shard(error: Exception) -> bool:
            errors.append(error)
            return False  # nothing after a tar read error can be trusted

        problem = tar_problem(url)
        held: dict[str, Any] | None = None
        read = 0
        for sample in tarfile_samples([{"url": url}], handler=stop_shard):
            if held is not None:
                yield held
            held = sample
            read += 1
            self.policy.pending.samples += 1
        if problem is None and errors:
            problem = f"{type(errors[0]).__name__}: {errors[0].args[0] if errors[0].args else errors[0]}"
        if problem is None and held is not None:
            yield held
        elif problem is not None:
            self._report_broken(url, problem, held)
        self._check_count(url, read)

    def _report_broken(self, url: str, problem: str, held: dict[str, Any] | None) -> None:
        truncated = "truncated" in problem or "unexpected end" in problem or "empty header" in problem
        key = None if held is None else held["__key__"]
        detail = problem + ("" if key is None else f"; sample {key!r} may be cut off and is dropped")
        self.policy.bad("truncated_tar" if truncated else "bad_tar", url, key, detail)
        if held is not None:
            self.policy.bad("incomplete_sample", url, key, "the last sample read from a broken shard")

    def _check_count(self, url: str, read: int) -> None:
        expected = self.counts.get(url)
        if expected is not None and read < expected:
            self.policy.bad("missing_samples", url, None, f"manifest promises {expected} samples, read {read}",
                            n=expected - read)  # fmt: skip


@dataclass
class Record:
    """One sample's members, the json parsed and the binary members still encoded."""

    key: str
    url: str
    meta: SampleRecord
    image: bytes | None  # png / jpg bytes
    npz: bytes | None  # region features


class RecordParser:
    """Pipeline stage: webdataset samples -> `Record` s; drops (by the policy) samples whose json
    is malformed or that lack the member the image input needs."""

    def __init__(self, policy: ErrorPolicy, needs_image: bool, needs_features: bool) -> None:
        self.policy = policy
        self.needs_image = needs_image
        self.needs_features = needs_features

    def __call__(self, src: Iterator[dict[str, Any]]) -> Iterator[Record]:
        for sample in src:
            record = self.parse(sample)
            if record is not None:
                yield record

    def parse(self, sample: dict[str, Any]) -> Record | None:
        key, url = sample["__key__"], sample["__url__"]
        try:
            meta = SampleRecord.from_json(json.loads(sample["json"]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self.policy.bad("bad_json", url, key, f"json member missing or malformed ({type(error).__name__}: {error})")
            return None
        image = next((sample[m] for m in IMAGE_MEMBERS if m in sample), None)
        if self.needs_image and image is None:
            self.policy.bad("missing_image", url, key, f"no image member (members: {_members(sample)})")
            return None
        if self.needs_features and "npz" not in sample:
            self.policy.bad("missing_features", url, key, f"no npz member (members: {_members(sample)})")
            return None
        return Record(key, url, meta, image, sample.get("npz"))


def _members(sample: dict[str, Any]) -> str:
    return ", ".join(sorted(k for k in sample if not k.startswith("__"))) or "none"


def read_records(
    source: str | os.PathLike[str] | Sequence[str], split: str | None = None, on_error: str = "skip"
) -> Iterator[Record]:
    """Every record of ``source`` in shard order, no images decoded: for building vocabularies."""
    shards = resolve_shards(source, split)
    policy = ErrorPolicy(on_error)
    reader = ShardReader(policy, shards.counts)
    parser = RecordParser(policy, needs_image=False, needs_features=False)
    yield from parser(reader(iter({"url": url} for url in shards.urls)))
