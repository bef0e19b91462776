"""Test helper: read a shard directory back with plain webdataset, in manifest order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import webdataset as wds


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "manifest.json").read_text())


def read_samples(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every sample of every shard the manifest lists, members as raw bytes, ``json`` decoded."""
    urls = [str(Path(out_dir) / shard["name"]) for shard in read_manifest(out_dir)["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    for sample in samples:
        sample["json"] = json.loads(sample["json"])
    return samples
