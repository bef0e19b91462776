"""The one error a source raises for an input it skips (and counts) rather than stopping on."""

from __future__ import annotations

import os

from vlbert.data.shards.schema import DataError


class SkipSample(DataError):
    """One entry cannot be converted (``reason``: "missing image", ...); ``path`` names the file."""

    def __init__(self, reason: str, path: str | os.PathLike[str]) -> None:
        super().__init__(f"{reason}: {path}")
        self.reason = reason
        self.path = os.fspath(path)
